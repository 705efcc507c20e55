/**
 * The evaluation harness: generates guided and unguided samples for every control target through the engine (the
 * same Engine the services wrap for the UI and CLI), scores them with the model-independent evaluators and the
 * bundle's fluency scorer, and runs data-to-text / text-to-record on the E2E test set (or the dev set: settings.split).
 */
import { cpus, totalmem, platform, arch, release } from 'node:os';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { z } from 'zod';
import { type CONTINUOUS_SAMPLERS, continuousSpacing, continuousSteps, defaultAcceptAt, defaultCandidates, GUIDANCE_DEFAULT_ITERATIONS, GUIDANCE_DEFAULT_STEP_SIZE, guidanceSettings, isGuidedRun, type MASKED_CONFIDENCES, maskedRecordTemperature, maskedTemperature, parseConstraintSet, type Constraint, type ConstraintSet, type ConstraintSetInput } from '../constraints/set';
import { type ConstraintScore, type DevicePreference, type DenoiserPrecision, type DeviceReport, type Engine, type GeneratedOutput, isMaskedModel, type ModelSummary, modelDefaultSteps, type PrecisionPreference, type RunSummary } from '../engine/types';
import { RECORD_LENGTH_NOTE } from '../engine/extent';
import { corpusBleu } from './bleu';
import { errorCount, slotErrorRate, slotErrors, type SlotCounts, type SlotErrors, sumSlotErrors } from './slots';
import { E2E_FIELDS, groupByMr, readE2ECsv, type MrGroup } from './e2e';
import { DIFFUSION_LM_E2E, TGEN_E2E_TEST } from './published';
import { COMPOSITIONS, CONTROLS, loadTargets, type EvalTarget } from './targets';

/** Scores each output against each constraint of the set (evaluateOutputs from src-main/constraints). */
export type EvaluateFn = (set: ConstraintSet, outputs: { text: string; record: Record<string, unknown> | null }[]) =>
  ConstraintScore[][] | Promise<ConstraintScore[][]>;

export interface EvalSettings {
  mode: 'quick' | 'full';
  model: string;
  device: DevicePreference;
  /** Denoiser weights (sampler.precision); absent = auto. */
  precision?: PrecisionPreference;
  steps: number;
  samplesPerTarget: number;
  /** Targets used per control (the first N of the targets file for that control). */
  targetsPerControl: number;
  /** Unguided samples are drawn once (they do not depend on the target) and shared across targets. */
  unguidedPool: number;
  seed: number;
  /** Test-set MRs for data-to-text (0 skips it; more than 630 means all). */
  dataToTextItems: number;
  /** Test-set texts for text-to-record (0 skips it). */
  textToRecordItems: number;
  /** Wall-clock budget in minutes: data-to-text and text-to-record stop early (and say so) when it runs out. */
  maxMinutes?: number;
  /** Per-control targets / samples (e.g. fewer for the slow JSON projection). */
  overrides?: Record<string, { targets?: number; samples?: number }>;
  /** Controls to run (default: all controls and compositions). */
  controls?: string[];
  /** Overrides of the sampler's guidance settings for guided runs (K, step size, strength, ...). */
  guidance?: Partial<z.input<typeof guidanceSettings>>;
  /** Continuous-family sampler of every run (sampler.method, eta for ddim, spacing); each absent: the bundle's
   * sampler_defaults when it has them, else ancestral, evenly spaced. */
  sampler?: { method?: (typeof CONTINUOUS_SAMPLERS)[number]; eta?: number; spacing?: number; accept_at?: number };
  /** Candidates each output is chosen among (sampler.candidates), for every run; absent: the bundle's rule
   * (defaultCandidates: its pinned_candidates for data-to-text and text-to-record, its guided_candidates for guided
   * runs, its free_candidates for the unguided pool and json-schema, else 1). */
  candidates?: number;
  /** The bundle's sampler_defaults.pinned_candidates, when --candidates is not given (samplerFor picks per run). */
  pinnedCandidates?: number;
  /** The bundle's sampler_defaults.guided_candidates, when --candidates is not given (samplerFor picks per run). */
  guidedCandidates?: number;
  /** The bundle's sampler_defaults.free_candidates, when --candidates is not given (samplerFor picks per run). */
  freeCandidates?: number;
  /** A continuous bundle's sampler_defaults.accept_at, when --accept-at is not given (samplerFor: defaultAcceptAt per run). */
  acceptAt?: number;
  /** A continuous bundle's sampler_defaults.accept_at_by_kind, with acceptAt (samplerFor: defaultAcceptAt per run). */
  acceptAtByKind?: Partial<Record<string, number>>;
  /** A continuous bundle's sampler_defaults.guided_steps, when --steps is not given (samplerFor: its guided runs). */
  guidedSteps?: number;
  /** A continuous bundle's default spacings, when the run gives none (samplerFor picks per run). */
  defaultSpacing?: { spacing: number; guidedSpacing?: number };
  /** Masked-family sampler settings for every run (absent ones: the bundle's sampler_defaults). */
  masked?: { block_length?: number; confidence?: (typeof MASKED_CONFIDENCES)[number]; temperature?: number; top_p?: number; record_temperature?: number };
  /** --steps was not given: a model with sampler_defaults (every masked-diffusion model, continuous ones that have
   * them) runs its own sampler_defaults.steps instead of `steps`. */
  stepsFromModel?: boolean;
  targetsPath: string;
  testPath: string;
  /** Which E2E split data-to-text and text-to-record read: the test set (default) or the dev set. */
  split?: 'test' | 'dev';
}

