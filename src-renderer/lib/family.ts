/**
 * Model families in the studio: which family a bundle (or a past run) belongs to, what that means in words, and
 * the sampler settings each family reads. Pure functions, no Svelte: shared by Generate, Compare, Library and tests.
 *
 * - continuous (`continuous-embedding-diffusion`, Diffusion-LM): steps, the sampler (ancestral, ddim with eta,
 *   dpm2m) and the step spacing, prefilled from the bundle's `sampler_defaults` when it has them (docs/ARCHITECTURE.md,
 *   "Model bundle"), clamp, precision and classifier guidance.
 * - masked (`masked-diffusion`, MDLM / LLaDA): steps, block length, confidence, temperature and top-p, prefilled
 *   from the bundle's `sampler_defaults` (docs/ARCHITECTURE.md, "Masked family"), except the temperature: left out
 *   unless the user sets one, so the engine's rule picks it per run (`temperature_unconditional` when nothing is
 *   pinned).
 */
import { CONTINUOUS_SAMPLERS, continuousSpacing, continuousSteps, defaultAcceptAt, defaultCandidates, GUIDANCE_REFERENCE_STEPS, guidanceAtSteps, isGuidedRun, MASKED_CONFIDENCES, MAX_SPACING, maskedRecordTemperature, maskedTemperature, samplerSettings, type SamplerSettings } from '../../src-main/constraints/set';
import { MASK_GLYPH, type ModelSummary } from '../../src-main/engine/types';

export type Family = 'continuous' | 'masked';
export type MaskedConfidence = (typeof MASKED_CONFIDENCES)[number];
export type ContinuousSampler = (typeof CONTINUOUS_SAMPLERS)[number];
export { CONTINUOUS_SAMPLERS, MASKED_CONFIDENCES };

export const KIND_OF_FAMILY: Record<Family, string> = {
  continuous: 'continuous-embedding-diffusion',
  masked: 'masked-diffusion',
};

/** The family of a manifest kind; null for a kind this studio does not know (or a bundle that did not load). */
export function familyOf(kind: string | null | undefined): Family | null {
  if (kind === KIND_OF_FAMILY.masked) return 'masked';
  if (kind === KIND_OF_FAMILY.continuous) return 'continuous';
  return null;
}

export const FAMILY_INFO: Record<Family, { label: string; title: string; tooltip: string }> = {
  continuous: {
    label: 'continuous',
    title: 'Continuous diffusion',
    tooltip:
      'Continuous (embedding) diffusion, Diffusion-LM style: every position starts as Gaussian noise in embedding space and the ' +
      'whole canvas is denoised together at every step. Hard constraints are enforced by projection; soft ones are steered by ' +
      'classifier guidance when the bundle has the classifier.',
  },
  masked: {
    label: 'masked',
    title: 'Masked diffusion',
    tooltip:
      'Masked (absorbing-state) diffusion, MDLM / LLaDA style: every position to generate starts as a mask and each step commits ' +
      'the predictions it is most confident about, so the masks fill in until none is left. Hard constraints are enforced; soft ' +
      'ones are steered by classifiers on masked canvases when the bundle has them, and scored on the outputs otherwise.',
  },
};

export const UNKNOWN_FAMILY = { label: 'unknown family', tooltip: 'The model kind of this bundle or run is not known to this studio.' };

export const CONFIDENCE_INFO: Record<MaskedConfidence, { label: string; hint: string }> = {
  low_confidence: { label: 'low confidence', hint: 'commit the positions whose predicted token is most probable first (LLaDA’s default)' },
  maskgit_plus: { label: 'MaskGIT+', hint: 'rank by the probability of the token drawn at each position (MaskGIT); equal to low confidence at temperature 0' },
  topk_margin: { label: 'top-k margin', hint: 'commit where the best token leads the runner-up by the widest margin' },
  entropy: { label: 'entropy', hint: 'commit where the whole predicted distribution is least uncertain (lowest entropy)' },
  origin: { label: 'random order', hint: 'ignore the model’s confidence: positions are committed in a random order (the original MDLM / D3PM sampler)' },
};

