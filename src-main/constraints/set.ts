/**
 * The constraint-set file format (version 1): what the UI saves and exports and what the CLI reads.
 * One zod schema validates it everywhere; errors name the constraint index and field.
 */
import { z } from 'zod';

export const UPOS_TAGS = [
  'ADJ', 'ADP', 'ADV', 'AUX', 'CCONJ', 'DET', 'INTJ', 'NOUN', 'NUM', 'PART',
  'PRON', 'PROPN', 'PUNCT', 'SCONJ', 'SYM', 'VERB', 'X',
] as const;
export type UposTag = (typeof UPOS_TAGS)[number];
/** "*" marks a position whose tag does not matter. */
export const POS_ANY = '*';

export const SPAN_LABELS = ['NP', 'VP', 'PP'] as const;
export const SENTIMENT_LABELS = ['positive', 'neutral', 'negative'] as const;

const common = {
  weight: z.number().finite().min(0).max(100).default(1),
  enabled: z.boolean().default(true),
  /** Optional free-text note shown in the UI (not `label`: the sentiment kind uses that for its target). */
  note: z.string().max(200).optional(),
};

export const posConstraint = z.object({
  kind: z.literal('pos'),
  tags: z.array(z.enum([...UPOS_TAGS, POS_ANY])).min(1).max(128),
  ...common,
}).strict();

export const attributeConstraint = z.object({
  kind: z.literal('attribute'),
  field: z.string().min(1).max(100),
  value: z.string().min(1).max(200),
  ...common,
}).strict();

export const lengthConstraint = z.object({
  kind: z.literal('length'),
  tokens: z.number().int().min(1).max(512),
  ...common,
}).strict();

export const sentimentConstraint = z.object({
  kind: z.literal('sentiment'),
  label: z.enum(SENTIMENT_LABELS),
  ...common,
}).strict();

export const spansConstraint = z.object({
  kind: z.literal('spans'),
  spans: z.array(
    z.tuple([z.number().int().min(0), z.number().int().min(0), z.enum(SPAN_LABELS)])
      .refine(([s, e]) => e >= s, { message: 'span end must be >= start' }),
  ).min(1).max(32),
  ...common,
}).strict();

export const recordConstraint = z.object({
  kind: z.literal('record'),
  value: z.record(z.string(), z.string()),
  ...common,
}).strict();

export const textConstraint = z.object({
  kind: z.literal('text'),
  value: z.string().min(1).max(2000),
  ...common,
}).strict();

export const infillConstraint = z.object({
  kind: z.literal('infill'),
  /** Text with blanks marked by three underscores: "___". */
  template: z.string().min(1).max(2000),
  ...common,
}).strict();

export const jsonSchemaConstraint = z.object({
  kind: z.literal('json-schema'),
  schema: z.union([z.record(z.string(), z.unknown()), z.boolean()]),
  ...common,
}).strict();

export const regexConstraint = z.object({
  kind: z.literal('regex'),
  pattern: z.string().min(1).max(2000),
  ...common,
}).strict();

export const wordsConstraint = z.object({
  kind: z.literal('words'),
  include: z.array(z.string().min(1).max(100)).max(32).default([]),
  exclude: z.array(z.string().min(1).max(100)).max(32).default([]),
  ...common,
}).strict();

export const constraintSchema = z.discriminatedUnion('kind', [
  posConstraint, attributeConstraint, lengthConstraint, sentimentConstraint, spansConstraint,
  recordConstraint, textConstraint, infillConstraint, jsonSchemaConstraint, regexConstraint, wordsConstraint,
]);
export type Constraint = z.infer<typeof constraintSchema>;
export type ConstraintKind = Constraint['kind'];
export const CONSTRAINT_KINDS = constraintSchema.options.map((o) => o.shape.kind.value) as ConstraintKind[];

/**
 * Classifier-gradient guidance settings; the Adagrad defaults are Diffusion-LM's, 3 steps of 0.1 per denoising step.
 * 2 steps of 0.15 (as far in all, one classifier call fewer) held each control's success on e2e-default 2.2.9 but
 * left more guided texts broken (POS perplexity above 100: 10% against 7%; sentiment texts that repeat one word to
 * the end: 2% against none; docs/evaluation/2026-12-06-e2e-default-2.2.9.md).
 */
