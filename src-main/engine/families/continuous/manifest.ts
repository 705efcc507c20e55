/**
 * The continuous Diffusion-LM family's bundle fields (kind "continuous-embedding-diffusion"): the frozen word
 * embeddings, the sqrt noise schedule, and the x0-predicting denoiser (optionally its int8 variant, and the optional
 * self-conditioning and clean-flag inputs of newer bundles).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { attributeHoldsRecord, BundleError, commonManifestFields, guidedWeights, freeCandidatesField, guidedCandidatesField, pinnedCandidatesField, relPath } from '../../bundle-schema';
import { LENGTH_PIN_DETAIL } from '../../extent';
import { LEXICON_DETAIL } from '../../lexicon';
import type { FamilyManifest } from '../family';
import { CONTINUOUS_SAMPLERS, MAX_SPACING } from '../../../constraints/set';

export const CONTINUOUS_KIND = 'continuous-embedding-diffusion';

/** The denoiser inputs the engine feeds: x_t and t always; x_self_cond and clean when the manifest lists them. */
export const CONTINUOUS_INPUTS: Record<string, { spec: string; required: boolean }> = {
  x_t: { spec: 'float32[B,N,d]', required: true },
  t: { spec: 'float32[B]', required: true },
  /** The previous step's x0 estimate (the raw denoiser output, before clamping); zeros at the first step. */
  x_self_cond: { spec: 'float32[B,N,d]', required: false },
  /** 1 at held (given) positions, 0 elsewhere. */
  clean: { spec: 'float32[B,N]', required: false },
};

/**
 * The sampler a run of this bundle takes when it does not choose one (docs/ARCHITECTURE.md, "Model bundle"): the
 * step count (required), the method (default ancestral), DDIM's eta (default 0) and the step spacing (default 1,
 * evenly); `measured` says how they were
 * chosen (free-form: the evaluation that showed them to reach the 200-step ancestral quality). Absent: 200 ancestral
 * steps, as for every bundle before it.
 */
export const continuousSamplerDefaults = z.object({
  steps: z.number().int().min(1).max(2000),
  method: z.enum(CONTINUOUS_SAMPLERS).default('ancestral'),
  eta: z.number().min(0).max(1).default(0),
  spacing: z.number().gt(0).max(MAX_SPACING).default(1),
  /** The spacing of classifier-guided runs, when it differs (constraints/set.ts continuousSpacing). */
  guided_spacing: z.number().gt(0).max(MAX_SPACING).optional(),
  /** The step count of classifier-guided runs, when it differs (constraints/set.ts continuousSteps). */
  guided_steps: z.number().int().min(1).max(2000).optional(),
  pinned_candidates: pinnedCandidatesField,
  guided_candidates: guidedCandidatesField,
  free_candidates: freeCandidatesField,
  /**
   * A classifier-guided run that names no sampler.accept_at takes this one: its candidates are drawn round by round and
   * an output closes at the first candidate the guidance classifiers give this probability or more.
   */
  accept_at: z.number().gt(0).max(1).optional(),
  /**
   * Per guided kind, a level other than accept_at: a run takes the largest among its guided kinds
   * (constraints/set.ts defaultAcceptAt). Chosen on dev: a kind whose success holds at a lower level stops sooner.
   */
  accept_at_by_kind: z.partialRecord(z.enum(['pos', 'spans', 'attribute', 'length', 'sentiment']), z.number().gt(0).max(1)).optional(),
  measured: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
}).passthrough();
export type ContinuousSamplerDefaults = z.infer<typeof continuousSamplerDefaults>;

export const continuousManifestSchema = z.object({
  ...commonManifestFields,
  kind: z.literal(CONTINUOUS_KIND),
  embedding: z.object({ file: relPath, dim: z.number().int().min(1), dtype: z.literal('float32') }).passthrough(),
  schedule: z.object({ type: z.literal('sqrt'), T: z.number().int().min(1), s: z.number().positive() }).passthrough(),
  denoiser: z.object({
    file: relPath,
    /** Graph inputs by name (type[shape]); absent: x_t and t. */
    inputs: z.record(z.string(), z.string()).optional(),
    outputs: z.record(z.string(), z.string()).optional(),
    /** Int8-weight variant of the same denoiser (training/dlm_train/quantize.py), used on cpu by precision auto. */
    int8: z.object({
      file: relPath,
      /** static: calibrated fixed activation ranges; dynamic: a range per call (couples the samples of a call). */
      activations: z.enum(['static', 'dynamic']).default('dynamic'),
    }).passthrough().optional(),
    /**
     * Trained with the text's <end> and the padding after it given clean in some examples (training
     * train.p_tail_clean), so a length target is held (<end> at the asked position, a clean input) instead of guided.
     */
    held_length: z.boolean().optional(),
  }).passthrough(),
  sampler_defaults: continuousSamplerDefaults.optional(),
  /**
   * Data-to-text's text length from the record (training/dlm_train/text_length.py), for a denoiser that holds a
   * length: <end> held at round(intercept + per_record_token x record tokens) unless a run asks for a length.
   * typical_tokens: the length a sentiment-, attribute- or spans-guided run holds when nothing in it says the length (extent.ts).
   */
  text_length: z.object({ intercept: z.number(), per_record_token: z.number(), typical_tokens: z.number().int().min(1).optional() }).passthrough().optional(),
  /**
   * The bundle's classifier-guidance weight per control, measured on dev (absent: 1), as a masked bundle's: it
   * multiplies the constraint's own weight and the run's strength.
   */
  guidance_defaults: z.object({ weights: guidedWeights }).passthrough().optional(),
}).passthrough();
export type ContinuousManifest = z.infer<typeof continuousManifestSchema>;

