/**
 * One denoising step of each continuous sampler (docs/engine.md, "Samplers"). The loop in sampler.ts calls the
 * denoiser, clamps x0 and holds the given positions, then hands x_t (at respaced step k) and that x0 to one of these
 * step functions, which move x to the next noise level in place. Every coefficient is computed in float64 from the
 * bundle's respaced sqrt schedule (schedule.ts); training/dlm_train/sample.py computes the same ones.
 *
 * Notation at step k: alpha_t = sqrt(abar[k]), sigma_t = sqrt(1 - abar[k]) (the level x is at), alpha_s, sigma_s the
 * same of abarPrev[k] (the level x moves to; alpha_s = 1, sigma_s = 0 at k = 0, so every sampler ends on x0).
 */
import type { CONTINUOUS_SAMPLERS } from '../../../constraints/set';
import type { Schedule } from '../../schedule';

export type ContinuousSampler = (typeof CONTINUOUS_SAMPLERS)[number];

export interface StepInputs {
  schedule: Schedule;
  /** Samples B, canvas length N, embedding dimension d. */
  B: number;
  N: number;
  d: number;
  /** The embedding table [V, d] (ancestral: held positions are re-noised from their embeddings). */
  E: Float32Array;
  /** Per canvas position: the held token id, or -1; heldPos lists the held positions. */
  held?: Int32Array;
  heldPos: number[];
  /** Fills z [B, N, d] with fresh normals from each sample's own stream (N*d per sample, in sample order). */
  draw(z: Float32Array): void;
}

/**
 * Moves x (x_t at step k) to the next level in place, given the step's clamped x0, and returns the step's mean: x
 * before any fresh noise (the anchor of classifier guidance).
 */
export type StepFn = (k: number, x: Float32Array, x0: Float32Array) => Float32Array;

/** The noise levels a step moves between. */
export function levels(sch: Schedule, k: number): { alphaT: number; sigmaT: number; alphaS: number; sigmaS: number } {
  return {
    alphaT: Math.sqrt(sch.abar[k]!),
    sigmaT: Math.sqrt(1 - sch.abar[k]!),
    alphaS: Math.sqrt(sch.abarPrev[k]!),
    sigmaS: Math.sqrt(1 - sch.abarPrev[k]!),
  };
}

/**
 * DDIM on x0 (Song et al. 2021, eq. 12): eps = (x - alpha_t x0) / sigma_t;
 * x_s = alpha_s x0 + sqrt(sigma_s^2 - sd^2) eps + sd z, sd = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s),
 * written as x_s = cx0 x0 + cx x + sd z. eta = 1 is the ancestral (DDPM posterior) step; eta = 0 draws no noise.
 */
export function ddimCoefficients(sch: Schedule, k: number, eta: number): { cx0: number; cx: number; sd: number } {
  const { alphaT, sigmaT, alphaS, sigmaS } = levels(sch, k);
  const abarT = sch.abar[k]!;
  const abarS = sch.abarPrev[k]!;
  const sd = eta * Math.sqrt(((1 - abarS) / (1 - abarT)) * (1 - abarT / abarS));
  const dir = Math.sqrt(Math.max(0, sigmaS * sigmaS - sd * sd));
  return { cx0: alphaS - (dir * alphaT) / sigmaT, cx: dir / sigmaT, sd };
}

/** Log-SNR lambda = log(alpha / sigma) = (log abar - log(1 - abar)) / 2. */
export function logSnr(abar: number): number {
  return 0.5 * (Math.log(abar) - Math.log(1 - abar));
}

/**
 * DPM-Solver++(2M) for a data (x0) prediction (Lu et al. 2022, algorithm 2), one step from t = use[k] to the next
 * level: h = lambda_s - lambda_t, x_s = (sigma_s / sigma_t) x - alpha_s (e^-h - 1) D. First order (D = x0, the same
 * step as DDIM with eta = 0) at the first step (no history) and at the last (k = 0, which lands on x0); otherwise
 * D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev, with r = h_prev / h and h_prev = lambda_t - lambda of the previous step
 * (k + 1). Written as x_s = cx x + c0 x0 + cPrev x0_prev.
 */
