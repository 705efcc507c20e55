/**
 * The engine's public contract: what the services (and through them the UI, the CLI and the tests) call.
 * The implementation lives beside this file and runs inference off the main thread.
 */
import type { ConstraintSet, CONTINUOUS_SAMPLERS, PRECISION_PREFERENCES } from '../constraints/set';

export type DevicePreference = 'auto' | 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu';
export const DEVICE_PREFERENCES: DevicePreference[] = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'];

export interface DeviceProbe {
  provider: Exclude<DevicePreference, 'auto'>;
  /** Whether the binary ships this provider on this platform. */
  bundled: boolean;
  /** Whether a session could be created with it here. */
  usable: boolean;
  /** Why it was skipped or failed, in words (e.g. "Failed to get a WebGPU adapter"). */
  reason?: string;
}

export interface DeviceReport {
  requested: DevicePreference;
  /** The provider that actually runs. */
  active: Exclude<DevicePreference, 'auto'>;
  probes: DeviceProbe[];
  /** Denoiser weights a run used (set on a run's summary; absent on a plain probe). */
  precision?: DenoiserPrecision;
}

export type PrecisionPreference = (typeof PRECISION_PREFERENCES)[number];
export type DenoiserPrecision = Exclude<PrecisionPreference, 'auto'>;
export const DENOISER_PRECISIONS: DenoiserPrecision[] = ['fp32', 'int8'];

/**
 * Which denoiser weights run. `auto` takes the bundle's int8 variant on the cpu provider (its forward pass about 2x faster there,
 * docs/engine.md) and fp32 on accelerators, whose providers do not all implement the int8 contrib operators.
 */
export function resolvePrecision(pref: PrecisionPreference, provider: string, hasInt8: boolean, modelId: string): DenoiserPrecision {
  if (pref === 'fp32') return 'fp32';
  if (pref === 'int8') {
    if (!hasInt8) throw new EngineInputError(`sampler.precision: model ${modelId} has no int8 denoiser (add one with: python -m training.dlm_train.quantize --bundle <bundle folder>)`);
    return 'int8';
  }
  return provider === 'cpu' && hasInt8 ? 'int8' : 'fp32';
}

/**
 * The precision of one run (engine and UI): resolvePrecision, except that `auto` keeps a classifier-guided run on the
 * fp32 graph where the bundle's int8 graph says so (a masked bundle's `denoiser.int8.guided_runs: "fp32"`:
 * ModelSummary.int8GuidedRuns), because guidance measured worse on it.
 */
export function runPrecision(pref: PrecisionPreference, provider: string, hasInt8: boolean, int8GuidedRuns: 'int8' | 'fp32' | undefined, guided: boolean, modelId: string): DenoiserPrecision {
  if (pref === 'auto' && guided && int8GuidedRuns === 'fp32') return 'fp32';
  return resolvePrecision(pref, provider, hasInt8, modelId);
}

/** A request the engine cannot honour as asked (the message names the setting or field). */
export class EngineInputError extends Error {
  readonly code = 'INVALID_INPUT';
}

/** A continuous bundle's sampler defaults (its manifest's sampler_defaults, completed: method ancestral, eta 0, spacing 1). */
export interface ContinuousDefaults {
  steps: number;
  method: (typeof CONTINUOUS_SAMPLERS)[number];
  eta: number;
  /** Step spacing exponent (sampler.spacing; 1 = evenly spaced). */
  spacing: number;
  /** The spacing of classifier-guided runs, when the bundle gives one (constraints/set.ts continuousSpacing). */
  guidedSpacing?: number;
  /** The step count of classifier-guided runs, when the bundle gives one (constraints/set.ts continuousSteps). */
  guidedSteps?: number;
  /**
   * sampler_defaults.accept_at: a classifier-guided run that names none stops drawing an output's candidates at the
   * first one the classifiers give this probability or more (constraints/set.ts defaultAcceptAt).
   */
  acceptAt?: number;
  /** sampler_defaults.accept_at_by_kind: per guided kind, a level other than acceptAt (the run takes its kinds' largest). */
  acceptAtByKind?: Partial<Record<string, number>>;
  /** How they were chosen (free-form, from the manifest). */
  measured?: string | Record<string, unknown>;
}

