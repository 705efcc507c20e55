/**
 * `dlm-studio bench`: the engine's figures, all measured in one run on this machine: ms per denoising step against
 * the PyTorch reference sampler on the same weights, guided (the default Adagrad steps, two classifiers) against unguided time,
 * main-thread event-loop lag while generating, and peak memory for 64 samples.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type ConstraintSetInput, GUIDANCE_DEFAULT_ITERATIONS } from '../../constraints/set';
import { DEFAULT_MODEL_ID } from '../../engine/bundle';
import { createEngine } from '../../engine/index';
import { type DenoiserPrecision, type Engine, type GenerateRequest, type ModelSummary, resolvePrecision, type StepProgress } from '../../engine/types';
import { CliError, intOption, table, type CliCommand } from '../framework';
import { evaluateOutputs } from '../../constraints/evaluators';
import { formatBenchExtras, runBenchExtras } from '../../eval/bench-extra';
import { repoRoot } from '../../data-paths';
import { formatMaskedBench, runMaskedBench } from './bench-masked';


const usage = `usage: dlm-studio bench [--model <id>] [--steps S] [--samples N] [--python <path>] [--json] [--out file.json]

  --model    bundle to measure (default ${DEFAULT_MODEL_ID})
  --steps    denoising steps per timed run (default 20)
  --samples  samples of the memory / event-loop run (default 64)
  --rounds   alternating engine / reference rounds (default 2)
  --python   interpreter for the PyTorch reference sampler (default $PYTHON, else the first of python3 on PATH and
             /usr/bin/python3 whose torch is 2.x); it runs in fp32 and, on CPUs with AVX512-BF16 or AMX, in bf16
             autocast, each with 1 and N threads; the fastest setting per batch is the reference
  --skip-extras  leave out the evaluation figures (src-main/eval/bench-extra.ts): JSON-projected vs unprojected,
             50 vs 200 steps (time and quality), batch scaling 1/8/32/64, peak memory, providers vs cpu
  --out      also write the report's JSON to this file
Targets (default bundle, 2-core CPU): engine >= 2x faster per step than PyTorch at its best setting; guided <= 2x unguided;
event-loop lag p99 < 50 ms; peak memory < 1.5 GB for 64 samples.

A masked-diffusion bundle (src-main/cli/commands/bench-masked.ts) is measured on its own: ms per sample, per step
and per denoiser call for each sampler setting (the five confidences, greedy vs sampled, blocks vs one block),
unconditional and data-to-text (an E2E dev record pinned), at each batch size; and logits reuse on vs off
(DLM_MASKED_CACHE=0) where a block has more steps than positions, with the denoiser calls each way.
  --steps        steps of the settings table (default 16; at least one per block)
  --cache-steps  steps of the reuse rows (default: the bundle's default steps when a data-to-text block then has
                 more steps than positions, else twice the data-to-text positions)
  --block-length semi-autoregressive block of the table (default 8; each setting also runs as one block)
  --batches      batch sizes (default 8,64)
  --cache-batches  batch sizes of the reuse rows (default: --batches)
  --cache-blocks   block lengths of the reuse rows, 0 for one block (default: --block-length,0)
  --rounds       alternating rounds over every setting (default 2)`;

export interface BenchResult {
  model: { id: string; version: string; path: string };
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  steps: number;
  threads: number;
  rounds: number;
  /** Median and minimum over every step of every round (first step of each run excluded). */
  /** cpuMsPerStep: CPU time of the process per step (all threads), the least over the rounds. */
  /** One row per batch size and denoiser precision the bundle has (default precision first). */
  engine: { batch: number; precision: DenoiserPrecision; msPerStep: number; minMs: number; cpuMsPerStep: number }[];
  /** The reference at its best per batch size: the setting (precision, threads) with the least median ms/step. */
  reference: { batch: number; msPerStep: number; minMs: number; threads: number; precision: ReferencePrecision; torch: string; cpuMsPerStep: number }[] | { error: string };
  /** Every reference setting that ran (fp32 and, where the CPU has AVX512-BF16 or AMX, bf16 autocast; 1 and N threads). */
  referenceSettings: { batch: number; precision: ReferencePrecision; threads: number; torch: string; msPerStep: number; minMs: number; cpuMsPerStep: number }[];
  /** The interpreter that ran the reference, its torch, and whether bf16 autocast was measured (and why not). */
  referencePython: { python: string; torch: string | null; bf16: boolean; note?: string };
  /** reference / engine, on medians (x), on minimums (xMin) and on CPU time per step (xCpu). */
  speedup: { batch: number; precision: DenoiserPrecision; x: number; xMin: number; xCpu: number }[];
  /** The precision `auto` picks on cpu (what users get by default). */
  defaultPrecision: DenoiserPrecision;
  /** Per precision (default first). */
  guidance: ({ precision: DenoiserPrecision; controls: string[]; iterations: number; unguidedMsPerStep: number; guidedMsPerStep: number; ratio: number; ratioMin: number; ratioCpu: number } | { error: string })[];
  /** 1-minute load average before and after (other processes on the machine skew every figure). */
  load: [number, number];
  eventLoop: { samples: number; lagP50Ms: number; lagP99Ms: number; lagMaxMs: number; runSeconds: number };
  memory: { samples: number; peakRssMiB: number };
  targets: { name: string; value: string; target: string; met: boolean | null }[];
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

