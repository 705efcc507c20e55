import { describe, expect, it } from 'vitest';
import { Mulberry32 } from '../../../src-main/engine/prng';
import { type DenoiseFn, sampleBatch } from '../../../src-main/engine/families/continuous/sampler';
import { jsRounder, makeEmbeddings, nearest } from '../../../src-main/engine/families/continuous/rounding';
import { firstCoordinateTerm, meanFirstCoordinate } from './toy-guidance';
import { buildSchedule } from '../../../src-main/engine/schedule';

const V = 40;
const d = 4;
const N = 10;
const g = new Mulberry32(3);
const E = new Float32Array(V * d);
for (let i = 0; i < E.length; i++) E[i] = g.normal();
const emb = makeEmbeddings(E, V, d);
/** A stand-in denoiser: shrinks x_t a little, with a dependence on t, so the loop has something to do. */
const denoise: DenoiseFn = async (x, t) => {
  const out = new Float32Array(x.length);
  const per = x.length / t.length;
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * (0.8 + t[Math.floor(i / per)]! / 20000);
  return out;
};
const schedule = buildSchedule(2000, 1e-4, 12);

describe('sampler loop', () => {
  it('is deterministic for a seed and differs across seeds; a sample does not depend on its batch', async () => {
    const a = await sampleBatch({ seeds: [1, 2, 3], length: N, emb, schedule, denoise, clamp: true });
    const b = await sampleBatch({ seeds: [1, 2, 3], length: N, emb, schedule, denoise, clamp: true });
    const c = await sampleBatch({ seeds: [2], length: N, emb, schedule, denoise, clamp: true });
    expect(Array.from(a.tokens!)).toEqual(Array.from(b.tokens!));
    expect(Array.from(a.tokens!.subarray(N, 2 * N))).toEqual(Array.from(c.tokens!));
    expect(Array.from(a.tokens!.subarray(0, N))).not.toEqual(Array.from(a.tokens!.subarray(N, 2 * N)));
    expect(a.stepMs).toHaveLength(12);
  });

  it('holds given tokens exactly, at every step and in the output', async () => {
    const held = new Int32Array(N).fill(-1);
    held[0] = 5;
    held[3] = 17;
    held[9] = 2;
    const seen: Int32Array[] = [];
    const r = await sampleBatch({ seeds: [4, 5], length: N, emb, schedule, denoise, clamp: true, held, onStep: (_s, t) => void seen.push(t.slice()) });
    for (const toks of [...seen, r.tokens!]) {
      for (let b = 0; b < 2; b++) {
        expect(toks[b * N + 0]).toBe(5);
        expect(toks[b * N + 3]).toBe(17);
        expect(toks[b * N + 9]).toBe(2);
      }
    }
  });

  it('without clamping, x0 is left as predicted (different path) but rounding and held tokens still apply', async () => {
    const held = new Int32Array(N).fill(-1);
    held[2] = 11;
    const clamped = await sampleBatch({ seeds: [3], length: N, emb, schedule, denoise, clamp: true, held });
    const free = await sampleBatch({ seeds: [3], length: N, emb, schedule, denoise, clamp: false, held });
    expect(free.tokens![2]).toBe(11);
    expect(Array.from(free.tokens!).every((t) => t >= 0 && t < V)).toBe(true);
    expect(Array.from(free.tokens!)).not.toEqual(Array.from(clamped.tokens!));
  });

  it('self-conditioning feeds the previous raw x0 (zeros first); clean flags mark held positions, given clean', async () => {
    const held = new Int32Array(N).fill(-1);
    held[1] = 6;
    held[4] = 21;
    const seen: { x: Float32Array; selfCond: Float32Array; clean: Float32Array; out: Float32Array }[] = [];
    const recording: DenoiseFn = async (x, t, b, extras) => {
      const out = await denoise(x, t, b, extras);
      seen.push({ x: x.slice(), selfCond: extras.selfCond!.slice(), clean: extras.clean!.slice(), out: out.slice() });
      return out;
    };
    const r = await sampleBatch({ seeds: [6, 7], length: N, emb, schedule, denoise: recording, clamp: true, held, selfCondition: true, cleanFlags: true });
    expect(seen).toHaveLength(12);
    expect(seen[0]!.selfCond.every((v) => v === 0)).toBe(true);
    for (let k = 1; k < seen.length; k++) expect(Array.from(seen[k]!.selfCond)).toEqual(Array.from(seen[k - 1]!.out));
    for (const s of seen) {
      for (let b = 0; b < 2; b++) {
        for (let i = 0; i < N; i++) expect(s.clean[b * N + i]).toBe(held[i]! >= 0 ? 1 : 0);
        for (const i of [1, 4]) expect(Array.from(s.x.subarray((b * N + i) * d, (b * N + i + 1) * d))).toEqual(Array.from(E.subarray(held[i]! * d, (held[i]! + 1) * d)));
      }
    }
    expect(r.tokens![1]).toBe(6);
    // without the optional inputs the loop passes none
    const plain: DenoiseFn = async (x, t, b, extras) => {
      expect(extras).toEqual({});
      return denoise(x, t, b, extras);
    };
    await sampleBatch({ seeds: [6], length: N, emb, schedule, denoise: plain, clamp: true, held });
  });

  it('stops before the next step when cancelled', async () => {
    let steps = 0;
    const r = await sampleBatch({
      seeds: [1], length: N, emb, schedule, denoise, clamp: true,
      onStep: () => void steps++,
      cancelled: () => steps >= 3,
    });
    expect(r.tokens).toBeNull();
    expect(steps).toBe(3);
  });

  it('hands hard projectors the log-scores of their segment and the held tokens, and uses their answer', async () => {
    const held = new Int32Array(N).fill(-1);
    held[6] = 9;
    const calls: { scores: Float32Array; fixed?: Int32Array }[] = [];
    const r = await sampleBatch({
      seeds: [8], length: N, emb, schedule, denoise, clamp: true, held,
      projectors: [{
        start: 5, length: 3,
        project(scores, fixed) {
          calls.push({ scores, fixed });
          return Int32Array.from([7, fixed?.[1] ?? 0, 7]);
        },
      }],
    });
    expect(calls.length).toBe(12 + 1); // every step plus the final rounding
    expect(calls[0]!.scores.length).toBe(3 * V);
    expect(Array.from(calls[0]!.fixed!)).toEqual([-1, 9, -1]);
    // log-scores are -||x - e||^2: their argmax is the nearest embedding
    const s = calls[0]!.scores.subarray(0, V);
    expect(s.every((v) => v <= 0)).toBe(true);
    expect(Array.from(r.tokens!.subarray(5, 8))).toEqual([7, 9, 7]);
  });

  it('guidance moves samples toward what the classifier rewards', async () => {
    const term = firstCoordinateTerm(N, d);
    const mean0 = meanFirstCoordinate(E, d);
    const seeds = [11, 12, 13, 14];
    const plain = await sampleBatch({ seeds, length: N, emb, schedule, denoise, clamp: true });
    const guided = await sampleBatch({
      seeds, length: N, emb, schedule, denoise, clamp: true,
      guidance: { terms: [term], iterations: 3, stepSize: 0.5, lambda: 0.0001, offLastSteps: 2 },
    });
    expect(mean0(guided.tokens!)).toBeGreaterThan(mean0(plain.tokens!) + 0.3);
    expect(guided.guidanceMs).toBeGreaterThan(0);
  });

  it('rounds to the nearest embedding by squared L2', async () => {
    const x = new Float32Array(d);
    x.set(E.subarray(13 * d, 14 * d));
    x[0]! += 0.01;
    expect(nearest(x, 0, emb)).toBe(13);
    expect(Array.from(await jsRounder(emb).nearest(x, 1))).toEqual([13]);
  });
});
