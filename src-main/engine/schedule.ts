/** sqrt noise schedule and respacing (docs/ARCHITECTURE.md, "Noise schedule"), all in float64. */
import { MAX_SPACING } from '../constraints/set';

export interface Schedule {
  /** Respaced steps S. */
  steps: number;
  /** Training-scale timestep used at each respaced step k. */
  use: number[];
  abar: Float64Array;
  abarPrev: Float64Array;
  beta: Float64Array;
  c1: Float64Array;
  c2: Float64Array;
  variance: Float64Array;
}

export function abarSqrt(u: number, s: number): number {
  return 1 - Math.sqrt(u + s);
}

/** Cumulative alpha-bar of the full training schedule. */
export function trainingAbar(T: number, s: number): Float64Array {
  const abar = new Float64Array(T);
  let prod = 1;
  for (let i = 0; i < T; i++) {
    const beta = Math.min(1 - abarSqrt((i + 1) / T, s) / abarSqrt(i / T, s), 0.999);
    prod *= 1 - beta;
    abar[i] = prod;
  }
  return abar;
}

/**
 * The training timesteps a run of S steps uses, ascending (the sampler walks them from the last). `spacing` p puts
 * step k at round((T - 1) (k / (S - 1))^p): 1 spaces them evenly (Diffusion-LM's respacing, in exact integer
 * arithmetic); below 1 spends more of them at high noise, where a continuous model chooses its words, and fewer near
 * t = 0, where x0 is already settled. Collisions (steep spacings, many steps) are pushed apart so the steps stay
 * distinct.
 */
export function respacedTimesteps(T: number, S: number, spacing = 1): number[] {
  if (!Number.isInteger(S) || S < 1 || S > T) throw new RangeError(`steps must be an integer in 1..${T}, got ${S}`);
  if (!(spacing > 0 && spacing <= MAX_SPACING)) throw new RangeError(`spacing must be in (0, ${MAX_SPACING}], got ${spacing}`);
  if (S === 1) return [T - 1];
  const use: number[] = [];
  if (spacing === 1) {
    // round half away from zero, in exact integer arithmetic
    for (let k = 0; k < S; k++) use.push(Math.floor((2 * k * (T - 1) + (S - 1)) / (2 * (S - 1))));
    return use;
  }
  for (let k = 0; k < S; k++) use.push(Math.floor((T - 1) * Math.pow(k / (S - 1), spacing) + 0.5));
  for (let k = 1; k < S; k++) use[k] = Math.max(use[k]!, use[k - 1]! + 1);
  use[S - 1] = T - 1;
  for (let k = S - 2; k >= 0; k--) use[k] = Math.min(use[k]!, use[k + 1]! - 1);
  return use;
}

export function buildSchedule(T: number, s: number, S: number, spacing = 1): Schedule {
  const full = trainingAbar(T, s);
  const use = respacedTimesteps(T, S, spacing);
  const abar = new Float64Array(S);
  const abarPrev = new Float64Array(S);
  const beta = new Float64Array(S);
  const c1 = new Float64Array(S);
  const c2 = new Float64Array(S);
  const variance = new Float64Array(S);
  for (let k = 0; k < S; k++) {
    abar[k] = full[use[k]!]!;
    abarPrev[k] = k === 0 ? 1 : abar[k - 1]!;
    beta[k] = 1 - abar[k]! / abarPrev[k]!;
    c1[k] = (beta[k]! * Math.sqrt(abarPrev[k]!)) / (1 - abar[k]!);
    c2[k] = ((1 - abarPrev[k]!) * Math.sqrt(1 - beta[k]!)) / (1 - abar[k]!);
    variance[k] = (beta[k]! * (1 - abarPrev[k]!)) / (1 - abar[k]!);
  }
  if (S > 1) variance[0] = variance[1]!;
  return { steps: S, use, abar, abarPrev, beta, c1, c2, variance };
}
