/** Model families in the renderer (src-renderer/lib/family.ts): family of a kind, sampler settings per family, mask pieces. */
import { describe, expect, it } from 'vitest';
import { MAX_SPACING, parseConstraintSet, samplerSettings } from '../../../src-main/constraints/set';
import { MASK_GLYPH } from '../../../src-main/engine/types';
import {
  candidatesLabel, autoTemperature,
  CONFIDENCE_INFO,
  committedPieces,
  completeMasked,
  CONTINUOUS_SAMPLERS,
  continuousDefaults,
  continuousDefaultsLabel,
  continuousGuidanceLabel,
  continuousSamplerLabel,
  familyOf,
  fitSampler,
  MASKED_CONFIDENCES,
  maskedDefaults,
  maskedRecordPiecesOf,
  maskedSummary,
  autoRecordTemperature,
  maskedWordsOf,
  mayRunHot,
  resetToContinuousDefaults,
  resetToDefaults,
  SAMPLER_INFO,
  samplerForRun,
  SPACING_FIELD,
  SPACING_HINT,
  spacingFromInput,
  spacingLabel,
  startSampler,
  STUDIO_CONTINUOUS_START,
  type SamplerStash,
} from '../../../src-renderer/lib/family';

const continuous = { id: 'e2e-default', kind: 'continuous-embedding-diffusion' };
/** Candidates and accept_at as the sampler has them (chosen); spacing and steps left at the bundle's defaults. */
const KEPT = { spacing: false, steps: false, candidates: true, acceptAt: true };
const maskedA = { id: 'masked-tiny', kind: 'masked-diffusion', samplerDefaults: { steps: 12, block_length: 0, confidence: 'low_confidence', temperature: 0, top_p: 1 } };
const maskedB = { id: 'e2e-masked', kind: 'masked-diffusion', samplerDefaults: { steps: 64, block_length: 16, confidence: 'entropy', temperature: 0.7, top_p: 0.9 } };
/** A bundle with sampler_defaults.temperature_unconditional: argmax when something is pinned, 0.5 when nothing is. */
const maskedAuto = { id: 'e2e-masked-auto', kind: 'masked-diffusion', samplerDefaults: { steps: 64, block_length: 8, confidence: 'low_confidence', temperature: 0, top_p: 1, temperature_unconditional: 0.5 } };
const base = samplerSettings.parse({ steps: 40, samples: 4 });
/** Continuous bundles with sampler_defaults (a measured step count and sampler). */
const contSd = { id: 'e2e-default', kind: 'continuous-embedding-diffusion', continuousDefaults: { steps: 50, method: 'ancestral' as const, eta: 0, spacing: 1, measured: 'docs/evaluation' } };
const contDdim = { id: 'e2e-ddim', kind: 'continuous-embedding-diffusion', continuousDefaults: { steps: 25, method: 'ddim' as const, eta: 0.5, spacing: 1 } };
/** A bundle whose measured default puts more steps at high noise (20 steps at spacing 0.33). */
const contSpaced = { id: 'e2e-spaced', kind: 'continuous-embedding-diffusion', continuousDefaults: { steps: 20, method: 'ancestral' as const, eta: 0, spacing: 0.33 } };
const contPlain = { id: 'user-bundle', kind: 'continuous-embedding-diffusion' };

describe('model families', () => {
  it('names the family of each manifest kind, and none for an unknown or failed bundle', () => {
    expect(familyOf('masked-diffusion')).toBe('masked');
    expect(familyOf('continuous-embedding-diffusion')).toBe('continuous');
    expect(familyOf('')).toBeNull();
    expect(familyOf(undefined)).toBeNull();
    expect(familyOf('autoregressive')).toBeNull();
  });

  it('explains every confidence the engine knows', () => {
    expect(Object.keys(CONFIDENCE_INFO).sort()).toEqual([...MASKED_CONFIDENCES].sort());
  });

  it('completes a bundle’s sampler defaults with the engine’s', () => {
    expect(maskedDefaults(maskedA)).toEqual({ steps: 12, block_length: 0, confidence: 'low_confidence', temperature: 0, top_p: 1 });
    expect(maskedDefaults({})).toEqual({ steps: 64, block_length: 0, confidence: 'low_confidence', temperature: 0, top_p: 1 });
    expect(maskedDefaults(maskedA)).not.toHaveProperty('temperature_unconditional');
    expect(maskedDefaults(maskedAuto)).toMatchObject({ temperature: 0, temperature_unconditional: 0.5 });
  });

  it('says what a temperature left out means (the field’s placeholder), and whether top-p can matter', () => {
    expect(autoTemperature(maskedDefaults(maskedAuto))).toBe('auto: 0 with a record, text or infill given, 0.5 unconditional');
    expect(autoTemperature(maskedDefaults(maskedA))).toBe('0');
    expect(autoTemperature(maskedDefaults(maskedB))).toBe('0.7');
    // left out: top-p matters when either temperature the rule may pick is above 0
    expect(mayRunHot({}, maskedDefaults(maskedAuto))).toBe(true);
    expect(mayRunHot({}, maskedDefaults(maskedA))).toBe(false);
    expect(mayRunHot({ temperature: 0 }, maskedDefaults(maskedAuto))).toBe(false);
    expect(mayRunHot({ temperature: 0.3 }, maskedDefaults(maskedA))).toBe(true);
  });
});

