/**
 * The manifest fields every bundle has, whatever its model family (docs/ARCHITECTURE.md, "Model bundle"), and the
 * error a refused bundle raises. A family adds its own fields and checks (src-main/engine/families/<family>/manifest.ts).
 */
import { isAbsolute, normalize } from 'node:path';
import { z } from 'zod';
import { MAX_CANDIDATES } from '../constraints/set';

export class BundleError extends Error {
  readonly code = 'BUNDLE_INVALID';
  constructor(message: string, readonly file?: string, readonly field?: string) {
    super(message);
    this.name = 'BundleError';
  }
}

/** Manifest format versions this engine reads. */
export const BUNDLE_FORMATS = ['dlm-bundle/1'] as const;

export const relPath = z.string().min(1).refine((p) => !isAbsolute(p) && !normalize(p).split(/[\\/]/).includes('..'), {
  message: 'must be a relative path inside the bundle',
});

const segmentSchema = z.object({
  name: z.string().min(1),
  start: z.number().int().min(0),
  length: z.number().int().min(1),
  format: z.string().optional(),
}).passthrough();

/** The soft kinds classifier guidance can steer (a classifier head each). */
export const GUIDED_KINDS = ['pos', 'spans', 'attribute', 'length', 'sentiment'] as const;

/** A bundle's measured guidance weight per control (both families' guidance_defaults.weights; absent: 1). */
export const guidedWeights = z.object(Object.fromEntries(GUIDED_KINDS.map((k) => [k, z.number().min(0).optional()])) as Record<(typeof GUIDED_KINDS)[number], z.ZodOptional<z.ZodNumber>>).strict().default({});

export const classifierSchema = z.object({
  control: z.enum(GUIDED_KINDS),
  /**
   * The control's own gradient graph per batch size. Empty (no batch sizes) when joint_guidance covers the control:
   * the entry then only describes the head (labels, fields), and every run guides it through the joint graph.
   */
  files: z.record(z.string().regex(/^\d+$/), relPath),
  batch_sizes: z.array(z.number().int().min(1)),
  segment: z.string().min(1),
  labels: z.array(z.string()),
  fields: z.array(z.string()).optional(),
  value_labels: z.record(z.string(), z.array(z.string())).optional(),
  /** Per-control fluency-anchor weight the guidance helper recommends (overrides the engine's default). */
  lambda: z.number().min(0).optional(),
  inputs: z.record(z.string(), z.string()).optional(),
  outputs: z.record(z.string(), z.string()).optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
}).passthrough();

/** One gradient graph over every control's head on the shared trunk (training/guidance/joint.py). */
const jointGuidanceSchema = z.object({
  controls: z.array(z.enum(['pos', 'spans', 'attribute', 'length', 'sentiment'])).min(1),
  files: z.record(z.string().regex(/^\d+$/), relPath),
  batch_sizes: z.array(z.number().int().min(1)).min(1),
  segment: z.string().min(1),
  /** The same graphs with the attribute head scored for one field (select_attribute input): same batch sizes. */
  one_field: z.object({ files: z.record(z.string().regex(/^\d+$/), relPath) }).passthrough().nullable().optional(),
  /**
   * Forward-only copies of the graphs (log p out, no gradient; training/guidance/logp_graphs.py) at these batch
   * sizes, for the masked family's exact top-k re-scoring, which scores many canvases per step.
   */
  logp: z.object({ files: z.record(z.string().regex(/^\d+$/), relPath), batch_sizes: z.array(z.number().int().min(1)).min(1) }).passthrough().nullable().optional(),
}).passthrough();

const scorerSchema = z.object({
  file: relPath,
  inputs: z.record(z.string(), z.string()).optional(),
  outputs: z.record(z.string(), z.string()).optional(),
  bos: z.number().int().min(0).default(1),
  eos: z.number().int().min(0).default(2),
  metrics: z.record(z.string(), z.unknown()).optional(),
}).passthrough();

/** The controls a token label lexicon can serve: a label per text position. */
export const LEXICON_KINDS = ['pos', 'spans'] as const;

/**
 * A token label lexicon (training/guidance/lexicon.py; src-main/engine/lexicon.ts): log p(label | token) as
 * little-endian float32 [V, C], one row per tokenizer id, the columns named by `labels` as the control's classifier
 * names them; `weight` is its weight at guidance strength 1, measured on dev for this bundle.
 */