/** The unguided pool as unconditional samples: do they spell a valid record, and how many differ. */
export interface UnconditionalStats {
  samples: number;
  /** Record segments that parse as a JSON object. */
  parsedRecords: number;
  /** Parsed records whose every field and value the bundle's record schema knows (any field at all, without one). */
  validRecords: number;
  validShare: number;
  /** Distinct (record text, text) pairs. */
  distinct: number;
  distinctShare: number;
  examples: { record: string; text: string }[];
}

/**
 * The controls a masked model runs by default: the hard json-schema control, and every soft control (or composition)
 * whose kinds all have a classifier on masked canvases in the bundle (model.controls).
 */
export function maskedControls(guided: readonly string[]): string[] {
  const have = new Set(guided);
  return [...CONTROLS, ...COMPOSITIONS].filter((c) => c === 'json-schema' || c.split('+').every((k) => have.has(k)));
}

export function unconditionalStats(outputs: GeneratedOutput[], recordFields: Record<string, string[]>): UnconditionalStats {
  const known = Object.keys(recordFields).length > 0;
  let parsedRecords = 0;
  let validRecords = 0;
  for (const o of outputs) {
    if (!o.record) continue;
    parsedRecords++;
    const ok = Object.entries(o.record).every(([k, v]) => (known ? typeof v === 'string' && (recordFields[k] ?? []).includes(v) : true));
    if (ok && Object.keys(o.record).length > 0) validRecords++;
  }
  const distinct = new Set(outputs.map((o) => `${o.recordText}\u0000${o.text}`)).size;
  const n = outputs.length;
  return {
    samples: n, parsedRecords, validRecords, validShare: n ? validRecords / n : 0, distinct, distinctShare: n ? distinct / n : 0,
    examples: outputs.slice(0, 3).map((o) => ({ record: o.recordText, text: o.text })),
  };
}

export interface SideStats {
  samples: number;
  /** Fraction of samples that satisfy every constraint of the target. */
  success: number;
  /** Mean kind-specific score in [0, 1] (e.g. the fraction of POS positions matched), averaged over constraints. */
  meanScore: number;
  /** Mean and median perplexity under the bundle's scorer over outputs that have one (null without a scorer). */
  fluencyMean: number | null;
  fluencyMedian: number | null;
  /** Wall-clock seconds per sample (generation only). */
  secondsPerSample: number;
  /** Guided side: candidates drawn per output, the mean (1 without candidates; fewer than sampler.candidates where
   * accept_at stopped an output early). What a guided output's time goes to besides the steps. */
  candidatesDrawn?: number;
}

export interface ControlResult {
  control: string;
  targets: number;
  guided: SideStats | null;
  unguided: SideStats | null;
  /** The first guided output of the first target, and an unguided one scored against the same target. */
  examples?: { target: string; guided: string; unguided: string | null };
  /** Per-constraint-kind success inside a composition (guided). */
  perKind?: Record<string, number>;
  published: { success: number; lmScore: number; metric: string; compare: 'success' | 'score' } | null;
  warnings: string[];
  error?: string;
}