/** Per-step times from the worker's step-finish timestamps (first step of each batch excluded: warm-up). */
async function timedRun(engine: Engine, model: string, set: ConstraintSetInput): Promise<{ msPerStep: number; seconds: number; deltas: number[]; cpuMsPerStep: number }> {
  const progress: StepProgress[] = [];
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const s = await engine.generate({ model, device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onProgress: (p) => progress.push(p) });
  if (s.status !== 'completed') throw new Error(`bench run ${s.status}: ${s.error ?? ''}`);
  const deltas: number[] = [];
  for (let i = 1; i < progress.length; i++) {
    const a = progress[i - 1]!;
    const b = progress[i]!;
    if (b.batchStart === a.batchStart && b.step === a.step + 1) deltas.push(b.at! - a.at!);
  }
  // CPU time of the whole process (main, engine worker, helper thread) per step: robust to other processes
  const cpu = process.cpuUsage(c0);
  return { msPerStep: median(deltas), seconds: (performance.now() - t0) / 1000, deltas, cpuMsPerStep: (cpu.user + cpu.system) / 1000 / Math.max(1, progress.length) };
}

/** The PyTorch reference sampler (training/dlm_train/sample.py) on the bundle's PyTorch weights: per-step ms of
 * one run of `batch` samples (first step excluded, as for the engine), after a 3-step warm-up run in the same
 * process. sample() feeds ref.model as the engine feeds the graph (x_self_cond and clean inputs when the model has
 * them). precision bf16: the whole loop under torch.autocast('cpu', dtype=torch.bfloat16) (the denoiser's matrix
 * products in bf16, on AVX512-BF16 / AMX). Prints the torch version that ran. */
export const REFERENCE_TIMER = `
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
from training.dlm_train.sample import load_bundle, sample
ref = load_bundle(sys.argv[1], verify=False)
batch, steps, precision = int(sys.argv[2]), int(sys.argv[4]), sys.argv[5]
ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else (lambda: torch.autocast("cpu", enabled=False))
with ctx():
    sample(ref, batch, steps=3, seed=0)
times = []
c0 = time.process_time()
with ctx():
    sample(ref, batch, steps=steps, seed=1, step_times=times)
cpu = 1000.0 * (time.process_time() - c0) / len(times)
print(json.dumps({"wall": [1000.0 * t for t in times[1:]], "cpu": cpu, "torch": torch.__version__, "threads": torch.get_num_threads()}))
`;

/** What an interpreter offers the reference: its torch version and CPU capability (null: no torch there). */
export const TORCH_PROBE = `
import json
try:
    import torch
    cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") and hasattr(torch.backends.cpu, "get_cpu_capability") else None
    print(json.dumps({"torch": torch.__version__, "capability": cap}))
except Exception as e:
    print(json.dumps({"torch": None, "error": str(e)}))
`;