export const lexiconEntry = z.object({
  control: z.enum(LEXICON_KINDS),
  file: relPath,
  shape: z.tuple([z.number().int().min(1), z.number().int().min(1)]),
  dtype: z.literal('float32'),
  labels: z.array(z.string()).min(1),
  weight: z.number().min(0).default(1),
}).passthrough();
export type LexiconEntry = z.infer<typeof lexiconEntry>;

/** The fields of every manifest (a family's schema extends these with its `kind` and its own fields). */
/**
 * sampler_defaults.pinned_candidates, in both families: the candidates (sampler.candidates) of a run that pins a
 * record, a text or an infill template and names none (constraints/set.ts defaultCandidates), measured on dev.
 */
export const pinnedCandidatesField = z.number().int().min(1).max(MAX_CANDIDATES).optional();

/**
 * sampler_defaults.guided_candidates, in both families: the candidates of a classifier-guided run that names none,
 * each output the one its guidance classifiers score highest (engine/candidates.ts), measured on dev.
 */
export const guidedCandidatesField = pinnedCandidatesField;

/**
 * sampler_defaults.free_candidates, in both families: the candidates of a run that neither guides nor pins
 * (unconditional, or hard constraints only) and names none, each output the one the model's own check scores highest
 * where the family has one (continuous: sampler.ts SelfScoreConfig), else the consensus; measured on dev.
 */
export const freeCandidatesField = pinnedCandidatesField;

export const commonManifestFields = {
  format: z.enum(BUNDLE_FORMATS),
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-"'),
  version: z.string().min(1),
  name: z.string().min(1),
  tokenizer: z.object({ type: z.literal('surface-pieces/1'), vocab: relPath, size: z.number().int().min(5) }).passthrough(),
  canvas: z.object({ length: z.number().int().min(1), segments: z.array(segmentSchema).min(1) }).passthrough(),
  record_schema: z.object({ fields: z.record(z.string(), z.array(z.string())) }).passthrough().nullable().optional(),
  files: z.array(z.object({ path: relPath, sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'), bytes: z.number().int().min(0) }).passthrough()).min(1),
  training: z.record(z.string(), z.unknown()).optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
  classifiers: z.array(classifierSchema).default([]),
  scorer: scorerSchema.nullable().default(null),
  joint_guidance: jointGuidanceSchema.nullable().optional(),
  lexicons: z.array(lexiconEntry).default([]),
  /**
   * The tokens that may stand last in a text: those ending at least `min_texts` training texts and at least
   * `min_share` of their occurrences (training/dlm_train/text_end.py). Guided texts end only on one of them.
   */
  text_end: z.object({ tokens: z.array(z.number().int().min(0)).min(1) }).passthrough().optional(),
};

const commonManifestSchema = z.object(commonManifestFields).passthrough();
export type CommonManifest = z.infer<typeof commonManifestSchema>;
export type ClassifierEntry = z.infer<typeof classifierSchema>;

/** What a family's manifest checks get: `fail` names the field; `mustList` requires a file to be in `files`. */
export interface ManifestChecks {
  fail(field: string, msg: string): never;
  mustList(field: string, path: string): void;
}

/** An ONNX graph input or output as a manifest writes it: `float32[B,N,d]` -> type float32, rank 3. */
export function parseTensorSpec(spec: string): { type: string; dims: string[] } | null {
  const m = /^([a-z0-9]+)\[([^\]]*)\]$/.exec(spec.replace(/\s+/g, ''));
  if (!m) return null;
  return { type: m[1]!, dims: m[2]! === '' ? [] : m[2]!.split(',') };
}

/**
 * Whether a bundle's attribute constraints also hold its record segment to their values (the compiler's
 * CompileModel.attributeRecord): a joint record + text model writes its text from the record beside it, as in
 * data-to-text. Any bundle with a record segment and a record schema; DLM_ATTRIBUTE_RECORD=0 turns it off, for comparisons.
 */
export function attributeHoldsRecord(m: { canvas: { segments: { name: string }[] }; record_schema?: { fields: Record<string, string[]> } | null }): boolean {
  return process.env.DLM_ATTRIBUTE_RECORD !== '0' && m.canvas.segments.some((s) => s.name === 'record') && Object.keys(m.record_schema?.fields ?? {}).length > 0;
}
