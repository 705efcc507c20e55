/**
 * `dlm-studio bench --model <masked bundle>`: the masked family's figures, all measured in one run on this machine:
 * time per output (ms per sample, per step, per denoiser call) at each sampler setting a user can pick (the five
 * confidences, greedy vs sampled, semi-autoregressive blocks vs one block), unconditional and data-to-text, at two
 * batch sizes; and what reusing the logits saves (the same settings with reuse on and off, and the calls each way).
 * Rounds alternate over every setting, so all see the same machine load; figures are medians over the rounds.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import type { ConstraintSetInput } from '../../constraints/set';
import { createEngine } from '../../engine/index';
import type { Confidence } from '../../engine/families/masked/manifest';
import { stepPlan } from '../../engine/families/masked/sampler';
import type { Engine, GenerateRequest, ModelSummary } from '../../engine/types';
import { table } from '../framework';

/** One sampler setting of the matrix (blockLength 0: one block). */
export interface MaskedBenchSetting {
  confidence: Confidence;
  temperature: number;
  topP: number;
  blockLength: number;
}

export type MaskedCondition = 'unconditional' | 'data-to-text';

/** Figures of one setting at one batch size, from `rounds` runs of `batch` samples (one batch each). */
export interface MaskedBenchFigures {
  /** Denoising steps the run took (at least one per block) and the planned steps that commit nothing. */
  steps: number;
  emptySteps: number;
  /** Denoiser calls per run (the same every round). */
  calls: number;
  /** The whole run (generate, decode, score) / samples: what a user waits per output. Median and min over rounds. */
  msPerSample: number;
  msPerSampleMin: number;
  /** Sampling time / steps. */
  msPerStep: number;
  /** Time in the denoiser / calls. */
  msPerCall: number;
  /** Sampling time outside the denoiser / steps: proposals, commits, progress snapshots. */
  samplerMsPerStep: number;
  /** CPU time of the process (all threads) / samples, the least over the rounds. */
  cpuMsPerSample: number;
}

export interface MaskedBenchRow extends MaskedBenchSetting, MaskedBenchFigures {
  condition: MaskedCondition;
  batch: number;
  /** Generated (not pinned) positions. */
  positions: number;
}

export interface MaskedCacheRow {
  condition: MaskedCondition;
  batch: number;
  setting: MaskedBenchSetting;
  positions: number;
  on: MaskedBenchFigures;
  off: MaskedBenchFigures;
  /** off / on, on the medians of ms per sample (x) and on CPU time per sample (xCpu). */
  x: number;
  xCpu: number;
}

/** Guided vs unguided at the base setting: the same run with and without the soft constraints. */
export interface MaskedGuidanceRow {
  condition: MaskedCondition;
  batch: number;
  /** The soft constraints of the guided runs, as `kind:value`. */
  guided: string[];
  /** Guided with the first-order estimate (sampler.guidance.exactTopK false). */
  on: MaskedBenchFigures & { guideMsPerStep: number };
  off: MaskedBenchFigures;
  /** guided / unguided ms per step (medians). */
  ratio: number;
  /** Guided with exact top-k re-scoring (exactTopK true), where the bundle offers it; ratio: exact / unguided. */
  exact?: MaskedBenchFigures & { guideMsPerStep: number; ratio: number };
}

/** The int8 denoiser against the fp32 one at the base setting (bundles with both). */
export interface MaskedPrecisionRow {
  condition: MaskedCondition;
  batch: number;
  int8: MaskedBenchFigures;
  fp32: MaskedBenchFigures;
  /** fp32 / int8 on the medians of ms per sample (x), on CPU time per sample (xCpu) and on ms per denoiser call (xCall). */
  x: number;
  xCpu: number;
  xCall: number;
}