export interface TorchInfo { python: string; torch: string | null; capability?: string | null; error?: string }

function runPython<T>(python: string, args: string[], what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${what} exited ${code}: ${err.trim().split('\n').pop() ?? ''}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as T);
      } catch (e) {
        reject(new Error(`${what} printed no figures: ${(e as Error).message}`));
      }
    });
  });
}

export async function probeTorch(python: string): Promise<TorchInfo> {
  try {
    return { python, ...(await runPython<Omit<TorchInfo, 'python'>>(python, ['-c', TORCH_PROBE], 'torch probe')) };
  } catch (e) {
    return { python, torch: null, error: (e as Error).message };
  }
}

const torchMajor = (v: string | null) => (v ? Number(/^(\d+)\./.exec(v)?.[1] ?? NaN) : NaN);

/**
 * The reference's interpreter: the one asked for (--python, else $PYTHON), else the first of `python3` on PATH and
 * /usr/bin/python3 whose torch is 2.x (what training/requirements.txt installs), else the first with any torch,
 * else /usr/bin/python3 (the run then reports the reference's error).
 */
export async function chooseReferencePython(asked: string | undefined, probe: (python: string) => Promise<TorchInfo> = probeTorch): Promise<TorchInfo> {
  if (asked) return probe(asked);
  const seen: TorchInfo[] = [];
  for (const python of ['python3', '/usr/bin/python3']) {
    const info = await probe(python);
    if (torchMajor(info.torch) >= 2) return info;
    seen.push(info);
  }
  return seen.find((x) => x.torch) ?? seen[seen.length - 1]!;
}

/** Whether bf16 autocast has hardware behind it: AVX512-BF16 or AMX in /proc/cpuinfo's flags, or torch's capability. */
export function cpuHasBf16(cpuinfo: string | null, capability?: string | null): boolean {
  const flags = new Set((cpuinfo ?? '').split('\n').filter((l) => /^flags\s*:/.test(l)).flatMap((l) => l.split(':')[1]!.trim().split(/\s+/)));
  return flags.has('avx512_bf16') || flags.has('amx_bf16') || /AMX/i.test(capability ?? '');
}

function readCpuinfo(): string | null {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
}

export type ReferencePrecision = 'fp32' | 'bf16';

/** Reference settings, fp32 first: each precision with 1 and `threads` threads. */
export function referenceSettings(threads: number, bf16: boolean): { precision: ReferencePrecision; threads: number }[] {
  const precisions: ReferencePrecision[] = bf16 ? ['fp32', 'bf16'] : ['fp32'];
  return precisions.flatMap((precision) => [...new Set([1, threads])].map((th) => ({ precision, threads: th })));
}

function runReference(python: string, bundle: string, batch: number, threads: number, steps: number, precision: ReferencePrecision): Promise<{ wall: number[]; cpu: number; torch: string }> {
  return runPython(python, ['-c', REFERENCE_TIMER, bundle, String(batch), String(threads), String(steps), precision], 'reference sampler');
}

/**
 * Two guided controls this bundle has classifiers for, with targets of the E2E kind that one text can meet together:
 * "Blue Spice is a French restaurant near the city centre." has the POS template, and wink-nlp tags "French" ADJ
 * (it tags "Italian", "Chinese" or "Indian" there PROPN, which the template's ADJ slot would contradict).
 */