describe('sampler settings follow the selected model', () => {
  it('prefills a masked bundle’s defaults (steps too) when it is the first model, the temperature left out', () => {
    const { sampler, stash } = fitSampler(base, null, maskedA, {});
    expect(sampler).toMatchObject({ steps: 12, block_length: 0, confidence: 'low_confidence', top_p: 1, samples: 4 });
    expect(sampler).not.toHaveProperty('temperature');
    expect(stash.continuousSteps).toBe(40);
    expect(() => parseConstraintSet({ version: 1, constraints: [], sampler })).not.toThrow();
    expect(fitSampler(base, null, maskedAuto, {}).sampler).not.toHaveProperty('temperature');
  });

  it('“Use the model’s defaults”: the bundle’s settings, the temperature left out again', () => {
    const fitted = fitSampler(base, null, maskedAuto, {}).sampler;
    const chosen = { ...fitted, steps: 9, block_length: 2, confidence: 'origin' as const, temperature: 1.3, top_p: 0.5, guidance: { ...fitted.guidance, exactTopK: true, strength: 2 } };
    const reset = resetToDefaults(chosen, maskedDefaults(maskedAuto));
    expect(reset).toMatchObject({ steps: 64, block_length: 8, confidence: 'low_confidence', top_p: 1, samples: 4 });
    // exact top-k re-scoring back to the bundle's choice; the guidance strength is the user's own
    expect(reset.guidance).toMatchObject({ exactTopK: null, strength: 2 });
    expect(reset).not.toHaveProperty('temperature');
    expect(reset).not.toHaveProperty('temperature_unconditional');
    expect(() => parseConstraintSet({ version: 1, constraints: [], sampler: reset })).not.toThrow();
  });

  it('leaves a continuous model’s settings alone', () => {
    expect(fitSampler(base, null, continuous, {}).sampler).toEqual(base);
  });

  it('switching continuous -> masked -> continuous -> masked keeps each family’s choices', () => {
    let stash: SamplerStash = {};
    let s = { ...base, steps: 30 };
    ({ sampler: s, stash } = fitSampler(s, continuous, maskedA, stash));
    expect(s.steps).toBe(12);
    s = { ...s, steps: 20, confidence: 'topk_margin', block_length: 8 };
    ({ sampler: s, stash } = fitSampler(s, maskedA, continuous, stash));
    expect(s.steps).toBe(30);
    for (const k of ['block_length', 'confidence', 'temperature', 'top_p']) expect(k in s, k).toBe(false);
    ({ sampler: s, stash } = fitSampler(s, continuous, maskedA, stash));
    expect(s).toMatchObject({ steps: 20, confidence: 'topk_margin', block_length: 8, top_p: 1 });
    expect(s).not.toHaveProperty('temperature');
    // a temperature the user set comes back too
    ({ sampler: s, stash } = fitSampler({ ...s, temperature: 0.9 }, maskedA, continuous, stash));
    expect(s).not.toHaveProperty('temperature');
    ({ sampler: s, stash } = fitSampler(s, continuous, maskedA, stash));
    expect(s.temperature).toBe(0.9);
  });

  it('between masked bundles, settings left at the old default follow the new default; chosen ones stay', () => {
    const start = fitSampler(base, null, maskedA, {}).sampler;
    const { sampler } = fitSampler({ ...start, temperature: 0.5 }, maskedA, maskedB, {});
    expect(sampler).toMatchObject({ steps: 64, block_length: 16, confidence: 'entropy', temperature: 0.5, top_p: 0.9 });
    // a temperature left out stays out (each bundle's rule applies)
    expect(fitSampler(start, maskedA, maskedB, {}).sampler).not.toHaveProperty('temperature');
  });

  it('a continuous model’s run carries no masked settings; a masked model’s carries them all', () => {
    const masked = fitSampler(base, null, maskedA, {}).sampler;
    expect(samplerForRun(masked, continuous, [], KEPT)).not.toHaveProperty('confidence');
    expect(samplerForRun(masked, maskedA, [], KEPT)).toMatchObject({ confidence: 'low_confidence', block_length: 0 });
    expect(samplerForRun(masked, maskedA, [], KEPT)).not.toHaveProperty('temperature');
    // accept_at (a continuous family's early stop) stays with continuous runs
    expect(samplerForRun({ ...masked, accept_at: 0.9 }, maskedA, [], KEPT)).not.toHaveProperty('accept_at');
    expect(samplerForRun({ ...base, accept_at: 0.9 }, continuous, [], KEPT).accept_at).toBe(0.9);
  });

  it('the continuous sampler: kept aside while a masked model is selected (which runs ancestral), back on return; named in words', () => {
    let stash: SamplerStash = {};
    let s: typeof base = { ...base, method: 'ddim', eta: 0.5 };
    ({ sampler: s, stash } = fitSampler(s, continuous, maskedA, stash));
    expect(s).toMatchObject({ method: 'ancestral', eta: 0 });
    expect(samplerForRun({ ...s, method: 'dpm2m' }, maskedA, [], KEPT).method).toBe('ancestral');
    ({ sampler: s, stash } = fitSampler(s, maskedA, continuous, stash));
    expect(s).toMatchObject({ method: 'ddim', eta: 0.5 });
    expect(samplerForRun(s, continuous, [], KEPT)).toMatchObject({ method: 'ddim', eta: 0.5 });
    for (const m of CONTINUOUS_SAMPLERS) expect(SAMPLER_INFO[m].hint.length).toBeGreaterThan(20);
    expect(continuousSamplerLabel({ method: 'ddim', eta: 0.5 })).toBe('DDIM (eta 0.5)');
    expect(continuousSamplerLabel({ method: 'dpm2m', eta: 0 })).toBe('DPM-Solver++(2M)');
    // a recipe from before the samplers: ancestral
    expect(continuousSamplerLabel({})).toBe('ancestral');
  });

  it('summarises a recipe’s masked settings, naming the ones that fell back to the model’s defaults', () => {
    const s = maskedSummary({ ...base, block_length: 8, confidence: 'topk_margin' }, maskedDefaults(maskedA));
    expect(s).toEqual({ block: '8 positions', confidence: 'top-k margin', temperature: '0 (argmax) (model default)', topP: '1 (model default)', recordTemperature: 'the temperature' });
    expect(maskedSummary(base, null).block).toBe('model default');
    // a bundle with temperature_unconditional: the temperature depended on what the set pinned
    expect(maskedSummary(base, maskedDefaults(maskedAuto)).temperature).toBe('model default (auto)');
    expect(maskedSummary({ ...base, temperature: 0 }, maskedDefaults(maskedAuto)).temperature).toBe('0 (argmax)');
    expect(maskedSummary({ ...base, temperature: 0.5 }, maskedDefaults(maskedAuto)).temperature).toBe('0.5');
    // a bundle with record_temperature_unconditional: the record's temperature too
    const rec = maskedDefaults({ ...maskedAuto, samplerDefaults: { ...maskedAuto.samplerDefaults, record_temperature_unconditional: 1 } });
    expect(maskedSummary(base, rec).recordTemperature).toBe('model default (auto)');
    expect(maskedSummary({ ...base, temperature: 0.3 }, rec).recordTemperature).toBe('the temperature');
    expect(maskedSummary({ ...base, record_temperature: 1.2 }, rec).recordTemperature).toBe('1.2');
    expect(autoRecordTemperature(rec, undefined)).toBe('auto: 1 unconditional and unguided, else the temperature');
    expect(autoRecordTemperature(rec, 0.4)).toBe('the temperature (0.4)');
    expect(autoRecordTemperature(maskedDefaults(maskedAuto), undefined)).toBe('the temperature');
    // "Use the model's defaults" leaves both temperatures to the engine's rule
    expect(resetToDefaults({ ...base, temperature: 0.2, record_temperature: 2 }, rec)).not.toHaveProperty('record_temperature');
  });
});