export const SAMPLER_INFO: Record<ContinuousSampler, { label: string; hint: string }> = {
  ancestral: { label: 'ancestral', hint: 'Diffusion-LM’s sampler: each step draws x from the posterior given the clamped x0 (fresh noise every step); meant for many steps' },
  ddim: { label: 'DDIM', hint: 'DDIM on the clamped x0: eta 0 is deterministic (no noise after the start), eta 1 is the ancestral step; reaches a given quality in fewer steps' },
  dpm2m: { label: 'DPM-Solver++(2M)', hint: 'second-order multistep solver on x0 (uses the previous step’s x0 too); deterministic, made for few steps' },
};

/** What the step spacing does, in words (Generate's field tooltip). */
export const SPACING_HINT =
  'Where the denoising steps sit on the training schedule: step k of S is at t = (T − 1)·(k / (S − 1))^spacing. ' +
  '1 = evenly spaced; below 1 = more steps at high noise, where the words are chosen, so fewer steps do; ' +
  'above 1 = more steps at low noise.';

/** Generate's step spacing field: its bounds and step (the engine takes any spacing in (0, MAX_SPACING]). */
export const SPACING_FIELD = { min: 0.1, max: MAX_SPACING, step: 0.05 } as const;

/**
 * A step spacing typed into Generate's field, clamped to the field's bounds; undefined for an empty field or one
 * that is not above 0 (yet: "0" on the way to "0.33"), which leaves the spacing as it was.
 */
export function spacingFromInput(raw: string): number | undefined {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v <= 0) return undefined;
  return Math.min(SPACING_FIELD.max, Math.max(SPACING_FIELD.min, v));
}

/** sampler.candidates (and accept_at, where it stops drawing early) in words; a recipe from before the setting had one per output. */
export function candidatesLabel(candidates: number | undefined, acceptAt?: number): string {
  const k = candidates ?? 1;
  if (k === 1) return 'one per output';
  return acceptAt !== undefined && acceptAt < 1 ? `best of ${k}, stop at p ≥ ${acceptAt}` : `best of ${k}`;
}

/** A step spacing in words, empty for 1 (evenly spaced) or none given (a recipe from before the setting: evenly). */
export function spacingLabel(spacing: number | undefined): string {
  if (spacing === undefined || spacing === 1) return '';
  return `steps spaced ${spacing} (more at ${spacing < 1 ? 'high' : 'low'} noise)`;
}

/**
 * A continuous recipe's sampler in words ("DDIM (eta 0.5)", "ancestral, steps spaced 0.33 (more at high noise)"); a
 * recipe from before samplers were selectable ran ancestral, one from before the spacing evenly spaced steps.
 */
export function continuousSamplerLabel(sampler: Partial<Pick<SamplerSettings, 'method' | 'eta' | 'spacing'>>): string {
  const m = sampler.method ?? 'ancestral';
  const label = SAMPLER_INFO[m]?.label ?? m;
  const base = m === 'ddim' ? `${label} (eta ${sampler.eta ?? 0})` : label;
  const spaced = spacingLabel(sampler.spacing);
  return spaced ? `${base}, ${spaced}` : base;
}

/**
 * A continuous run's guidance as it ran: stepSize and offLastSteps scaled to the step count when scaleToSteps is on
 * (absent in a recipe parsed before the setting existed: on, as the engine parses it).
 */
export function continuousGuidanceLabel(g: SamplerSettings['guidance'], steps: number): string {
  if (!g.enabled) return 'off';
  const scaled = { ...g, scaleToSteps: g.scaleToSteps ?? true };
  const eff = guidanceAtSteps(scaled, steps);
  const round = (v: number) => Number(v.toPrecision(3));
  const base = `strength ${g.strength}, ${g.iterations} iterations × step ${round(eff.stepSize)}, off for the last ${eff.offLastSteps} steps`;
  return eff === scaled ? base : `${base} (step ${g.stepSize} and ${g.offLastSteps} steps at ${GUIDANCE_REFERENCE_STEPS}, scaled to ${steps})`;
}

