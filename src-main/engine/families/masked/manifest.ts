/**
 * The masked (absorbing-state) family's bundle fields (kind "masked-diffusion", docs/ARCHITECTURE.md, "Masked
 * family"): a denoiser from token ids (the mask id anywhere) to logits, the mask id, whether the logits are shifted
 * (output i-1 predicts token i), and the sampler's defaults. No embeddings and no noise schedule.
 */
import { z } from 'zod';
import { attributeHoldsRecord, commonManifestFields, GUIDED_KINDS, guidedWeights, parseTensorSpec, freeCandidatesField, guidedCandidatesField, pinnedCandidatesField, relPath } from '../../bundle-schema';
import { LENGTH_PIN_DETAIL } from '../../extent';
import { LEXICON_DETAIL } from '../../lexicon';
import type { FamilyManifest } from '../family';
import { MASKED_CONFIDENCES } from '../../../constraints/set';

export const MASKED_KIND = 'masked-diffusion';

/** How the positions of a step are ranked (the reference sampler's names, training/dlm_train/masked_sample.py). */
export const CONFIDENCES = MASKED_CONFIDENCES;
export type Confidence = (typeof CONFIDENCES)[number];

/** The denoiser inputs the engine feeds: ids always; t (the masked share of each row) when listed. */
export const MASKED_INPUTS: Record<string, { spec: string; required: boolean }> = {
  ids: { spec: 'int64[B,N]', required: true },
  t: { spec: 'float32[B]', required: false },
};
export const MASKED_OUTPUTS: Record<string, string> = { logits: 'float32[B,N,V]' };

export const maskedSamplerDefaults = z.object({
  steps: z.number().int().min(1).max(100_000).default(64),
  /** Positions per block (semi-autoregressive, LLaDA); 0 or >= the generated positions: one block. */
  block_length: z.number().int().min(0).default(0),
  confidence: z.enum(CONFIDENCES).default('low_confidence'),
  temperature: z.number().min(0).default(0),
  /** The temperature when nothing is pinned (unconditional samples); absent: `temperature` there too. */
  temperature_unconditional: z.number().min(0).optional(),
  /** The record segment's temperature when nothing is pinned (its record is then written first); absent: the run's. */
  record_temperature_unconditional: z.number().min(0).optional(),
  /**
   * true: a run that pins nothing and puts no hard constraint on the record writes a valid record (every field and
   * value one of record_schema's), as a JSON-schema constraint would hold it.
   */
  record_schema_hold: z.boolean().optional(),
  top_p: z.number().gt(0).max(1).default(1),
  pinned_candidates: pinnedCandidatesField,
  guided_candidates: guidedCandidatesField,
  free_candidates: freeCandidatesField,
}).passthrough();

/**
 * Classifier guidance on masked canvases (families/masked/guidance.ts): the logit weight per control at strength 1,
 * and the factor it is multiplied by at the last step (linear from 1 at the first), measured on dev.
 */
export const maskedGuidanceDefaults = z.object({
  weights: guidedWeights,
  /** Weight for a control the bundle gives none. */
  weight: z.number().min(0).default(1),
  anneal_end: z.number().min(0).default(1),
  /** > 0: guidance re-ranks the denoiser's top_k tokens at a position (the others are not proposed there). */
  top_k: z.number().int().min(0).default(0),
  /**
   * Runs that guide one of `controls` score those top_k candidates exactly at the positions a step commits
   * (sampler.guidance.exactTopK's default; constraints/set.ts exactTopKOf); absent: no run does by default.
   */
  exact_top_k: z.object({ controls: z.array(z.enum(GUIDED_KINDS)).min(1) }).strict().optional(),
  /** Generate the guided segment (the text) before the rest of the canvas (an unpinned record then follows it). */
  segment_first: z.boolean().default(false),
  /**
   * What a guided run's candidates add to the guidance terms (classifiers' weighted log p, lexicons) when they are
   * ranked: `weight` x the denoiser's own log p of the guided text, either as each guided token was committed
   * ("commit") or read back from the finished text ("read-back": its tokens masked in 4 interleaved groups and each
   * predicted from the rest, 4 denoiser calls per batch of candidates). Without the field: commit, weight 1.
   */
  candidate_fluency: z.object({
    by: z.enum(['commit', 'read-back']),
    weight: z.number().min(0),
  }).strict().default({ by: 'commit', weight: 1 }),
  /**
   * Remasking rounds after the plan (sampler.ts) in runs that guide one of `controls`: the `fraction` of the text's
   * tokens least likely under the denoiser go back to the mask and are generated again. 0 rounds: none. `by`:
   * "commit" ranks a token by its probability when it was committed; "context" by the denoiser's probability of it
   * on the canvas as it stands, read from its logits at the committed position (one call per round). A denoiser
   * trained on masked positions only still ranks by them (e2e-masked 1.0.2 puts a substituted dev token below the
   * clean ones with AUC 0.98), though it gives clean tokens low probabilities there.
   */
  remask: z.object({
    rounds: z.number().int().min(0).max(8),
    fraction: z.number().gt(0).max(1),
    by: z.enum(['commit', 'context']).default('commit'),
    controls: z.array(z.enum(GUIDED_KINDS)).min(1),
  }).strict().optional(),
}).passthrough();
export type MaskedGuidanceDefaults = z.infer<typeof maskedGuidanceDefaults>;