describe('continuous bundles with sampler_defaults', () => {
  it('their defaults; a bundle without them (or a masked one) has the studio’s start', () => {
    expect(continuousDefaults(contSd)).toEqual({ steps: 50, method: 'ancestral', eta: 0, spacing: 1 });
    expect(continuousDefaults(contDdim)).toEqual({ steps: 25, method: 'ddim', eta: 0.5, spacing: 1 });
    expect(continuousDefaults(contSpaced)).toEqual({ steps: 20, method: 'ancestral', eta: 0, spacing: 0.33 });
    expect(STUDIO_CONTINUOUS_START.spacing).toBe(1);
    expect(continuousDefaults(contPlain)).toEqual(STUDIO_CONTINUOUS_START);
    expect(continuousDefaults(maskedA)).toEqual(STUDIO_CONTINUOUS_START);
    // a continuous-looking field on a masked summary is not the masked model's (the kind decides)
    expect(continuousDefaults({ ...maskedA, continuousDefaults: contSd.continuousDefaults })).toEqual(STUDIO_CONTINUOUS_START);
    expect(continuousDefaultsLabel(continuousDefaults(contDdim))).toBe('25 steps, DDIM (eta 0.5)');
  });

  it('a bundle with guided_spacing: a spacing left at its default takes it in guided runs; one the user chose stays', () => {
    const guidedSp = { id: 'e2e-gs', kind: 'continuous-embedding-diffusion', continuousDefaults: { steps: 40, method: 'ancestral' as const, eta: 0, spacing: 0.5, guidedSpacing: 1 } };
    expect(continuousDefaultsLabel(continuousDefaults(guidedSp))).toBe('40 steps, ancestral, steps spaced 0.5 (more at high noise); guided runs evenly spaced');
    const s = startSampler(guidedSp);
    expect(s.spacing).toBe(0.5);
    expect(s).not.toHaveProperty('guidedSpacing'); // a sampler setting of its own would fail the run's schema
    const attribute = [{ kind: 'attribute', field: 'food', value: 'Thai' }];
    expect(samplerForRun(s, guidedSp, attribute, KEPT).spacing).toBe(1);
    expect(samplerForRun(s, guidedSp, [], KEPT).spacing).toBe(0.5);
    const record = [{ kind: 'record', value: { name: 'A' } }];
    expect(samplerForRun(s, guidedSp, record, KEPT).spacing).toBe(0.5);
    expect(samplerForRun({ ...s, guidance: { ...s.guidance, enabled: false } }, guidedSp, attribute, KEPT).spacing).toBe(0.5);
    expect(samplerForRun({ ...s, spacing: 0.7 }, guidedSp, attribute, KEPT).spacing).toBe(0.7);
    expect(samplerForRun(s, guidedSp, attribute, { ...KEPT, spacing: true }).spacing).toBe(0.5); // chosen in Generate (typed, or a recipe's)
    expect(samplerForRun(s, contSpaced, attribute, KEPT).spacing).toBe(0.5); // no guided_spacing: the spacing as set
  });

  it('a bundle with guided_steps: steps left at its default take them in guided runs; steps the user chose stay', () => {
    const guidedSt = { id: 'e2e-gst', kind: 'continuous-embedding-diffusion', continuousDefaults: { steps: 40, method: 'ancestral' as const, eta: 0, spacing: 0.5, guidedSpacing: 1, guidedSteps: 30 } };
    expect(continuousDefaultsLabel(continuousDefaults(guidedSt))).toBe('40 steps, ancestral, steps spaced 0.5 (more at high noise); guided runs 30 steps, evenly spaced');
    expect(continuousDefaultsLabel(continuousDefaults({ ...guidedSt, continuousDefaults: { ...guidedSt.continuousDefaults, guidedSpacing: undefined } }))).toBe('40 steps, ancestral, steps spaced 0.5 (more at high noise); guided runs 30 steps');
    const s = startSampler(guidedSt);
    expect(s.steps).toBe(40);
    expect(s).not.toHaveProperty('guidedSteps');
    const pos = [{ kind: 'pos', tags: ['DET', 'NOUN'] }];
    expect(samplerForRun(s, guidedSt, pos, KEPT)).toMatchObject({ steps: 30, spacing: 1 });
    const record = [{ kind: 'record', value: { name: 'A' } }];
    expect(samplerForRun(s, guidedSt, record, KEPT)).toMatchObject({ steps: 40, spacing: 0.5 });
    expect(samplerForRun({ ...s, guidance: { ...s.guidance, enabled: false } }, guidedSt, pos, KEPT).steps).toBe(40);
    expect(samplerForRun({ ...s, steps: 60 }, guidedSt, pos, KEPT).steps).toBe(60); // not the default: stays
    expect(samplerForRun(s, guidedSt, pos, { ...KEPT, steps: true })).toMatchObject({ steps: 40, spacing: 1 }); // typed 40, or a recipe's
    expect(samplerForRun(s, guidedSt, pos, { ...KEPT, spacing: true })).toMatchObject({ steps: 30, spacing: 0.5 });
  });

  it('candidates and accept_at left at the defaults follow the bundle’s rule for what the run does; chosen ones stay', () => {
    const cont = { id: 'e2e-c', kind: 'continuous-embedding-diffusion', pinnedCandidates: 4, guidedCandidates: 4, freeCandidates: 2,
      continuousDefaults: { steps: 40, method: 'ancestral' as const, eta: 0, spacing: 1, acceptAt: 0.9 } };
    const none = { spacing: false, steps: false, candidates: false, acceptAt: false };
    const s = { ...startSampler(cont), candidates: 1 };
    const pos = [{ kind: 'pos', tags: ['DET', 'NOUN'] }];
    expect(samplerForRun(s, cont, pos, none)).toMatchObject({ candidates: 4, accept_at: 0.9 });
    // a free run: the free candidates, and no accept_at (nothing scores its candidates)
    const free = samplerForRun({ ...s, accept_at: 0.5 }, cont, [], none);
    expect(free.candidates).toBe(2);
    expect(free).not.toHaveProperty('accept_at');
    expect(samplerForRun({ ...s, accept_at: 0.5 }, cont, pos, { ...none, candidates: true, acceptAt: true })).toMatchObject({ candidates: 1, accept_at: 0.5 });
    // a chosen accept_at that is absent (draw all) stays absent
    expect(samplerForRun(s, cont, pos, { ...none, acceptAt: true })).not.toHaveProperty('accept_at');
    // a masked model's run never carries accept_at, chosen or not
    const masked = { ...maskedA, guidedCandidates: 3 };
    expect(samplerForRun({ ...s, accept_at: 0.5 }, masked, pos, { ...none, acceptAt: true })).not.toHaveProperty('accept_at');
    expect(samplerForRun(s, masked, pos, none).candidates).toBe(3);
    // a bundle's per-kind levels: spans alone stop at theirs, spans with POS at the larger
    const byKind = { ...cont, continuousDefaults: { ...cont.continuousDefaults, acceptAtByKind: { spans: 0.5 } } };
    const spans = [{ kind: 'spans', spans: [[0, 1, 'NP']] }];
    expect(samplerForRun(s, byKind, spans, none).accept_at).toBe(0.5);
    expect(samplerForRun(s, byKind, [...spans, ...pos], none).accept_at).toBe(0.9);
  });

  it('a first choice takes the bundle’s steps and sampler; a bundle without them leaves the start alone', () => {
    expect(fitSampler(base, null, contDdim, {}).sampler).toEqual({ ...base, steps: 25, method: 'ddim', eta: 0.5 });
    expect(fitSampler(base, null, contSd, {}).sampler).toEqual({ ...base, steps: 50 });
    expect(fitSampler(base, null, contPlain, {}).sampler).toEqual(base);
    // a new set under such a model starts from them; otherwise from the studio's start
    expect(startSampler(contDdim)).toMatchObject({ steps: 25, method: 'ddim', eta: 0.5, samples: 4 });
    expect(startSampler(contPlain)).toEqual(base);
    expect(startSampler(maskedA)).toEqual(base);
    expect(startSampler(null)).toEqual(base);
  });

  it('between continuous bundles: settings left at the old default follow the new one; chosen ones stay', () => {
    let s = fitSampler(base, null, contSd, {}).sampler;
    s = fitSampler(s, contSd, contDdim, {}).sampler;
    expect(s).toMatchObject({ steps: 25, method: 'ddim', eta: 0.5 });
    s = fitSampler(s, contDdim, contPlain, {}).sampler;
    expect(s).toMatchObject({ steps: 40, method: 'ancestral', eta: 0 });
    // chosen steps stay; a chosen sampler stays
    const chosen = fitSampler({ ...base, steps: 120, method: 'dpm2m' }, contPlain, contDdim, {}).sampler;
    expect(chosen).toMatchObject({ steps: 120, method: 'dpm2m' });
    // steps chosen, sampler left: only the sampler follows
    expect(fitSampler({ ...base, steps: 80 }, contPlain, contDdim, {}).sampler).toMatchObject({ steps: 80, method: 'ddim', eta: 0.5 });
    // an eta the user changed under the bundle's ddim: the sampler is theirs
    expect(fitSampler({ ...base, steps: 25, method: 'ddim', eta: 0.2 }, contDdim, contSd, {}).sampler).toMatchObject({ steps: 50, method: 'ddim', eta: 0.2 });
  });

  it('through a masked model: the continuous settings come back, following the bundle returned to when left at a default', () => {
    let stash: SamplerStash = {};
    let s = fitSampler(base, null, contDdim, {}).sampler;
    ({ sampler: s, stash } = fitSampler(s, contDdim, maskedA, stash));
    expect(s).toMatchObject({ steps: 12, method: 'ancestral', eta: 0 });
    // back to the same bundle: its defaults
    let back = fitSampler(s, maskedA, contDdim, stash).sampler;
    expect(back).toMatchObject({ steps: 25, method: 'ddim', eta: 0.5 });
    // to another bundle: that one's defaults (the kept settings were the first one's)
    back = fitSampler(s, maskedA, contSd, stash).sampler;
    expect(back).toMatchObject({ steps: 50, method: 'ancestral', eta: 0 });
    for (const k of ['block_length', 'confidence', 'temperature', 'top_p']) expect(k in back, k).toBe(false);
    // chosen before the masked model: kept
    ({ sampler: s, stash } = fitSampler({ ...back, steps: 33, method: 'dpm2m' }, contSd, maskedA, {}));
    expect(fitSampler(s, maskedA, contDdim, stash).sampler).toMatchObject({ steps: 33, method: 'dpm2m' });
    // the studio's first choice masked, then a continuous bundle with defaults: its defaults
    ({ sampler: s, stash } = fitSampler(base, null, maskedA, {}));
    expect(fitSampler(s, maskedA, contDdim, stash).sampler).toMatchObject({ steps: 25, method: 'ddim', eta: 0.5 });
    expect(fitSampler(s, maskedA, contPlain, stash).sampler).toMatchObject({ steps: 40, method: 'ancestral' });
  });

  it('“Use the model’s defaults” and the run: the bundle’s steps and sampler, carried resolved in the run’s settings', () => {
    const reset = resetToContinuousDefaults({ ...base, steps: 9, method: 'dpm2m' }, continuousDefaults(contDdim));
    expect(reset).toEqual({ ...base, steps: 25, method: 'ddim', eta: 0.5 });
    expect(samplerForRun(reset, contDdim, [], KEPT)).toMatchObject({ steps: 25, method: 'ddim', eta: 0.5 });
    expect(() => parseConstraintSet({ version: 1, constraints: [], sampler: samplerForRun(reset, contDdim, [], KEPT) })).not.toThrow();
    // a set loaded under it keeps its own steps and sampler
    expect(completeMasked({ ...base, steps: 200 }, contDdim)).toEqual({ ...base, steps: 200 });
  });

  it('masked bundles are unaffected by continuous defaults', () => {
    // masked -> masked with a stash from a continuous bundle with defaults
    let stash: SamplerStash = {};
    let s = fitSampler(base, null, contDdim, {}).sampler;
    ({ sampler: s, stash } = fitSampler(s, contDdim, maskedA, stash));
    expect(s).toEqual(fitSampler({ ...base, steps: 25, method: 'ddim', eta: 0.5 }, contPlain, maskedA, {}).sampler);
    ({ sampler: s, stash } = fitSampler(s, maskedA, maskedB, stash));
    expect(s).toMatchObject({ steps: 64, block_length: 16, confidence: 'entropy', top_p: 0.9, method: 'ancestral' });
  });
});