export const MASKED_KEYS = ['block_length', 'confidence', 'temperature', 'top_p', 'record_temperature'] as const;
export type MaskedKey = (typeof MASKED_KEYS)[number];
/** The masked settings prefilled from the bundle; the temperature is not (left out: the engine's rule decides). */
export const PREFILLED_MASKED_KEYS = ['block_length', 'confidence', 'top_p'] as const;
export interface MaskedSettings {
  steps: number;
  block_length: number;
  confidence: MaskedConfidence;
  temperature: number;
  top_p: number;
  /** The temperature of runs that pin nothing, when the bundle has one. */
  temperature_unconditional?: number;
  /** Never a bundle default (left out: maskedRecordTemperature's rule); here so that every MaskedKey is a field. */
  record_temperature?: number;
  /** The record segment's temperature in runs that pin nothing, when the bundle has one. */
  record_temperature_unconditional?: number;
  /** Runs that pin nothing write a valid record (held to the bundle's record schema). */
  record_schema_hold?: boolean;
}

/** The engine's defaults for a setting a masked bundle's sampler_defaults leaves out (docs/ARCHITECTURE.md). */
export const ENGINE_MASKED_DEFAULTS: MaskedSettings = { steps: 64, block_length: 0, confidence: 'low_confidence', temperature: 0, top_p: 1 };

/** A masked bundle's sampler defaults, completed with the engine's. */
export function maskedDefaults(model: Pick<ModelSummary, 'samplerDefaults'> | null | undefined): MaskedSettings {
  const d = model?.samplerDefaults;
  const confidence = (MASKED_CONFIDENCES as readonly string[]).includes(d?.confidence ?? '') ? (d!.confidence as MaskedConfidence) : ENGINE_MASKED_DEFAULTS.confidence;
  return {
    steps: d?.steps ?? ENGINE_MASKED_DEFAULTS.steps,
    block_length: d?.block_length ?? ENGINE_MASKED_DEFAULTS.block_length,
    confidence,
    temperature: d?.temperature ?? ENGINE_MASKED_DEFAULTS.temperature,
    top_p: d?.top_p ?? ENGINE_MASKED_DEFAULTS.top_p,
    ...(d?.temperature_unconditional !== undefined ? { temperature_unconditional: d.temperature_unconditional } : {}),
    ...(d?.record_temperature_unconditional !== undefined ? { record_temperature_unconditional: d.record_temperature_unconditional } : {}),
    ...(d?.record_schema_hold ? { record_schema_hold: true } : {}),
  };
}

/** What a temperature left out means for this bundle, in words (the temperature field's placeholder). */
export function autoTemperature(d: MaskedSettings): string {
  if (d.temperature_unconditional === undefined) return String(d.temperature);
  return `auto: ${maskedTemperature(d, undefined, true)} with a record, text or infill given, ${maskedTemperature(d, undefined, false)} unconditional`;
}

/** What a record temperature left out means, given the temperature field (the record temperature field's placeholder). */
export function autoRecordTemperature(d: MaskedSettings, temperature: number | undefined): string {
  if (temperature !== undefined) return `the temperature (${temperature})`;
  if (d.record_temperature_unconditional === undefined) return 'the temperature';
  return `auto: ${maskedRecordTemperature(d, {}, false, false)} unconditional and unguided, else the temperature`;
}

/** Whether top-p can matter: some run of these settings samples (temperature above 0) rather than taking the argmax. */
export function mayRunHot(sampler: Pick<SamplerSettings, 'temperature'>, d: MaskedSettings | null): boolean {
  if (sampler.temperature !== undefined) return sampler.temperature > 0;
  return !!d && Math.max(maskedTemperature(d, undefined, true), maskedTemperature(d, undefined, false)) > 0;
}

/** The settings "Use the model's defaults" gives: the bundle's, the temperature left out (the engine's rule). */
export function resetToDefaults(sampler: SamplerSettings, d: MaskedSettings): SamplerSettings {
  const s: SamplerSettings = { ...sampler, steps: d.steps };
  for (const k of PREFILLED_MASKED_KEYS) (s as Record<MaskedKey, unknown>)[k] = d[k];
  delete s.temperature;
  delete s.record_temperature;
  // exact top-k re-scoring back to the bundle's choice
  s.guidance = { ...s.guidance, exactTopK: null };
  return s;
}