export const GUIDANCE_DEFAULT_ITERATIONS = 3;
export const GUIDANCE_DEFAULT_STEP_SIZE = 0.1;

export const guidanceSettings = z.object({
  enabled: z.boolean().default(true),
  /** Adagrad steps after each denoising step. */
  iterations: z.number().int().min(0).max(20).default(GUIDANCE_DEFAULT_ITERATIONS),
  /** Adagrad learning rate. */
  stepSize: z.number().positive().max(10).default(GUIDANCE_DEFAULT_STEP_SIZE),
  /** Global multiplier on every classifier's weight (the UI's "guidance strength"). */
  strength: z.number().min(0).max(100).default(1),
  /** Weight of the fluency anchor lambda * sum((mu - x)^2 / sigma); null means the per-control default. */
  fluencyWeight: z.number().min(0).max(100).nullable().default(null),
  /** Guidance is switched off for this many final steps. */
  offLastSteps: z.number().int().min(0).max(2000).default(10),
  /**
   * stepSize and offLastSteps are stated for GUIDANCE_REFERENCE_STEPS denoising steps and scaled to the run's
   * (docs/engine.md, "Guidance at few steps"): fewer steps take proportionally larger Adagrad steps, so the whole
   * run moves x as far, and stop guiding over the same share of the schedule. Continuous models only.
   */
  scaleToSteps: z.boolean().default(true),
  /**
   * Masked models: at each guided position a step commits, the denoiser's top-k candidates (the bundle's
   * guidance_defaults.top_k) are scored exactly, each written into the canvas and read by the classifiers, instead of
   * by the first-order estimate from one gradient (docs/engine.md, "Exact top-k re-scoring"). null: the bundle's
   * default, on when the run guides one of its guidance_defaults.exact_top_k.controls (exactTopKOf). Continuous
   * models take none.
   */
  exactTopK: z.boolean().nullable().default(null),
}).strict();

/** The step count guidance settings are stated for when they scale to the run's (scaleToSteps). */
export const GUIDANCE_REFERENCE_STEPS = 200;

/** The guidance settings a run of `steps` denoising steps applies (scaleToSteps: stepSize and offLastSteps scaled). */
export function guidanceAtSteps<G extends { stepSize: number; offLastSteps: number; scaleToSteps: boolean }>(g: G, steps: number): G {
  if (!g.scaleToSteps || steps === GUIDANCE_REFERENCE_STEPS) return g;
  const r = GUIDANCE_REFERENCE_STEPS / steps;
  return { ...g, stepSize: g.stepSize * r, offLastSteps: Math.round(g.offLastSteps / r) };
}

/** How the masked family's steps rank positions (training/dlm_train/masked_sample.py CONFIDENCES). */
export const MASKED_CONFIDENCES = ['low_confidence', 'maskgit_plus', 'topk_margin', 'entropy', 'origin'] as const;

/** Denoiser weights a run may ask for (`auto`: the engine decides per device, src-main/engine/types.ts). */
export const PRECISION_PREFERENCES = ['auto', 'fp32', 'int8'] as const;

/** How a continuous-family step moves x to the next noise level (src-main/engine/families/continuous/steps.ts). */
export const CONTINUOUS_SAMPLERS = ['ancestral', 'ddim', 'dpm2m'] as const;

/** The most candidates an output may be chosen among (sampler.candidates). */
export const MAX_CANDIDATES = 16;

/** The largest step spacing exponent (sampler.spacing) a run may ask for. */
export const MAX_SPACING = 4;

