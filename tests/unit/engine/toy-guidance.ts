/** A toy classifier for the sampler tests: log p grows with the first coordinate of every position (grad = 1 there). */
import type { GuidanceTerm } from '../../../src-main/engine/guidance';

export function firstCoordinateTerm(N: number, d: number): GuidanceTerm {
  return {
    control: 'toy', weight: 1,
    async grad(x, _t, B) {
      const grad = new Float32Array(x.length);
      for (let i = 0; i < B * N; i++) grad[i * d] = 1;
      return { grad, logp: new Float32Array(B) };
    },
    // the log p this gradient ascends: the sum of the first coordinates
    async score(x, _t, B) {
      const out = new Float32Array(B);
      for (let i = 0; i < B * N; i++) out[Math.floor(i / N)]! += x[i * d]!;
      return out;
    },
  };
}

/** The mean first coordinate of the chosen tokens' embeddings: what that classifier rewards. */
export function meanFirstCoordinate(E: Float32Array, d: number): (tokens: Int32Array) => number {
  return (toks) => Array.from(toks).reduce((a, t) => a + E[t * d]!, 0) / toks.length;
}