/** A continuous model's steps, sampler and step spacing when the user chose none. */
export interface ContinuousSettings {
  steps: number;
  method: ContinuousSampler;
  eta: number;
  /** Step spacing exponent (sampler.spacing; 1 = evenly spaced). */
  spacing: number;
  /** The bundle's spacing for classifier-guided runs, when it has one (a spacing left at `spacing` takes it). */
  guidedSpacing?: number;
  /** The bundle's step count for classifier-guided runs, when it has one (steps left at `steps` take it). */
  guidedSteps?: number;
}

/**
 * What Generate starts with (and a new set gets) for a continuous bundle without sampler_defaults: 40 ancestral
 * steps, evenly spaced, a quick look (the engine's own default for a run that names no steps is 200).
 */
export const STUDIO_CONTINUOUS_START: ContinuousSettings = { steps: 40, method: 'ancestral', eta: 0, spacing: 1 };

/** A continuous model's defaults: its bundle's sampler_defaults, else the studio's start (any other model: the start). */
export function continuousDefaults(model: Pick<ModelSummary, 'kind' | 'continuousDefaults'> | null | undefined): ContinuousSettings {
  const d = familyOf(model?.kind) === 'continuous' ? model?.continuousDefaults : undefined;
  return d
    ? { steps: d.steps, method: d.method, eta: d.eta, spacing: d.spacing ?? 1, ...(d.guidedSpacing !== undefined ? { guidedSpacing: d.guidedSpacing } : {}), ...(d.guidedSteps !== undefined ? { guidedSteps: d.guidedSteps } : {}) }
    : { ...STUDIO_CONTINUOUS_START };
}

/** Whether a continuous bundle brings its own sampler defaults (a measured step count and sampler). */
export function hasContinuousDefaults(model: Pick<ModelSummary, 'kind' | 'continuousDefaults'> | null | undefined): boolean {
  return familyOf(model?.kind) === 'continuous' && !!model?.continuousDefaults;
}

/** A continuous model's defaults in words ("50 steps, DDIM (eta 0.5)", "20 steps, ancestral, steps spaced 0.33 (more at high noise)"). */
export function continuousDefaultsLabel(d: ContinuousSettings): string {
  const steps = d.guidedSteps !== undefined && d.guidedSteps !== d.steps ? `${d.guidedSteps} steps` : '';
  const spacing = d.guidedSpacing !== undefined && d.guidedSpacing !== d.spacing ? spacingLabel(d.guidedSpacing) || 'evenly spaced' : '';
  const guided = steps || spacing ? `; guided runs ${[steps, spacing].filter(Boolean).join(', ')}` : '';
  return `${d.steps} steps, ${continuousSamplerLabel(d)}${guided}`;
}

/** The sampler settings a new set starts with under this model (a continuous bundle with sampler_defaults: its own). */
export function startSampler(model: Pick<ModelSummary, 'kind' | 'continuousDefaults'> | null | undefined): SamplerSettings {
  const s = samplerSettings.parse({ steps: STUDIO_CONTINUOUS_START.steps, samples: 4 });
  if (!hasContinuousDefaults(model)) return s;
  const { steps, method, eta, spacing } = continuousDefaults(model);
  return { ...s, steps, method, eta, spacing };
}

/** The settings "Use the model's defaults" gives a continuous model: its steps, method, eta and spacing. */
export function resetToContinuousDefaults(sampler: SamplerSettings, d: ContinuousSettings): SamplerSettings {
  return { ...sampler, steps: d.steps, method: d.method, eta: d.eta, spacing: d.spacing };
}

/**
 * Continuous settings left at one model's default follow another's: the steps if they equal `from`'s, the sampler
 * (method, and eta for ddim) if it is `from`'s, the spacing if it is `from`'s (none: evenly spaced, 1); what the
 * user chose stays.
 */