export interface EvalResults {
  format: 'dlm-eval-results/1';
  date: string;
  mode: 'quick' | 'full';
  hardware: { cpu: string; cores: number; memoryGiB: number; platform: string; node: string };
  model: { id: string; version: string; hash: string; path: string; controls: string[]; hasScorer: boolean; kind?: string };
  device: DeviceReport | null;
  /**
   * The denoiser weights each part of the evaluation ran on ('unguided pool', a control's name, 'data-to-text',
   * 'text-to-record'): precision auto can take int8 for some runs and fp32 for others (a masked bundle's guided runs),
   * so `device.precision` is set only when every part ran on the same one.
   */
  precisions?: Record<string, DenoiserPrecision[]>;
  settings: Omit<EvalSettings, 'targetsPath' | 'testPath'> & { targets: { file: string; sha256: string; seed: number }; testFile: string };
  controls: ControlResult[];
  /** The unguided pool scored as unconditional samples (null when it failed or was empty). */
  unconditional?: UnconditionalStats | null;
  /** What the run chose for the model (e.g. a masked model's controls and steps). */
  notes?: string[];
  dataToText: null | {
    items: number;
    totalMrs: number;
    references: number;
    bleu: number;
    precisions: number[];
    brevityPenalty: number;
    tgenBleu: number;
    secondsPerItem: number;
    /** Set when the time budget cut the item list short. */
    stoppedEarly?: string;
    /** Items whose text length the bundle's text_length rule held (absent for bundles without one). */
    lengthHeld?: number;
    /** Slot errors of the texts against their records (slots.ts) and their rate, (missing + wrong + added) / fields. */
    slots?: SlotCounts & { errorRate: number };
    examples: { record: Record<string, string>; text: string }[];
    error?: string;
  };
  textToRecord: null | {
    items: number;
    parsed: number;
    exact: number;
    perField: Record<string, { gold: number; correct: number; accuracy: number; spurious: number }>;
    /** Mean over the fields with gold mentions of their accuracy. */
    meanFieldAccuracy?: number;
    /** Reference texts too long for the bundle's text segment (not generated, not counted in items). */
    skipped?: number;
    secondsPerItem: number;
    stoppedEarly?: string;
    error?: string;
  };
  seconds: number;
}

export interface EvalDeps {
  engine: Engine;
  evaluate: EvaluateFn;
  log?: (line: string) => void;
  /** Every scored control sample, guided and unguided, as it is scored (the CLI's --samples-out). */
  onSample?: (s: ScoredSample) => void;
}

