import { describe, expect, it } from 'vitest';
import type { ConstraintSet } from '../../../src-main/constraints/set';
import type { Engine, GenerateRequest, GenerateHooks, GeneratedOutput, ModelSummary, RunSummary } from '../../../src-main/engine/types';
import { groupByMr, readE2ECsv } from '../../../src-main/eval/e2e';
import { renderMarkdown } from '../../../src-main/eval/report';
import { parseOverrides } from '../../../src-main/cli/commands/eval';
import { runEvaluation, type EvalSettings, type EvaluateFn, type ScoredSample } from '../../../src-main/eval/run';
import { e2eDataDir } from '../../../src-main/data-paths';

const TEST = `${e2eDataDir()}/testset_w_refs.csv`;
const groups = groupByMr(readE2ECsv(TEST));
const refOf = new Map(groups.map((g) => [JSON.stringify(g.record), g.refs[0]!]));
const recOf = new Map(groups.map((g) => [g.refs[0]!, g.record]));

const model: ModelSummary = {
  id: 'fake', name: 'fake', version: '0', kind: 'continuous-embedding-diffusion', path: '/fake', hash: 'abc', source: 'bundled',
  canvas: { length: 8, segments: [] }, recordFields: {}, controls: ['pos', 'attribute', 'length', 'sentiment', 'spans'], hasScorer: true,
};

/** A fake engine: guided samples say GOOD, unguided ones BAD; records and texts map through the test set. */
function fakeEngine(calls: GenerateRequest[]): Engine {
  return {
    listModels: async () => [model],
    probeDevices: async () => ({ requested: 'cpu', active: 'cpu', probes: [] }),
    dispose: async () => {},
    async generate(req: GenerateRequest, hooks: GenerateHooks): Promise<RunSummary> {
      calls.push(req);
      const set = req.constraints;
      for (let i = 0; i < set.sampler.samples; i++) {
        const rec = set.constraints.find((c) => c.kind === 'record');
        const txt = set.constraints.find((c) => c.kind === 'text');
        let text = set.sampler.guidance.enabled && set.constraints.length ? 'GOOD' : 'BAD';
        let record: Record<string, unknown> | null = { name: 'x' };
        if (rec && rec.kind === 'record') text = refOf.get(JSON.stringify(rec.value))!;
        if (txt && txt.kind === 'text') {
          const { near: _drop, ...r } = recOf.get(txt.value)!;
          record = r;
        }
        const o: GeneratedOutput = { index: i, seed: i, text, record, recordText: '', tokens: [], constraints: [], fluency: text === 'GOOD' ? 2 : 8 };
        hooks.onOutput?.(o);
      }
      return {
        status: 'completed', model: { id: 'fake', version: '0', hash: 'abc' }, device: { requested: 'cpu', active: 'cpu', probes: [] },
        timings: { loadMs: 0, compileMs: 0, sampleMs: 0, perStepMs: 0, totalMs: 0 },
      };
    },
  };
}

const evaluate: EvaluateFn = (set: ConstraintSet, outputs) =>
  outputs.map((o) => set.constraints.map((c, index) => ({ index, kind: c.kind, satisfied: o.text === 'GOOD', score: o.text === 'GOOD' ? 1 : 0.25 })));

const settings: EvalSettings = {
  mode: 'quick', model: 'fake', device: 'cpu', steps: 3, samplesPerTarget: 2, targetsPerControl: 2, unguidedPool: 3, seed: 1,
  dataToTextItems: 4, textToRecordItems: 5, targetsPath: 'tests/fixtures/eval/targets.json', testPath: TEST,
};