export interface MaskedBenchResult {
  kind: 'masked-diffusion';
  model: { id: string; version: string; path: string; hash: string };
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  threads: { DLM_ENGINE_THREADS: string | null; intraOpThreads: string; lanes: number; spinning: string };
  /** Steps asked for in the matrix and in the caching rows; batch sizes; rounds. */
  steps: number;
  cacheSteps: number;
  batches: number[];
  cacheBatches: number[];
  rounds: number;
  seed: number;
  /** The pinned record of the data-to-text runs, and where it comes from. */
  record: { value: Record<string, string> | null; source: string };
  /** Load average (1, 5, 15 min) before and after, and the 1-minute figure at the start of each round. */
  load: { before: number[]; after: number[]; rounds: number[] };
  started: string;
  seconds: number;
  /** Every setting with reuse on (the engine's default). */
  rows: MaskedBenchRow[];
  /** Settings where reuse can save calls (a block with more steps than positions), on vs off. */
  cache: MaskedCacheRow[];
  /** Guided vs unguided time per step (empty when the bundle has no classifiers). */
  guidance: MaskedGuidanceRow[];
  /** The denoiser precision of the other tables (the engine's auto on cpu: int8 where the bundle has it). */
  precision: 'int8' | 'fp32';
  /**
   * The precision of both sides of the guided vs unguided rows: the one a guided run takes (fp32 where the bundle
   * keeps guided runs off its int8 graph), so the ratio is what guidance costs, not what int8 saves.
   */
  guidancePrecision: 'int8' | 'fp32';
  /** int8 vs fp32 (empty when the bundle has no int8 denoiser). */
  precisions: MaskedPrecisionRow[];
  notes: string[];
}

/** An E2E dev record (shared/data/e2e/devset.csv line 740), pinned for the data-to-text runs. */
export const DEV_RECORD = { value: { name: 'Cocum', eatType: 'coffee shop', food: 'Chinese', priceRange: 'cheap', 'customer rating': '5 out of 5', familyFriendly: 'no' }, source: 'E2E devset.csv line 740' };