/** One scored sample of a control run: what the target asked, what came out, what the evaluators said. */
export interface ScoredSample {
  control: string;
  target: Constraint[];
  guided: boolean;
  text: string;
  record: Record<string, unknown> | null;
  success: boolean;
  score: number;
  perKind: Record<string, boolean>;
  fluency: number | null;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function hardwareInfo(): EvalResults['hardware'] {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${platform()} ${release()} ${arch()}`,
    node: process.version,
  };
}

interface Generated {
  outputs: GeneratedOutput[];
  summary: RunSummary;
  seconds: number;
}

async function generate(deps: EvalDeps, s: EvalSettings, set: ConstraintSetInput): Promise<Generated> {
  const constraints = parseConstraintSet(set);
  const outputs: GeneratedOutput[] = [];
  const t0 = performance.now();
  const summary = await deps.engine.generate(
    { model: s.model, device: s.device, constraints },
    { onOutput: (o) => outputs.push(o) },
  );
  const seconds = (performance.now() - t0) / 1000;
  if (summary.status !== 'completed') throw new Error(`generation ${summary.status}: ${summary.error ?? 'no reason given'}`);
  outputs.sort((a, b) => a.index - b.index);
  return { outputs, summary, seconds };
}

/**
 * A bundle's accept_at levels in words: "0.9", "0.9 (spans 0.5, attribute 0.5; a run takes its kinds' largest)", or
 * without accept_at "spans 0.5 (other kinds: all drawn; ...)".
 */
export function acceptWords(level: number | undefined, byKind?: Partial<Record<string, number>>): string {
  const kinds = Object.entries(byKind ?? {}).filter(([, l]) => l !== undefined).map(([k, l]) => `${k} ${l}`).join(', ');
  if (!kinds) return String(level);
  return level === undefined ? `${kinds} (other kinds: all drawn; a run takes its kinds' largest)` : `${level} (${kinds}; a run takes its kinds' largest)`;
}

/** A run's sampler; `constraints` (parsed) decide a continuous bundle's default spacing (guided or not). */
function samplerFor(s: EvalSettings, samples: number, seed: number, guided: boolean, constraints: readonly { kind: string; enabled?: boolean; weight?: number }[] = []): NonNullable<ConstraintSetInput['sampler']> {
  const guidance = { ...(s.guidance ?? {}), enabled: guided };
  const guidedRun = isGuidedRun(constraints, guidance);
  const steps = continuousSteps({ steps: s.steps, guidedSteps: s.guidedSteps }, guidedRun);
  const spacing = s.sampler?.spacing === undefined && s.defaultSpacing ? { spacing: continuousSpacing(s.defaultSpacing, guidedRun) } : {};
  const candidates = { candidates: s.candidates ?? defaultCandidates(s, constraints, guidance) };
  const bundleAccept = s.sampler?.accept_at === undefined ? defaultAcceptAt(s, constraints, guidance) : undefined;
  const accept = bundleAccept !== undefined ? { accept_at: bundleAccept } : {};
  return { steps, samples, seed, ...candidates, ...(s.precision ? { precision: s.precision } : {}), ...(s.sampler ?? {}), ...accept, ...spacing, ...(s.masked ?? {}), guidance };
}

interface Scored {
  satisfiedAll: boolean;
  score: number;
  perKind: Record<string, boolean>;
  fluency: number | null;
}

async function score(deps: EvalDeps, constraints: Constraint[], outputs: GeneratedOutput[]): Promise<Scored[]> {
  const set = parseConstraintSet({ version: 1, constraints });
  const scores = await deps.evaluate(set, outputs.map((o) => ({ text: o.text, record: o.record })));
  if (scores.length !== outputs.length) throw new Error(`evaluator returned ${scores.length} results for ${outputs.length} outputs`);
  return outputs.map((o, i) => {
    const per = scores[i]!;
    if (per.length !== constraints.length) throw new Error(`evaluator returned ${per.length} scores for ${constraints.length} constraints`);
    const perKind: Record<string, boolean> = {};
    for (const p of per) perKind[p.kind] = (perKind[p.kind] ?? true) && p.satisfied;
    // evaluator scores are fractions for these kinds; others (e.g. sentiment's VADER compound) count as met / not met
    const sc = per.map((p) => (FRACTION_SCORES.has(p.kind) && Number.isFinite(p.score) ? Math.min(1, Math.max(0, p.score)) : p.satisfied ? 1 : 0));
    return { satisfiedAll: per.every((p) => p.satisfied), score: mean(sc), perKind, fluency: o.fluency };
  });
}

const FRACTION_SCORES = new Set(['pos', 'spans', 'length', 'record', 'text', 'words']);

/** Candidates one output drew (GeneratedOutput.consensus: `drawn` where accept_at stopped it early). */
export function candidatesDrawnOf(o: Pick<GeneratedOutput, 'consensus'>): number {
  return o.consensus ? (o.consensus.drawn ?? o.consensus.candidates) : 1;
}

function stats(scored: Scored[], seconds: number, drawn?: number[]): SideStats {
  const fl = scored.map((x) => x.fluency).filter((f): f is number => f !== null && Number.isFinite(f));
  return {
    ...(drawn?.length ? { candidatesDrawn: mean(drawn) } : {}),
    samples: scored.length,
    success: scored.length ? scored.filter((x) => x.satisfiedAll).length / scored.length : 0,
    meanScore: scored.length ? mean(scored.map((x) => x.score)) : 0,
    fluencyMean: fl.length ? mean(fl) : null,
    fluencyMedian: fl.length ? median(fl) : null,
    secondsPerSample: scored.length ? seconds / scored.length : 0,
  };
}

function targetsFor(all: EvalTarget[], control: string, n: number): EvalTarget[] {
  return all.filter((t) => t.control === control).slice(0, n);
}

export async function runEvaluation(given: EvalSettings, deps: EvalDeps): Promise<EvalResults> {
  const log = deps.log ?? (() => {});
  const t0 = performance.now();
  const targetsFile = loadTargets(given.targetsPath);
  const models = await deps.engine.listModels();
  const model: ModelSummary | undefined = models.find((m) => m.id === given.model);
  if (!model) throw new Error(`--model ${given.model}: no such bundle (found: ${models.map((m) => m.id).join(', ') || 'none'})`);
  if (model.error) throw new Error(`--model ${given.model}: ${model.error}`);
  const notes: string[] = [];
  const settings: EvalSettings = { ...given };
  const ownSteps = modelDefaultSteps(model);
  // --quick keeps its few steps on a continuous model (any count runs there); a masked model's steps fit its blocks
  const quickFewer = given.mode === 'quick' && !isMaskedModel(model) && ownSteps !== undefined && given.steps < ownSteps;
  if (given.stepsFromModel && ownSteps !== undefined && !quickFewer) {
    settings.steps = ownSteps;
    notes.push(`${model.id} is a ${model.kind} model: ${settings.steps} steps (its sampler_defaults)`);
  }
  const masked = isMaskedModel(model);
  const cd = masked ? undefined : model.continuousDefaults;
  if (given.stepsFromModel && !quickFewer && cd?.guidedSteps !== undefined && cd.guidedSteps !== settings.steps) {
    // the guided runs of the controls take it (samplerFor)
    settings.guidedSteps = cd.guidedSteps;
    notes.push(`${model.id}: ${cd.guidedSteps} steps for guided runs (its sampler_defaults.guided_steps)`);
  }
  if (cd && !given.sampler?.method) {
    settings.sampler = { ...(cd.method === 'ddim' ? { method: 'ddim', eta: cd.eta } : { method: cd.method }), ...given.sampler };
    notes.push(`${model.id}: sampler ${cd.method}${cd.method === 'ddim' ? ` (eta ${cd.eta})` : ''} (its sampler_defaults)`);
  }
  if (cd && given.sampler?.spacing === undefined && (cd.spacing !== 1 || cd.guidedSpacing !== undefined)) {
    // each run takes the bundle's spacing for its kind (samplerFor)
    settings.defaultSpacing = cd;
    notes.push(`${model.id}: step spacing ${cd.spacing}${cd.guidedSpacing !== undefined && cd.guidedSpacing !== cd.spacing ? `, ${cd.guidedSpacing} for guided runs` : ''} (its sampler_defaults)`);
  }
  if (!masked) {
    // the Adagrad steps the guided runs take, in the results file (what ran, whatever the defaults become)
    settings.guidance = { iterations: GUIDANCE_DEFAULT_ITERATIONS, stepSize: GUIDANCE_DEFAULT_STEP_SIZE, ...given.guidance };
  }
  if ((cd?.acceptAt !== undefined || cd?.acceptAtByKind) && given.sampler?.accept_at === undefined) {
    // the guided runs of the controls take it (samplerFor)
    if (cd.acceptAt !== undefined) settings.acceptAt = cd.acceptAt;
    if (cd.acceptAtByKind) settings.acceptAtByKind = cd.acceptAtByKind;
    notes.push(`${model.id}: guided runs stop drawing an output's candidates at the first one the classifiers give p >= ${acceptWords(cd.acceptAt, cd.acceptAtByKind)} (its sampler_defaults.accept_at${cd.acceptAtByKind ? ' and accept_at_by_kind' : ''})`);
  }
  if (given.candidates === undefined && model.pinnedCandidates !== undefined) {
    // data-to-text and text-to-record pin the record or the text: they take the bundle's candidates (samplerFor)
    settings.pinnedCandidates = model.pinnedCandidates;
    notes.push(model.kind === 'masked-diffusion'
      ? `${model.id}: data-to-text and text-to-record choose each output among ${model.pinnedCandidates} candidates, data-to-text by how well the model reads the record back from each text, text-to-record by consensus (its sampler_defaults.pinned_candidates)`
      : `${model.id}: data-to-text and text-to-record choose each output among ${model.pinnedCandidates} candidates by consensus (its sampler_defaults.pinned_candidates)`);
  }
  if (given.candidates === undefined && model.guidedCandidates !== undefined) {
    // guided control runs take the bundle's guided candidates; their unguided baselines one sample per output
    settings.guidedCandidates = model.guidedCandidates;
    notes.push(`${model.id}: guided runs choose each output among ${model.guidedCandidates} candidates by ${masked ? "the guidance terms (classifiers, lexicons) plus the denoiser's own log p of the text (its guidance_defaults.candidate_fluency)" : 'the guidance classifiers'} (its sampler_defaults.guided_candidates)`);
  }
  if (model.exactTopK?.length && (settings.guidance?.exactTopK ?? null) === null) {
    notes.push(`${model.id}: guided runs of ${model.exactTopK.join(', ')} score the denoiser's top-k candidates exactly with the classifiers, the others by the first-order estimate (its guidance_defaults.exact_top_k; --guidance exactTopK=true|false for every guided run)`);
  }
  if (given.candidates === undefined && model.freeCandidates !== undefined) {
    // the unguided pool and json-schema neither guide nor pin: the bundle's free candidates
    settings.freeCandidates = model.freeCandidates;
    notes.push(`${model.id}: the unguided pool (the unguided side of every control, and the unconditional samples) and json-schema choose each output among ${model.freeCandidates} candidates${model.kind === 'continuous-embedding-diffusion' ? " by the model's own check" : ' by consensus'} (its sampler_defaults.free_candidates)`);
  }
  if (masked && given.sampler?.method && given.sampler.method !== 'ancestral') {
    throw new Error(`--sampler ${given.sampler.method}: a sampler for continuous models; ${model.id} is a ${model.kind} model (its sampler flags: --temperature, --top-p, --block-length, --confidence)`);
  }
  const d = masked ? model.samplerDefaults : undefined;
  if (d && given.masked?.temperature === undefined && d.temperature_unconditional !== undefined) {
    // the engine's rule (docs/ARCHITECTURE.md, "Masked family"): each run's temperature follows what it pins
    notes.push(`${model.id}: temperature ${maskedTemperature(d, undefined, false)} for the unguided pool and the controls, which pin nothing (its sampler_defaults.temperature_unconditional); ${maskedTemperature(d, undefined, true)} for data-to-text and text-to-record, which pin the record or the text`);
  }
  if (d && given.masked?.temperature === undefined && given.masked?.record_temperature === undefined && d.record_temperature_unconditional !== undefined) {
    notes.push(`${model.id}: the record segment at temperature ${maskedRecordTemperature(d, {}, false, false)} in the unguided pool, which neither pins nor guides (its sampler_defaults.record_temperature_unconditional)`);
  }
  const ownControls = masked ? maskedControls(model.controls) : [...CONTROLS, ...COMPOSITIONS];
  if (masked && !given.controls && ownControls.length < CONTROLS.length + COMPOSITIONS.length) {
    notes.push(`${model.id} is a ${model.kind} model with classifiers for ${model.controls.join(', ') || 'no control'}: ${ownControls.join(', ')} run${ownControls.length === 1 ? 's' : ''} (choose others with --controls; unguided controls are scored, not steered)`);
  }
  for (const n of notes) log(n);
  const controls = settings.controls ?? ownControls;
  const known = new Set<string>([...CONTROLS, ...COMPOSITIONS]);
  for (const c of controls) if (!known.has(c)) throw new Error(`--controls: unknown control ${JSON.stringify(c)} (known: ${[...known].join(', ')})`);
  for (const c of Object.keys(settings.overrides ?? {})) if (!known.has(c)) throw new Error(`--override: unknown control ${JSON.stringify(c)} (known: ${[...known].join(', ')})`);

