/**
 * The sampler loop (docs/ARCHITECTURE.md, "Sampler"), independent of ONNX Runtime: the denoiser and the
 * classifier gradients come in as async functions, so the loop is testable with plain functions.
 */
import { Mulberry32 } from './prng';
import type { Schedule } from './schedule';

export type DenoiseFn = (x: Float32Array, t: Float32Array, batch: number) => Promise<Float32Array>;

/** One active guidance term: d log p(target | x, t) / dx for the batch (targets are baked into the term). */
export interface GuidanceTerm {
  control: string;
  weight: number;
  /** Computed on another thread (started first, so that it overlaps with the local ones). */
  remote?: boolean;
  grad(x: Float32Array, t: Float32Array, batch: number): Promise<{ grad: Float32Array; logp: Float32Array }>;
}

export interface GuidanceConfig {
  terms: GuidanceTerm[];
  iterations: number;
  stepSize: number;
  /** Fluency-anchor weight lambda in lambda * sum((mu - x)^2 / sigma). */
  lambda: number;
  offLastSteps: number;
  /** Runs one guidance step in place of guideStep (the runtime splits the batch over its two cpu lanes with it). */
  run?(x: Float32Array, mu: Float32Array, sigma: number, tTrain: number, B: number, N: number, d: number, heldPos: number[]): Promise<void>;
}

/** Hard constraint on one canvas segment (the compiler's SegmentProjector, narrowed to what the loop needs). */
export interface Projector {
  start: number;
  length: number;
  project(logScores: Float32Array, fixed?: Int32Array): Int32Array;
}

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

export interface SampleOptions {
  /** Per-sample stream seeds (seed_j), one per sample of this batch. */
  seeds: number[];
  /** Canvas length N. */
  length: number;
  emb: Embeddings;
  schedule: Schedule;
  denoise: DenoiseFn;
  clamp: boolean;
  /** Per canvas position: the held token id, or -1. */
  held?: Int32Array;
  projectors?: Projector[];
  guidance?: GuidanceConfig | null;
  /** After each step with the current rounded canvas (tokens [B, N]); may be async. */
  onStep?(step: number, tokens: Int32Array): void | Promise<void>;
  /** Nearest-embedding search (default: plain JavaScript). */
  rounder?: Rounder;
  /** Checked before every step; true stops the loop. */
  cancelled?(): boolean;
}

