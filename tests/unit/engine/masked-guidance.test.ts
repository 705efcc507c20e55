/**
 * The guided masked step (src-main/engine/families/masked/sampler.ts, `guide`): weight x (g[i, v] - g[i, current]) is
 * added to the logits of masked positions in the guided segment before proposing, hard constraints still decide
 * what may be committed, and the gradient is computed with the logits (reused with them while the canvas stands).
 * The denoiser and the classifier are plain functions here; the real graphs are tested on the real bundle.
 */
import { describe, expect, it } from 'vitest';
import { sampleMasked, type MaskedSampleOptions } from '../../../src-main/engine/families/masked/sampler';

const N = 6;
const V = 10; // tokens 0..8, mask id 9
const MASK = 9;

/** A denoiser that slightly prefers token 1 everywhere. */
const flatLogits: MaskedSampleOptions['logits'] = async (_ids, B) => {
  const logits = new Float32Array(B * N * V);
  for (let r = 0; r < B * N; r++) logits[r * V + 1] = 0.5;
  return { logits, V };
};

/** A classifier gradient over positions 2..5 (a segment of length 4) that favours `token` at segment offset `at`. */
function guideFor(token: number, at: number, weight = 1, calls?: { n: number }): NonNullable<MaskedSampleOptions['guide']> {
  return {
    start: 2,
    length: 4,
    async grad(_ids, B) {
      if (calls) calls.n++;
      const g = new Float32Array(B * 4 * V);
      for (let b = 0; b < B; b++) g[(b * 4 + at) * V + token] = 3;
      return { grad: g, V };
    },
    weightAt: () => weight,
  };
}

const base = (extra: Partial<MaskedSampleOptions> = {}): MaskedSampleOptions => ({
  seeds: [1, 2],
  length: N,
  vocabSize: 9,
  maskId: MASK,
  shifted: false,
  settings: { steps: N, blockLength: 0, confidence: 'low_confidence', temperature: 0, topP: 1 },
  logits: flatLogits,
  ...extra,
});

describe('guided masked sampling', () => {
  it('moves the proposal at the guided position and nowhere else', async () => {
    const plain = await sampleMasked(base());
    expect([...plain.tokens!]).toEqual(new Array(2 * N).fill(1));
    const guided = await sampleMasked(base({ guide: guideFor(7, 1) }));
    for (let b = 0; b < 2; b++) {
      const row = [...guided.tokens!.subarray(b * N, (b + 1) * N)];
      expect(row).toEqual([1, 1, 1, 7, 1, 1]); // segment offset 1 = canvas position 3
    }
  });

  it('weight 0 (or an anneal that ends at 0 on the only step) leaves the sampler as it was', async () => {
    const plain = await sampleMasked(base());
    const zero = await sampleMasked(base({ guide: guideFor(7, 1, 0) }));
    expect([...zero.tokens!]).toEqual([...plain.tokens!]);
  });

  it('a weak gradient does not beat a confident denoiser: the term is weight x the gradient difference', async () => {
    // 3 x 0.1 = 0.3 < the 0.5 the denoiser gives token 1
    const weak = await sampleMasked(base({ guide: guideFor(7, 1, 0.1) }));
    expect([...weak.tokens!]).toEqual(new Array(2 * N).fill(1));
  });

  it('held positions are never changed by guidance', async () => {
    const held = new Int32Array(N).fill(-1);
    held[3] = 4;
    const r = await sampleMasked(base({ held, guide: guideFor(7, 1) }));
    expect(r.tokens![3]).toBe(4);
    expect(r.tokens![N + 3]).toBe(4);
  });

  it('is computed with the logits: one gradient call per denoiser call, its time reported', async () => {
    const calls = { n: 0 };
    const r = await sampleMasked(base({ guide: guideFor(7, 1, 1, calls), settings: { steps: 12, blockLength: 0, confidence: 'low_confidence', temperature: 0, topP: 1 } }));
    expect(calls.n).toBe(r.calls);
    expect(r.calls).toBeLessThan(12); // 12 steps for 6 positions: steps that commit nothing reuse both
    expect(r.guideMs).toBeGreaterThanOrEqual(0);
  });

  it('the term is relative to the current token: a gradient equal for every token changes nothing', async () => {
    const uniform: NonNullable<MaskedSampleOptions['guide']> = {
      start: 0, length: N, weightAt: () => 100,
      async grad(_ids, B) {
        return { grad: new Float32Array(B * N * V).fill(5), V };
      },
    };
    const plain = await sampleMasked(base());
    const r = await sampleMasked(base({ guide: uniform }));
    expect([...r.tokens!]).toEqual([...plain.tokens!]);
  });
});
