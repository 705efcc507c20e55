/**
 * The continuous family's step loop (docs/ARCHITECTURE.md, "Sampler"), independent of ONNX Runtime: the denoiser
 * and the classifier gradients come in as async functions, so the loop is testable with plain functions. The loop
 * (denoise, clamp / project / hold, guidance) is the same for every sampler; only the step that moves x to the next
 * noise level differs (steps.ts: ancestral, ddim, dpm2m).
 */
import { type GuidanceConfig, guideStep } from '../../guidance';
import { Mulberry32 } from '../../prng';
import type { Projector } from '../../projection';
import type { Schedule } from '../../schedule';
import { type Embeddings, jsRounder, type Rounder, roundCanvas } from './rounding';
import { type ContinuousSampler, makeStep } from './steps';

/** Optional denoiser inputs of newer bundles (manifest denoiser.inputs), [batch, ...] like x. */
export interface DenoiseExtras {
  /** The previous step's x0 estimate (raw denoiser output, before clamping); zeros at the first step. [B, N, d] */
  selfCond?: Float32Array;
  /** 1 at held positions, 0 elsewhere. [B, N] */
  clean?: Float32Array;
}

export type DenoiseFn = (x: Float32Array, t: Float32Array, batch: number, extras: DenoiseExtras) => Promise<Float32Array>;

export interface SampleOptions {
  /** Per-sample stream seeds (seed_j), one per sample of this batch. */
  seeds: number[];
  /** Canvas length N. */
  length: number;
  emb: Embeddings;
  schedule: Schedule;
  /** How a step moves x to the next noise level (steps.ts; default ancestral). */
  method?: ContinuousSampler;
  /** DDIM's eta: 0 deterministic, 1 the ancestral step's noise (default 0; other samplers ignore it). */
  eta?: number;
  denoise: DenoiseFn;
  clamp: boolean;
  /** Per canvas position: the held token id, or -1. */
  held?: Int32Array;
  /** Feed the previous step's raw x0 as `selfCond` (the bundle's denoiser lists x_self_cond). */
  selfCondition?: boolean;
  /** Feed the held positions as `clean` flags, and as their clean embeddings in x_t (the bundle's denoiser lists clean). */
  cleanFlags?: boolean;
  projectors?: Projector[];
  guidance?: GuidanceConfig | null;
  /** After each step with the current rounded canvas (tokens [B, N]); may be async. */
  onStep?(step: number, tokens: Int32Array): void | Promise<void>;
  /** Nearest-embedding search (default: plain JavaScript). */
  rounder?: Rounder;
  /** Checked before every step; true stops the loop. */
  cancelled?(): boolean;
  /** Score each finished canvas with the guidance terms (SampleResult.scores), to rank candidates. */
  scoreFinal?: boolean;
  /** Without guidance: score each finished canvas by the denoiser's own check of it (SampleResult.scores). */
  selfScore?: SelfScoreConfig;
}

/**
 * The denoiser's own check of a finished canvas: its tokens' embeddings, noised again to `tTrain` (noise from each
 * sample's stream, after the sampler's draws), denoised once (self-conditioning input zeros, as at a run's first
 * step); the score is minus the squared distance between the denoiser's x0 and the canvas's embeddings, summed over
 * `positions`. A token the model would not have written there (a stray quote, a value cut short) is one it does not
 * predict back from a lightly noised canvas. docs/engine.md, "Choosing among candidates".
 */
export interface SelfScoreConfig {
  /** Training-scale timestep of the re-noising. */
  tTrain: number;
  /** abar at tTrain (the training schedule's). */
  abar: number;
  /** Canvas positions whose reconstruction counts. */
  positions: number[];
}

export interface SampleResult {
  /** [B, N] token ids, or null when cancelled. */
  tokens: Int32Array | null;
  /** Milliseconds per step. */
  stepMs: number[];
  guidanceMs: number;
  /**
   * With scoreFinal and guidance: per sample, the guidance terms' weighted log p of their targets on the finished
   * canvas (its tokens' embeddings, at the schedule's least noise): what guidance pushed up, read once at the end.
   * With selfScore: per sample, the denoiser's own check of the finished canvas (SelfScoreConfig).
   */
  scores?: Float32Array;
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
  const t = new Float32Array(B);
  const tokens = new Int32Array(B * N);
  const stepMs: number[] = [];
  let guidanceMs = 0;
  const g = o.guidance && o.guidance.terms.length > 0 && o.guidance.iterations > 0 ? o.guidance : null;
  const extras: DenoiseExtras = {};
  if (o.selfCondition) extras.selfCond = new Float32Array(size);
  if (o.cleanFlags) {
    extras.clean = new Float32Array(B * N);
    for (let b = 0; b < B; b++) for (const i of heldPos) extras.clean[b * N + i] = 1;
  }
  // each sample's stream gives N*d normals per draw, in sample order (docs/ARCHITECTURE.md, "Shared PRNG")
  const draw = (z: Float32Array) => {
    for (let b = 0; b < B; b++) streams[b]!.fillNormal(z, b * N * d, N * d);
  };
  const step = makeStep(o.method ?? 'ancestral', o.eta ?? 0, { schedule: sch, B, N, d, E, held, heldPos, draw });