export interface SampleResult {
  /** [B, N] token ids, or null when cancelled. */
  tokens: Int32Array | null;
  /** Milliseconds per step. */
  stepMs: number[];
  guidanceMs: number;
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
  const covered = new Uint8Array(N);
  for (const p of projectors) for (let i = 0; i < p.length; i++) covered[p.start + i] = 1;
  const near = await rounder.nearest(x, B * N);
  for (let b = 0; b < B; b++) {
    for (const p of projectors) {
      const scores = await rounder.scores(x.subarray((b * N + p.start) * d, (b * N + p.start + p.length) * d), p.length);
      let fixed: Int32Array | undefined;
      for (let i = 0; i < p.length; i++) {
        const h = held?.[p.start + i] ?? -1;
        if (h >= 0) (fixed ??= new Int32Array(p.length).fill(-1))[i] = h;
      }
      const toks = p.project(scores, fixed);
      for (let i = 0; i < p.length; i++) out[b * N + p.start + i] = toks[i]!;
    }
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

export async function sampleBatch(o: SampleOptions): Promise<SampleResult> {
  const B = o.seeds.length;
  const N = o.length;
  const { d, E } = o.emb;
  const S = o.schedule.steps;
  const sch = o.schedule;
  const size = B * N * d;
  const projectors = o.projectors ?? [];
  const rounder = o.rounder ?? jsRounder(o.emb);
  const held = o.held;
  const heldPos: number[] = [];
  if (held) for (let i = 0; i < N; i++) if (held[i]! >= 0) heldPos.push(i);
  const streams = o.seeds.map((s) => new Mulberry32(s));
  const x = new Float32Array(size);
  for (let b = 0; b < B; b++) streams[b]!.fillNormal(x, b * N * d, N * d);
  const z = new Float32Array(size);
  const t = new Float32Array(B);
  const tokens = new Int32Array(B * N);
  const stepMs: number[] = [];
  let guidanceMs = 0;
  const g = o.guidance && o.guidance.terms.length > 0 && o.guidance.iterations > 0 ? o.guidance : null;

  for (let k = S - 1; k >= 0; k--) {
    if (o.cancelled?.()) return { tokens: null, stepMs, guidanceMs };
    const t0 = performance.now();
    t.fill(sch.use[k]!);
    const x0 = await o.denoise(x, t, B);
    // clamp / project / hold: x0 is replaced by embeddings where a token is chosen
    await roundCanvas(x0, B, N, o.emb, rounder, held, projectors, true, o.clamp, tokens);
    const c1 = sch.c1[k]!;
    const c2 = sch.c2[k]!;
    const mean = new Float32Array(size);
    for (let i = 0; i < size; i++) mean[i] = c1 * x0[i]! + c2 * x[i]!;
    if (k > 0) {
      for (let b = 0; b < B; b++) streams[b]!.fillNormal(z, b * N * d, N * d);
      const sd = Math.sqrt(sch.variance[k]!);
      for (let i = 0; i < size; i++) x[i] = mean[i]! + sd * z[i]!;
    } else {
      x.set(mean);
    }
    if (heldPos.length) {
      const a = k > 0 ? Math.sqrt(sch.abarPrev[k]!) : 1;
      const s = k > 0 ? Math.sqrt(1 - sch.abarPrev[k]!) : 0;
      for (let b = 0; b < B; b++) {
        for (const i of heldPos) {
          const tok = held![i]!;
          const off = (b * N + i) * d;
          for (let j = 0; j < d; j++) x[off + j] = a * E[tok * d + j]! + s * z[off + j]!;
        }
      }
    }
    if (g && k > 0 && k >= g.offLastSteps) {
      const tg = performance.now();
      const sigma = Math.sqrt(sch.variance[k]!);
      if (g.run) await g.run(x, mean, sigma, sch.use[k - 1]!, B, N, d, heldPos);
      else await guideStep(x, mean, sigma, sch.use[k - 1]!, B, N, d, heldPos, g);
      guidanceMs += performance.now() - tg;
    }
    stepMs.push(performance.now() - t0);
    if (o.onStep) await o.onStep(S - k, tokens);
  }
  await roundCanvas(x, B, N, o.emb, rounder, held, projectors, false, true, tokens);
  return { tokens, stepMs, guidanceMs };
}

/** K Adagrad steps (fresh state) on x minimizing sum_c w_c (-log p_c) + lambda * sum((mu - x)^2 / sigma).
 * Every quantity is per sample, so any split of the batch gives the same result per sample. */
export async function guideStep(
  x: Float32Array, mu: Float32Array, sigma: number, tTrain: number, B: number, N: number, d: number,
  heldPos: number[], g: GuidanceConfig,
): Promise<void> {
  const size = x.length;
  const acc = new Float64Array(size);
  const grad = new Float32Array(size);
  const t = new Float32Array(B).fill(tTrain);
  const anchor = (2 * g.lambda) / sigma;
  for (let it = 0; it < g.iterations; it++) {
    for (let i = 0; i < size; i++) grad[i] = anchor * (x[i]! - mu[i]!);
    // all terms at once: a term served by another thread runs while this one computes its own
    const active = g.terms.filter((term) => term.weight !== 0).sort((a, b) => Number(!!b.remote) - Number(!!a.remote));
    const results = await Promise.all(active.map((term) => term.grad(x, t, B)));
    active.forEach((term, j) => {
      const r = results[j]!;
      for (let i = 0; i < size; i++) grad[i] -= term.weight * r.grad[i]!;
    });
    for (let b = 0; b < B; b++) for (const p of heldPos) grad.fill(0, (b * N + p) * d, (b * N + p + 1) * d);
    for (let i = 0; i < size; i++) {
      const gi = grad[i]!;
      if (!Number.isFinite(gi)) continue;
      acc[i] += gi * gi;
      x[i] -= (g.stepSize * gi) / (Math.sqrt(acc[i]!) + 1e-10);
    }
  }
}