function guidedSet(m: ModelSummary, steps: number): { set: ConstraintSetInput; controls: string[] } | null {
  const food = m.recordFields.food?.includes('French') ? 'French' : m.recordFields.food?.[0];
  const targets: Record<string, ConstraintSetInput['constraints'][number]> = {
    pos: { kind: 'pos', tags: ['PROPN', 'PROPN', 'AUX', 'DET', 'ADJ', 'NOUN', 'ADP', 'DET', 'NOUN', 'NOUN', 'PUNCT'] },
    attribute: food ? { kind: 'attribute', field: 'food', value: food } : { kind: 'length', tokens: 12 },
    length: { kind: 'length', tokens: 14 },
    sentiment: { kind: 'sentiment', label: 'positive' },
    spans: { kind: 'spans', spans: [[0, 1, 'NP']] },
  };
  const order = ['pos', 'attribute', 'length', 'sentiment', 'spans'].filter((c) => m.controls.includes(c));
  if (order.length < 2) return null;
  const controls = order.slice(0, 2);
  return {
    controls,
    set: { version: 1, constraints: controls.map((c) => targets[c]!), sampler: { steps, samples: 8, seed: 1, guidance: { iterations: GUIDANCE_DEFAULT_ITERATIONS, offLastSteps: 0 } } },
  };
}