function followContinuous(s: SamplerSettings, from: ContinuousSettings, to: ContinuousSettings): SamplerSettings {
  const out = { ...s };
  if (out.steps === from.steps) out.steps = to.steps;
  const method = out.method ?? 'ancestral';
  if (method === from.method && (method !== 'ddim' || (out.eta ?? 0) === from.eta)) {
    out.method = to.method;
    out.eta = to.eta;
  }
  if ((out.spacing ?? 1) === from.spacing) out.spacing = to.spacing;
  return out;
}

/** What the studio remembers of the other family's settings while a model of one family is selected. */
export interface SamplerStash {
  /** Steps chosen while a continuous model was selected. */
  continuousSteps?: number;
  /**
   * The continuous sampler and step spacing chosen while a continuous model was selected (masked models take only
   * ancestral and ignore the spacing). No spacing: kept before the setting existed (evenly spaced).
   */
  continuousMethod?: Pick<SamplerSettings, 'method' | 'eta'> & Partial<Pick<SamplerSettings, 'spacing'>>;
  /** The defaults of the continuous model those were chosen under (settings left at them follow the next one's). */
  continuousDefaults?: ContinuousSettings;
  /** Masked settings chosen for a masked model, kept while a continuous model is selected (temperature: if set). */
  masked?: { modelId: string } & Omit<MaskedSettings, 'temperature' | 'temperature_unconditional' | 'record_temperature_unconditional' | 'record_schema_hold'> & { temperature?: number };
}

type FitModel = Pick<ModelSummary, 'id' | 'kind' | 'samplerDefaults' | 'continuousDefaults'>;

const withoutMasked = (s: SamplerSettings): SamplerSettings => {
  const out = { ...s };
  for (const k of MASKED_KEYS) delete out[k];
  return out;
};

/**
 * The sampler settings after the selected model changes from `prev` (null: none fitted yet) to `next`.
 *
 * - into a masked model: each masked setting (steps too) the user left at the previous masked bundle's default follows
 *   the new bundle's default, and one never set gets it, except the temperature, which is never prefilled (left out,
 *   the engine picks it per run; one the user set stays); coming from a continuous model, steps become the bundle's
 *   default (the continuous steps, sampler and spacing are kept aside: a masked model runs ancestral, evenly spaced)
 *   and the masked settings last chosen for this same bundle come back.
 * - into a continuous model from a masked one: the masked settings are kept aside and leave the set (continuous
 *   bundles ignore them; a recipe should not carry what did not run), and the continuous steps, sampler and spacing
 *   come back.
 * - into a continuous model (from any model, or as the first choice): steps, sampler and spacing left at the previous
 *   continuous model's default (its bundle's sampler_defaults, else the studio's start: 40 ancestral steps) follow the
 *   new bundle's default; chosen ones stay. Between bundles without sampler_defaults nothing changes.
 */
