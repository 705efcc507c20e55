/**
 * The benchmark figures issue 8 adds to `dlm-studio bench` (the engine's own figures, engine vs PyTorch and guided vs
 * unguided time, live in src-main/cli/commands/bench.ts): JSON-projected vs unprojected, 50 vs 200 steps (time and
 * quality), batch scaling, peak memory, and each usable execution provider against cpu. All measured in one call.
 */
import { parseConstraintSet, type ConstraintSetInput } from '../constraints/set';
import type { DevicePreference, Engine, GeneratedOutput } from '../engine/types';
import type { EvaluateFn } from './run';

export interface BenchExtraOptions {
  model: string;
  device: DevicePreference;
  /** Steps for the timing comparisons (projection, batch scaling, providers). */
  steps: number;
  /** The two step counts compared for quality (default 50 vs 200). */
  stepsCompare?: [number, number];
  /** Samples per measurement (projection, providers). */
  samples?: number;
  /** Guided samples per step count in the steps comparison (default 64: "time to 64 guided outputs"). */
  stepsSamples?: number;
  batchSizes?: number[];
  /** An engine whose worker denoises `batchSize` samples together (batch scaling); the default one otherwise. */
  engineFor: (batchSize: number) => Engine | Promise<Engine>;
  evaluate: EvaluateFn;
  log?: (line: string) => void;
  /** JSON schema used for the projected run (default: an E2E record schema). */
  schema?: Record<string, unknown>;
  /** Quality target for the steps comparison (default food: Italian). */
  attribute?: { field: string; value: string };
}

export interface Timed {
  /** Sampling time (the engine's sampleMs: no bundle load, no compile), seconds. */
  seconds: number;
  /** Constraint compile time (automaton building for hard constraints), ms. */
  compileMs: number;
  /** Whole call including load and compile, seconds. */
  wallSeconds: number;
  perStepMs: number;
  perSampleMs: number;
  samples: number;
  peakRssMiB: number;
}

export interface BenchExtraResult {
  projection: { unprojected: Timed & { valid: number }; projected: Timed & { valid: number }; timeRatio: number } | { error: string };
  steps: { runs: (Timed & { steps: number; success: number; fluency: number | null })[]; timeRatio: number } | { error: string };
  batch: { runs: (Timed & { batchSize: number; throughputVs1: number })[] } | { error: string };
  peakMemoryMiB: number;
  providers: { provider: string; usable: boolean; reason?: string; perStepMs?: number; vsCpu?: number }[];
}

export const DEFAULT_BENCH_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1 },
    eatType: { type: 'string', enum: ['coffee shop', 'pub', 'restaurant'] },
    food: { type: 'string', enum: ['Chinese', 'English', 'Fast food', 'French', 'Indian', 'Italian', 'Japanese'] },
  },
  required: ['name', 'eatType', 'food'],
};

/** Peak resident set size while `fn` runs, sampled every 20 ms (the worker thread shares the process). */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peakRssMiB: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, peakRssMiB: peak / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

async function timedRun(engine: Engine, o: BenchExtraOptions, set: ConstraintSetInput, device = o.device): Promise<{ t: Timed; outputs: GeneratedOutput[] }> {
  const constraints = parseConstraintSet(set);
  const outputs: GeneratedOutput[] = [];
  const t0 = performance.now();
  const { value: summary, peakRssMiB } = await withPeakRss(() =>
    engine.generate({ model: o.model, device, constraints }, { onOutput: (x) => outputs.push(x) }));
  const seconds = (performance.now() - t0) / 1000;
  if (summary.status !== 'completed') throw new Error(`generation ${summary.status}: ${summary.error ?? ''}`);
  const n = constraints.sampler.samples;
  const sampleMs = summary.timings.sampleMs;
  return {
    t: {
      seconds: sampleMs / 1000,
      compileMs: summary.timings.compileMs,
      wallSeconds: seconds,
      perStepMs: summary.timings.perStepMs || (sampleMs / constraints.sampler.steps),
      perSampleMs: sampleMs / n,
      samples: n,
      peakRssMiB,
    },
    outputs,
  };
}