  let device: DeviceReport | null = null;
  const precisions: Record<string, DenoiserPrecision[]> = {};
  /** Notes the device and the denoiser weights one run of a part of the evaluation took. */
  const ran = (part: string, summary: RunSummary) => {
    device ??= summary.device;
    const p = summary.device.precision;
    if (p && !(precisions[part] ??= []).includes(p)) precisions[part]!.push(p);
  };
  const results: ControlResult[] = [];

  // Unguided pool: samples from the model with no constraints at all, shared by every target.
  log(`unguided pool: ${settings.unguidedPool} samples, ${settings.steps} steps`);
  let pool: GeneratedOutput[] = [];
  let poolSeconds = 0;
  let poolError: string | undefined;
  try {
    const g = await generate(deps, settings, { version: 1, constraints: [], sampler: samplerFor(settings, settings.unguidedPool, settings.seed, false) });
    pool = g.outputs;
    poolSeconds = g.seconds;
    ran('unguided pool', g.summary);
  } catch (e) {
    poolError = (e as Error).message;
    log(`unguided pool failed: ${poolError}`);
  }
  const unconditional = pool.length ? unconditionalStats(pool, model.recordFields) : null;
  if (unconditional) log(`unconditional: ${unconditional.validRecords}/${unconditional.samples} valid records, ${unconditional.distinct} distinct`);