export const maskedManifestSchema = z.object({
  ...commonManifestFields,
  kind: z.literal(MASKED_KIND),
  denoiser: z.object({
    file: relPath,
    inputs: z.record(z.string(), z.string()),
    outputs: z.record(z.string(), z.string()),
    opset: z.number().int().min(1).optional(),
    /**
     * Int8-weight variant of the same denoiser (training/dlm_train/quantize.py), used on cpu by precision auto. Static
     * activations only: a range per call (dynamic) would couple the samples of a batch, and a masked run's candidates
     * share one.
     */
    int8: z.object({
      file: relPath,
      activations: z.literal('static'),
      /** 'fp32': precision auto runs classifier-guided runs on the fp32 graph (guidance measured worse on the int8 one). */
      guided_runs: z.enum(['int8', 'fp32']).default('int8'),
    }).passthrough().optional(),
  }).passthrough(),
  mask: z.object({
    id: z.number().int().min(0),
    /** true: output position i-1 predicts token i (Dream / DiffuLLaMA); position 0 uses output 0. */
    shifted_logits: z.boolean(),
  }).passthrough(),
  sampler_defaults: maskedSamplerDefaults.default(maskedSamplerDefaults.parse({})),
  guidance_defaults: maskedGuidanceDefaults.default(maskedGuidanceDefaults.parse({})),
}).passthrough();
export type MaskedManifest = z.infer<typeof maskedManifestSchema>;

/** The inputs this bundle's denoiser takes (name -> type[shape]). */
export function maskedInputs(m: MaskedManifest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(m.denoiser.inputs)) out[name] = MASKED_INPUTS[name]!.spec;
  return out;
}

