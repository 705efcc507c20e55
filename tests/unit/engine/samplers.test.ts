/**
 * The continuous family's samplers (src-main/engine/families/continuous/steps.ts) with plain functions: the step
 * coefficients, landing on x0 with a denoiser that knows it, no noise drawn where none is due, held positions.
 */
import { describe, expect, it } from 'vitest';
import { type DenoiseFn, sampleBatch } from '../../../src-main/engine/families/continuous/sampler';
import { makeEmbeddings } from '../../../src-main/engine/families/continuous/rounding';
import { ddimCoefficients, dpm2mCoefficients, levels, logSnr } from '../../../src-main/engine/families/continuous/steps';
import type { GuidanceTerm } from '../../../src-main/engine/guidance';
import { firstCoordinateTerm, meanFirstCoordinate } from './toy-guidance';
import { Mulberry32 } from '../../../src-main/engine/prng';
import { buildSchedule } from '../../../src-main/engine/schedule';
import { samplerSettings } from '../../../src-main/constraints/set';

const V = 40;
const d = 4;
const N = 10;
const g = new Mulberry32(5);
const E = new Float32Array(V * d);
for (let i = 0; i < E.length; i++) E[i] = g.normal();
const emb = makeEmbeddings(E, V, d);

/** The clean canvas a perfect denoiser would recover: token (3 i + 1) mod V at position i. */
const target = Int32Array.from({ length: N }, (_, i) => (3 * i + 1) % V);
const oracle: DenoiseFn = async (x) => {
  const out = new Float32Array(x.length);
  for (let p = 0; p < x.length / d; p++) out.set(E.subarray(target[p % N]! * d, target[p % N]! * d + d), p * d);
  return out;
};
/** An imperfect stand-in: shrinks x_t a little, with a dependence on t. */
const shrink: DenoiseFn = async (x, t) => {
  const out = new Float32Array(x.length);
  const per = x.length / t.length;
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * (0.8 + t[Math.floor(i / per)]! / 20000);
  return out;
};

describe('continuous samplers: step coefficients', () => {
  const sch = buildSchedule(2000, 1e-4, 20);

  it('DDIM with eta = 1 is the ancestral step (mean and std); eta = 0 has no noise; k = 0 lands on x0', () => {
    for (let k = 1; k < 20; k++) {
      const c = ddimCoefficients(sch, k, 1);
      expect(c.cx0).toBeCloseTo(sch.c1[k]!, 12);
      expect(c.cx).toBeCloseTo(sch.c2[k]!, 12);
      expect(c.sd * c.sd).toBeCloseTo(sch.variance[k]!, 12);
      expect(ddimCoefficients(sch, k, 0).sd).toBe(0);
      // eta = 0: x_s = alpha_s x0 + sigma_s eps, with eps = (x - alpha_t x0) / sigma_t
      const { alphaT, sigmaT, alphaS, sigmaS } = levels(sch, k);
      const z0 = ddimCoefficients(sch, k, 0);
      expect(z0.cx).toBeCloseTo(sigmaS / sigmaT, 12);
      expect(z0.cx0).toBeCloseTo(alphaS - (sigmaS * alphaT) / sigmaT, 12);
    }
    for (const eta of [0, 0.5, 1]) expect(ddimCoefficients(sch, 0, eta)).toEqual({ cx0: 1, cx: 0, sd: 0 });
  });

  it('DPM-Solver++(2M): first order is DDIM with eta = 0; the second-order weights sum to the first-order one', () => {
    for (let k = 1; k < 19; k++) {
      const first = dpm2mCoefficients(sch, k, false);
      const ddim = ddimCoefficients(sch, k, 0);
      expect(first.cx).toBeCloseTo(ddim.cx, 12);
      expect(first.c0).toBeCloseTo(ddim.cx0, 12);
      expect(first.cPrev).toBe(0);
      const second = dpm2mCoefficients(sch, k, true);
      expect(second.cx).toBe(first.cx);
      expect(second.c0 + second.cPrev).toBeCloseTo(first.c0, 12);
      // r = h_prev / h from the log-SNR of the respaced levels
      const h = logSnr(sch.abarPrev[k]!) - logSnr(sch.abar[k]!);
      const r = (logSnr(sch.abar[k]!) - logSnr(sch.abar[k + 1]!)) / h;
      expect(second.cPrev).toBeCloseTo(-first.c0 / (2 * r), 12);
      expect(h).toBeGreaterThan(0);
    }
    // the last step is first order and lands on x0; the first (k = S - 1) has no history
    expect(dpm2mCoefficients(sch, 0, true)).toEqual({ cx: 0, c0: 1, cPrev: 0 });
    expect(dpm2mCoefficients(sch, 19, true).cPrev).toBe(0);
  });

  it('a recipe without method or eta means ancestral; bad values are refused by field', () => {
    expect(samplerSettings.parse({})).toMatchObject({ method: 'ancestral', eta: 0 });
    expect(samplerSettings.parse({ method: 'ddim', eta: 0.5 })).toMatchObject({ method: 'ddim', eta: 0.5 });
    expect(samplerSettings.safeParse({ method: 'euler' }).success).toBe(false);
    expect(samplerSettings.safeParse({ eta: 1.5 }).success).toBe(false);
  });
});