const sampler = (steps: number, samples: number, guided: boolean, seed = 0) => ({ steps, samples, seed, guidance: { enabled: guided } });

export async function runBenchExtras(o: BenchExtraOptions): Promise<BenchExtraResult> {
  const log = o.log ?? (() => {});
  const samples = o.samples ?? 8;
  const engine = await o.engineFor(8);
  try {
    return await measure(o, engine, samples, log);
  } finally {
    await engine.dispose();
  }
}

async function measure(o: BenchExtraOptions, engine: Engine, samples: number, log: (line: string) => void): Promise<BenchExtraResult> {
  let peak = 0;
  // load the bundle and create the sessions before anything is timed
  await timedRun(engine, o, { version: 1, constraints: [], sampler: sampler(2, 1, false) });
  const res: BenchExtraResult = {
    projection: { error: 'not run' },
    steps: { error: 'not run' },
    batch: { error: 'not run' },
    peakMemoryMiB: 0,
    providers: [],
  };

  try {
    log(`projection: ${samples} samples, ${o.steps} steps, with and without a JSON schema`);
    const schema = o.schema ?? DEFAULT_BENCH_SCHEMA;
    const jsonSet = { version: 1 as const, constraints: [{ kind: 'json-schema' as const, schema }] };
    const validity = async (outs: GeneratedOutput[]) => {
      const scores = await o.evaluate(parseConstraintSet(jsonSet), outs.map((x) => ({ text: x.text, record: x.record })));
      return scores.filter((s) => s.every((c) => c.satisfied)).length / Math.max(1, outs.length);
    };
    const un = await timedRun(engine, o, { version: 1, constraints: [], sampler: sampler(o.steps, samples, false) });
    const pr = await timedRun(engine, o, { ...jsonSet, sampler: sampler(o.steps, samples, false) });
    peak = Math.max(peak, un.t.peakRssMiB, pr.t.peakRssMiB);
    res.projection = {
      unprojected: { ...un.t, valid: await validity(un.outputs) },
      projected: { ...pr.t, valid: await validity(pr.outputs) },
      timeRatio: pr.t.seconds / un.t.seconds,
    };
  } catch (e) {
    res.projection = { error: (e as Error).message };
  }

  try {
    const [a, b] = o.stepsCompare ?? [50, 200];
    const attr = o.attribute ?? { field: 'food', value: 'Italian' };
    const set = { version: 1 as const, constraints: [{ kind: 'attribute' as const, ...attr }] };
    const runs: (Timed & { steps: number; success: number; fluency: number | null })[] = [];
    const guidedSamples = o.stepsSamples ?? 64;
    for (const steps of [a, b]) {
      log(`steps: ${steps} steps, ${guidedSamples} guided samples (attribute ${attr.field}=${attr.value})`);
      const r = await timedRun(engine, o, { ...set, sampler: sampler(steps, guidedSamples, true) });
      peak = Math.max(peak, r.t.peakRssMiB);
      const scores = await o.evaluate(parseConstraintSet(set), r.outputs.map((x) => ({ text: x.text, record: x.record })));
      const fl = r.outputs.map((x) => x.fluency).filter((f): f is number => f !== null && Number.isFinite(f));
      runs.push({
        ...r.t,
        steps,
        success: scores.filter((s) => s.every((c) => c.satisfied)).length / Math.max(1, r.outputs.length),
        fluency: fl.length ? fl.reduce((x, y) => x + y, 0) / fl.length : null,
      });
    }
    res.steps = { runs, timeRatio: runs[1]!.seconds / runs[0]!.seconds };
  } catch (e) {
    res.steps = { error: (e as Error).message };
  }

  try {
    const runs: (Timed & { batchSize: number; throughputVs1: number })[] = [];
    for (const bs of o.batchSizes ?? [1, 8, 32, 64]) {
      log(`batch: ${bs} samples denoised together, ${o.steps} steps`);
      const eng = bs === 8 ? engine : await o.engineFor(bs);
      try {
        await timedRun(eng, o, { version: 1, constraints: [], sampler: sampler(2, bs, false) }); // warm: first run of a shape allocates
        const r = await timedRun(eng, o, { version: 1, constraints: [], sampler: sampler(o.steps, bs, false) });
        peak = Math.max(peak, r.t.peakRssMiB);
        runs.push({ ...r.t, batchSize: bs, throughputVs1: 0 });
      } finally {
        if (eng !== engine) await eng.dispose();
      }
    }
    const one = runs.find((r) => r.batchSize === 1);
    for (const r of runs) r.throughputVs1 = one ? one.perSampleMs / r.perSampleMs : NaN;
    res.batch = { runs };
  } catch (e) {
    res.batch = { error: (e as Error).message };
  }

  try {
    const report = await engine.probeDevices('auto', o.model);
    const usable = report.probes.filter((p) => p.usable);
    let cpuStep: number | undefined;
    for (const p of [...usable.filter((x) => x.provider === 'cpu'), ...usable.filter((x) => x.provider !== 'cpu')]) {
      log(`provider: ${p.provider}`);
      try {
        const r = await timedRun(engine, o, { version: 1, constraints: [], sampler: sampler(o.steps, samples, false) }, p.provider);
        if (p.provider === 'cpu') cpuStep = r.t.perStepMs;
        res.providers.push({ provider: p.provider, usable: true, perStepMs: r.t.perStepMs, vsCpu: cpuStep ? cpuStep / r.t.perStepMs : undefined });
      } catch (e) {
        res.providers.push({ provider: p.provider, usable: false, reason: (e as Error).message });
      }
    }
    for (const p of report.probes.filter((x) => !x.usable)) res.providers.push({ provider: p.provider, usable: false, reason: p.reason });
  } catch (e) {
    res.providers.push({ provider: 'auto', usable: false, reason: (e as Error).message });
  }

  res.peakMemoryMiB = peak;
  return res;
}