/** The inputs this bundle's denoiser takes (name -> type[shape]): x_t, t, plus the optional ones it lists. */
export function denoiserInputs(m: ContinuousManifest): Record<string, string> {
  const out: Record<string, string> = { x_t: CONTINUOUS_INPUTS.x_t!.spec, t: CONTINUOUS_INPUTS.t!.spec };
  for (const name of Object.keys(m.denoiser.inputs ?? {})) if (CONTINUOUS_INPUTS[name]) out[name] = CONTINUOUS_INPUTS[name]!.spec;
  return out;
}

/** Read the embeddings [V, d] (float32 little-endian, row-major). */
export async function loadEmbeddings(dir: string, m: ContinuousManifest, vocabSize: number): Promise<Float32Array> {
  const buf = await readFile(join(dir, m.embedding.file));
  const out = new Float32Array(vocabSize * m.embedding.dim);
  if (buf.byteLength !== out.length * 4) throw embeddingSizeError(dir, m, vocabSize, buf.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

function embeddingSizeError(dir: string, m: ContinuousManifest, vocabSize: number, bytes: number): BundleError {
  const expected = vocabSize * m.embedding.dim * 4;
  return new BundleError(`${dir}: ${m.embedding.file} has ${bytes} bytes, expected vocab size ${vocabSize} x embedding.dim ${m.embedding.dim} x 4 = ${expected}`, m.embedding.file, 'embedding.dim');
}

export const continuousManifest: FamilyManifest<ContinuousManifest> = {
  kind: CONTINUOUS_KIND,
  schema: continuousManifestSchema,
  check(m, c) {
    c.mustList('embedding.file', m.embedding.file);
    c.mustList('denoiser.file', m.denoiser.file);
    if (m.denoiser.int8) c.mustList('denoiser.int8.file', m.denoiser.int8.file);
    for (const [name, spec] of Object.entries(m.denoiser.inputs ?? {})) {
      const known = CONTINUOUS_INPUTS[name];
      if (!known) c.fail(`denoiser.inputs.${name}`, `unknown denoiser input (known: ${Object.keys(CONTINUOUS_INPUTS).join(', ')})`);
      else if (spec.replace(/\s+/g, '') !== known.spec) c.fail(`denoiser.inputs.${name}`, `must be ${known.spec}, got ${spec}`);
    }
    if (m.text_length && !m.denoiser.held_length) c.fail('text_length', 'a text length rule needs a denoiser that holds a length (denoiser.held_length)');
    if (m.denoiser.held_length && !m.denoiser.inputs?.clean) c.fail('denoiser.held_length', 'a held length needs the clean input (denoiser.inputs.clean), which tells the denoiser where <end> is given');
    const d = m.sampler_defaults;
    if (d) {
      if (d.steps > m.schedule.T) c.fail('sampler_defaults.steps', `${d.steps} steps exceed the schedule's T (${m.schedule.T})`);
      if (d.guided_steps !== undefined && d.guided_steps > m.schedule.T) c.fail('sampler_defaults.guided_steps', `${d.guided_steps} steps exceed the schedule's T (${m.schedule.T})`);
      if (d.eta !== 0 && d.method !== 'ddim') c.fail('sampler_defaults.eta', `eta applies to method ddim only (the method is ${d.method})`);
    }
  },
  async verify(dir, m, vocabSize) {
    const bytes = (await stat(join(dir, m.embedding.file))).size;
    if (bytes !== vocabSize * m.embedding.dim * 4) throw embeddingSizeError(dir, m, vocabSize, bytes);
  },
  precisions: (m) => (m.denoiser.int8 ? ['fp32', 'int8'] : ['fp32']),
  softDetail: (m) => {
    const out: Record<string, string> = m.denoiser.held_length ? { length: LENGTH_PIN_DETAIL } : {};
    // the classifier's own words stay first (the compiler's); the lexicon is named beside them
    for (const l of m.lexicons) {
      const lexicon = `${LEXICON_DETAIL} where x0 is rounded to tokens`;
      out[l.control] = m.classifiers.some((c) => c.control === l.control) ? `guided: classifier gradient on x_t, and ${lexicon}` : `guided: ${lexicon}`;
    }
    return Object.keys(out).length ? out : undefined;
  },
  // e2e-default 2.2.4, 16 dev targets x 4 at 40 steps: attribute 75.0% -> 89.1% (docs/evaluation)
  attributeRecord: attributeHoldsRecord,
  summary: (m) => {
    const d = m.sampler_defaults;
    if (!d) return {};
    return { continuousDefaults: { steps: d.steps, method: d.method, eta: d.eta, spacing: d.spacing, ...(d.guided_spacing !== undefined ? { guidedSpacing: d.guided_spacing } : {}), ...(d.guided_steps !== undefined ? { guidedSteps: d.guided_steps } : {}), ...(d.accept_at !== undefined ? { acceptAt: d.accept_at } : {}), ...(d.accept_at_by_kind !== undefined ? { acceptAtByKind: d.accept_at_by_kind } : {}), ...(d.measured !== undefined ? { measured: d.measured } : {}) } };
  },
};

/** Narrow a manifest to the continuous family's (throws, naming the kind, for any other). */
export function asContinuous<M extends { kind: string }>(m: M): ContinuousManifest {
  if (m.kind !== CONTINUOUS_KIND) throw new BundleError(`expected a ${CONTINUOUS_KIND} bundle, got kind ${JSON.stringify(m.kind)}`, 'manifest.json', 'kind');
  return m as unknown as ContinuousManifest;
}
