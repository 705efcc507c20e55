import type * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { runRows } from '../../../src-main/engine/session-run';
import { jsRounder, makeEmbeddings, ortRounder, ROUND_ROWS } from '../../../src-main/engine/families/continuous/rounding';

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
