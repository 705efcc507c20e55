import type * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { runRows } from '../../../src-main/engine/session-run';
import { jsRounder, makeEmbeddings, nearest, negSqDistances, ortRounder, roundCanvas, ROUND_ROWS } from '../../../src-main/engine/families/continuous/rounding';
import { fixedOf, scoredProjector } from '../../../src-main/engine/projection';

/** A session that doubles its input row by row and records the batch of each call. */
function fakeSession(calls: number[]): ort.InferenceSession {
  return {
    async run(feeds: Record<string, ort.Tensor>) {
      const x = feeds.x!;
      calls.push(x.dims[0]!);
      const data = Float32Array.from(x.data as Float32Array, (v) => 2 * v);
      return { y: { data, dims: x.dims } };
    },
  } as unknown as ort.InferenceSession;
}

describe('runRows', () => {
  const feeds = () => ({ x: { type: 'float32' as const, data: Float32Array.from({ length: 10 * 3 }, (_, i) => i), dims: [10, 3] } });

  it('runs a batch in calls of at most `rows` rows and stacks the outputs in order', async () => {
    for (const [rows, want] of [[0, [10]], [1, Array(10).fill(1)], [4, [4, 4, 2]], [16, [10]]] as const) {
      const calls: number[] = [];
      const out = await runRows(fakeSession(calls), feeds(), rows);
      expect(calls).toEqual(want);
      expect(out.y!.dims).toEqual([10, 3]);
      expect(Array.from(out.y!.data)).toEqual(Array.from({ length: 30 }, (_, i) => 2 * i));
    }
  });
});

describe('ortRounder', () => {
  it('gives the nearest embedding of every row across its calls of ROUND_ROWS rows', async () => {
    const V = 50;
    const d = 4;
    let s = 7;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
    const emb = makeEmbeddings(Float32Array.from({ length: V * d }, rnd), V, d);
    const count = 2 * ROUND_ROWS + 17;
    const x = Float32Array.from({ length: count * d }, rnd);
    const want = await jsRounder(emb).nearest(x, count);
    const got = await (await ortRounder(emb)).nearest(x, count);
    expect(Array.from(got)).toEqual(Array.from(want));
  });
});

describe('roundCanvas', () => {
  it('rounds a batch as sample by sample: projected segments scored in calls of several samples, the nearest embedding only where nothing else decides', async () => {
    const V = 40;
    const d = 3;
    const N = 150;
    const B = 9;
    let s = 11;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
    const emb = makeEmbeddings(Float32Array.from({ length: V * d }, rnd), V, d);
    // a 100-position segment: ceil(ROUND_ROWS / 100) samples per scores call, so 9 samples take 3 calls
    const len = 100;
    const add = Float32Array.from({ length: len * V }, () => (rnd() > 0.4 ? -Infinity : rnd()));
    const projector = scoredProjector(20, len, add, V);
    const held = new Int32Array(N).fill(-1);
    held[5] = 3;
    held[60] = 7;
    const x = Float32Array.from({ length: B * N * d }, () => 2 * rnd());
    for (const rounder of [jsRounder(emb), await ortRounder(emb)]) {
      const calls: number[] = [];
      const counting = { nearest: (y: Float32Array, n: number) => rounder.nearest(y, n), scores: (y: Float32Array, n: number) => (calls.push(n), rounder.scores(y, n)) };
      const got = new Int32Array(B * N);
      const y = x.slice();
      await roundCanvas(y, B, N, emb, counting, held, [projector], true, true, got);
      expect(calls).toEqual([4 * len, 4 * len, len]);
      // the same, one sample and one position at a time
      for (let b = 0; b < B; b++) {
        const scores = new Float32Array(len * V);
        for (let i = 0; i < len; i++) negSqDistances(x, (b * N + 20 + i) * d, emb, scores, i * V);
        const seg = projector.project(scores, fixedOf(projector, held));
        for (let i = 0; i < N; i++) {
          const want = held[i]! >= 0 ? held[i]! : i >= 20 && i < 20 + len ? seg[i - 20]! : nearest(x, (b * N + i) * d, emb);
          expect(got[b * N + i]).toBe(want);
          // clamped: every position now holds its token's embedding
          expect(Array.from(y.subarray((b * N + i) * d, (b * N + i + 1) * d))).toEqual(Array.from(emb.E.subarray(want * d, want * d + d)));
        }
      }
    }
  });
});