/** Whether a model is of the masked family (by its kind, families/masked/manifest.ts MASKED_KIND). */
export function isMaskedModel(model: Pick<ModelSummary, 'kind'> | null | undefined): boolean {
  return model?.kind === 'masked-diffusion';
}

/**
 * The step count a run of this model takes when neither the user nor the set chose one: a masked bundle's
 * sampler_defaults.steps, a continuous bundle's sampler_defaults.steps when it has them; undefined otherwise (the
 * sampler's own default, 200).
 */
export function modelDefaultSteps(model: Pick<ModelSummary, 'kind' | 'samplerDefaults' | 'continuousDefaults'>): number | undefined {
  return isMaskedModel(model) ? model.samplerDefaults?.steps : model.continuousDefaults?.steps;
}

export interface ModelSummary {
  id: string;
  name: string;
  version: string;
  kind: string;
  /** Folder the bundle was loaded from. */
  path: string;
  /** sha256 over the manifest's file list (identifies the exact weights in a run's recipe). */
  hash: string;
  source: 'bundled' | 'user';
  canvas: { length: number; segments: { name: string; start: number; length: number; format?: string }[] };
  /** Field -> known values, from the bundle's record schema (drives the UI's attribute pickers). */
  recordFields: Record<string, string[]>;
  /** Guidance controls this bundle has classifiers for (pos, attribute, length, sentiment, spans). */
  controls: string[];
  hasScorer: boolean;
  /** Denoiser weights the bundle ships (int8 when it has a quantized variant). */
  precisions?: DenoiserPrecision[];
  /** 'fp32': precision auto runs classifier-guided runs on the fp32 graph though the bundle has an int8 one (runPrecision). */
  int8GuidedRuns?: 'int8' | 'fp32';
  /**
   * Masked bundles whose guidance can score its top-k candidates exactly (classifier graphs and a top_k): the guided
   * kinds whose runs do by default (guidance_defaults.exact_top_k.controls; [] for none); a run's
   * sampler.guidance.exactTopK decides (constraints/set.ts exactTopKOf).
   */
  exactTopK?: string[];
  /**
   * Masked-family bundles only (kind masked-diffusion; every masked bundle has it): the manifest's sampler_defaults
   * (steps, block_length, confidence, temperature, top_p, and temperature_unconditional when the bundle has one: the
   * temperature when nothing is pinned; record_temperature_unconditional: the record segment's then; record_schema_hold:
   * such a run's record is held to the record schema). Whether a model is masked is its `kind`, not the presence of
   * this field.
   */
  samplerDefaults?: { steps: number; block_length: number; confidence: string; temperature: number; top_p: number; temperature_unconditional?: number; record_temperature_unconditional?: number; record_schema_hold?: boolean };
  /**
   * Continuous-family bundles only (kind continuous-embedding-diffusion), when the manifest has sampler_defaults: the
   * steps, method and eta a run takes when it chooses none (absent: 200 ancestral steps), and how they were measured.
   */
  continuousDefaults?: ContinuousDefaults;
  /** The manifest's sampler_defaults.pinned_candidates, either family (constraints/set.ts defaultCandidates). */
  pinnedCandidates?: number;
  /** The manifest's sampler_defaults.guided_candidates, either family (constraints/set.ts defaultCandidates). */
  guidedCandidates?: number;
  /** The manifest's sampler_defaults.free_candidates, either family (constraints/set.ts defaultCandidates). */
  freeCandidates?: number;
  /** Set when the bundle could not be loaded: the message names the problem. */
  error?: string;
}

export interface GenerateRequest {
  model: string;
  device: DevicePreference;
  constraints: ConstraintSet;
}