/** The settings a user can pick, one at a time around low_confidence, greedy, blocks of `block`. */
export function maskedBenchSettings(block: number): MaskedBenchSetting[] {
  const greedy = { temperature: 0, topP: 1 };
  const sampled = { temperature: 1, topP: 0.9 };
  return [
    { confidence: 'low_confidence', ...greedy, blockLength: block },
    { confidence: 'maskgit_plus', temperature: 1, topP: 1, blockLength: block },
    { confidence: 'topk_margin', ...greedy, blockLength: block },
    { confidence: 'entropy', ...greedy, blockLength: block },
    { confidence: 'origin', ...greedy, blockLength: block },
    { confidence: 'low_confidence', ...sampled, blockLength: block },
    { confidence: 'low_confidence', ...greedy, blockLength: 0 },
    { confidence: 'low_confidence', ...sampled, blockLength: 0 },
  ];
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

/** The generated positions of a condition: the whole canvas, or all but the pinned record and the <sep> after it. */
function positionsOf(m: ModelSummary, c: MaskedCondition): number {
  const N = m.canvas.length;
  if (c === 'unconditional') return N;
  const held = m.canvas.segments.filter((s) => s.name === 'record' || s.name === 'sep').reduce((a, s) => a + s.length, 0);
  return N - held;
}

function planOf(positions: number, steps: number, blockLength: number): { steps: number; empty: number } {
  const plan = stepPlan(positions, { steps, blockLength });
  return { steps: plan.reduce((a, p) => a + p.length, 0), empty: plan.reduce((a, p) => a + p.filter((k) => k === 0).length, 0) };
}

/** The dev record, kept to the fields and values the bundle's record schema knows (else the schema's first values). */
function recordFor(m: ModelSummary): { value: Record<string, string>; source: string } {
  const fields = m.recordFields;
  if (!Object.keys(fields).length) return DEV_RECORD;
  const kept = Object.fromEntries(Object.entries(DEV_RECORD.value).filter(([k, v]) => fields[k]?.includes(v)));
  if (Object.keys(kept).length) {
    const all = Object.keys(kept).length === Object.keys(DEV_RECORD.value).length;
    return { value: kept, source: all ? DEV_RECORD.source : `${DEV_RECORD.source}, the fields the bundle's record schema knows` };
  }
  return { value: Object.fromEntries(Object.entries(fields).filter(([, v]) => v.length).map(([k, v]) => [k, v[0]!])), source: "the bundle's record schema (first value of each field; the dev record's values are not in it)" };
}

interface RunFigures { wallMs: number; sampleMs: number; denoiserMs: number; guideMs: number; calls: number; steps: number; cpuMs: number; samples: number }

async function timedRun(engine: Engine, model: string, set: ConstraintSetInput): Promise<RunFigures> {
  let steps = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const s = await engine.generate({ model, device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onProgress: () => steps++ });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  if (s.status !== 'completed') throw new Error(`bench run ${s.status}: ${s.error ?? ''}`);
  return { wallMs, sampleMs: s.timings.sampleMs, denoiserMs: s.denoiserMs ?? NaN, guideMs: s.guideMs ?? 0, calls: s.denoiserCalls ?? NaN, steps, cpuMs: (cpu.user + cpu.system) / 1000, samples: set.sampler?.samples ?? 1 };
}

function figures(runs: RunFigures[], empty: number): MaskedBenchFigures {
  const per = (f: (r: RunFigures) => number) => runs.map(f);
  const msPerSample = per((r) => r.wallMs / r.samples);
  return {
    steps: runs[0]!.steps,
    emptySteps: empty,
    calls: median(per((r) => r.calls)),
    msPerSample: median(msPerSample),
    msPerSampleMin: Math.min(...msPerSample),
    msPerStep: median(per((r) => r.sampleMs / r.steps)),
    msPerCall: median(per((r) => r.denoiserMs / r.calls)),
    samplerMsPerStep: median(per((r) => (r.sampleMs - r.denoiserMs) / r.steps)),
    cpuMsPerSample: Math.min(...per((r) => r.cpuMs / r.samples)),
  };
}

export interface MaskedBenchOptions {
  modelDirs: string[];
  model: ModelSummary;
  steps: number;
  /** Steps of the caching rows; undefined: the bundle's default steps when a data-to-text block then gets more steps than positions, else twice the data-to-text positions. */
  cacheSteps?: number;
  blockLength: number;
  batches: number[];
  /** Batch sizes of the reuse rows (default: batches). */
  cacheBatches?: number[];
  /** Block lengths of the reuse rows, 0 for one block (default: blockLength and 0). */
  cacheBlocks?: number[];
  rounds: number;
  log: (s: string) => void;
}

export async function runMaskedBench(o: MaskedBenchOptions): Promise<MaskedBenchResult> {
  const m = o.model;
  const started = new Date();
  const t0 = performance.now();
  const load0 = loadavg();
  const seed = 1;
  const notes: string[] = [];
  const hasRecord = m.canvas.segments.some((s) => s.name === 'record');
  const conditions: MaskedCondition[] = hasRecord ? ['unconditional', 'data-to-text'] : ['unconditional'];
  if (!hasRecord) notes.push('the bundle has no record segment: no data-to-text runs');
  let record = hasRecord ? recordFor(m) : null;
  const d2tPositions = positionsOf(m, hasRecord ? 'data-to-text' : 'unconditional');
  const defaults = m.samplerDefaults?.steps ?? o.steps;
  const cacheBatches = o.cacheBatches ?? o.batches;
  const cacheSteps = o.cacheSteps ?? (planOf(d2tPositions, defaults, o.blockLength).empty > 0 ? defaults : 2 * d2tPositions);

  const engines = new Map<string, Engine>();
  const engineFor = (batch: number, cache: boolean) => {
    const k = `${batch}/${cache}`;
    let e = engines.get(k);
    if (!e) engines.set(k, (e = createEngine({ modelDirs: o.modelDirs, batchSize: batch, logitsCache: cache })));
    return e;
  };
  const setFor = (c: MaskedCondition, s: MaskedBenchSetting, steps: number, samples: number, soft: ConstraintSetInput['constraints'] = [], precision?: 'int8' | 'fp32', exactTopK?: boolean): ConstraintSetInput => ({
    version: 1,
    constraints: [...(c === 'data-to-text' ? [{ kind: 'record' as const, value: record!.value }] : []), ...soft],
    sampler: { steps, samples, seed, confidence: s.confidence, temperature: s.temperature, top_p: s.topP, block_length: s.blockLength, ...(precision ? { precision } : {}), ...(exactTopK !== undefined ? { guidance: { exactTopK } } : {}) },
  });
  // exact top-k re-scoring timed beside the first-order guided runs where the bundle offers it
  const exactToo = m.exactTopK !== undefined;
  const hasInt8 = !!m.precisions?.includes('int8');
  const guidancePrecision: 'int8' | 'fp32' = hasInt8 && m.int8GuidedRuns !== 'fp32' ? 'int8' : 'fp32';
  if (!hasInt8) notes.push('the bundle has no int8 denoiser: every run in fp32, no int8 vs fp32 rows');
  // guided runs: the soft kinds served by classifier guidance alone, one constraint each (not length or a POS
  // template: those also pin the text's end, which changes how many positions are generated)
  const foodValues = m.recordFields.food ?? [];
  const softAll: ConstraintSetInput['constraints'] = [
    { kind: 'sentiment', label: 'positive' },
    ...(foodValues.length ? [{ kind: 'attribute' as const, field: 'food', value: foodValues[0]! }] : []),
    { kind: 'spans', spans: [[3, 4, 'PP']] },
  ];
  const soft = softAll.filter((c) => m.controls.includes(c.kind));
  if (!soft.length) notes.push('the bundle has no classifiers on masked canvases: no guided runs');

  try {
    // warm-up (sessions, the record's fit), every engine, both conditions
    o.log(`warming up (${m.id})...`);
    const base = maskedBenchSettings(o.blockLength)[0]!;
    for (const batch of [...new Set([...o.batches, ...cacheBatches])]) {
      // the reuse-off engine only where a reuse row runs
      for (const cache of cacheBatches.includes(batch) ? [true, false] : [true]) {
        for (const c of conditions) {
          for (;;) {
            try {
              await timedRun(engineFor(batch, cache), m.id, setFor(c, base, 3, batch));
              break;
            } catch (e) {
              // a record longer than the record segment: drop its last field
              const keys = record ? Object.keys(record.value) : [];
              if (c !== 'data-to-text' || !/record needs \d+ tokens/.test((e as Error).message) || keys.length < 2) throw e;
              record = { value: Object.fromEntries(keys.slice(0, -1).map((k) => [k, record!.value[k]!])), source: `${record!.source}, without the fields the record segment has no room for` };
            }
          }
        }
      }
    }

    const settings = maskedBenchSettings(o.blockLength);
    const matrix = conditions.flatMap((condition) => o.batches.flatMap((batch) => settings.map((s) => ({ condition, batch, s }))));
    const cacheRows = conditions.flatMap((condition) => (o.cacheBlocks ?? [o.blockLength, 0]).flatMap((blockLength) => {
      const positions = positionsOf(m, condition);
      const p = planOf(positions, cacheSteps, blockLength);
      if (p.empty === 0) {
        notes.push(`caching: ${condition}, ${blockLength > 0 ? `blocks of ${blockLength}` : 'one block'}, ${cacheSteps} steps for ${positions} positions: every step commits, so reuse cannot save a call (not timed)`);
        return [];
      }
      return cacheBatches.map((batch) => ({ condition, batch, s: { ...base, blockLength }, positions }));
    }));
    // guided vs unguided, and int8 vs fp32: each condition and batch at the base setting
    const baseRows = conditions.flatMap((condition) => o.batches.map((batch) => ({ condition, batch, s: base })));
    const guideRows = soft.length ? baseRows : [];
    const precisionRows = hasInt8 ? baseRows : [];
    const runs = new Map<string, RunFigures[]>();
    const push = (k: string, r: RunFigures) => (runs.get(k) ?? runs.set(k, []).get(k)!).push(r);
    const key = (part: string, x: { condition: string; batch: number; s: MaskedBenchSetting }, cache: boolean) => `${part}|${x.condition}|${x.batch}|${JSON.stringify(x.s)}|${cache}`;
    const rounds: number[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      rounds.push(loadavg()[0]!);
      o.log(`round ${round}/${o.rounds}: ${matrix.length} settings (${o.steps} steps, batch ${o.batches.join(' and ')})...`);
      for (const x of matrix) push(key('matrix', x, true), await timedRun(engineFor(x.batch, true), m.id, setFor(x.condition, x.s, o.steps, x.batch)));
      if (cacheRows.length) o.log(`round ${round}/${o.rounds}: caching on vs off, ${cacheRows.length} settings (${cacheSteps} steps)...`);
      for (const x of cacheRows) {
        // on and off take turns going first
        for (const cache of round % 2 ? [true, false] : [false, true]) {
          push(key('cache', x, cache), await timedRun(engineFor(x.batch, cache), m.id, setFor(x.condition, x.s, cacheSteps, x.batch)));
        }
      }
      if (guideRows.length) o.log(`round ${round}/${o.rounds}: guided vs unguided, ${guideRows.length} settings (${cacheSteps} steps)...`);
      for (const x of guideRows) {
        const sides = ['guided', 'unguided', ...(exactToo ? ['exact'] : [])];
        for (const side of round % 2 ? sides : [...sides].reverse()) {
          push(key(`guide-${side}`, x, true), await timedRun(engineFor(x.batch, true), m.id, setFor(x.condition, x.s, cacheSteps, x.batch, side === 'unguided' ? [] : soft, guidancePrecision, side === 'unguided' ? undefined : side === 'exact')));
        }
      }
      if (precisionRows.length) o.log(`round ${round}/${o.rounds}: int8 vs fp32, ${precisionRows.length} settings (${o.steps} steps)...`);
      for (const x of precisionRows) {
        for (const p of round % 2 ? (['int8', 'fp32'] as const) : (['fp32', 'int8'] as const)) {
          push(key(`precision-${p}`, x, true), await timedRun(engineFor(x.batch, true), m.id, setFor(x.condition, x.s, o.steps, x.batch, [], p)));
        }
      }
    }

    const rows: MaskedBenchRow[] = matrix.map((x) => {
      const positions = positionsOf(m, x.condition);
      return { condition: x.condition, batch: x.batch, ...x.s, positions, ...figures(runs.get(key('matrix', x, true))!, planOf(positions, o.steps, x.s.blockLength).empty) };
    });
    const cache: MaskedCacheRow[] = cacheRows.map((x) => {
      const empty = planOf(x.positions, cacheSteps, x.s.blockLength).empty;
      const on = figures(runs.get(key('cache', x, true))!, empty);
      const off = figures(runs.get(key('cache', x, false))!, empty);
      return { condition: x.condition, batch: x.batch, setting: x.s, positions: x.positions, on, off, x: off.msPerSample / on.msPerSample, xCpu: off.cpuMsPerSample / on.cpuMsPerSample };
    });
    const guidance: MaskedGuidanceRow[] = guideRows.map((x) => {
      const empty = planOf(positionsOf(m, x.condition), cacheSteps, x.s.blockLength).empty;
      const guidedFigures = (side: string) => {
        const r = runs.get(key(`guide-${side}`, x, true))!;
        return { ...figures(r, empty), guideMsPerStep: median(r.map((f) => f.guideMs / f.steps)) };
      };
      const on = guidedFigures('guided');
      const off = figures(runs.get(key('guide-unguided', x, true))!, empty);
      const exact = exactToo ? guidedFigures('exact') : null;
      return {
        condition: x.condition, batch: x.batch, guided: soft.map((c) => `${c.kind}:${'label' in c ? c.label : 'value' in c ? `${(c as { field: string }).field}=${c.value}` : JSON.stringify((c as { spans: unknown }).spans)}`), on, off, ratio: on.msPerStep / off.msPerStep,
        ...(exact ? { exact: { ...exact, ratio: exact.msPerStep / off.msPerStep } } : {}),
      };
    });
    const precisions: MaskedPrecisionRow[] = precisionRows.map((x) => {
      const empty = planOf(positionsOf(m, x.condition), o.steps, x.s.blockLength).empty;
      const int8 = figures(runs.get(key('precision-int8', x, true))!, empty);
      const fp32 = figures(runs.get(key('precision-fp32', x, true))!, empty);
      return { condition: x.condition, batch: x.batch, int8, fp32, x: fp32.msPerSample / int8.msPerSample, xCpu: fp32.cpuMsPerSample / int8.cpuMsPerSample, xCall: fp32.msPerCall / int8.msPerCall };
    });
    if (rows.every((r) => r.emptySteps === 0)) notes.push(`settings table: at ${o.steps} steps every step commits a position, so the calls equal the steps and reuse saves nothing there`);
    const env = process.env.DLM_ENGINE_THREADS ?? null;
    return {
      kind: 'masked-diffusion',
      model: { id: m.id, version: m.version, path: m.path, hash: m.hash },
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memoryGiB: totalmem() / 2 ** 30, node: process.versions.node, platform: `${process.platform}/${process.arch}` },
      threads: {
        DLM_ENGINE_THREADS: env,
        intraOpThreads: Number(env) ? String(Number(env)) : `onnxruntime default (one per physical core; ${cpus().length} logical cpus)`,
        lanes: 1,
        spinning: process.env.DLM_ENGINE_SPIN ?? '0',
      },
      steps: o.steps, cacheSteps, batches: o.batches, cacheBatches, rounds: o.rounds, seed,
      record: record ?? { value: null, source: 'none' },
      load: { before: load0, after: loadavg(), rounds },
      started: started.toISOString(),
      seconds: (performance.now() - t0) / 1000,
      rows, cache, guidance, precision: hasInt8 ? 'int8' : 'fp32', guidancePrecision, precisions, notes,
    };
  } finally {
    for (const e of engines.values()) await e.dispose();
  }
}