export const samplerSettings = z.object({
  steps: z.number().int().min(1).max(2000).default(200),
  samples: z.number().int().min(1).max(1024).default(8),
  seed: z.number().int().min(0).max(0xffffffff).default(0),
  /**
   * Each output is chosen among this many samples (src-main/engine/candidates.ts): in a classifier-guided run the one
   * the bundle's guidance classifiers score highest on the guided constraints; in a continuous model's run that neither
   * guides nor pins, the one its denoiser reconstructs best (its own check); otherwise the one that agrees most with
   * the others (consensus, or minimum Bayes risk, decoding). 1: every sample is an output. Costs that many times the
   * sampling.
   */
  candidates: z.number().int().min(1).max(MAX_CANDIDATES).default(1),
  /**
   * With candidates, in a run whose candidates the guidance classifiers score: stop drawing an output's candidates at
   * the first one scoring at least log(accept_at) (the classifiers' weighted log p that chooses among them), and keep
   * the best drawn. Absent: draw all. A recipe that has it reproduces only with it (docs/engine.md, "Choosing among
   * candidates").
   */
  accept_at: z.number().gt(0).max(1).optional(),
  /** Replace predicted x0 by the nearest embedding at every step (Diffusion-LM's clamping trick). */
  clamp: z.boolean().default(true),
  /** Denoiser weights: auto = the bundle's int8 variant on the cpu provider when it has one, else fp32. */
  precision: z.enum(PRECISION_PREFERENCES).default('auto'),
  /**
   * Continuous-family sampler: ancestral (the DDPM posterior step, Diffusion-LM's), ddim (DDIM on x0, eta below) or
   * dpm2m (DPM-Solver++(2M), second-order multistep on x0). Masked models refuse anything but ancestral.
   */
  method: z.enum(CONTINUOUS_SAMPLERS).default('ancestral'),
  /** DDIM's eta: 0 = deterministic, 1 = the ancestral step's noise. Only ddim reads it. */
  eta: z.number().min(0).max(1).default(0),
  /**
   * Continuous family: where the steps sit on the training schedule. Step k of S is at t = (T - 1) (k / (S - 1))^spacing:
   * 1 spaces them evenly (Diffusion-LM); below 1 spends more at high noise, where the words are chosen.
   */
  spacing: z.number().gt(0).max(MAX_SPACING).default(1),
  guidance: guidanceSettings.default(guidanceSettings.parse({})),
  // Masked-family sampler (docs/ARCHITECTURE.md, "Masked family"); absent: the bundle's sampler_defaults.
  // Continuous bundles ignore them.
  /** Positions per block (semi-autoregressive); 0 = one block. */
  block_length: z.number().int().min(0).max(100_000).optional(),
  /** How a step ranks the masked positions it may commit. */
  confidence: z.enum(MASKED_CONFIDENCES).optional(),
  /** 0 = argmax; else sampling from softmax(logits / temperature). */
  temperature: z.number().min(0).max(100).optional(),
  /** The record segment's temperature (absent: maskedRecordTemperature's rule). */
  record_temperature: z.number().min(0).max(100).optional(),
  /** Nucleus: the smallest set of tokens whose probability reaches top_p. */
  top_p: z.number().gt(0).max(1).optional(),
}).strict();
export type SamplerSettings = z.infer<typeof samplerSettings>;

/**
 * Constraint kinds that pin canvas positions (docs/ARCHITECTURE.md, "Masked family"): a record or text held for
 * data-to-text / text-to-record, and an infill template's fixed words. A masked run with none of them enabled is
 * unconditional.
 */
export const PINNING_KINDS = ['record', 'text', 'infill'] as const;

/** Whether a set pins canvas positions (an enabled record, text or infill constraint). */
export function setPinsCanvas(constraints: readonly { kind: string; enabled?: boolean }[]): boolean {
  return constraints.some((c) => c.enabled !== false && (PINNING_KINDS as readonly string[]).includes(c.kind));
}

/**
 * The masked family's temperature rule, the same in the engine, the CLI, the UI and the reference sampler: the
 * request's temperature if given; else, when nothing is pinned, the bundle's `temperature_unconditional` if it has
 * one; else its `temperature`.
 */
export function maskedTemperature(defaults: { temperature: number; temperature_unconditional?: number }, requested: number | undefined, pinned: boolean): number {
  if (requested !== undefined) return requested;
  if (!pinned && defaults.temperature_unconditional !== undefined) return defaults.temperature_unconditional;
  return defaults.temperature;
}

/**
 * The temperature of the masked canvas's record segment, by the same rule everywhere: the request's record_temperature
 * if given; else its temperature if given (one temperature for the whole canvas); else, in a free run (nothing pinned,
 * not classifier-guided: isGuidedRun), the bundle's `record_temperature_unconditional` if it has one; else the run's
 * temperature. A free run writes its record first, and a record sampled at the text's low temperature settles on the
 * model's favourite few restaurants (e2e-masked 1.1.1 at 0.5: 42 of 64 samples named The Golden Curry). A guided run
 * keeps the run's: its text was measured with records at that temperature.
 */