export function dpm2mCoefficients(sch: Schedule, k: number, secondOrder: boolean): { cx: number; c0: number; cPrev: number } {
  const { alphaT, sigmaT, alphaS, sigmaS } = levels(sch, k);
  // e^-h = (alpha_t / sigma_t) / (alpha_s / sigma_s), written so that sigma_s = 0 (k = 0) gives 0, not 0/0
  const eMinusH = (alphaT * sigmaS) / (sigmaT * alphaS);
  const cx = sigmaS / sigmaT;
  const base = alphaS * (1 - eMinusH);
  if (!secondOrder || k === 0 || k + 1 >= sch.steps) return { cx, c0: base, cPrev: 0 };
  const lambdaT = logSnr(sch.abar[k]!);
  const h = logSnr(sch.abarPrev[k]!) - lambdaT;
  const hPrev = lambdaT - logSnr(sch.abar[k + 1]!);
  const r = hPrev / h;
  return { cx, c0: base * (1 + 1 / (2 * r)), cPrev: -base / (2 * r) };
}

/** The ancestral (DDPM posterior) step: x = c1 x0 + c2 x + sqrt(var) z, held positions re-noised from their embeddings. */
function ancestralStep(o: StepInputs): StepFn {
  const { schedule: sch, B, N, d, E, held, heldPos } = o;
  const z = new Float32Array(B * N * d);
  return (k, x, x0) => {
    const c1 = sch.c1[k]!;
    const c2 = sch.c2[k]!;
    const mean = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) mean[i] = c1 * x0[i]! + c2 * x[i]!;
    if (k > 0) {
      o.draw(z);
      const sd = Math.sqrt(sch.variance[k]!);
      for (let i = 0; i < x.length; i++) x[i] = mean[i]! + sd * z[i]!;
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
    return mean;
  };
}

/**
 * The DDIM step. Held positions take the same update (their x0 is their embedding), so with eta = 0 they keep the
 * noise they started with: x = alpha_s EMB + sigma_s eps_T. Noise is drawn only when eta > 0 and k > 0, one z per
 * step in the ancestral sampler's order.
 */
function ddimStep(o: StepInputs, eta: number): StepFn {
  const { schedule: sch } = o;
  const z = eta > 0 ? new Float32Array(o.B * o.N * o.d) : null;
  return (k, x, x0) => {
    const { cx0, cx, sd } = ddimCoefficients(sch, k, eta);
    const mean = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) mean[i] = cx0 * x0[i]! + cx * x[i]!;
    if (z && k > 0) {
      o.draw(z);
      for (let i = 0; i < x.length; i++) x[i] = mean[i]! + sd * z[i]!;
    } else {
      x.set(mean);
    }
    return mean;
  };
}

/** The DPM-Solver++(2M) step; remembers the previous step's clamped x0. Draws no noise. */
function dpm2mStep(o: StepInputs): StepFn {
  const { schedule: sch } = o;
  let prev: Float32Array | null = null;
  return (k, x, x0) => {
    const { cx, c0, cPrev } = dpm2mCoefficients(sch, k, prev !== null);
    if (prev && cPrev !== 0) for (let i = 0; i < x.length; i++) x[i] = cx * x[i]! + c0 * x0[i]! + cPrev * prev[i]!;
    else for (let i = 0; i < x.length; i++) x[i] = cx * x[i]! + c0 * x0[i]!;
    prev = x0.slice();
    return x.slice();
  };
}

/** The step function of a sampler for one batch (a fresh one per batch: dpm2m keeps history). */
export function makeStep(method: ContinuousSampler, eta: number, o: StepInputs): StepFn {
  if (method === 'ddim') return ddimStep(o, eta);
  if (method === 'dpm2m') return dpm2mStep(o);
  return ancestralStep(o);
}