const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);
const blocksOf = (b: number) => (b > 0 ? `${b}` : 'one');
const tempOf = (s: MaskedBenchSetting) => (s.temperature === 0 ? 'greedy' : `T ${s.temperature}${s.topP < 1 ? `, top-p ${s.topP}` : ''}`);

export function formatMaskedBench(r: MaskedBenchResult): string {
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const lines = [
    `model ${r.model.id} ${r.model.version} (${r.model.path}), masked-diffusion`,
    `machine: ${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.memoryGiB.toFixed(0)} GiB, node ${r.machine.node}, ${r.machine.platform}`,
    `threads: DLM_ENGINE_THREADS ${r.threads.DLM_ENGINE_THREADS ?? 'unset'}; denoiser session intra-op threads: ${r.threads.intraOpThreads}; ${r.threads.lanes} lane (the masked family runs one session); spinning ${r.threads.spinning}`,
    `load average (1 / 5 / 15 min): ${la(r.load.before)} before, ${la(r.load.after)} after; 1-min at each round's start: ${r.load.rounds.map(f2).join(', ')} (other processes skew every figure)`,
    `started ${r.started}, ${(r.seconds / 60).toFixed(1)} min; seed ${r.seed}; data-to-text record (pinned): ${r.record.value ? JSON.stringify(r.record.value) : 'none'} (${r.record.source})`,
    '',
    `time per output, logits reuse on (the default), ${r.precision} denoiser (the engine's default on cpu): ${r.steps} steps asked (at least one per block), ${r.rounds} alternating rounds, medians;`,
    'ms/sample = the whole run (sampling, decoding, scoring) / batch; ms/step = sampling / steps; ms/call = time in the denoiser / calls;',
    'sampler ms/step = sampling outside the denoiser (proposals, commits, progress) / steps; cpu = process CPU time (all threads) / batch, least over rounds',
    table(['condition', 'batch', 'confidence', 'tokens', 'blocks', 'positions', 'steps', 'calls', 'ms/sample (median / min)', 'ms/step', 'ms/call', 'sampler ms/step', 'cpu ms/sample'], r.rows.map((x) => [
      x.condition, x.batch, x.confidence, tempOf(x), blocksOf(x.blockLength), x.positions, x.steps, x.calls, `${f2(x.msPerSample)} / ${f2(x.msPerSampleMin)}`, f1(x.msPerStep), f1(x.msPerCall), f1(x.samplerMsPerStep), f2(x.cpuMsPerSample),
    ])),
    '',
    `logits reuse on vs off (same settings, ${r.cacheSteps} steps; a step commits nothing when its block has more steps than positions, and only then can reuse skip a call):`,
    r.cache.length
      ? table(['condition', 'batch', 'confidence', 'tokens', 'blocks', 'positions', 'steps', 'steps committing nothing', 'calls on / off', 'ms/sample on / off', 'speedup', 'speedup (cpu)', 'ms/step on / off', 'ms/call on / off'], r.cache.map((x) => [
        x.condition, x.batch, x.setting.confidence, tempOf(x.setting), blocksOf(x.setting.blockLength), x.positions, x.on.steps, x.on.emptySteps, `${x.on.calls} / ${x.off.calls}`,
        `${f2(x.on.msPerSample)} / ${f2(x.off.msPerSample)}`, `${f2(x.x)}x`, `${f2(x.xCpu)}x`, `${f1(x.on.msPerStep)} / ${f1(x.off.msPerStep)}`, `${f1(x.on.msPerCall)} / ${f1(x.off.msPerCall)}`,
      ]))
      : '(no setting where reuse can save a call)',
    '',
    `classifier guidance: guided vs unguided (${r.cacheSteps} steps, low_confidence, greedy, blocks of the table, both sides on the ${r.guidancePrecision} denoiser, the one guided runs take; the guided runs add the soft constraints listed, one joint gradient-graph call per denoiser call, and write the text before an unpinned record as the bundle's guidance_defaults say; exact: with exact top-k re-scoring, one more batch of the top-k canvases per step that commits a guided position):`,
    r.guidance.length
      ? table(['condition', 'batch', 'guided constraints', 'ms/step guided / unguided', 'guided / unguided', 'guidance ms/step', 'ms/sample guided / unguided', ...(r.guidance.some((x) => x.exact) ? ['exact ms/step', 'exact / unguided', 'exact guidance ms/step'] : [])], r.guidance.map((x) => [
        x.condition, x.batch, x.guided.join(', '), `${f1(x.on.msPerStep)} / ${f1(x.off.msPerStep)}`, `${f2(x.ratio)}x`, f1(x.on.guideMsPerStep), `${f2(x.on.msPerSample)} / ${f2(x.off.msPerSample)}`,
        ...(x.exact ? [f1(x.exact.msPerStep), `${f2(x.exact.ratio)}x`, f1(x.exact.guideMsPerStep)] : []),
      ]))
      : '(the bundle has no classifiers on masked canvases)',
    '',
    `int8 vs fp32 denoiser (${r.steps} steps, low_confidence, greedy, blocks of the table; int8 on cpu is the engine's default where the bundle has it):`,
    r.precisions.length
      ? table(['condition', 'batch', 'ms/sample int8 / fp32', 'speedup', 'speedup (cpu)', 'ms/call int8 / fp32', 'speedup per call'], r.precisions.map((x) => [
        x.condition, x.batch, `${f2(x.int8.msPerSample)} / ${f2(x.fp32.msPerSample)}`, `${f2(x.x)}x`, `${f2(x.xCpu)}x`, `${f1(x.int8.msPerCall)} / ${f1(x.fp32.msPerCall)}`, `${f2(x.xCall)}x`,
      ]))
      : '(the bundle has no int8 denoiser)',
    ...(r.notes.length ? ['', ...r.notes.map((n) => `note: ${n}`)] : []),
  ];
  return lines.join('\n');
}