describe('the continuous step spacing', () => {
  it('a bundle’s spacing is taken: first choice, a new set, “Use the model’s defaults”', () => {
    expect(fitSampler(base, null, contSpaced, {}).sampler).toEqual({ ...base, steps: 20, spacing: 0.33 });
    expect(startSampler(contSpaced)).toMatchObject({ steps: 20, method: 'ancestral', spacing: 0.33, samples: 4 });
    expect(startSampler(contPlain).spacing).toBe(1);
    const reset = resetToContinuousDefaults({ ...base, steps: 9, spacing: 2 }, continuousDefaults(contSpaced));
    expect(reset).toEqual({ ...base, steps: 20, spacing: 0.33 });
    expect(resetToContinuousDefaults({ ...base, spacing: 0.5 }, continuousDefaults(contSd)).spacing).toBe(1);
    // the run carries it, and the set it is saved in parses
    expect(samplerForRun(reset, contSpaced, [], KEPT).spacing).toBe(0.33);
    expect(parseConstraintSet({ version: 1, constraints: [], sampler: samplerForRun(reset, contSpaced, [], KEPT) }).sampler.spacing).toBe(0.33);
    // a summary from a main process without the field: evenly spaced
    const old = { ...contDdim, continuousDefaults: { steps: 25, method: 'ddim' as const, eta: 0.5 } } as unknown as typeof contDdim;
    expect(continuousDefaults(old).spacing).toBe(1);
  });

  it('a spacing left at the old model’s default follows the new model’s', () => {
    let s = fitSampler(base, null, contSpaced, {}).sampler;
    s = fitSampler(s, contSpaced, contSd, {}).sampler;
    expect(s).toMatchObject({ steps: 50, spacing: 1 });
    s = fitSampler(s, contSd, contSpaced, {}).sampler;
    expect(s).toMatchObject({ steps: 20, spacing: 0.33 });
    s = fitSampler(s, contSpaced, contPlain, {}).sampler;
    expect(s).toMatchObject({ steps: 40, spacing: 1 });
    // steps and sampler chosen, spacing left: only the spacing follows
    expect(fitSampler({ ...base, steps: 77, method: 'dpm2m' }, contSd, contSpaced, {}).sampler).toMatchObject({ steps: 77, method: 'dpm2m', spacing: 0.33 });
    // a recipe from before the setting (no spacing): evenly spaced, so it follows too
    const noSpacing = { ...base } as Partial<typeof base>;
    delete noSpacing.spacing;
    expect(fitSampler(noSpacing as typeof base, contPlain, contSpaced, {}).sampler.spacing).toBe(0.33);
  });

  it('a spacing the user chose stays, whatever the other settings do', () => {
    const s = { ...fitSampler(base, null, contSpaced, {}).sampler, spacing: 0.5 };
    expect(fitSampler(s, contSpaced, contSd, {}).sampler).toMatchObject({ steps: 50, method: 'ancestral', spacing: 0.5 });
    expect(fitSampler({ ...base, spacing: 2 }, contPlain, contSpaced, {}).sampler).toMatchObject({ steps: 20, spacing: 2 });
    // between bundles that both space evenly, nothing moves it
    expect(fitSampler({ ...base, spacing: 0.7 }, contSd, contDdim, {}).sampler.spacing).toBe(0.7);
  });

  it('a masked model runs evenly spaced; the continuous spacing is kept aside and comes back', () => {
    let stash: SamplerStash = {};
    let s = { ...fitSampler(base, null, contSd, {}).sampler, spacing: 0.5 };
    ({ sampler: s, stash } = fitSampler(s, contSd, maskedA, stash));
    expect(s.spacing).toBe(1);
    expect(samplerForRun({ ...s, spacing: 0.25 }, maskedA, [], KEPT).spacing).toBe(1);
    ({ sampler: s, stash } = fitSampler(s, maskedA, maskedB, stash));
    expect(s.spacing).toBe(1);
    // back: the user's spacing, whichever continuous bundle
    expect(fitSampler(s, maskedB, contSpaced, stash).sampler.spacing).toBe(0.5);
    ({ sampler: s, stash } = fitSampler(s, maskedB, contSd, stash));
    expect(s.spacing).toBe(0.5);
    // left at a bundle's default before the masked model: the bundle returned to gives its own
    ({ sampler: s, stash } = fitSampler(fitSampler(base, null, contSpaced, {}).sampler, contSpaced, maskedA, {}));
    expect(s.spacing).toBe(1);
    expect(fitSampler(s, maskedA, contSpaced, stash).sampler).toMatchObject({ steps: 20, spacing: 0.33 });
    expect(fitSampler(s, maskedA, contSd, stash).sampler).toMatchObject({ steps: 50, spacing: 1 });
    // the studio's first choice masked, then a bundle with a spacing: its spacing
    ({ sampler: s, stash } = fitSampler(base, null, maskedA, {}));
    expect(fitSampler(s, maskedA, contSpaced, stash).sampler.spacing).toBe(0.33);
  });

  it('named in the sampler’s words only when the steps are not evenly spaced', () => {
    expect(continuousSamplerLabel({ method: 'ancestral', spacing: 0.33 })).toBe('ancestral, steps spaced 0.33 (more at high noise)');
    expect(continuousSamplerLabel({ method: 'ddim', eta: 0.5, spacing: 2 })).toBe('DDIM (eta 0.5), steps spaced 2 (more at low noise)');
    expect(continuousSamplerLabel({ method: 'dpm2m', eta: 0, spacing: 1 })).toBe('DPM-Solver++(2M)');
    expect(continuousSamplerLabel({ method: 'ddim', eta: 0 })).toBe('DDIM (eta 0)');
    expect(continuousDefaultsLabel(continuousDefaults(contSpaced))).toBe('20 steps, ancestral, steps spaced 0.33 (more at high noise)');
    expect(continuousDefaultsLabel(continuousDefaults(contSd))).toBe('50 steps, ancestral');
    expect(spacingLabel(1)).toBe('');
    expect(spacingLabel(undefined)).toBe('');
  });

  it('Generate’s field: clamped to 0.1–4, an empty or not-yet-positive entry leaves the spacing alone', () => {
    expect(spacingFromInput('0.33')).toBe(0.33);
    expect(spacingFromInput('1')).toBe(1);
    expect(spacingFromInput('9')).toBe(MAX_SPACING);
    expect(spacingFromInput('0.01')).toBe(SPACING_FIELD.min);
    expect(spacingFromInput('0')).toBeUndefined();
    expect(spacingFromInput('')).toBeUndefined();
    expect(spacingFromInput('-1')).toBeUndefined();
    expect(SPACING_FIELD).toMatchObject({ min: 0.1, max: 4, step: 0.05 });
    expect(SPACING_HINT).toMatch(/1 = evenly spaced; below 1 = more steps at high noise/);
    // every value the field gives, the engine takes
    for (const raw of ['0.1', '0.33', '4', '100']) expect(() => samplerSettings.parse({ spacing: spacingFromInput(raw) })).not.toThrow();
  });
});