  let targetIndex = 0;
  for (const control of controls) {
    const ov = settings.overrides?.[control] ?? {};
    const nSamples = ov.samples ?? settings.samplesPerTarget;
    const targets = targetsFor(targetsFile.targets, control, ov.targets ?? settings.targetsPerControl);
    const pub = DIFFUSION_LM_E2E[control] ?? null;
    const res: ControlResult = { control, targets: targets.length, guided: null, unguided: null, published: pub, warnings: [] };
    results.push(res);
    if (targets.length === 0) {
      res.error = `no targets for ${control} in ${settings.targetsPath}`;
      continue;
    }
    const kinds = [...new Set(targets.flatMap((t) => t.constraints.map((c) => c.kind)))];
    const missing = kinds.filter((k) => k !== 'json-schema' && !model.controls.includes(k));
    if (missing.length) res.warnings.push(`bundle has no classifier for ${missing.join(', ')}: "guided" runs without that guidance`);
    log(`${control}: ${targets.length} targets x ${nSamples} samples`);
    const guided: Scored[] = [];
    const unguided: Scored[] = [];
    const drawn: number[] = [];
    let gSeconds = 0;
    try {
      for (const t of targets) {
        const seed = (settings.seed + 1000 + targetIndex++) >>> 0;
        const g = await generate(deps, settings, { version: 1, constraints: t.constraints, sampler: samplerFor(settings, nSamples, seed, true, t.constraints) });
        ran(control, g.summary);
        for (const w of g.summary.warnings ?? []) if (!res.warnings.includes(w)) res.warnings.push(w);
        gSeconds += g.seconds;
        drawn.push(...g.outputs.map(candidatesDrawnOf));
        const report = (outs: GeneratedOutput[], sc: Scored[], isGuided: boolean) =>
          sc.forEach((x, j) => deps.onSample?.({ control, target: t.constraints, guided: isGuided, text: outs[j]!.text, record: outs[j]!.record, success: x.satisfiedAll, score: x.score, perKind: x.perKind, fluency: x.fluency }));
        const gs = await score(deps, t.constraints, g.outputs);
        report(g.outputs, gs, true);
        guided.push(...gs);
        if (pool.length) {
          const k = (targetIndex * nSamples) % pool.length;
          const slice = Array.from({ length: Math.min(nSamples, pool.length) }, (_, j) => pool[(k + j) % pool.length]!);
          if (!res.examples && g.outputs[0]) {
            res.examples = { target: JSON.stringify(t.constraints.map(({ weight: _w, enabled: _e, ...c }) => c)), guided: g.outputs[0].text, unguided: slice[0]?.text ?? null };
          }
          const us = await score(deps, t.constraints, slice);
          report(slice, us, false);
          unguided.push(...us);
        }
      }
      res.guided = stats(guided, gSeconds, drawn);
      if (pool.length) res.unguided = stats(unguided, poolSeconds * (unguided.length / pool.length));
      else res.error = `unguided pool failed: ${poolError}`;
      if (control.includes('+')) {
        res.perKind = {};
        for (const k of kinds) res.perKind[k] = guided.filter((x) => x.perKind[k]).length / guided.length;
      }
      log(`${control}: guided ${(100 * res.guided.success).toFixed(1)}% / unguided ${res.unguided ? (100 * res.unguided.success).toFixed(1) : '-'}%`);
    } catch (e) {
      res.error = (e as Error).message;
      if (guided.length) res.guided = stats(guided, gSeconds, drawn);
      log(`${control}: failed: ${res.error}`);
    }
  }