describe('runEvaluation (fake engine, fake evaluator)', () => {
  it('reports the candidates a guided output drew (accept_at stops some early) and the guided time per output', async () => {
    const base = fakeEngine([]);
    // guided outputs of 4 candidates: even indexes accepted at their first, odd ones drew all 4
    const engine: Engine = {
      ...base,
      generate: (req, hooks) => base.generate(req, {
        onOutput: (o) => hooks.onOutput?.(req.constraints.sampler.guidance.enabled && req.constraints.constraints.length
          ? { ...o, consensus: { candidates: 4, ...(o.index % 2 === 0 ? { drawn: 1 } : {}), chosen: 0, agreement: 1, by: 'classifiers' } }
          : o),
      }),
    };
    const r = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['pos', 'length'] }, { engine, evaluate });
    for (const c of r.controls) {
      expect(c.guided!.candidatesDrawn, c.control).toBe(2.5);
      expect(c.unguided).not.toHaveProperty('candidatesDrawn');
    }
    expect(renderMarkdown(r)).toMatch(/Guided generation time per output \(seconds, scoring excluded; candidates drawn per output\): pos \d+\.\d\d \(2\.50\), length \d+\.\d\d \(2\.50\)\./);
    // without candidates every output drew one
    const plain = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['pos'] }, { engine: fakeEngine([]), evaluate });
    expect(plain.controls[0]!.guided!.candidatesDrawn).toBe(1);
  });

  it('names the denoiser weights each part ran on when precision auto mixes them, and one precision when it does not', async () => {
    const base = fakeEngine([]);
    // as a masked bundle whose guided runs stay fp32: guided runs fp32, everything else int8
    const engine = (guidedOn: 'fp32' | 'int8'): Engine => ({
      ...base,
      generate: async (req, hooks) => {
        const s = await base.generate(req, hooks);
        const guided = req.constraints.sampler.guidance.enabled && req.constraints.constraints.some((c) => c.kind !== 'record' && c.kind !== 'text');
        return { ...s, device: { ...s.device, precision: guided ? guidedOn : 'int8' } };
      },
    });
    const mixed = await runEvaluation({ ...settings, dataToTextItems: 1, textToRecordItems: 1, controls: ['pos'] }, { engine: engine('fp32'), evaluate });
    expect(mixed.device).not.toHaveProperty('precision');
    expect(mixed.precisions).toEqual({ 'unguided pool': ['int8'], pos: ['fp32'], 'data-to-text': ['int8'], 'text-to-record': ['int8'] });
    expect(renderMarkdown(mixed)).toContain('| device | cpu (requested cpu), denoiser int8 (unguided pool, data-to-text, text-to-record); fp32 (pos) |');
    const one = await runEvaluation({ ...settings, dataToTextItems: 1, textToRecordItems: 0, controls: ['pos'] }, { engine: engine('int8'), evaluate });
    expect(one.device?.precision).toBe('int8');
    expect(renderMarkdown(one)).toContain('| device | cpu (requested cpu), int8 denoiser |');
    // an engine that reports no precision: none claimed
    const none = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['pos'] }, { engine: base, evaluate });
    expect(none).not.toHaveProperty('precisions');
    expect(renderMarkdown(none)).toContain('| device | cpu (requested cpu) |');
  });

  it('aggregates guided and unguided rates, BLEU and per-field accuracy', async () => {
    const calls: GenerateRequest[] = [];
    const r = await runEvaluation(settings, { engine: fakeEngine(calls), evaluate });
    expect(r.controls.map((c) => c.control)).toEqual(['pos', 'spans', 'attribute', 'length', 'sentiment', 'json-schema', 'attribute+length', 'pos+sentiment', 'attribute+pos']);
    for (const c of r.controls) {
      expect(c.error).toBeUndefined();
      expect(c.guided).toMatchObject({ samples: 4, success: 1, meanScore: 1, fluencyMean: 2 });
      // evaluator scores count as fractions for pos/spans/length; other kinds score as met (1) or not (0)
      const kinds = c.control.split('+');
      const expected = kinds.map((k) => (['pos', 'spans', 'length'].includes(k) ? 0.25 : 0)).reduce<number>((a, b) => a + b, 0) / kinds.length;
      expect(c.unguided).toMatchObject({ samples: 4, success: 0, fluencyMean: 8 });
      expect(c.unguided!.meanScore, c.control).toBeCloseTo(expected, 12);
    }
    expect(r.controls.find((c) => c.control === 'json-schema')!.warnings).toEqual([]);
    expect(r.controls.find((c) => c.control === 'attribute+length')!.perKind).toEqual({ attribute: 1, length: 1 });
    // one unguided pool run + 2 guided runs per control + data-to-text + text-to-record items
    expect(calls.length).toBe(1 + 2 * 9 + 4 + 5);
    expect(calls[0]!.constraints.constraints).toEqual([]);
    expect(calls[0]!.constraints.sampler.guidance.enabled).toBe(false);
    expect(calls[1]!.constraints.sampler.guidance.enabled).toBe(true);
    expect(r.dataToText!.items).toBe(4);
    expect(r.dataToText!.bleu).toBeCloseTo(100, 6);
    expect(r.textToRecord!.perField.near!.accuracy).toBe(0);
    expect(r.textToRecord!.perField.name!.accuracy).toBe(1);
    expect(r.textToRecord!.exact).toBe(r.textToRecord!.items - r.textToRecord!.perField.near!.gold);
    const md = renderMarkdown(r);
    expect(md).toContain('| pos | 2 | 4/4 | 100.0 | 100.0 | 2.00 (2.00) | 0.0 | 25.0 | 8.00 (8.00) | 100.0 | 90.0 / 5.16 |');
    expect(md).toContain('| TGen (challenge baseline, all 630 MRs) | 65.93 |');
  });

  it('counts data-to-text slot errors and writes each text with its record to the samples', async () => {
    const values = { name: [...new Set(groups.map((g) => g.record.name!))], familyFriendly: ['yes', 'no'], area: ['riverside', 'city centre'] };
    const withFields = { ...model, recordFields: values };
    const engineWriting = (text: (ref: string) => string): Engine => {
      const base = fakeEngine([]);
      return {
        ...base,
        listModels: async () => [withFields],
        async generate(req, hooks) {
          return base.generate(req, { ...hooks, onOutput: (o) => hooks.onOutput?.({ ...o, text: text(o.text) }) });
        },
      };
    };
    const only = { ...settings, textToRecordItems: 0, controls: ['length'] };
    // nothing written: every field is missing
    const empty = await runEvaluation(only, { engine: engineWriting(() => 'Nothing here.'), evaluate });
    const fields = empty.dataToText!.slots!.fields;
    expect(fields).toBeGreaterThan(4);
    expect(empty.dataToText!.slots).toMatchObject({ missing: fields, wrong: 0, added: 0, exact: 0, texts: 4, errorRate: 1 });
    // the human references: the samples carry each record, and success is a text without a slot error
    const samples: ScoredSample[] = [];
    const refs = await runEvaluation(only, { engine: engineWriting((t) => t), evaluate, onSample: (x) => samples.push(x) });
    const d2t = samples.filter((x) => x.control === 'data-to-text');
    expect(d2t).toHaveLength(4);
    expect(d2t.filter((x) => x.success)).toHaveLength(refs.dataToText!.slots!.exact);
    expect(d2t.map((x) => x.target[0])).toEqual(d2t.map((x) => ({ kind: 'record', value: x.record, weight: 1, enabled: true })));
    expect(refs.dataToText!.slots!.errorRate).toBeLessThan(0.5);
    // a reference that says the opposite of its familyFriendly value is a wrong field
    const flip = (t: string) => (/not family|non[- ]family/i.test(t) ? t.replace(/not family[- ]friendly|non[- ]family[- ]friendly/gi, 'family friendly') : `${t} It is not family friendly.`);
    const flipped = await runEvaluation(only, { engine: engineWriting(flip), evaluate });
    expect(flipped.dataToText!.slots!.wrong).toBeGreaterThan(refs.dataToText!.slots!.wrong);
    expect(renderMarkdown(flipped)).toContain('Slot errors (the record\'s fields against the text');
  });

  it('text-to-record skips reference texts too long for the text segment, counts them, and reports the mean field accuracy', async () => {
    const base = fakeEngine([]);
    let textCalls = 0;
    const engine: Engine = {
      ...base,
      async generate(req, hooks) {
        if (req.constraints.constraints.some((c) => c.kind === 'text') && ++textCalls === 2) {
          throw new Error('constraints[0] (text): text needs 51 tokens + <end>, the text segment has 51');
        }
        return base.generate(req, hooks);
      },
    };
    const r = await runEvaluation({ ...settings, controls: ['length'], dataToTextItems: 0 }, { engine, evaluate });
    expect(r.textToRecord).toMatchObject({ items: 4, skipped: 1 });
    expect(r.textToRecord!.error).toBeUndefined();
    const graded = Object.values(r.textToRecord!.perField).filter((f) => f.gold > 0);
    expect(r.textToRecord!.meanFieldAccuracy).toBeCloseTo(graded.reduce((a, f) => a + f.accuracy, 0) / graded.length, 12);
    expect(r.textToRecord!.meanFieldAccuracy).toBeLessThan(1); // the fake engine drops every 'near'
    expect(renderMarkdown(r)).toMatch(/4 texts, 4 records parsed, \d+ exact; mean per-field accuracy [\d.]+%; 1 reference text\(s\) skipped, longer than the text segment\./);
    // any other failure still stops text-to-record and is reported
    const failing: Engine = { ...base, async generate(req, hooks) { if (req.constraints.constraints.some((c) => c.kind === 'text')) throw new Error('boom'); return base.generate(req, hooks); } };
    const f = await runEvaluation({ ...settings, controls: ['length'], dataToTextItems: 0 }, { engine: failing, evaluate });
    expect(f.textToRecord).toMatchObject({ items: 0, error: 'boom' });
  });

  it('applies per-control overrides of targets and samples', async () => {
    const calls: GenerateRequest[] = [];
    const r = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['json-schema', 'length'], overrides: { 'json-schema': { targets: 1, samples: 3 } } }, { engine: fakeEngine(calls), evaluate });
    expect(r.controls.map((c) => [c.control, c.targets, c.guided!.samples, c.unguided!.samples])).toEqual([['json-schema', 1, 3, 3], ['length', 2, 4, 4]]);
    expect(calls.map((c) => c.constraints.sampler.samples)).toEqual([3, 3, 2, 2]);
    expect(parseOverrides('json-schema:2:4, pos::8')).toEqual({ 'json-schema': { targets: 2, samples: 4 }, pos: { samples: 8 } });
    expect(() => parseOverrides('pos:0:1')).toThrow(/--override "pos:0:1": expected control:targets:samples/);
    await expect(runEvaluation({ ...settings, overrides: { tree: { targets: 1 } } }, { engine: fakeEngine([]), evaluate })).rejects.toThrow(/--override: unknown control "tree"/);
  });

  it('stops data-to-text and text-to-record at the time budget and says so', async () => {
    const r = await runEvaluation({ ...settings, controls: ['length'], maxMinutes: 0 }, { engine: fakeEngine([]), evaluate });
    expect(r.controls[0]!.guided!.samples).toBe(4);
    expect(r.dataToText).toMatchObject({ items: 0, stoppedEarly: 'time budget of 0 min reached after 0 of 4 items' });
    expect(r.textToRecord).toMatchObject({ items: 0, stoppedEarly: 'time budget of 0 min reached after 0 of 5 items' });
    expect(renderMarkdown(r)).toContain('Stopped early: time budget of 0 min reached after 0 of 4 items');
  });

  it('names an unknown model and an unknown control', async () => {
    await expect(runEvaluation({ ...settings, model: 'nope' }, { engine: fakeEngine([]), evaluate })).rejects.toThrow(/--model nope: no such bundle \(found: fake\)/);
    await expect(runEvaluation({ ...settings, controls: ['tree'] }, { engine: fakeEngine([]), evaluate })).rejects.toThrow(/unknown control "tree"/);
  });

  it('records a failing control and carries on', async () => {
    const engine = fakeEngine([]);
    const inner = engine.generate.bind(engine);
    engine.generate = async (req, hooks) => {
      if (req.constraints.constraints.some((c) => c.kind === 'json-schema')) throw new Error('UNSUPPORTED_KEYWORD: const');
      return inner(req, hooks);
    };
    const r = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0 }, { engine, evaluate });
    expect(r.controls.find((c) => c.control === 'json-schema')!.error).toMatch(/UNSUPPORTED_KEYWORD: const/);
    expect(r.controls.find((c) => c.control === 'length')!.guided!.success).toBe(1);
    expect(r.dataToText).toBeNull();
  });

  it('a continuous sampler (--sampler, --eta) goes into every run and the report; a masked model refuses it', async () => {
    const calls: GenerateRequest[] = [];
    const r = await runEvaluation({ ...settings, dataToTextItems: 1, textToRecordItems: 1, controls: ['length'], sampler: { method: 'ddim', eta: 0.5 } }, { engine: fakeEngine(calls), evaluate });
    expect(calls.length).toBeGreaterThan(2);
    expect(calls.every((c) => c.constraints.sampler.method === 'ddim' && c.constraints.sampler.eta === 0.5)).toBe(true);
    expect(renderMarkdown(r)).toContain('3 steps, sampler ddim (eta 0.5), ');
    const plain: GenerateRequest[] = [];
    await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'] }, { engine: fakeEngine(plain), evaluate });
    expect(plain.every((c) => c.constraints.sampler.method === 'ancestral')).toBe(true);
    const engine = fakeEngine([]);
    engine.listModels = async () => [{ ...model, kind: 'masked-diffusion', samplerDefaults: { steps: 8, block_length: 0, confidence: 'low_confidence', temperature: 0, top_p: 1 } }];
    await expect(runEvaluation({ ...settings, sampler: { method: 'dpm2m' } }, { engine, evaluate })).rejects.toThrow(/--sampler dpm2m: a sampler for continuous models/);
  });

  it('a continuous model with sampler_defaults: its steps (no --steps) and its sampler (no --sampler) in every run and the report', async () => {
    const calls: GenerateRequest[] = [];
    const engine = fakeEngine(calls);
    engine.listModels = async () => [{ ...model, continuousDefaults: { steps: 25, method: 'ddim', eta: 0.5, spacing: 1, measured: 'test' } }];
    const r = await runEvaluation({ ...settings, mode: 'full', dataToTextItems: 1, textToRecordItems: 1, controls: ['length'], stepsFromModel: true }, { engine, evaluate });
    expect(calls.length).toBeGreaterThan(2);
    expect(calls.every((c) => c.constraints.sampler.steps === 25 && c.constraints.sampler.method === 'ddim' && c.constraints.sampler.eta === 0.5)).toBe(true);
    expect(r.settings).toMatchObject({ steps: 25, sampler: { method: 'ddim', eta: 0.5 } });
    expect(r.notes).toEqual([expect.stringMatching(/fake is a continuous-embedding-diffusion model: 25 steps \(its sampler_defaults\)/), expect.stringMatching(/fake: sampler ddim \(eta 0\.5\) \(its sampler_defaults\)/)]);
    expect(renderMarkdown(r)).toContain('25 steps, sampler ddim (eta 0.5), ');
    // --quick keeps its fewer steps on a continuous model, with the model's sampler
    const quick: GenerateRequest[] = [];
    const engineQ = fakeEngine(quick);
    engineQ.listModels = engine.listModels;
    await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'], stepsFromModel: true }, { engine: engineQ, evaluate });
    expect(quick.every((c) => c.constraints.sampler.steps === 3 && c.constraints.sampler.method === 'ddim')).toBe(true);
    // --steps and --sampler given: they run
    const chosen: GenerateRequest[] = [];
    const engine2 = fakeEngine(chosen);
    engine2.listModels = engine.listModels;
    const r2 = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'], sampler: { method: 'dpm2m' } }, { engine: engine2, evaluate });
    expect(chosen.every((c) => c.constraints.sampler.steps === 3 && c.constraints.sampler.method === 'dpm2m')).toBe(true);
    expect(r2.notes).toBeUndefined();
    // a continuous model without sampler_defaults runs as before (the settings' steps, ancestral)
    const plain: GenerateRequest[] = [];
    const r3 = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'], stepsFromModel: true }, { engine: fakeEngine(plain), evaluate });
    expect(plain.every((c) => c.constraints.sampler.steps === 3 && c.constraints.sampler.method === 'ancestral')).toBe(true);
    expect(r3.settings.sampler).toBeUndefined();
  });

  it('a continuous model whose sampler_defaults space the steps: that spacing in every run unless --spacing gives one', async () => {
    const calls: GenerateRequest[] = [];
    const engine = fakeEngine(calls);
    engine.listModels = async () => [{ ...model, continuousDefaults: { steps: 20, method: 'ancestral', eta: 0, spacing: 0.4 } }];
    const r = await runEvaluation({ ...settings, mode: 'full', dataToTextItems: 1, textToRecordItems: 0, controls: ['length'], stepsFromModel: true }, { engine, evaluate });
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.every((c) => c.constraints.sampler.steps === 20 && c.constraints.sampler.spacing === 0.4 && c.constraints.sampler.method === 'ancestral')).toBe(true);
    expect(r.notes).toContainEqual(expect.stringMatching(/fake: step spacing 0\.4 \(its sampler_defaults\)/));
    expect(renderMarkdown(r)).toContain('sampler ancestral, step spacing 0.4, ');
    // --sampler alone keeps the model's spacing; --spacing replaces it
    const other: GenerateRequest[] = [];
    const e2 = fakeEngine(other);
    e2.listModels = engine.listModels;
    await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'], sampler: { method: 'dpm2m' } }, { engine: e2, evaluate });
    expect(other.every((c) => c.constraints.sampler.method === 'dpm2m' && c.constraints.sampler.spacing === 0.4)).toBe(true);
    const even: GenerateRequest[] = [];
    const e3 = fakeEngine(even);
    e3.listModels = engine.listModels;
    const r3 = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'], sampler: { spacing: 1 } }, { engine: e3, evaluate });
    expect(even.every((c) => c.constraints.sampler.spacing === 1 && c.constraints.sampler.method === 'ancestral')).toBe(true);
    expect(renderMarkdown(r3)).not.toContain('step spacing');
  });

  it('a bundle with guided_spacing: guided control runs take it; the unguided pool, JSON schema and data-to-text runs its spacing', async () => {
    const calls: GenerateRequest[] = [];
    const engine = fakeEngine(calls);
    engine.listModels = async () => [{ ...model, continuousDefaults: { steps: 20, method: 'ancestral', eta: 0, spacing: 0.5, guidedSpacing: 1 } }];
    const r = await runEvaluation({ ...settings, mode: 'full', dataToTextItems: 1, textToRecordItems: 0, controls: ['length', 'json-schema'] }, { engine, evaluate });
    const guided = calls.filter((c) => c.constraints.constraints.some((x) => x.kind === 'length'));
    const rest = calls.filter((c) => !c.constraints.constraints.some((x) => x.kind === 'length'));
    expect(guided.length).toBeGreaterThan(0);
    expect(rest.length).toBeGreaterThan(0);
    expect(guided.every((c) => c.constraints.sampler.spacing === 1)).toBe(true);
    expect(rest.every((c) => c.constraints.sampler.spacing === 0.5)).toBe(true);
    expect(r.notes).toContainEqual(expect.stringMatching(/fake: step spacing 0\.5, 1 for guided runs \(its sampler_defaults\)/));
    // --spacing decides every run
    const asked: GenerateRequest[] = [];
    const e2 = fakeEngine(asked);
    e2.listModels = engine.listModels;
    await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'], sampler: { spacing: 0.7 } }, { engine: e2, evaluate });
    expect(asked.every((c) => c.constraints.sampler.spacing === 0.7)).toBe(true);
  });

  it('a bundle with guided_steps: guided control runs take them; the unguided pool, JSON schema and data-to-text its steps; --steps decides every run', async () => {
    const calls: GenerateRequest[] = [];
    const engine = fakeEngine(calls);
    engine.listModels = async () => [{ ...model, continuousDefaults: { steps: 20, method: 'ancestral', eta: 0, spacing: 1, guidedSteps: 12 } }];
    const r = await runEvaluation({ ...settings, mode: 'full', dataToTextItems: 1, textToRecordItems: 0, controls: ['length', 'json-schema'], stepsFromModel: true }, { engine, evaluate });
    const guided = calls.filter((c) => c.constraints.sampler.guidance.enabled && c.constraints.constraints.some((x) => x.kind === 'length'));
    const rest = calls.filter((c) => !guided.includes(c));
    expect(guided.length).toBeGreaterThan(0);
    expect(rest.length).toBeGreaterThan(0);
    expect(guided.every((c) => c.constraints.sampler.steps === 12)).toBe(true);
    expect(rest.every((c) => c.constraints.sampler.steps === 20)).toBe(true);
    expect(r.notes).toContainEqual('fake: 12 steps for guided runs (its sampler_defaults.guided_steps)');
    expect(renderMarkdown(r)).toMatch(/\| settings \| 20 steps \(12 for guided runs\),/);
    const asked: GenerateRequest[] = [];
    const e2 = fakeEngine(asked);
    e2.listModels = engine.listModels;
    const r2 = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'] }, { engine: e2, evaluate });
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((c) => c.constraints.sampler.steps === settings.steps)).toBe(true);
    expect(r2.settings).not.toHaveProperty('guidedSteps');
  });

  it('a bundle with accept_at: guided control runs take it; the unguided pool, JSON schema and data-to-text do not; --accept-at decides every run', async () => {
    const calls: GenerateRequest[] = [];
    const engine = fakeEngine(calls);
    engine.listModels = async () => [{ ...model, guidedCandidates: 4, continuousDefaults: { steps: 20, method: 'ancestral', eta: 0, spacing: 1, acceptAt: 0.9 } }];
    const r = await runEvaluation({ ...settings, mode: 'full', dataToTextItems: 1, textToRecordItems: 0, controls: ['length', 'json-schema'] }, { engine, evaluate });
    const guided = calls.filter((c) => c.constraints.sampler.guidance.enabled && c.constraints.constraints.some((x) => x.kind === 'length'));
    const rest = calls.filter((c) => !guided.includes(c));
    expect(guided.length).toBeGreaterThan(0);
    expect(rest.length).toBeGreaterThan(0);
    expect(guided.every((c) => c.constraints.sampler.accept_at === 0.9)).toBe(true);
    expect(rest.every((c) => c.constraints.sampler.accept_at === undefined)).toBe(true);
    expect(r.notes).toContainEqual(expect.stringMatching(/fake: guided runs stop drawing .* p >= 0\.9 \(its sampler_defaults\.accept_at\)/));
    expect(renderMarkdown(r)).toMatch(/guided outputs stop drawing at the first candidate the classifiers give p >= 0\.9/);
    const asked: GenerateRequest[] = [];
    const e2 = fakeEngine(asked);
    e2.listModels = engine.listModels;
    await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'], sampler: { accept_at: 1 } }, { engine: e2, evaluate });
    expect(asked.every((c) => c.constraints.sampler.accept_at === 1)).toBe(true);
  });

  it('a bundle with per-kind levels: each guided run takes the largest among its kinds, and the table says so', async () => {
    const calls: GenerateRequest[] = [];
    const engine = fakeEngine(calls);
    engine.listModels = async () => [{ ...model, guidedCandidates: 4, continuousDefaults: { steps: 20, method: 'ancestral', eta: 0, spacing: 1, acceptAt: 0.9, acceptAtByKind: { spans: 0.5, attribute: 0.5 } } }];
    const r = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['spans', 'attribute', 'pos', 'attribute+pos'] }, { engine, evaluate });
    const levelOf = (kinds: string[]) => calls.filter((c) => c.constraints.sampler.guidance.enabled && c.constraints.constraints.map((x) => x.kind).sort().join('+') === kinds.sort().join('+')).map((c) => c.constraints.sampler.accept_at);
    expect(new Set(levelOf(['spans']))).toEqual(new Set([0.5]));
    expect(new Set(levelOf(['attribute']))).toEqual(new Set([0.5]));
    expect(new Set(levelOf(['pos']))).toEqual(new Set([0.9]));
    expect(new Set(levelOf(['attribute', 'pos']))).toEqual(new Set([0.9]));
    expect(r.notes).toContainEqual(expect.stringMatching(/p >= 0\.9 \(spans 0\.5, attribute 0\.5; a run takes its kinds' largest\)/));
    expect(renderMarkdown(r)).toMatch(/give p >= 0\.9 \(spans 0\.5, attribute 0\.5;/);
  });

  it('a masked model without classifiers: only the json-schema control by default, its own steps, and the unconditional pool scored', async () => {
    const calls: GenerateRequest[] = [];
    const engine = fakeEngine(calls);
    const masked: ModelSummary = {
      ...model, kind: 'masked-diffusion', controls: [], recordFields: { name: ['x', 'y'] },
      samplerDefaults: { steps: 48, block_length: 0, confidence: 'low_confidence', temperature: 0, top_p: 1 },
    };
    engine.listModels = async () => [masked];
    const r = await runEvaluation({ ...settings, dataToTextItems: 1, textToRecordItems: 1, stepsFromModel: true, masked: { temperature: 1, top_p: 0.9 } }, { engine, evaluate });
    expect(calls.every((c) => c.constraints.sampler.temperature === 1 && c.constraints.sampler.top_p === 0.9)).toBe(true);
    expect(r.controls.map((c) => c.control)).toEqual(['json-schema']);
    expect(calls.every((c) => c.constraints.sampler.steps === 48)).toBe(true);
    expect(r.settings.steps).toBe(48);
    expect(r.model.kind).toBe('masked-diffusion');
    expect(r.notes).toEqual([expect.stringMatching(/48 steps \(its sampler_defaults\)/), expect.stringMatching(/classifiers for no control: json-schema runs \(choose others/)]);
    // the fake pool: 3 samples, all {"name": "x"}, all "BAD"
    expect(r.unconditional).toMatchObject({ samples: 3, parsedRecords: 3, validRecords: 3, validShare: 1, distinct: 1 });
    expect(r.unconditional!.distinctShare).toBeCloseTo(1 / 3, 12);
    expect(renderMarkdown(r)).toContain('3 samples: 3 record segments parse as JSON, 3 are valid records');
    // --steps given, or a continuous model: the settings' steps stand
    const again = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, controls: ['length'] }, { engine: fakeEngine([]), evaluate });
    expect(again.settings.steps).toBe(3);
    expect(again.notes).toBeUndefined();
  });

  it('a masked model with classifiers: json-schema plus the controls and compositions its classifiers cover', async () => {
    const engine = fakeEngine([]);
    const masked: ModelSummary = {
      ...model, kind: 'masked-diffusion', controls: ['attribute', 'length', 'sentiment'], recordFields: { name: ['x', 'y'] },
      samplerDefaults: { steps: 48, block_length: 0, confidence: 'low_confidence', temperature: 0, top_p: 1 },
    };
    engine.listModels = async () => [masked];
    const r = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0 }, { engine, evaluate });
    expect(r.controls.map((c) => c.control)).toEqual(['attribute', 'length', 'sentiment', 'json-schema', 'attribute+length']);
    // guided runs beat unguided ones on the fake engine, as for a continuous model
    expect(r.controls.find((c) => c.control === 'length')!.guided!.success).toBe(1);
    expect(r.notes).toContainEqual(expect.stringMatching(/classifiers for attribute, length, sentiment: attribute, length, sentiment, json-schema, attribute\+length run/));
    // every control covered: no note
    masked.controls = ['pos', 'spans', 'attribute', 'length', 'sentiment'];
    const all = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, steps: 3 }, { engine, evaluate });
    expect(all.controls).toHaveLength(9);
    expect(all.notes).toBeUndefined();
    // a bundle that scores some kinds' candidates exactly says which, unless --guidance exactTopK decides for every run
    masked.exactTopK = ['pos', 'spans'];
    const exact = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, steps: 3, controls: ['pos'] }, { engine, evaluate });
    expect(exact.notes).toContainEqual(expect.stringMatching(/fake: guided runs of pos, spans score the denoiser's top-k candidates exactly .*guidance_defaults\.exact_top_k/));
    const decided = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, steps: 3, controls: ['pos'], guidance: { exactTopK: false } }, { engine, evaluate });
    expect(decided.notes ?? []).not.toContainEqual(expect.stringMatching(/exactly/));
  });

  it('a masked model with temperature_unconditional and no --temperature: no temperature forced, the rule in the notes', async () => {
    const calls: GenerateRequest[] = [];
    const engine = fakeEngine(calls);
    const masked: ModelSummary = {
      ...model, kind: 'masked-diffusion', controls: [], recordFields: { name: ['x', 'y'] },
      samplerDefaults: { steps: 48, block_length: 0, confidence: 'low_confidence', temperature: 0, top_p: 1, temperature_unconditional: 0.5 },
    };
    engine.listModels = async () => [masked];
    const r = await runEvaluation({ ...settings, dataToTextItems: 1, textToRecordItems: 1, stepsFromModel: true }, { engine, evaluate });
    // the engine resolves it per run: the pool and the controls pin nothing, data-to-text and text-to-record do
    expect(calls.length).toBeGreaterThan(2);
    expect(calls.every((c) => c.constraints.sampler.temperature === undefined)).toBe(true);
    expect(r.notes).toContainEqual(expect.stringMatching(/temperature 0\.5 for the unguided pool and the controls.*temperature_unconditional\); 0 for data-to-text and text-to-record/));
    // --temperature given: it runs everywhere, no such note
    const fixed = await runEvaluation({ ...settings, dataToTextItems: 0, textToRecordItems: 0, stepsFromModel: true, masked: { temperature: 0.2 } }, { engine, evaluate });
    expect(fixed.notes!.some((n) => /temperature_unconditional/.test(n))).toBe(false);
  });
});