describe('masks in the live view', () => {
  const M = MASK_GLYPH;
  it('splits every masked position into a piece of its own', () => {
    expect(maskedWordsOf(`The${M}${M} Vaults is${M}`)).toEqual(['The', M, M, 'Vaults', 'is', M]);
    expect(maskedWordsOf('')).toEqual([]);
    expect(maskedRecordPiecesOf(`{"name":"${M}${M}"}`)).toEqual(['{', '"', 'name', '"', ':', '"', M, M, '"', '}']);
    expect(maskedRecordPiecesOf(`{"a":"b c"}${M}`).join('')).toBe(`{"a":"b c"}${M}`);
  });

  it('marks the tokens committed since the last step, not the words after them or the masks', () => {
    const before = maskedWordsOf(`The ${M} is a ${M} pub ${M}`);
    const after = maskedWordsOf(`The Vaults is a ${M} pub.`);
    expect(committedPieces(before, after)).toEqual([false, true, false, false, false, true]);
    expect(committedPieces(undefined, after).every((x) => !x)).toBe(true);
  });
});

describe('a set or preset loaded while a masked model is selected', () => {
  it('gets the masked settings it leaves out from the bundle; a continuous model changes nothing', () => {
    expect(completeMasked({ ...base, confidence: 'entropy' }, maskedA)).toMatchObject({ steps: 40, confidence: 'entropy', block_length: 0, top_p: 1 });
    // the temperature: the set's own if it has one, else left out for the engine's rule
    expect(completeMasked({ ...base, confidence: 'entropy' }, maskedAuto)).not.toHaveProperty('temperature');
    expect(completeMasked({ ...base, temperature: 0.2 }, maskedAuto).temperature).toBe(0.2);
    expect(completeMasked(base, continuous)).toEqual(base);
  });
});