export interface StepProgress {
  /** 1-based count of completed denoising steps. */
  step: number;
  steps: number;
  elapsedMs: number;
  /** When the step finished, in ms on the process-wide monotonic clock (clock.ts processClockMs(): comparable across
   * threads, not an epoch time). */
  at?: number;
  /** Index of the first output the batch this progress belongs to samples for. */
  batchStart: number;
  /** A run with sampler.candidates > 1: how many candidates each output is chosen among. */
  candidates?: number;
  /** With candidates: per canvas of the batch, the output it is a candidate for, and which candidate (0-based). */
  outputOf?: number[];
  candidateOf?: number[];
  /** Current decoded canvas per sample of the batch (record and text parts), for the live view. In a masked-family
   * run, a position still masked shows as MASK_GLYPH. */
  canvases: { record: string; text: string }[];
  /** Masked-family runs only: per sample of the batch, the canvas positions still masked (ascending), so a view can
   * show the masks filling in. Absent for continuous runs. */
  masked?: number[][];
}

/** How a still-masked position shows in a masked-family progress canvas. */
export const MASK_GLYPH = '\u2591';

export interface ConstraintScore {
  /** Index into the constraint set's constraints. */
  index: number;
  kind: string;
  satisfied: boolean;
  /** In [0, 1] where it makes sense (e.g. POS exact-match rate), else a kind-specific number. */
  score: number;
  detail?: string;
}

export interface GeneratedOutput {
  /** 0-based sample index within the run. */
  index: number;
  seed: number;
  text: string;
  /** Parsed record segment, or null when it does not parse as JSON. */
  record: Record<string, unknown> | null;
  /** The raw record segment text (even when it does not parse). */
  recordText: string;
  tokens: number[];
  constraints: ConstraintScore[];
  /** Perplexity under the bundle's autoregressive scorer (lower is better); null without a scorer. */
  fluency: number | null;
  /**
   * A run with sampler.candidates > 1: which candidate was chosen (0-based; its seed is `seed`), what chose it (the
   * consensus; in a classifier-guided run the guidance classifiers; in a run that neither guides nor pins, the model's
   * own check; 'length': the only one with the length asked for) and its mean smoothed BLEU-4 against the others, in [0, 1] (candidates.ts); chosen by a score, every
   * candidate's score (higher is better). `drawn`: the candidates drawn, where `sampler.accept_at` stopped the output
   * before all were. Live only: the store keeps the recipe, which reproduces it.
   */
  consensus?: { candidates: number; drawn?: number; chosen: number; agreement: number; by: 'consensus' | 'classifiers' | 'model' | 'read-back' | 'length'; scores?: number[] };
}

export interface RunTimings {
  loadMs: number;
  compileMs: number;
  sampleMs: number;
  perStepMs: number;
  totalMs: number;
}

export interface RunSummary {
  status: 'completed' | 'cancelled' | 'failed';
  model: { id: string; version: string; hash: string };
  device: DeviceReport;
  timings: RunTimings;
  error?: string;
  /** Things the run could not honour but did not fail on (e.g. a control the bundle has no classifier for). */
  warnings?: string[];
  /** What the run chose for itself that a person may want to know (e.g. the text length it held for a record). */
  notes?: string[];
  /** Denoiser calls while sampling, when the family counts them (the masked family reuses logits while no token changes). */
  denoiserCalls?: number;
  /** Milliseconds of those calls, when the family counts them. */
  denoiserMs?: number;
  /** Milliseconds in classifier-guidance graph calls, when the family counts them (the masked family). */
  guideMs?: number;
}

export interface GenerateHooks {
  onProgress?(p: StepProgress): void;
  /** Called once per finished sample, in index order; the store writes each as it arrives. */
  onOutput?(o: GeneratedOutput): void;
  signal?: AbortSignal;
}

export interface Engine {
  listModels(): Promise<ModelSummary[]>;
  /** Probe on the given model's denoiser (default: the bundled default model). */
  probeDevices(preference: DevicePreference, model?: string): Promise<DeviceReport>;
  generate(request: GenerateRequest, hooks: GenerateHooks): Promise<RunSummary>;
  dispose(): Promise<void>;
}

export interface EngineOptions {
  /** Folders searched for bundles; the first is the app's bundled models/ folder. */
  modelDirs: string[];
  /** Samples denoised together in one batch (default 8). */
  batchSize?: number;
  /**
   * Masked family: reuse the denoiser's logits while no token changed (default: on, unless DLM_MASKED_CACHE=0 in the
   * environment). Off, the denoiser runs at every step: the same tokens, more calls (for comparisons, `dlm-studio bench`).
   */
  logitsCache?: boolean;
}
