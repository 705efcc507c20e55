/**
 * The continuous family's rounding: nearest embedding (squared L2) and per-position log-scores -||x - e||^2, in
 * JavaScript (tests) or as ONNX graphs on the cpu provider (onnx-graph.ts); and the clamp/round step of the loop:
 * hard segments projected, held tokens kept, nearest embedding elsewhere.
 */
import * as ort from 'onnxruntime-node';
import { rounderSessionOptions } from '../../devices';
import { nearestGraph, scoresGraph } from '../../onnx-graph';
import { coveredPositions, type Projector, projectSegments } from '../../projection';

export interface Embeddings {
  /** [V, d] row-major. */
  E: Float32Array;
  /** ||e_v||^2 per row. */
  norms: Float32Array;
  V: number;
  d: number;
}

export function makeEmbeddings(E: Float32Array, V: number, d: number): Embeddings {
  const norms = new Float32Array(V);
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += E[v * d + j]! * E[v * d + j]!;
    norms[v] = s;
  }
  return { E, norms, V, d };
}

/** Index of the nearest embedding (squared L2) to x[off .. off+d): argmin ||e||^2 - 2 x.e. */
export function nearest(x: Float32Array, off: number, emb: Embeddings): number {
  const { E, norms, V, d } = emb;
  let best = 0;
  let bestScore = Infinity;
  for (let v = 0, row = 0; v < V; v++, row += d) {
    let dot = 0;
    for (let j = 0; j < d; j++) dot += x[off + j]! * E[row + j]!;
    const s = norms[v]! - 2 * dot;
    if (s < bestScore) {
      bestScore = s;
      best = v;
    }
  }
  return best;
}

/** logScores[v] = -||x - e_v||^2 for one position, written into out[outOff .. outOff+V). */
export function negSqDistances(x: Float32Array, off: number, emb: Embeddings, out: Float32Array, outOff: number): void {
  const { E, norms, V, d } = emb;
  let xx = 0;
  for (let j = 0; j < d; j++) xx += x[off + j]! * x[off + j]!;
  for (let v = 0, row = 0; v < V; v++, row += d) {
    let dot = 0;
    for (let j = 0; j < d; j++) dot += x[off + j]! * E[row + j]!;
    out[outOff + v] = -(xx - 2 * dot + norms[v]!);
  }
}

/** Nearest-embedding search and log-scores over rows of d floats (JS here; the worker uses ONNX graphs). */
export interface Rounder {
  /** x: [count, d] -> nearest embedding id per row. */
  nearest(x: Float32Array, count: number): Promise<Int32Array>;
  /** x: [count, d] -> [count, V] of -||x - e_v||^2. */
  scores(x: Float32Array, count: number): Promise<Float32Array>;
}

export function jsRounder(emb: Embeddings): Rounder {
  return {
    async nearest(x, count) {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = nearest(x, i * emb.d, emb);
      return out;
    },
    async scores(x, count) {
      const out = new Float32Array(count * emb.V);
      for (let i = 0; i < count; i++) negSqDistances(x, i * emb.d, emb, out, i * emb.V);
      return out;
    },
  };
}

/** Round x [B, N, d] to tokens: projection on hard segments, held tokens kept, nearest embedding elsewhere;
 * if `replace`, x is overwritten with the chosen embeddings (positions outside hard/held segments only when
 * `clampElsewhere`). */