export async function runBench(o: { modelDirs: string[]; model: string; steps: number; samples: number; rounds: number; python?: string; log: (s: string) => void }): Promise<BenchResult> {
  const e8 = createEngine({ modelDirs: o.modelDirs, batchSize: 8 });
  const e64 = createEngine({ modelDirs: o.modelDirs, batchSize: 64 });
  try {
    const models = await e8.listModels();
    const m = models.find((x) => x.id === o.model && !x.error);
    if (!m) {
      const bad = models.find((x) => x.id === o.model);
      throw new CliError(bad ? 'BUNDLE_INVALID' : 'NOT_FOUND', bad?.error ? `model "${o.model}" cannot be loaded: ${bad.error}` : `unknown model "${o.model}" (available: ${models.filter((x) => !x.error).map((x) => x.id).join(', ') || 'none'})`);
    }
    if (m.kind !== 'continuous-embedding-diffusion') {
      throw new CliError('INVALID_INPUT', `model "${m.id}" is a ${m.kind} model: this bench measures continuous bundles against training/dlm_train/sample.py`);
    }
    const precisions: DenoiserPrecision[] = m.precisions ?? ['fp32'];
    const defaultPrecision = resolvePrecision('auto', 'cpu', precisions.includes('int8'), m.id);
    precisions.sort((a, b) => Number(b === defaultPrecision) - Number(a === defaultPrecision));
    const plain = (samples: number, precision: DenoiserPrecision): ConstraintSetInput => ({ version: 1, constraints: [], sampler: { steps: o.steps, samples, seed: 1, precision } });

    const load0 = loadavg()[0]!;
    const py = await chooseReferencePython(o.python);
    const bf16 = py.torch !== null && cpuHasBf16(readCpuinfo(), py.capability);
    o.log(`PyTorch reference: ${py.python}, torch ${py.torch ?? `missing (${py.error ?? 'no torch'})`}; bf16 autocast ${bf16 ? 'measured (the CPU has AVX512-BF16 or AMX)' : 'not measured'}`);
    o.log(`warming up (${m.id})...`);
    for (const precision of precisions) {
      await timedRun(e8, m.id, { version: 1, constraints: [], sampler: { steps: 3, samples: 8, seed: 0, precision } });
      await timedRun(e64, m.id, { version: 1, constraints: [], sampler: { steps: 3, samples: 64, seed: 0, precision } });
    }

    // Engine and reference alternate, round after round, so that both see the same machine load; medians and
    // minimums over all rounds. The same number of compute threads on both sides (torch here defaults to 1).
    const threads = Number(process.env.DLM_ENGINE_THREADS) || cpus().length;
    const engineDeltas: Record<string, number[]> = {};
    const engineCpu: Record<string, number[]> = {};
    const refCpu: Record<string, number[]> = {};
    // the reference at its best: fp32 and bf16 autocast (where the CPU has bf16 units), each with 1 thread and with
    // as many as the engine (OpenMP threads suffer more than onnxruntime's when other processes share the cores),
    // keeping the fastest per batch size
    const settings = referenceSettings(threads, bf16);
    const key = (batch: number, s: { precision: string; threads: number }) => `${batch}/${s.precision}/${s.threads}`;
    const refDeltas: Record<string, number[]> = {};
    let refTorch = py.torch ?? '';
    let refError: string | null = py.torch ? null : `${py.python}: no torch (${py.error ?? 'import failed'})`;
    for (let round = 1; round <= o.rounds; round++) {
      for (const batch of [8, 64]) {
        for (const precision of precisions) {
          o.log(`round ${round}/${o.rounds}: engine (${precision}), batch ${batch}, ${o.steps} steps...`);
          const run = await timedRun(batch === 8 ? e8 : e64, m.id, plain(batch, precision));
          (engineDeltas[`${batch}/${precision}`] ??= []).push(...run.deltas);
          (engineCpu[`${batch}/${precision}`] ??= []).push(run.cpuMsPerStep);
        }
        for (const st of settings) {
          if (refError) break;
          o.log(`round ${round}/${o.rounds}: PyTorch ${refTorch} reference (${st.precision}, ${st.threads} thread${st.threads > 1 ? 's' : ''}), batch ${batch}...`);
          try {
            const ref = await runReference(py.python, m.path, batch, st.threads, o.steps, st.precision);
            refTorch = ref.torch;
            (refDeltas[key(batch, st)] ??= []).push(...ref.wall);
            (refCpu[key(batch, st)] ??= []).push(ref.cpu);
          } catch (e) {
            refError = (e as Error).message;
          }
        }
      }
    }
    const stat = (a: number[]) => ({ msPerStep: median(a), minMs: Math.min(...a) });
    const engine = [8, 64].flatMap((batch) => precisions.map((precision) => ({ batch, precision, ...stat(engineDeltas[`${batch}/${precision}`]!), cpuMsPerStep: Math.min(...engineCpu[`${batch}/${precision}`]!) })));
    const referenceRows: BenchResult['referenceSettings'] = refError ? [] : [8, 64].flatMap((batch) => settings.map((st) => ({
      batch, precision: st.precision, threads: st.threads, torch: refTorch, ...stat(refDeltas[key(batch, st)]!), cpuMsPerStep: Math.min(...refCpu[key(batch, st)]!),
    })));
    const reference: BenchResult['reference'] = refError ? { error: refError } : [8, 64].map((batch) => {
      // the fastest setting by median wall time; its own minimum and CPU time go with it
      return [...referenceRows.filter((r) => r.batch === batch)].sort((a, b) => a.msPerStep - b.msPerStep)[0]!;
    });
    const speedup = Array.isArray(reference)
      ? engine.map((en) => {
        const r = reference.find((x) => x.batch === en.batch)!;
        return { batch: en.batch, precision: en.precision, x: r.msPerStep / en.msPerStep, xMin: r.minMs / en.minMs, xCpu: r.cpuMsPerStep / en.cpuMsPerStep };
      })
      : [];

    const g = guidedSet(m, o.steps);
    const guidance: BenchResult['guidance'] = [];
    for (const precision of precisions) {
      o.log(`guided (K = ${GUIDANCE_DEFAULT_ITERATIONS}, two classifiers) vs unguided at batch 8 (${precision})...`);
      if (!g) {
        guidance.push({ error: `bundle ${m.id} has fewer than two guidance classifiers (${m.controls.join(', ') || 'none'})` });
        break;
      }
      const un: number[] = [];
      const gu: number[] = [];
      const unCpu: number[] = [];
      const guCpu: number[] = [];
      for (let round = 0; round < o.rounds; round++) {
        const a = await timedRun(e8, m.id, plain(8, precision));
        const b = await timedRun(e8, m.id, { ...g.set, sampler: { ...g.set.sampler, precision } });
        un.push(...a.deltas);
        gu.push(...b.deltas);
        unCpu.push(a.cpuMsPerStep);
        guCpu.push(b.cpuMsPerStep);
      }
      guidance.push({
        precision, controls: g.controls, iterations: GUIDANCE_DEFAULT_ITERATIONS, unguidedMsPerStep: median(un), guidedMsPerStep: median(gu),
        ratio: median(gu) / median(un), ratioMin: Math.min(...gu) / Math.min(...un), ratioCpu: Math.min(...guCpu) / Math.min(...unCpu),
      });
    }

    o.log(`event-loop lag and peak memory while generating ${o.samples} samples (batch 8)...`);
    const resolution = 10;
    const h = monitorEventLoopDelay({ resolution });
    let peak = process.memoryUsage.rss();
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
    h.enable();
    const run = await timedRun(e8, m.id, plain(o.samples, defaultPrecision));
    h.disable();
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage.rss());
    // the histogram records timer intervals; the lag is what exceeds the resolution
    const lag = (ns: number) => Math.max(0, ns / 1e6 - resolution);
    const eventLoop = { samples: o.samples, lagP50Ms: lag(h.percentile(50)), lagP99Ms: lag(h.percentile(99)), lagMaxMs: lag(h.max), runSeconds: run.seconds };
    const memory = { samples: o.samples, peakRssMiB: peak / 2 ** 20 };

    const targets: BenchResult['targets'] = [];
    for (const precision of precisions) {
      const sp = speedup.filter((x) => x.precision === precision);
      const gd = guidance.find((x) => 'ratio' in x && x.precision === precision) as Extract<BenchResult['guidance'][number], { ratio: number }> | undefined;
      const tag = `${precision}${precision === defaultPrecision ? ', default' : ''}`;
      targets.push(
        { name: `engine vs PyTorch per step (${tag})`, value: sp.length ? sp.map((s) => `${s.x.toFixed(2)}x (batch ${s.batch})`).join(', ') : 'n/a', target: '>= 2x faster', met: sp.length ? Math.min(...sp.map((s) => s.x)) >= 2 : null },
        { name: `engine vs PyTorch, CPU time (${tag})`, value: sp.length ? sp.map((s) => `${s.xCpu.toFixed(2)}x (batch ${s.batch})`).join(', ') : 'n/a', target: '>= 2x less', met: sp.length ? Math.min(...sp.map((s) => s.xCpu)) >= 2 : null },
        { name: `guided / unguided time (${tag})`, value: gd ? `${gd.ratio.toFixed(2)}x` : 'n/a', target: '<= 2x', met: gd ? gd.ratio <= 2 : null },
        { name: `guided / unguided, CPU time (${tag})`, value: gd ? `${gd.ratioCpu.toFixed(2)}x` : 'n/a', target: '<= 2x', met: gd ? gd.ratioCpu <= 2 : null },
      );
    }
    targets.push(
      { name: 'event-loop lag p99', value: `${eventLoop.lagP99Ms.toFixed(1)} ms`, target: '< 50 ms', met: eventLoop.lagP99Ms < 50 },
      { name: `peak memory, ${o.samples} samples`, value: `${memory.peakRssMiB.toFixed(0)} MiB`, target: '< 1536 MiB', met: memory.peakRssMiB < 1536 },
    );
    return {
      model: { id: m.id, version: m.version, path: m.path },
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memoryGiB: totalmem() / 2 ** 30, node: process.versions.node, platform: `${process.platform}/${process.arch}` },
      steps: o.steps, rounds: o.rounds, load: [load0, loadavg()[0]!], threads: Number(process.env.DLM_ENGINE_THREADS) || cpus().length, engine, reference,
      referenceSettings: referenceRows, referencePython: { python: py.python, torch: refTorch || py.torch, bf16, ...(bf16 ? {} : { note: py.torch ? 'the CPU has neither AVX512-BF16 nor AMX' : 'no torch' }) },
      speedup, defaultPrecision, guidance, eventLoop, memory, targets,
    };
  } finally {
    await e8.dispose();
    await e64.dispose();
  }
}