  const testRows = settings.dataToTextItems > 0 || settings.textToRecordItems > 0 ? readE2ECsv(settings.testPath) : [];
  const groups = testRows.length ? groupByMr(testRows) : [];
  const spread = (n: number): MrGroup[] => {
    if (n >= groups.length) return groups;
    // evenly spaced MRs over the whole test set (it is ordered by MR), deterministic
    return Array.from({ length: n }, (_, i) => groups[Math.floor((i * groups.length) / n)]!);
  };

  const overBudget = () => settings.maxMinutes !== undefined && (performance.now() - t0) / 60000 > settings.maxMinutes;
  const budgetNote = (done: number, of: number) => `time budget of ${settings.maxMinutes} min reached after ${done} of ${of} items`;

  let dataToText: EvalResults['dataToText'] = null;
  if (settings.dataToTextItems > 0) {
    const items = spread(settings.dataToTextItems);
    log(`data-to-text: ${items.length} of ${groups.length} ${settings.split ?? 'test'} MRs`);
    const hyps: string[] = [];
    let seconds = 0;
    let error: string | undefined;
    let stoppedEarly: string | undefined;
    let lengthHeld = 0;
    /** Per text done, its slot errors (the samples' success and the totals). */
    const itemErrors: SlotErrors[] = [];
    try {
      for (let i = 0; i < items.length; i++) {
        // keep a share of the budget for text-to-record
        if (settings.maxMinutes !== undefined && (performance.now() - t0) / 60000 > settings.maxMinutes * (settings.textToRecordItems > 0 ? 0.9 : 1)) {
          stoppedEarly = budgetNote(i, items.length);
          log(stoppedEarly);
          break;
        }
        const constraints = [{ kind: 'record' as const, value: items[i]!.record }];
        const g = await generate(deps, settings, { version: 1, constraints, sampler: samplerFor(settings, 1, (settings.seed + 500000 + i) >>> 0, true, constraints) });
        ran('data-to-text', g.summary);
        seconds += g.seconds;
        hyps.push(g.outputs[0]?.text.trim() ?? '');
        // written with the control samples: the record as the target, slot-exact as the success
        const se = slotErrors(items[i]!.record, hyps[i]!, model.recordFields);
        itemErrors.push(se);
        const errs = errorCount(se);
        deps.onSample?.({ control: 'data-to-text', target: constraints.map((c) => ({ ...c, weight: 1, enabled: true })), guided: false, text: hyps[i]!, record: items[i]!.record, success: errs === 0, score: se.fields ? Math.max(0, 1 - errs / se.fields) : 0, perKind: { record: errs === 0 }, fluency: null });
        if ((g.summary.notes ?? []).some((n) => n.startsWith(RECORD_LENGTH_NOTE))) lengthHeld++;
      }
    } catch (e) {
      error = (e as Error).message;
      log(`data-to-text failed after ${hyps.length} items: ${error}`);
    }
    const done = items.slice(0, hyps.length);
    const b = hyps.length ? corpusBleu(hyps, done.map((g) => g.refs)) : null;
    const slots = sumSlotErrors(itemErrors);
    dataToText = {
      items: hyps.length,
      totalMrs: groups.length,
      references: done.reduce((a, g) => a + g.refs.length, 0),
      bleu: b?.bleu ?? 0,
      precisions: b?.precisions ?? [],
      brevityPenalty: b?.brevityPenalty ?? 0,
      tgenBleu: TGEN_E2E_TEST.bleu,
      secondsPerItem: hyps.length ? seconds / hyps.length : 0,
      examples: done.slice(0, 3).map((g, i) => ({ record: g.record, text: hyps[i]! })),
      ...(hyps.length ? { slots: { ...slots, errorRate: slotErrorRate(slots) } } : {}),
      ...(lengthHeld ? { lengthHeld } : {}),
      ...(stoppedEarly ? { stoppedEarly } : {}),
      ...(error ? { error } : {}),
    };
    log(`data-to-text: BLEU ${dataToText.bleu.toFixed(2)} over ${hyps.length} MRs; slot errors ${(100 * slotErrorRate(slots)).toFixed(1)}% of ${slots.fields} fields (missing ${slots.missing}, wrong ${slots.wrong}, added ${slots.added}), ${slots.exact} texts exact`);
  }