export async function roundCanvas(
  x: Float32Array, B: number, N: number, emb: Embeddings, rounder: Rounder, held: Int32Array | undefined,
  projectors: Projector[], replace: boolean, clampElsewhere: boolean, out: Int32Array,
): Promise<void> {
  const { E, d } = emb;
  const covered = coveredPositions(projectors, N);
  // the nearest embedding only where neither a projector nor a held token decides (a guided text is half the canvas)
  const free: number[] = [];
  for (let i = 0; i < N; i++) if (!covered[i] && (held?.[i] ?? -1) < 0) free.push(i);
  const near = free.length === N ? await rounder.nearest(x, B * N) : await nearestAt(x, B, N, d, free, rounder);
  // each projector's scores for the whole batch in as few calls as the row limit allows
  const scores = new Map<Projector, (b: number) => Float32Array>();
  for (const p of projectors) scores.set(p, await segmentScores(x, B, N, d, p, rounder, emb.V));
  for (let b = 0; b < B; b++) {
    await projectSegments(projectors, held, async (p) => scores.get(p)!(b), out, b * N);
    for (let i = 0; i < N; i++) {
      const h = held?.[i] ?? -1;
      if (h >= 0) out[b * N + i] = h;
      else if (!covered[i]) out[b * N + i] = near[b * N + i]!;
    }
    if (replace) {
      for (let i = 0; i < N; i++) {
        if (!clampElsewhere && !covered[i] && (held?.[i] ?? -1) < 0) continue;
        const tok = out[b * N + i]!;
        x.set(E.subarray(tok * d, tok * d + d), (b * N + i) * d);
      }
    }
  }
}

/** Nearest embedding ids at `positions` of every sample, placed at their canvas index [B, N] (others left 0). */
async function nearestAt(x: Float32Array, B: number, N: number, d: number, positions: number[], rounder: Rounder): Promise<Int32Array> {
  const near = new Int32Array(B * N);
  if (!positions.length) return near;
  const rows = new Float32Array(B * positions.length * d);
  let r = 0;
  for (let b = 0; b < B; b++) for (const i of positions) rows.set(x.subarray((b * N + i) * d, (b * N + i + 1) * d), d * r++);
  const ids = await rounder.nearest(rows, B * positions.length);
  r = 0;
  for (let b = 0; b < B; b++) for (const i of positions) near[b * N + i] = ids[r++]!;
  return near;
}

/** A projector's segment scores for every sample, from calls of about ROUND_ROWS rows: sample b's [length, V]. */
async function segmentScores(x: Float32Array, B: number, N: number, d: number, p: Projector, rounder: Rounder, V: number): Promise<(b: number) => Float32Array> {
  const perCall = Math.max(1, Math.ceil(ROUND_ROWS / p.length));
  const chunks: Float32Array[] = [];
  for (let from = 0; from < B; from += perCall) {
    const n = Math.min(perCall, B - from);
    const rows = n === 1 ? x.subarray((from * N + p.start) * d, (from * N + p.start + p.length) * d) : new Float32Array(n * p.length * d);
    if (n > 1) for (let b = 0; b < n; b++) rows.set(x.subarray(((from + b) * N + p.start) * d, ((from + b) * N + p.start + p.length) * d), b * p.length * d);
    chunks.push(await rounder.scores(rows, n * p.length));
  }
  const size = p.length * V;
  return (b) => chunks[Math.floor(b / perCall)]!.subarray((b % perCall) * size, (b % perCall + 1) * size);
}

/** Rows (canvas positions) per nearest-embedding call (docs/engine.md, "A faster step"). */
export const ROUND_ROWS = 384;

/** Nearest-embedding search as ONNX graphs on the cpu provider (rows are independent: any thread count or rows per
 * call gives the same ids). */
export async function ortRounder(emb: Embeddings): Promise<Rounder> {
  const opts = rounderSessionOptions();
  const near = await ort.InferenceSession.create(nearestGraph(emb.E, emb.V, emb.d), opts);
  const scores = await ort.InferenceSession.create(scoresGraph(emb.E, emb.V, emb.d), opts);
  return {
    async nearest(x, count) {
      // ROUND_ROWS rows per call: the [rows, V] distances stay in the core's cache (batch 64: 17 instead of 33 ms)
      const r = new Int32Array(count);
      for (let from = 0; from < count; from += ROUND_ROWS) {
        const n = Math.min(ROUND_ROWS, count - from);
        const out = await near.run({ X: new ort.Tensor('float32', x.subarray(from * emb.d, (from + n) * emb.d), [n, emb.d]) });
        const idx = out.IDX!.data as BigInt64Array;
        for (let i = 0; i < n; i++) r[from + i] = Number(idx[i]);
      }
      return r;
    },
    async scores(x, count) {
      const out = await scores.run({ X: new ort.Tensor('float32', x.subarray(0, count * emb.d), [count, emb.d]) });
      return out.S!.data as Float32Array;
    },
  };
}