export function fitSampler(sampler: SamplerSettings, prev: FitModel | null, next: FitModel, stash: SamplerStash): { sampler: SamplerSettings; stash: SamplerStash } {
  const from = prev ? familyOf(prev.kind) : null;
  const to = familyOf(next.kind);
  if (to === 'masked') {
    const d = maskedDefaults(next);
    const s: SamplerSettings = { ...sampler };
    const out: SamplerStash = { ...stash };
    if (from === 'masked') {
      const pd = maskedDefaults(prev);
      if (s.steps === pd.steps) s.steps = d.steps;
      for (const k of PREFILLED_MASKED_KEYS) if (s[k] === undefined || s[k] === pd[k]) (s as Record<MaskedKey, unknown>)[k] = d[k];
      return { sampler: s, stash: out };
    }
    // from a continuous model (or the studio's first choice, whose settings are continuous-flavoured)
    out.continuousSteps = sampler.steps;
    out.continuousMethod = { method: sampler.method, eta: sampler.eta, spacing: sampler.spacing ?? 1 };
    out.continuousDefaults = continuousDefaults(prev);
    s.method = 'ancestral';
    s.eta = 0;
    s.spacing = 1;
    const back = stash.masked && stash.masked.modelId === next.id ? stash.masked : null;
    s.steps = back?.steps ?? d.steps;
    for (const k of PREFILLED_MASKED_KEYS) if (back) (s as Record<MaskedKey, unknown>)[k] = back[k];
    else if (s[k] === undefined) (s as Record<MaskedKey, unknown>)[k] = d[k];
    if (back) {
      if (back.temperature === undefined) delete s.temperature;
      else s.temperature = back.temperature;
      if (back.record_temperature === undefined) delete s.record_temperature;
      else s.record_temperature = back.record_temperature;
    }
    return { sampler: s, stash: out };
  }
  if (from === 'masked') {
    const p = maskedDefaults(prev);
    const kept: NonNullable<SamplerStash['masked']> = {
      modelId: prev!.id,
      steps: sampler.steps,
      block_length: sampler.block_length ?? p.block_length,
      confidence: sampler.confidence ?? p.confidence,
      ...(sampler.temperature !== undefined ? { temperature: sampler.temperature } : {}),
      ...(sampler.record_temperature !== undefined ? { record_temperature: sampler.record_temperature } : {}),
      top_p: sampler.top_p ?? p.top_p,
    };
    let s = withoutMasked(sampler);
    if (stash.continuousSteps !== undefined) s.steps = stash.continuousSteps;
    if (stash.continuousMethod) Object.assign(s, stash.continuousMethod);
    if (stash.continuousSteps !== undefined) s = followContinuous(s, stash.continuousDefaults ?? STUDIO_CONTINUOUS_START, continuousDefaults(next));
    return { sampler: s, stash: { ...stash, masked: kept } };
  }
  if (to === 'continuous') {
    const s = followContinuous(sampler, continuousDefaults(from === 'continuous' ? prev : null), continuousDefaults(next));
    return { sampler: s, stash };
  }
  return { sampler, stash };
}

/**
 * A masked model's settings with every masked setting a loaded set or preset left out filled from the bundle's
 * defaults, except the temperature (left out: the engine's rule picks it per run).
 */
export function completeMasked(sampler: SamplerSettings, model: Pick<ModelSummary, 'kind' | 'samplerDefaults'> | null | undefined): SamplerSettings {
  if (familyOf(model?.kind) !== 'masked') return sampler;
  const d = maskedDefaults(model);
  const s = { ...sampler };
  for (const k of PREFILLED_MASKED_KEYS) if (s[k] === undefined) (s as Record<MaskedKey, unknown>)[k] = d[k];
  return s;
}

/** Which run settings the user typed in Generate or a recipe gave; the others follow the bundle's rules per run. */
export interface ChosenSettings {
  spacing: boolean;
  steps: boolean;
  candidates: boolean;
  acceptAt: boolean;
}

/**
 * The settings a run of this model is started with, the one place that applies the bundle's per-run rules to what
 * was left at its defaults (`chosen` false):
 * - candidates: the bundle's pinned, guided or free candidates by what the run does (defaultCandidates);
 * - accept_at: the bundle's for a classifier-guided run of a continuous model, else none (defaultAcceptAt);
 * - spacing and steps: a continuous bundle's `guided_spacing` and `guided_steps` for a guided run.
 * A continuous model's run carries no masked settings; a masked model's runs the ancestral method (the engine refuses
 * the continuous samplers for it) with spacing 1 and no accept_at (it ignores both: its recipe should not name what
 * did not run).
 */
export function samplerForRun(
  sampler: SamplerSettings,
  model: Pick<ModelSummary, 'kind' | 'continuousDefaults' | 'pinnedCandidates' | 'guidedCandidates' | 'freeCandidates'> | null | undefined,
  constraints: readonly { kind: string; enabled?: boolean; weight?: number }[],
  chosen: ChosenSettings,
): SamplerSettings {
  const family = familyOf(model?.kind);
  const s: SamplerSettings = family === 'masked' ? { ...sampler, method: 'ancestral', eta: 0, spacing: 1 } : withoutMasked(sampler);
  if (!chosen.candidates) s.candidates = defaultCandidates(model ?? {}, constraints, s.guidance);
  // masked runs ignore accept_at (their scores are not probabilities of the constraints)
  const acceptAt = family === 'masked' ? undefined : chosen.acceptAt ? s.accept_at : defaultAcceptAt(model?.continuousDefaults, constraints, s.guidance);
  if (acceptAt === undefined) delete s.accept_at;
  else s.accept_at = acceptAt;
  const d = family === 'continuous' ? model?.continuousDefaults : undefined;
  if (!d) return s;
  const guided = isGuidedRun(constraints, s.guidance);
  if (!chosen.spacing && s.spacing === d.spacing) s.spacing = continuousSpacing(d, guided);
  if (!chosen.steps && s.steps === d.steps) s.steps = continuousSteps(d, guided);
  return s;
}