export function maskedRecordTemperature(
  defaults: { temperature: number; temperature_unconditional?: number; record_temperature_unconditional?: number },
  requested: { temperature?: number; record_temperature?: number },
  pinned: boolean,
  guided: boolean,
): number {
  if (requested.record_temperature !== undefined) return requested.record_temperature;
  if (requested.temperature !== undefined) return requested.temperature;
  if (!pinned && !guided && defaults.record_temperature_unconditional !== undefined) return defaults.record_temperature_unconditional;
  return maskedTemperature(defaults, undefined, pinned);
}

/** Constraint kinds a continuous model steers by classifier guidance (the others are hard, held or scored only). */
export const GUIDED_CONSTRAINT_KINDS: readonly ConstraintKind[] = ['pos', 'spans', 'attribute', 'length', 'sentiment'];

/** Whether a run is classifier-guided: guidance on with strength > 0 and an enabled guided constraint of weight > 0. */
export function isGuidedRun(constraints: readonly { kind: string; enabled?: boolean; weight?: number }[], guidance: { enabled?: boolean; strength?: number } | undefined): boolean {
  return guidedKinds(constraints, guidance).size > 0;
}

/**
 * Whether a masked run scores its top-k candidates exactly: its sampler.guidance.exactTopK, else whether it guides one
 * of the bundle's default kinds (ModelSummary.exactTopK, the manifest's guidance_defaults.exact_top_k.controls).
 */
export function exactTopKOf(constraints: readonly { kind: string; enabled?: boolean; weight?: number }[], guidance: { enabled?: boolean; strength?: number; exactTopK?: boolean | null } | undefined, defaultKinds: readonly string[] | undefined): boolean {
  if (guidance?.exactTopK !== undefined && guidance.exactTopK !== null) return guidance.exactTopK;
  const kinds = guidedKinds(constraints, guidance);
  return (defaultKinds ?? []).some((k) => kinds.has(k));
}

/** The kinds a run guides: those of its enabled guided constraints of weight > 0; none with guidance off. */
function guidedKinds(constraints: readonly { kind: string; enabled?: boolean; weight?: number }[], guidance: { enabled?: boolean; strength?: number } | undefined): Set<string> {
  if (guidance?.enabled === false || (guidance?.strength ?? 1) <= 0) return new Set();
  return new Set(constraints.filter((c) => c.enabled !== false && (c.weight ?? 1) > 0 && GUIDED_CONSTRAINT_KINDS.includes(c.kind as ConstraintKind)).map((c) => c.kind));
}

/**
 * A continuous bundle's step spacing for a run that names none, the same in the CLI, the eval and the UI: its
 * `guided_spacing` for a classifier-guided run when it has one, else its `spacing`. Guidance acts at every step, and
 * the classifiers read x_t best at low noise, where spacing toward high noise leaves few steps; data-to-text gains
 * from those high-noise steps (docs/engine.md, "Step spacing").
 */
export function continuousSpacing(defaults: { spacing: number; guidedSpacing?: number }, guided: boolean): number {
  return guided && defaults.guidedSpacing !== undefined ? defaults.guidedSpacing : defaults.spacing;
}

/**
 * A continuous bundle's step count for a run that names none, the same in the CLI, the eval and the UI: its
 * `guided_steps` for a classifier-guided run when it has one, else its `steps`. A guided output is chosen among
 * candidates the classifiers score, which costs more per output than a data-to-text run's step count buys there
 * (docs/engine.md, "Step count for guided runs").
 */
export function continuousSteps(defaults: { steps: number; guidedSteps?: number }, guided: boolean): number {
  return guided && defaults.guidedSteps !== undefined ? defaults.guidedSteps : defaults.steps;
}

/**
 * A run's candidates (sampler.candidates) when it names none, the same in the CLI, the eval and the UI: the bundle's
 * `pinned_candidates` for a run that pins a record, a text or an infill template, its `guided_candidates` for a
 * classifier-guided run (the larger where both apply), its `free_candidates` for a run that does neither
 * (unconditional, or hard constraints only), else 1. Consensus pays most where the output must carry given content
 * (data-to-text BLEU, text-to-record fields); the classifiers' pick where a soft constraint must hold; the model's
 * own check where nothing is given and a slip would break the record (docs/engine.md, "Choosing among candidates").
 */