  let textToRecord: EvalResults['textToRecord'] = null;
  if (settings.textToRecordItems > 0) {
    const items = spread(settings.textToRecordItems);
    log(`text-to-record: ${items.length} ${settings.split ?? 'test'} texts`);
    const perField: Record<string, { gold: number; correct: number; accuracy: number; spurious: number }> = {};
    for (const f of E2E_FIELDS) perField[f] = { gold: 0, correct: 0, accuracy: 0, spurious: 0 };
    let parsed = 0;
    let exact = 0;
    let n = 0;
    let skipped = 0;
    let seconds = 0;
    let error: string | undefined;
    let stoppedEarly: string | undefined;
    try {
      for (let i = 0; i < items.length; i++) {
        if (overBudget()) {
          stoppedEarly = budgetNote(i, items.length);
          log(stoppedEarly);
          break;
        }
        const gold = items[i]!.record;
        let g: Awaited<ReturnType<typeof generate>>;
        try {
          const constraints = [{ kind: 'text' as const, value: items[i]!.refs[0]! }];
          g = await generate(deps, settings, { version: 1, constraints, sampler: samplerFor(settings, 1, (settings.seed + 700000 + i) >>> 0, true, constraints) });
        } catch (e) {
          // a reference text longer than the bundle's text segment cannot be held: skip it and count it
          if (/^constraints\[0\] \(text\): .*the text segment has/.test((e as Error).message)) {
            skipped++;
            continue;
          }
          throw e;
        }
        ran('text-to-record', g.summary);
        seconds += g.seconds;
        n++;
        const rec = g.outputs[0]?.record ?? null;
        if (rec) parsed++;
        const out = rec ?? {};
        let allRight = rec !== null;
        for (const f of E2E_FIELDS) {
          const pf = perField[f]!;
          if (f in gold) {
            pf.gold++;
            if (out[f] === gold[f]) pf.correct++;
            else allRight = false;
          } else if (f in out) {
            pf.spurious++;
            allRight = false;
          }
        }
        if (allRight && Object.keys(out).every((k) => k in gold)) exact++;
      }
    } catch (e) {
      error = (e as Error).message;
      log(`text-to-record failed after ${n} items: ${error}`);
    }
    for (const pf of Object.values(perField)) pf.accuracy = pf.gold ? pf.correct / pf.gold : 0;
    const graded = Object.values(perField).filter((pf) => pf.gold > 0);
    const meanFieldAccuracy = graded.length ? graded.reduce((a, pf) => a + pf.accuracy, 0) / graded.length : 0;
    textToRecord = { items: n, parsed, exact, perField, meanFieldAccuracy, skipped, secondsPerItem: n ? seconds / n : 0, ...(stoppedEarly ? { stoppedEarly } : {}), ...(error ? { error } : {}) };
  }

  const { targetsPath: _t, testPath: _p, stepsFromModel: _s, ...rest } = settings;
  const used = new Set(Object.values(precisions).flat());
  if (device && used.size > 1) {
    const { precision: _mixed, ...one } = device as DeviceReport;
    device = one;
  }
  return {
    format: 'dlm-eval-results/1',
    date: new Date().toISOString(),
    mode: settings.mode,
    hardware: hardwareInfo(),
    model: { id: model.id, version: model.version, hash: model.hash, path: model.path, controls: model.controls, hasScorer: model.hasScorer, kind: model.kind },
    device,
    ...(used.size ? { precisions } : {}),
    settings: {
      ...rest,
      targets: { file: relative(process.cwd(), settings.targetsPath) || settings.targetsPath, sha256: sha256(settings.targetsPath), seed: targetsFile.seed },
      testFile: settings.testPath,
    },
    controls: results,
    unconditional,
    ...(notes.length ? { notes } : {}),
    dataToText,
    textToRecord,
    seconds: (performance.now() - t0) / 1000,
  };
}