/**
 * One line of a recipe's masked settings, `defaults` naming what a setting the run left out fell back to; a
 * temperature left out with a bundle that has temperature_unconditional is "model default (auto)" (the engine's
 * rule: it depends on what the set pins).
 */
export function maskedSummary(sampler: SamplerSettings, defaults?: MaskedSettings | null): { block: string; confidence: string; temperature: string; topP: string; recordTemperature: string } {
  const pick = <K extends MaskedKey>(k: K): { v: MaskedSettings[K] | undefined; dflt: boolean } =>
    sampler[k] !== undefined ? { v: sampler[k] as MaskedSettings[K], dflt: false } : { v: defaults?.[k], dflt: true };
  const tag = (x: { dflt: boolean }) => (x.dflt ? ' (model default)' : '');
  const b = pick('block_length');
  const c = pick('confidence');
  const t = pick('temperature');
  const p = pick('top_p');
  return {
    block: b.v === undefined ? 'model default' : `${b.v <= 0 ? 'one block' : `${b.v} positions`}${tag(b)}`,
    confidence: c.v === undefined ? 'model default' : `${CONFIDENCE_INFO[c.v]?.label ?? c.v}${tag(c)}`,
    temperature: t.dflt && defaults?.temperature_unconditional !== undefined ? 'model default (auto)'
      : t.v === undefined ? 'model default' : `${t.v === 0 ? '0 (argmax)' : String(t.v)}${tag(t)}`,
    topP: p.v === undefined ? 'model default' : `${p.v}${tag(p)}`,
    recordTemperature: sampler.record_temperature !== undefined ? String(sampler.record_temperature)
      : sampler.temperature !== undefined ? 'the temperature'
        : defaults?.record_temperature_unconditional !== undefined ? 'model default (auto)' : 'the temperature',
  };
}

/** How a still-masked position shows in a masked run's progress canvases. */
export const MASK = MASK_GLYPH;

/** Pieces of a masked-run canvas text: every masked position is a piece of its own, other text splits into words. */
export function maskedWordsOf(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(MASK).flatMap((p, i) => (i === 0 ? [p] : [MASK, p]))) {
    if (part === MASK) out.push(MASK);
    else out.push(...part.split(/\s+/).filter(Boolean));
  }
  return out;
}

/** Pieces of a masked-run record canvas (as recordPiecesOf, each masked position its own piece); they join back to the text. */
export function maskedRecordPiecesOf(text: string): string[] {
  const pieces: string[] = [];
  for (const part of text.split(MASK).flatMap((p, i) => (i === 0 ? [p] : [MASK, p]))) {
    if (part === MASK) pieces.push(MASK);
    else pieces.push(...(part.match(/\s+|[^\s",:{}[\]]+|[",:{}[\]]/g) ?? []));
  }
  return pieces;
}

/**
 * Which pieces of `next` are new since `prev`: those outside a longest common subsequence of the two (so a token
 * committed mid-text marks itself, not everything after it). Masks are never marked. No `prev`: nothing is new.
 */
export function committedPieces(prev: string[] | undefined, next: string[]): boolean[] {
  if (!prev) return next.map(() => false);
  const n = prev.length;
  const m = next.length;
  const L: Uint16Array[] = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i]![j] = prev[i] === next[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  const kept = next.map(() => false);
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (prev[i] === next[j]) {
      kept[j] = true;
      i++;
      j++;
    } else if (L[i + 1]![j]! >= L[i]![j + 1]!) i++;
    else j++;
  }
  return next.map((w, k) => !kept[k] && w !== MASK);
}