const f = (x: number | null | undefined, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

/** Plain-text lines for the terminal (ratios first). */
export function formatBenchExtras(r: BenchExtraResult): string {
  const L: string[] = [];
  if ('error' in r.projection) L.push(`JSON-projected vs unprojected: error: ${r.projection.error}`);
  else {
    const p = r.projection;
    L.push(`JSON-projected vs unprojected: sampling time x${f(p.timeRatio, 2)} (${f(p.projected.perStepMs)} vs ${f(p.unprojected.perStepMs)} ms/step, schema compile ${f(p.projected.compileMs, 0)} ms); schema-valid records ${f(100 * p.projected.valid)}% vs ${f(100 * p.unprojected.valid)}%`);
  }
  if ('error' in r.steps) L.push(`steps vs quality: error: ${r.steps.error}`);
  else {
    const [a, b] = r.steps.runs;
    L.push(`steps vs quality: ${b!.steps} vs ${a!.steps} steps: sampling time x${f(r.steps.timeRatio, 2)}; attribute success ${f(100 * b!.success)}% vs ${f(100 * a!.success)}%; perplexity ${f(b!.fluency, 2)} vs ${f(a!.fluency, 2)}`);
    L.push(`  time to ${a!.samples} guided outputs: ${f(a!.seconds, 1)} s at ${a!.steps} steps, ${f(b!.seconds, 1)} s at ${b!.steps} (${f(a!.seconds / b!.seconds, 3)} of it)`);
  }
  if ('error' in r.batch) L.push(`batch scaling: error: ${r.batch.error}`);
  else {
    L.push(`batch scaling (per-sample time; throughput vs batch 1):`);
    for (const b of r.batch.runs) L.push(`  batch ${String(b.batchSize).padStart(2)}: ${f(b.perSampleMs, 0)} ms/sample, ${f(b.perStepMs)} ms/step, throughput x${f(b.throughputVs1, 2)}, peak RSS ${f(b.peakRssMiB, 0)} MiB`);
  }
  L.push(`peak memory (process RSS: main thread + engine workers, all runs above): ${f(r.peakMemoryMiB, 0)} MiB`);
  L.push(`execution providers vs cpu:`);
  for (const p of r.providers) {
    L.push(p.usable ? `  ${p.provider}: ${f(p.perStepMs)} ms/step, x${f(p.vsCpu, 2)} vs cpu` : `  ${p.provider}: not usable here (${p.reason ?? 'no reason given'})`);
  }
  return L.join('\n');
}