describe('a continuous run\'s guidance as it ran', () => {
  const g = samplerSettings.parse({}).guidance;
  it('shows the scaled step size and stop at other step counts, and the stated ones at 200', () => {
    expect(continuousGuidanceLabel(g, 200)).toBe('strength 1, 3 iterations × step 0.1, off for the last 10 steps');
    expect(continuousGuidanceLabel(g, 50)).toBe('strength 1, 3 iterations × step 0.4, off for the last 3 steps (step 0.1 and 10 steps at 200, scaled to 50)');
    expect(continuousGuidanceLabel({ ...g, scaleToSteps: false }, 50)).toBe('strength 1, 3 iterations × step 0.1, off for the last 10 steps');
    expect(continuousGuidanceLabel({ ...g, enabled: false }, 50)).toBe('off');
  });
  it('a recipe stored before the setting existed scales, as the engine parses it', () => {
    const old = { ...g } as Partial<typeof g>;
    delete old.scaleToSteps;
    expect(continuousGuidanceLabel(old as typeof g, 25)).toMatch(/step 0\.8, off for the last 1 steps/);
  });
});

describe('a run\'s candidates in words', () => {
  it('names the accept level where the run stopped drawing early, and nothing for one per output or draw-all', () => {
    expect(candidatesLabel(undefined)).toBe('one per output');
    expect(candidatesLabel(1, 0.9)).toBe('one per output');
    expect(candidatesLabel(4)).toBe('best of 4');
    expect(candidatesLabel(4, 1)).toBe('best of 4');
    expect(candidatesLabel(4, 0.9)).toBe('best of 4, stop at p ≥ 0.9');
  });
});