export function formatBench(r: BenchResult): string {
  const ref = Array.isArray(r.reference) ? r.reference : null;
  const lines = [
    `model ${r.model.id} ${r.model.version} (${r.model.path})`,
    `machine: ${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.memoryGiB.toFixed(0)} GiB, node ${r.machine.node}, ${r.machine.platform}`,
    '',
    `load average ${r.load[0].toFixed(1)} before, ${r.load[1].toFixed(1)} after (other processes skew every figure)`,
    '',
    `PyTorch reference: ${r.referencePython.python}, torch ${r.referencePython.torch ?? 'missing'}; bf16 autocast ${r.referencePython.bf16 ? 'measured' : `not measured (${r.referencePython.note ?? ''})`}`,
    ...(r.referenceSettings.length ? [
      `each reference setting (ms per step, median / min; CPU ms per step):`,
      table(['batch', 'precision', 'threads', 'torch', 'median / min', 'CPU ms/step', ''], r.referenceSettings.map((s) => {
        const best = ref?.find((x) => x.batch === s.batch);
        return [s.batch, s.precision, s.threads, s.torch, `${s.msPerStep.toFixed(2)} / ${s.minMs.toFixed(2)}`, s.cpuMsPerStep.toFixed(1), best && best.precision === s.precision && best.threads === s.threads ? 'fastest (the reference)' : ''];
      })),
      '',
    ] : []),
    `ms per denoising step (${r.steps} steps x ${r.rounds} alternating rounds; median / min; cpu; engine ${r.threads} threads, reference its fastest setting per batch):`,
    table(['batch', 'denoiser', 'engine (onnxruntime-node)', 'PyTorch reference (best)', 'speedup (median / min)', 'CPU ms/step engine / ref', 'speedup (CPU)'], r.engine.map((e) => {
      const p = ref?.find((x) => x.batch === e.batch);
      return [
        e.batch, `${e.precision}${e.precision === r.defaultPrecision ? ' (default)' : ''}`, `${e.msPerStep.toFixed(2)} / ${e.minMs.toFixed(2)}`, p ? `${p.msPerStep.toFixed(2)} / ${p.minMs.toFixed(2)} (${p.precision}, ${p.threads} thr)` : '-',
        p ? `${(p.msPerStep / e.msPerStep).toFixed(2)}x / ${(p.minMs / e.minMs).toFixed(2)}x` : '-',
        p ? `${e.cpuMsPerStep.toFixed(1)} / ${p.cpuMsPerStep.toFixed(1)}` : e.cpuMsPerStep.toFixed(1), p ? `${(p.cpuMsPerStep / e.cpuMsPerStep).toFixed(2)}x` : '-',
      ];
    })),
    ...(ref ? [] : [`reference: ${(r.reference as { error: string }).error}`]),
    '',
    ...r.guidance.map((g) => ('ratio' in g
      ? `guided (K = ${g.iterations}, ${g.controls.join(' + ')}; ${g.precision} denoiser): ${g.guidedMsPerStep.toFixed(2)} ms/step vs unguided ${g.unguidedMsPerStep.toFixed(2)} ms/step = ${g.ratio.toFixed(2)}x (on CPU time ${g.ratioCpu.toFixed(2)}x)`
      : `guidance: ${g.error}`)),
    `main-thread event-loop lag while generating ${r.eventLoop.samples} samples (${r.eventLoop.runSeconds.toFixed(1)} s): p50 ${r.eventLoop.lagP50Ms.toFixed(2)} ms, p99 ${r.eventLoop.lagP99Ms.toFixed(2)} ms, max ${r.eventLoop.lagMaxMs.toFixed(2)} ms`,
    `peak RSS (main + engine worker) for ${r.memory.samples} samples: ${r.memory.peakRssMiB.toFixed(0)} MiB`,
    '',
    table(['target', 'measured', 'goal', 'met'], r.targets.map((t) => [t.name, t.value, t.target, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO'])),
  ];
  return lines.join('\n');
}

export const benchCommand: CliCommand = {
  name: 'bench',
  summary: 'measure the engine: ms/step vs PyTorch, guided vs unguided, event-loop lag, peak memory',
  usage,
  options: {
    model: { type: 'string' }, steps: { type: 'string' }, samples: { type: 'string' }, rounds: { type: 'string' }, python: { type: 'string' }, 'skip-extras': { type: 'boolean' },
    out: { type: 'string' }, 'cache-steps': { type: 'string' }, 'block-length': { type: 'string' }, batches: { type: 'string' }, 'cache-batches': { type: 'string' }, 'cache-blocks': { type: 'string' },
  },
  async run(ctx, args) {
    const id = (args.values.model as string | undefined) ?? DEFAULT_MODEL_ID;
    const out = args.values.out as string | undefined;
    const write = (json: unknown) => {
      if (out) writeFileSync(out, JSON.stringify(json, null, 2) + '\n');
    };
    const lister = createEngine({ modelDirs: ctx.modelDirs });
    const listed = await lister.listModels().finally(() => lister.dispose());
    const masked = listed.find((x) => x.id === id && !x.error && x.kind === 'masked-diffusion');
    if (masked) {
      const steps = intOption(args, 'steps') ?? 16;
      const cacheSteps = intOption(args, 'cache-steps');
      const blockLength = intOption(args, 'block-length') ?? 8;
      const rounds = intOption(args, 'rounds') ?? 2;
      const sizes = (name: string, text: string, min = 1) => {
        const list = text.split(',').map((b) => (b.trim() === '' ? NaN : Number(b.trim())));
        if (list.some((b) => !Number.isInteger(b) || b < min || b > 1024)) throw new CliError('INVALID_INPUT', `--${name} must be a comma-separated list of ${min ? 'batch sizes' : 'block lengths'} in ${min}..1024 (got ${JSON.stringify(text)})`);
        return list;
      };
      const batches = sizes('batches', (args.values.batches as string | undefined) ?? '8,64');
      const cacheText = args.values['cache-batches'] as string | undefined;
      const cacheBatches = cacheText === undefined ? undefined : sizes('cache-batches', cacheText);
      const blocksText = args.values['cache-blocks'] as string | undefined;
      const cacheBlocks = blocksText === undefined ? undefined : sizes('cache-blocks', blocksText, 0);
      if (rounds < 1 || rounds > 20) throw new CliError('INVALID_INPUT', '--rounds must be in 1..20');
      if (steps < 1 || steps > 2000) throw new CliError('INVALID_INPUT', '--steps must be in 1..2000');
      if (cacheSteps !== undefined && (cacheSteps < 1 || cacheSteps > 2000)) throw new CliError('INVALID_INPUT', '--cache-steps must be in 1..2000');
      const r = await runMaskedBench({ modelDirs: ctx.modelDirs, model: masked, steps, cacheSteps, blockLength, batches, cacheBatches, cacheBlocks, rounds, log: (s) => ctx.err(s) });
      write(r);
      ctx.out(ctx.json ? JSON.stringify(r, null, 2) : formatMaskedBench(r));
      return;
    }
    const steps = intOption(args, 'steps') ?? 20;
    const samples = intOption(args, 'samples') ?? 64;
    const rounds = intOption(args, 'rounds') ?? 2;
    if (rounds < 1 || rounds > 20) throw new CliError('INVALID_INPUT', '--rounds must be in 1..20');
    if (steps < 3 || steps > 2000) throw new CliError('INVALID_INPUT', '--steps must be in 3..2000');
    if (samples < 1) throw new CliError('INVALID_INPUT', '--samples must be at least 1');
    const python = (args.values.python as string | undefined) ?? (process.env.PYTHON || undefined);
    const r = await runBench({ modelDirs: ctx.modelDirs, model: id, steps, samples, rounds, python, log: (s) => ctx.err(s) });
    const extras = args.values['skip-extras'] === true ? null : await runBenchExtras({
      model: r.model.id, device: 'cpu', steps, evaluate: evaluateOutputs, log: (s) => ctx.err(s),
      engineFor: (batchSize) => createEngine({ modelDirs: ctx.modelDirs, batchSize }),
    });
    write({ ...r, extras });
    ctx.out(ctx.json ? JSON.stringify({ ...r, extras }, null, 2) : formatBench(r) + (extras ? `\n\n${formatBenchExtras(extras)}` : ''));
  },
};