export const maskedManifest: FamilyManifest<MaskedManifest> = {
  kind: MASKED_KIND,
  schema: maskedManifestSchema,
  check(m, c) {
    c.mustList('denoiser.file', m.denoiser.file);
    if (m.denoiser.int8) c.mustList('denoiser.int8.file', m.denoiser.int8.file);
    for (const [name, spec] of Object.entries(m.denoiser.inputs)) {
      const known = MASKED_INPUTS[name];
      if (!known) c.fail(`denoiser.inputs.${name}`, `unknown denoiser input (known: ${Object.keys(MASKED_INPUTS).join(', ')})`);
      else if (spec.replace(/\s+/g, '') !== known.spec) c.fail(`denoiser.inputs.${name}`, `must be ${known.spec}, got ${spec}`);
    }
    for (const [name, { required, spec }] of Object.entries(MASKED_INPUTS)) {
      if (required && !(name in m.denoiser.inputs)) c.fail(`denoiser.inputs.${name}`, `missing (the denoiser takes ${name} ${spec})`);
    }
    const logits = m.denoiser.outputs.logits;
    if (m.guidance_defaults.exact_top_k && m.guidance_defaults.top_k <= 0) c.fail('guidance_defaults.exact_top_k', 'exact re-scoring scores the denoiser\'s top k candidates: guidance_defaults.top_k must be above 0');
    if (logits === undefined) c.fail('denoiser.outputs.logits', `missing (the denoiser returns logits ${MASKED_OUTPUTS.logits})`);
    const parsed = parseTensorSpec(logits!);
    if (!parsed || parsed.type !== 'float32' || parsed.dims.length !== 3) c.fail('denoiser.outputs.logits', `must be ${MASKED_OUTPUTS.logits}, got ${logits}`);
    // classifier graphs of a masked bundle read token ids and return the gradient over one-hot inputs [B, Lt, V]
    type Io = Record<string, string> | undefined;
    const graphs: { where: string; inputs: Io; outputs: Io }[] = m.classifiers.map((e, i) => ({ where: `classifiers[${i}]`, inputs: e.inputs, outputs: e.outputs }));
    if (m.joint_guidance) graphs.push({ where: 'joint_guidance', inputs: m.joint_guidance.inputs as Io, outputs: m.joint_guidance.outputs as Io });
    for (const { where, inputs, outputs } of graphs) {
      if (!inputs || inputs.ids?.replace(/\s+/g, '') !== `int64[B,${m.canvas.length}]`) {
        c.fail(`${where}.inputs.ids`, `a masked bundle's classifier graphs read the canvas's token ids (ids int64[B,${m.canvas.length}]), got ${inputs?.ids ?? (inputs?.x_t ? 'x_t (a continuous classifier)' : 'none')}`);
      }
      const grad = outputs?.grad ? parseTensorSpec(outputs.grad) : null;
      if (!grad || grad.type !== 'float32' || grad.dims.length !== 3) c.fail(`${where}.outputs.grad`, `must be float32[B,Lt,V] (the gradient over one-hot text tokens), got ${outputs?.grad ?? 'none'}`);
    }
  },
  precisions: (m) => (m.denoiser.int8 ? ['fp32', 'int8'] : ['fp32']),
  // the held record is written before the text (masked/index.ts)
  attributeRecord: attributeHoldsRecord,
  summary: (m) => ({
    ...(m.denoiser.int8 ? { int8GuidedRuns: m.denoiser.int8.guided_runs } : {}),
    // exact top-k re-scoring is offered where classifier graphs and a top-k cut are (masked/guidance.ts)
    ...(m.classifiers.length && m.guidance_defaults.top_k > 0 ? { exactTopK: m.guidance_defaults.exact_top_k?.controls ?? [] } : {}),
    samplerDefaults: {
      steps: m.sampler_defaults.steps, block_length: m.sampler_defaults.block_length, confidence: m.sampler_defaults.confidence,
      temperature: m.sampler_defaults.temperature, top_p: m.sampler_defaults.top_p,
      ...(m.sampler_defaults.temperature_unconditional !== undefined ? { temperature_unconditional: m.sampler_defaults.temperature_unconditional } : {}),
      ...(m.sampler_defaults.record_temperature_unconditional !== undefined ? { record_temperature_unconditional: m.sampler_defaults.record_temperature_unconditional } : {}),
      ...(m.sampler_defaults.record_schema_hold ? { record_schema_hold: true } : {}),
    },
  }),
  /** Kinds without a classifier on masked canvases in this bundle (training/guidance/masked.py makes them); length
   * needs none: it is pinned. */
  unservedSoft(m) {
    const kinds = GUIDED_KINDS.filter((k) => k !== 'length' && !m.classifiers.some((c) => c.control === k) && !m.lexicons.some((l) => l.control === k));
    if (!kinds.length) return undefined;
    return {
      kinds,
      detail: `not served by this masked bundle: scored on the outputs, not steered (it has no ${kinds.join('/')} classifier on masked canvases)`,
    };
  },
  softDetail(m) {
    const out: Record<string, string> = { length: LENGTH_PIN_DETAIL };
    for (const c of m.classifiers) if (c.control !== 'length') out[c.control] = 'guided: classifier gradient over the masked canvas\'s tokens added to the denoiser\'s logits';
    for (const l of m.lexicons) out[l.control] = out[l.control] ? `${out[l.control]}, and ${LEXICON_DETAIL}` : `guided: ${LEXICON_DETAIL}`;
    return out;
  },
};