export function defaultCandidates(
  model: { pinnedCandidates?: number; guidedCandidates?: number; freeCandidates?: number },
  constraints: readonly { kind: string; enabled?: boolean; weight?: number }[],
  guidance?: { enabled?: boolean; strength?: number },
): number {
  const pins = setPinsCanvas(constraints);
  const guided = isGuidedRun(constraints, guidance);
  if (!pins && !guided) return model.freeCandidates ?? 1;
  const pinned = model.pinnedCandidates !== undefined && pins ? model.pinnedCandidates : 1;
  const byClassifiers = model.guidedCandidates !== undefined && guided ? model.guidedCandidates : 1;
  return Math.max(pinned, byClassifiers);
}

/**
 * A run's sampler.accept_at when it names none, the same in the CLI, the eval and the UI: for a classifier-guided run
 * of a continuous bundle, the largest level among its guided kinds, each kind's `accept_at_by_kind` (sampler_defaults)
 * where the bundle gives one, else its `accept_at`; none (draw every candidate) where a guided kind has no level. A
 * length is judged by its count, not by a level, so it does not take part where other kinds are guided. Only runs
 * whose candidates the guidance classifiers score read it (docs/engine.md, "Choosing among candidates").
 */
export function defaultAcceptAt(
  levels: { acceptAt?: number; acceptAtByKind?: Readonly<Partial<Record<string, number>>> } | undefined,
  constraints: readonly { kind: string; enabled?: boolean; weight?: number }[],
  guidance?: { enabled?: boolean; strength?: number },
): number | undefined {
  const guided = guidedKinds(constraints, guidance);
  if (!guided.size) return undefined;
  if (guided.size > 1) guided.delete('length');
  let level = 0;
  for (const kind of guided) {
    const l = levels?.acceptAtByKind?.[kind] ?? levels?.acceptAt;
    if (l === undefined) return undefined;
    level = Math.max(level, l);
  }
  return level;
}

export const constraintSetSchema = z.object({
  version: z.literal(1),
  name: z.string().max(200).optional(),
  description: z.string().max(5000).optional(),
  constraints: z.array(constraintSchema).max(64),
  sampler: samplerSettings.default(samplerSettings.parse({})),
}).strict();
export type ConstraintSet = z.infer<typeof constraintSetSchema>;
export type ConstraintSetInput = z.input<typeof constraintSetSchema>;

export class ConstraintSetError extends Error {
  readonly code = 'INVALID_CONSTRAINT_SET';
  constructor(message: string, readonly issues: { path: string; message: string }[], readonly source?: string) {
    super(message);
    this.name = 'ConstraintSetError';
  }
}

/** Render a zod path like constraints.2.tags.0 as constraints[2].tags[0]. */
export function formatPath(path: PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
}

/** Validate an unknown value as a constraint set; the error names each offending field (and the file, if given). */
export function parseConstraintSet(value: unknown, source?: string): ConstraintSet {
  const kindIssue = unknownKindIssue(value);
  if (kindIssue) throw new ConstraintSetError(`${source ? `${source}: ` : ''}${kindIssue.path}: ${kindIssue.message}`, [kindIssue], source);
  const result = constraintSetSchema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: formatPath(i.path) || '(root)', message: i.message }));
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  throw new ConstraintSetError(`${source ? `${source}: ` : ''}invalid constraint set: ${summary}`, issues, source);
}

/** zod's discriminated-union message for an unknown kind is generic; name the kind instead. */
function unknownKindIssue(value: unknown): { path: string; message: string } | null {
  if (!value || typeof value !== 'object' || !Array.isArray((value as { constraints?: unknown }).constraints)) return null;
  const list = (value as { constraints: unknown[] }).constraints;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    const kind = c && typeof c === 'object' ? (c as { kind?: unknown }).kind : undefined;
    if (typeof kind !== 'string' || !(CONSTRAINT_KINDS as string[]).includes(kind)) {
      return {
        path: `constraints[${i}].kind`,
        message: `unknown constraint kind ${JSON.stringify(kind)} (known: ${CONSTRAINT_KINDS.join(', ')})`,
      };
    }
  }
  return null;
}