describe('continuous samplers: the loop', () => {
  for (const [method, eta] of [['ddim', 0], ['dpm2m', 0], ['ddim', 0.5], ['ancestral', 0]] as const) {
    it(`${method}${method === 'ddim' ? ` eta ${eta}` : ''}: with a denoiser that returns the true x0 it lands on x0`, async () => {
      for (const steps of [1, 2, 5, 25]) {
        const schedule = buildSchedule(2000, 1e-4, steps);
        // clamping off: the update itself must bring x to x0 (no rounding of x0 to help)
        const r = await sampleBatch({ seeds: [1, 2], length: N, emb, schedule, denoise: oracle, clamp: false, method, eta });
        expect(Array.from(r.tokens!)).toEqual([...target, ...target]);
      }
    });
  }

  it('DDIM eta = 0 and dpm2m follow the exact path x_t = alpha_t x0 + sigma_t eps when the denoiser knows x0', async () => {
    const schedule = buildSchedule(2000, 1e-4, 15);
    for (const method of ['ddim', 'dpm2m'] as const) {
      const xs: Float32Array[] = [];
      const rec: DenoiseFn = async (x, t, b, e) => {
        xs.push(x.slice());
        return oracle(x, t, b, e);
      };
      await sampleBatch({ seeds: [21], length: N, emb, schedule, denoise: rec, clamp: false, method });
      const x0 = await oracle(new Float32Array(N * d), new Float32Array(1), 1, {});
      const top = levels(schedule, 14);
      const eps = xs[0]!.map((v, i) => (v - top.alphaT * x0[i]!) / top.sigmaT);
      xs.forEach((x, j) => {
        const { alphaT, sigmaT } = levels(schedule, 14 - j);
        for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - (alphaT * x0[i]! + sigmaT * eps[i]!)), `${method} step ${j}`).toBeLessThan(1e-4);
      });
    }
  });

  it('DDIM eta = 0 and dpm2m end exactly on the clamped x0 of the last step', async () => {
    for (const method of ['ddim', 'dpm2m'] as const) {
      const seen: Float32Array[] = [];
      // a rounder that always picks the target: the clamped x0 is exactly the target's embeddings
      const rounder = {
        async nearest(x: Float32Array, count: number) {
          seen.push(x.slice(0, count * d));
          return Int32Array.from({ length: count }, (_, i) => target[i % N]!);
        },
        async scores() { return new Float32Array(0); },
      };
      await sampleBatch({ seeds: [3], length: N, emb, schedule: buildSchedule(2000, 1e-4, 8), denoise: shrink, clamp: true, method, rounder });
      // the final rounding sees x itself: alpha_s = 1 and sigma_s = 0 at k = 0, so x = x0
      const final = seen.at(-1)!;
      for (let i = 0; i < N; i++) expect(Array.from(final.subarray(i * d, (i + 1) * d))).toEqual(Array.from(E.subarray(target[i]! * d, (target[i]! + 1) * d)));
    }
  });

  it('same seed, same tokens; eta = 0 and dpm2m draw no noise after x_T, ddim with eta > 0 draws as ancestral does', async () => {
    const schedule = buildSchedule(2000, 1e-4, 12);
    for (const method of ['ddim', 'dpm2m'] as const) {
      const a = await sampleBatch({ seeds: [9], length: N, emb, schedule, denoise: shrink, clamp: true, method });
      const b = await sampleBatch({ seeds: [9], length: N, emb, schedule, denoise: shrink, clamp: true, method });
      expect(Array.from(a.tokens!)).toEqual(Array.from(b.tokens!));
    }
    const draws = { n: 0 };
    const orig = Mulberry32.prototype.fillNormal;
    Mulberry32.prototype.fillNormal = function (this: Mulberry32, ...args: Parameters<typeof orig>) {
      draws.n++;
      return orig.apply(this, args);
    };
    try {
      for (const [method, eta, expected] of [['ddim', 0, 1], ['dpm2m', 0, 1], ['dpm2m', 0.5, 1], ['ddim', 0.5, 12], ['ancestral', 0, 12]] as const) {
        draws.n = 0;
        await sampleBatch({ seeds: [9], length: N, emb, schedule, denoise: shrink, clamp: true, method, eta });
        // x_T, then one z per step k = S-1 .. 1 when the sampler draws noise
        expect(draws.n, `${method} eta ${eta}`).toBe(expected);
      }
    } finally {
      Mulberry32.prototype.fillNormal = orig;
    }
  });

  it('DDIM with eta = 1 gives the ancestral tokens (same noise, same order) when nothing is held', async () => {
    const schedule = buildSchedule(2000, 1e-4, 12);
    const anc = await sampleBatch({ seeds: [4, 5, 6], length: N, emb, schedule, denoise: shrink, clamp: true });
    const ddim = await sampleBatch({ seeds: [4, 5, 6], length: N, emb, schedule, denoise: shrink, clamp: true, method: 'ddim', eta: 1 });
    expect(Array.from(ddim.tokens!)).toEqual(Array.from(anc.tokens!));
    const det = await sampleBatch({ seeds: [4, 5, 6], length: N, emb, schedule, denoise: shrink, clamp: true, method: 'ddim', eta: 0 });
    expect(Array.from(det.tokens!)).not.toEqual(Array.from(anc.tokens!));
  });

  it('held positions stay held at every step and in the output; a sample does not depend on its batch', async () => {
    const held = new Int32Array(N).fill(-1);
    held[0] = 5;
    held[3] = 17;
    held[9] = 2;
    for (const [method, eta] of [['ddim', 0], ['ddim', 0.7], ['dpm2m', 0]] as const) {
      for (const cleanFlags of [false, true]) {
        const seen: Int32Array[] = [];
        const schedule = buildSchedule(2000, 1e-4, 10);
        const r = await sampleBatch({ seeds: [4, 5], length: N, emb, schedule, denoise: shrink, clamp: true, held, method, eta, cleanFlags, onStep: (_s, t) => void seen.push(t.slice()) });
        for (const toks of [...seen, r.tokens!]) {
          for (let b = 0; b < 2; b++) expect([toks[b * N]!, toks[b * N + 3]!, toks[b * N + 9]!]).toEqual([5, 17, 2]);
        }
        const one = await sampleBatch({ seeds: [5], length: N, emb, schedule, denoise: shrink, clamp: true, held, method, eta, cleanFlags });
        expect(Array.from(one.tokens!)).toEqual(Array.from(r.tokens!.subarray(N, 2 * N)));
      }
    }
  });

  it('self-conditioning gets the raw x0 of the previous step under every sampler', async () => {
    for (const method of ['ddim', 'dpm2m'] as const) {
      const seen: { selfCond: Float32Array; out: Float32Array }[] = [];
      const rec: DenoiseFn = async (x, t, b, extras) => {
        const out = await shrink(x, t, b, extras);
        seen.push({ selfCond: extras.selfCond!.slice(), out: out.slice() });
        return out;
      };
      await sampleBatch({ seeds: [6], length: N, emb, schedule: buildSchedule(2000, 1e-4, 6), denoise: rec, clamp: true, method, selfCondition: true });
      expect(seen).toHaveLength(6);
      expect(seen[0]!.selfCond.every((v) => v === 0)).toBe(true);
      for (let k = 1; k < 6; k++) expect(Array.from(seen[k]!.selfCond)).toEqual(Array.from(seen[k - 1]!.out));
    }
  });

  it('guidance acts after the step, where the ancestral loop applies it, and moves samples under every sampler', async () => {
    const term = firstCoordinateTerm(N, d);
    const mean0 = meanFirstCoordinate(E, d);
    const schedule = buildSchedule(2000, 1e-4, 12);
    const seeds = [11, 12, 13, 14];
    for (const [method, eta] of [['ddim', 0], ['ddim', 0.5], ['dpm2m', 0]] as const) {
      const calls: number[] = [];
      const counted: GuidanceTerm = { ...term, async grad(x, t, B) { calls.push(t[0]!); return term.grad(x, t, B); } };
      const plain = await sampleBatch({ seeds, length: N, emb, schedule, denoise: shrink, clamp: true, method, eta });
      const guided = await sampleBatch({
        seeds, length: N, emb, schedule, denoise: shrink, clamp: true, method, eta,
        guidance: { terms: [counted], iterations: 3, stepSize: 0.5, lambda: 0.0001, offLastSteps: 2 },
      });
      expect(mean0(guided.tokens!), `${method} eta ${eta}`).toBeGreaterThan(mean0(plain.tokens!) + 0.3);
      // steps k = 11 .. 2 are guided, 3 iterations each, at the level x has reached (use[k - 1])
      expect(calls).toHaveLength(10 * 3);
      expect(calls[0]).toBe(schedule.use[10]);
      expect(calls.at(-1)).toBe(schedule.use[1]);
    }
  });

  it('scoreFinal scores each finished canvas with the guidance terms, on its tokens\' embeddings at the least noise', async () => {
    const term = firstCoordinateTerm(N, d);
    const schedule = buildSchedule(2000, 1e-4, 8);
    const seen: number[] = [];
    const counted: GuidanceTerm = { ...term, async score(x, t, B) { seen.push(t[0]!); return term.score(x, t, B); } };
    const guidance = { terms: [counted], iterations: 1, stepSize: 0.5, lambda: 0.0001, offLastSteps: 0 };
    const seeds = [21, 22, 23];
    const res = await sampleBatch({ seeds, length: N, emb, schedule, denoise: shrink, clamp: true, guidance, scoreFinal: true });
    expect(seen).toEqual([schedule.use[0]]);
    // the toy log p is the sum of the first coordinates of the chosen tokens' embeddings
    for (let b = 0; b < seeds.length; b++) {
      let want = 0;
      for (let i = 0; i < N; i++) want += E[res.tokens![b * N + i]! * d]!;
      expect(res.scores![b]).toBeCloseTo(want, 4);
    }
    // not asked, or nothing guided: no scores
    expect((await sampleBatch({ seeds, length: N, emb, schedule, denoise: shrink, clamp: true, guidance })).scores).toBeUndefined();
    expect((await sampleBatch({ seeds, length: N, emb, schedule, denoise: shrink, clamp: true, scoreFinal: true })).scores).toBeUndefined();
  });

  it('selfScore: the denoiser\'s reconstruction of each finished canvas, noised again from the sample\'s own stream', async () => {
    const S = 6;
    const schedule = buildSchedule(2000, 1e-4, S);
    const tTrain = 300;
    const abar = 0.6;
    const positions = [1, 2, 5];
    const seeds = [31, 32];
    const calls: { t: number; x: Float32Array; selfCond?: Float32Array }[] = [];
    const watched: DenoiseFn = async (x, t, b, extras) => {
      calls.push({ t: t[0]!, x: x.slice(), ...(extras.selfCond ? { selfCond: extras.selfCond.slice() } : {}) });
      return shrink(x, t, b, extras);
    };
    const res = await sampleBatch({ seeds, length: N, emb, schedule, denoise: watched, clamp: true, selfCondition: true, selfScore: { tTrain, abar, positions } });
    expect(calls.length).toBe(S + 1);
    const last = calls.at(-1)!;
    expect(last.t).toBe(tTrain);
    // the check starts from nothing, as a run's first step does
    expect(last.selfCond!.every((v) => v === 0)).toBe(true);
    for (let b = 0; b < seeds.length; b++) {
      // the stream's draws so far: x_T and one per step after the first; the re-noising takes the next N*d
      const stream = new Mulberry32(seeds[b]!);
      const skip = new Float32Array(N * d);
      for (let k = 0; k < S; k++) stream.fillNormal(skip);
      const z = new Float32Array(N * d);
      stream.fillNormal(z);
      let want = 0;
      for (let i = 0; i < N; i++) {
        const tok = res.tokens![b * N + i]!;
        for (let j = 0; j < d; j++) {
          const xt = Math.sqrt(abar) * E[tok * d + j]! + Math.sqrt(1 - abar) * z[i * d + j]!;
          expect(last.x[(b * N + i) * d + j]).toBeCloseTo(xt, 5);
          const x0 = xt * (0.8 + tTrain / 20000);
          if (positions.includes(i)) want -= (x0 - E[tok * d + j]!) ** 2;
        }
      }
      expect(res.scores![b]).toBeCloseTo(want, 3);
    }
    // the oracle reconstructs its own canvas exactly: score 0, the best there is
    const perfect = await sampleBatch({ seeds, length: N, emb, schedule, denoise: oracle, clamp: true, selfScore: { tTrain, abar, positions } });
    expect(Array.from(perfect.scores!).every((s) => Math.abs(s) < 1e-9)).toBe(true);
    // a guided run is scored by its classifiers, not by the model's check
    const term = firstCoordinateTerm(N, d);
    const guidance = { terms: [term], iterations: 1, stepSize: 0.5, lambda: 0.0001, offLastSteps: 0 };
    const guided = await sampleBatch({ seeds, length: N, emb, schedule, denoise: shrink, clamp: true, guidance, selfScore: { tTrain, abar, positions } });
    expect(guided.scores).toBeUndefined();
  });
});