  for (let k = S - 1; k >= 0; k--) {
    if (o.cancelled?.()) return { tokens: null, stepMs, guidanceMs };
    const t0 = performance.now();
    t.fill(sch.use[k]!);
    if (extras.clean) {
      // a denoiser with clean flags sees the held positions as their clean embeddings, not noised
      for (let b = 0; b < B; b++) for (const i of heldPos) x.set(E.subarray(held![i]! * d, held![i]! * d + d), (b * N + i) * d);
    }
    const x0 = await o.denoise(x, t, B, extras);
    // self-conditioning: the next step sees this step's estimate as the denoiser gave it, before clamping
    if (extras.selfCond) extras.selfCond = x0.slice();
    // clamp / project / hold: x0 is replaced by embeddings where a token is chosen
    await roundCanvas(x0, B, N, o.emb, rounder, held, projectors, true, o.clamp, tokens);
    // the sampler's step: x moves to the next noise level; mean is where it would be without fresh noise
    const mean = step(k, x, x0);
    if (g && k > 0 && k >= g.offLastSteps) {
      const tg = performance.now();
      // the fluency anchor's scale: the step's ancestral posterior std, for every sampler (a deterministic step has
      // no spread of its own)
      const sigma = Math.sqrt(sch.variance[k]!);
      if (g.run) await g.run(x, mean, sigma, sch.use[k - 1]!, B, N, d, heldPos);
      else await guideStep(x, mean, sigma, sch.use[k - 1]!, B, N, d, heldPos, g);
      guidanceMs += performance.now() - tg;
    }
    stepMs.push(performance.now() - t0);
    if (o.onStep) await o.onStep(S - k, tokens);
  }
  await roundCanvas(x, B, N, o.emb, rounder, held, projectors, false, true, tokens);
  if (!g && o.selfScore) return { tokens, stepMs, guidanceMs, scores: await selfScoreCanvas(tokens, o, extras, heldPos, draw) };
  if (!g || !o.scoreFinal) return { tokens, stepMs, guidanceMs };
  const tg = performance.now();
  const scores = await scoreCanvas(tokens, B, N, o.emb, sch.use[0]!, g);
  guidanceMs += performance.now() - tg;
  return { tokens, stepMs, guidanceMs, scores };
}

/** The embeddings of the canvases' tokens, [B, N, d] (a finished canvas as its scores read it). */
function tokenEmbeddings(tokens: Int32Array, emb: Embeddings): Float32Array {
  const { d, E } = emb;
  const x = new Float32Array(tokens.length * d);
  for (let i = 0; i < tokens.length; i++) x.set(E.subarray(tokens[i]! * d, tokens[i]! * d + d), i * d);
  return x;
}

/** Sum over the guidance terms of their score on the canvases' token embeddings (the text as it will be read). */
async function scoreCanvas(tokens: Int32Array, B: number, N: number, emb: Embeddings, tTrain: number, g: GuidanceConfig): Promise<Float32Array> {
  const x = tokenEmbeddings(tokens, emb);
  const t = new Float32Array(B).fill(tTrain);
  const scores = new Float32Array(B);
  for (const term of g.terms) {
    if (term.weight === 0) continue;
    const s = await term.score(x, t, B);
    for (let b = 0; b < B; b++) scores[b]! += s[b]!;
  }
  return scores;
}

/** SelfScoreConfig: one more denoiser call on the finished canvases, noised again. */
async function selfScoreCanvas(tokens: Int32Array, o: SampleOptions, extras: DenoiseExtras, heldPos: number[], draw: (z: Float32Array) => void): Promise<Float32Array> {
  const cfg = o.selfScore!;
  const B = o.seeds.length;
  const N = o.length;
  const { d } = o.emb;
  const clean = tokenEmbeddings(tokens, o.emb);
  const x = new Float32Array(B * N * d);
  draw(x);
  const a = Math.sqrt(cfg.abar);
  const sd = Math.sqrt(1 - cfg.abar);
  for (let i = 0; i < x.length; i++) x[i] = a * clean[i]! + sd * x[i]!;
  // held positions are seen as during sampling: clean, with their flags, where the denoiser takes flags
  if (extras.clean) for (let b = 0; b < B; b++) for (const i of heldPos) x.set(clean.subarray((b * N + i) * d, (b * N + i + 1) * d), (b * N + i) * d);
  const x0 = await o.denoise(x, new Float32Array(B).fill(cfg.tTrain), B, { ...(extras.selfCond ? { selfCond: new Float32Array(B * N * d) } : {}), ...(extras.clean ? { clean: extras.clean } : {}) });
  const scores = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (const i of cfg.positions) {
      const o0 = (b * N + i) * d;
      for (let j = 0; j < d; j++) {
        const diff = x0[o0 + j]! - clean[o0 + j]!;
        sum += diff * diff;
      }
    }
    scores[b] = -sum;
  }
  return scores;
}
