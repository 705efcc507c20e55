/**
 * The masked (absorbing-state) family through the engine, with real onnxruntime sessions: the tiny random-weight
 * fixture (tests/fixtures/masked-tiny: output vocabulary larger than the tokenizer's, mask id inside the vocabulary,
 * shifted logits) against the PyTorch reference sampler's golden tokens; determinism, caching, progress with masks,
 * hard constraints, and refusals of bad bundles.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { evaluateOutputs } from '../../../src-main/constraints/evaluators/index';
import { type ConstraintSetInput, MASKED_CONFIDENCES, parseConstraintSet } from '../../../src-main/constraints/set';
import { loadBundle } from '../../../src-main/engine/bundle';
import { FLOAT, INT64, model as onnxModel, node, tensor, valueInfo } from '../../../src-main/engine/onnx-graph';
import { createEngine } from '../../../src-main/engine/index';
import { type Engine, type GeneratedOutput, type GenerateRequest, MASK_GLYPH, type RunSummary, type StepProgress } from '../../../src-main/engine/types';
import { recordSchemaOf } from '../../../src-main/engine/families/masked/index';

const FIXTURE = fileURLToPath(new URL('../../fixtures/masked-tiny/', import.meta.url));

interface GoldenCase {
  name: string;
  seed: number;
  samples: number;
  record?: Record<string, string>;
  text?: string;
  settings: { steps: number; block_length: number; confidence: (typeof MASKED_CONFIDENCES)[number]; temperature: number; top_p: number };
  ids: number[][];
  network_calls: number;
}
const golden = JSON.parse(readFileSync(join(FIXTURE, 'golden.json'), 'utf8')) as { mask_id: number; cases: GoldenCase[] };

let engine: Engine;

async function run(e: Engine, set: ConstraintSetInput, model = 'masked-tiny'): Promise<{ outputs: GeneratedOutput[]; progress: StepProgress[]; summary: RunSummary }> {
  const outputs: GeneratedOutput[] = [];
  const progress: StepProgress[] = [];
  const summary = await e.generate({ model, device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outputs.push(o), onProgress: (p) => progress.push(p) });
  return { outputs, progress, summary };
}

function caseSet(c: GoldenCase): ConstraintSetInput {
  const constraints: ConstraintSetInput['constraints'] = [];
  if (c.record) constraints.push({ kind: 'record', value: c.record });
  if (c.text) constraints.push({ kind: 'text', value: c.text });
  return { version: 1, constraints, sampler: { samples: c.samples, seed: c.seed, ...c.settings } };
}

beforeAll(() => {
  engine = createEngine({ modelDirs: [FIXTURE], batchSize: 4 });
});
afterAll(() => engine.dispose());

describe('masked family: the tiny fixture against the PyTorch reference sampler', () => {
  for (const c of golden.cases) {
    it(`same tokens as training/dlm_train/masked_sample.py: ${c.name}`, async () => {
      const { outputs, summary } = await run(engine, caseSet(c));
      expect(summary.status).toBe('completed');
      expect(outputs.map((o) => o.tokens)).toEqual(c.ids);
      // the engine calls the network at most as often as the reference (which calls once more after the last commit)
      expect(summary.denoiserCalls).toBeLessThanOrEqual(c.network_calls * Math.ceil(c.samples / 4));
    });
  }
});

const N = 32;
const RECORD = 16;
const manifest = JSON.parse(readFileSync(join(FIXTURE, 'manifest.json'), 'utf8')) as { mask: { id: number } };

describe('masked family through the engine', () => {
  it('refuses a continuous-family sampler, naming sampler.method; ancestral (the default) runs', async () => {
    await expect(engine.generate({ model: 'masked-tiny', device: 'cpu', constraints: parseConstraintSet({ version: 1, constraints: [], sampler: { steps: 2, samples: 1, method: 'ddim' } }) }, {}))
      .rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/sampler\.method: ddim is a sampler for continuous models; masked-tiny is a masked-diffusion model/) });
    const ok = await run(engine, { version: 1, constraints: [], sampler: { steps: 2, samples: 1, method: 'ancestral' } });
    expect(ok.summary.status).toBe('completed');
  });

  it('is deterministic per seed, differs across seeds, and a sample does not depend on its batch', async () => {
    const set = (seed: number): ConstraintSetInput => ({ version: 1, constraints: [], sampler: { steps: 9, samples: 5, seed, temperature: 1, confidence: 'low_confidence' } });
    const a = await run(engine, set(21));
    expect(a.outputs.map((o) => o.tokens)).toEqual((await run(engine, set(21))).outputs.map((o) => o.tokens));
    expect(a.outputs.map((o) => o.tokens)).not.toEqual((await run(engine, set(22))).outputs.map((o) => o.tokens));
    const single = createEngine({ modelDirs: [FIXTURE], batchSize: 1 });
    try {
      expect((await run(single, set(21))).outputs.map((o) => o.tokens)).toEqual(a.outputs.map((o) => o.tokens));
    } finally {
      await single.dispose();
    }
    for (const o of a.outputs) {
      expect(o.tokens.every((t) => t >= 0 && t < 1791 && t !== manifest.mask.id)).toBe(true);
      expect(o.seed).toBeGreaterThan(0);
    }
    expect(a.summary.device.precision).toBe('fp32');
  });

  it('progress shows the positions still masked filling in; held positions are never masked', async () => {
    const { progress, outputs } = await run(engine, { version: 1, constraints: [{ kind: 'record', value: { name: 'Alimentum' } }], sampler: { steps: 5, samples: 2, seed: 4 } });
    expect(progress).toHaveLength(5);
    expect(progress.map((p) => p.step)).toEqual([1, 2, 3, 4, 5]);
    const left = progress.map((p) => p.masked![0]!.length);
    // 15 text positions over 5 steps: 3 per step
    expect(left).toEqual([12, 9, 6, 3, 0]);
    for (const p of progress) {
      expect(p.masked).toHaveLength(2);
      for (const list of p.masked!) expect(list.every((i) => i > RECORD)).toBe(true);
      expect(p.canvases[0]!.record).toBe('{"name":"Alimentum"}');
    }
    expect(progress[0]!.canvases[0]!.text).toContain(MASK_GLYPH);
    expect(progress[4]!.canvases[0]!.text).not.toContain(MASK_GLYPH);
    expect(outputs[0]!.record).toEqual({ name: 'Alimentum' });
  });

  it('reuses the logits while no token changes: fewer session runs than steps when steps commit nothing', async () => {
    // 15 text positions, 3 blocks of 5, 60 steps: 20 steps per block, 5 of which commit one position each
    const { summary, outputs } = await run(engine, { version: 1, constraints: [{ kind: 'record', value: { name: 'The Vaults' } }], sampler: { steps: 60, samples: 2, seed: 1, block_length: 5 } });
    expect(outputs).toHaveLength(2);
    expect(summary.denoiserCalls).toBe(15);
    const all = await run(engine, { version: 1, constraints: [{ kind: 'record', value: { name: 'The Vaults' } }], sampler: { steps: 15, samples: 2, seed: 1, block_length: 5 } });
    // the same commits, step for step: the same tokens
    expect(all.outputs.map((o) => o.tokens)).toEqual(outputs.map((o) => o.tokens));
  });

  it('logits caching off (EngineOptions.logitsCache, DLM_MASKED_CACHE=0): the same tokens, one denoiser call per step', async () => {
    const off = createEngine({ modelDirs: [FIXTURE], batchSize: 4, logitsCache: false });
    const envOff = createEngine({ modelDirs: [FIXTURE], batchSize: 4 });
    const first = caseSet(golden.cases[0]!);
    await run(engine, first);
    // the switch in the environment reaches an engine worker started while it is set (at the engine's first run)
    process.env.DLM_MASKED_CACHE = '0';
    try {
      await run(envOff, first);
    } finally {
      delete process.env.DLM_MASKED_CACHE;
    }
    try {
      const sets: ConstraintSetInput[] = [
        ...golden.cases.map(caseSet),
        // steps that commit nothing: 15 text positions, 3 blocks of 5, 60 steps; and one block of 15 in 40 steps
        { version: 1, constraints: [{ kind: 'record', value: { name: 'The Vaults' } }], sampler: { steps: 60, samples: 6, seed: 1, block_length: 5 } },
        { version: 1, constraints: [{ kind: 'record', value: { name: 'Alimentum' } }], sampler: { steps: 40, samples: 5, seed: 3, temperature: 1, top_p: 0.9 } },
        { version: 1, constraints: [], sampler: { steps: 48, samples: 4, seed: 8, temperature: 1, top_p: 0.9, block_length: 8, confidence: 'entropy' } },
      ];
      let saved = 0;
      for (const set of sets) {
        const on = await run(engine, set);
        const a = await run(off, set);
        const b = await run(envOff, set);
        expect(a.outputs.map((o) => o.tokens)).toEqual(on.outputs.map((o) => o.tokens));
        expect(b.outputs.map((o) => o.tokens)).toEqual(on.outputs.map((o) => o.tokens));
        // without reuse: one call per step and batch (the progress events)
        expect(a.summary.denoiserCalls).toBe(a.progress.length);
        expect(b.summary.denoiserCalls).toBe(a.progress.length);
        expect(on.summary.denoiserCalls).toBeLessThanOrEqual(a.summary.denoiserCalls!);
        expect(a.summary.denoiserMs).toBeGreaterThan(0);
        saved += a.summary.denoiserCalls! - on.summary.denoiserCalls!;
      }
      // 60 steps, 3 blocks of 5: 15 of 60 calls per batch of 4 (two batches); 40 steps for 15 positions: 15 of 40 (two)
      expect(saved).toBeGreaterThanOrEqual(2 * 45 + 2 * 25);
    } finally {
      await off.dispose();
      await envOff.dispose();
    }
  });

  it('hard constraints: a JSON schema on the record holds in every output (reachability over the masked canvas)', async () => {
    const schema = {
      type: 'object',
      properties: { name: { enum: ['Alimentum', 'The Vaults'] }, food: { enum: ['Italian', 'French'] } },
      required: ['name'], additionalProperties: false,
    };
    const sampler = { steps: 12, samples: 16, seed: 5, temperature: 1 };
    const constrained = await run(engine, { version: 1, constraints: [{ kind: 'json-schema', schema }], sampler });
    expect(constrained.outputs).toHaveLength(16);
    for (const o of constrained.outputs) {
      expect(o.constraints[0]).toMatchObject({ kind: 'json-schema', satisfied: true });
      expect(['Alimentum', 'The Vaults']).toContain((o.record as { name: string }).name);
    }
    // without the constraint the random model never spells a valid record
    const free = await run(engine, { version: 1, constraints: [], sampler });
    const set = parseConstraintSet({ version: 1, constraints: [{ kind: 'json-schema', schema }] });
    const scores = evaluateOutputs(set, free.outputs.map((o) => ({ text: o.text, record: o.record })));
    const rate = scores.filter((s) => s[0]!.satisfied).length / scores.length;
    console.log(`masked-tiny, JSON schema on the record: ${constrained.outputs.length}/${constrained.outputs.length} valid with the constraint, ${(rate * 100).toFixed(0)}% without`);
    expect(rate).toBeLessThan(1);
  });

  it('hard constraints on the text (regex, words, infill) hold in every output, greedy and sampled, in blocks', async () => {
    for (const [constraint, check] of [
      [{ kind: 'regex', pattern: 'The [A-Za-z ]+ is a pub\\.' }, (t: string) => /The [A-Za-z ]+ is a pub\./.test(t)],
      [{ kind: 'infill', template: 'The Vaults ___ Italian food.' }, (t: string) => /The Vaults .* Italian food\./.test(t)],
      [{ kind: 'words', include: ['pub'], exclude: ['hearty'] }, (t: string) => /(^|[^\p{L}\p{N}])pub([^\p{L}\p{N}]|$)/iu.test(t) && !/(^|[^\p{L}\p{N}])hearty([^\p{L}\p{N}]|$)/iu.test(t)],
    ] as const) {
      for (const sampler of [{ steps: 15, samples: 4, seed: 2 }, { steps: 8, samples: 4, seed: 3, temperature: 1, block_length: 4 }]) {
        const r = await run(engine, { version: 1, constraints: [constraint as ConstraintSetInput['constraints'][number]], sampler });
        for (const o of r.outputs) {
          expect(check(o.text), `${constraint.kind}: ${JSON.stringify(o.text)}`).toBe(true);
          expect(o.constraints[0]!.satisfied).toBe(true);
        }
      }
    }
  });

  it('soft constraints a bundle without classifiers cannot steer are reported, not dropped; a length is pinned', async () => {
    const r = await run(engine, { version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }, { kind: 'length', tokens: 5 }], sampler: { steps: 4, samples: 2, seed: 1 } });
    expect(r.summary.status).toBe('completed');
    expect(r.summary.warnings).toEqual([
      expect.stringMatching(/constraint 0 \(sentiment\) is not served by this masked bundle: scored on the outputs, not steered \(it has no pos\/spans\/attribute\/sentiment classifier/),
    ]);
    // still scored on the outputs
    expect(r.outputs[0]!.constraints.map((c) => c.kind)).toEqual(['sentiment', 'length']);
    // the length needs no classifier: <end> is held after 5 text tokens, none of which is <end> or <pad>
    const textStart = (JSON.parse(readFileSync(join(FIXTURE, 'manifest.json'), 'utf8')) as { canvas: { segments: { name: string; start: number }[] } }).canvas.segments.find((x) => x.name === 'text')!.start;
    for (const o of r.outputs) {
      const text = o.tokens.slice(textStart);
      expect(text[5]).toBe(2);
      expect(text.slice(0, 5).every((t) => t !== 0 && t !== 2)).toBe(true);
    }
  });
});

/**
 * An engine over a copy of the tiny fixture whose manifest `edit` changed (the manifest is not among the hashed
 * files: editing it needs no new sha256), made before and disposed after the enclosing describe's tests.
 */
function fixtureVariant(id: string, edit: (manifest: Record<string, any>) => void): { engine: () => Engine } {
  let root = '';
  let e: Engine | null = null;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), `dlm-${id}-`));
    const dir = join(root, id);
    cpSync(FIXTURE, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    m.id = id;
    edit(m);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    e = createEngine({ modelDirs: [root], batchSize: 4 });
  });
  afterAll(async () => {
    await e?.dispose();
    rmSync(root, { recursive: true, force: true });
  });
  return { engine: () => e! };
}

describe('sampler_defaults.temperature_unconditional: the temperature when nothing is pinned', () => {
  const T_UNC = 0.8;
  const variant = fixtureVariant('masked-unc', (m) => void (m.sampler_defaults.temperature_unconditional = T_UNC));
  const tokens = async (constraints: ConstraintSetInput['constraints'], sampler: NonNullable<ConstraintSetInput['sampler']>) =>
    (await run(variant.engine(), { version: 1, constraints, sampler }, 'masked-unc')).outputs.map((o) => o.tokens);
  const distinct = (ts: number[][]) => new Set(ts.map((t) => t.join(','))).size;

  it('is listed in the model summary', async () => {
    const models = await variant.engine().listModels();
    expect(models.find((m) => m.id === 'masked-unc')?.samplerDefaults).toEqual({ steps: 12, block_length: 0, confidence: 'low_confidence', temperature: 0, top_p: 1, temperature_unconditional: T_UNC });
    expect((await engine.listModels()).find((m) => m.id === 'masked-tiny')?.samplerDefaults).not.toHaveProperty('temperature_unconditional');
  });

  it('unconditional, no temperature given: temperature_unconditional (samples differ; the same as asking for it)', async () => {
    const auto = await tokens([], { steps: 8, samples: 4, seed: 21 });
    expect(distinct(auto)).toBe(4);
    expect(auto).not.toEqual(await tokens([], { steps: 8, samples: 4, seed: 22 }));
    expect(auto).toEqual(await tokens([], { steps: 8, samples: 4, seed: 21, temperature: T_UNC }));
    // argmax would make every sample the same
    const greedy = await tokens([], { steps: 8, samples: 4, seed: 21, temperature: 0 });
    expect(distinct(greedy)).toBe(1);
    // a disabled record pins nothing; soft and other hard constraints pin nothing either
    expect(await tokens([{ kind: 'record', value: { name: 'Alimentum' }, enabled: false }], { steps: 8, samples: 4, seed: 21 })).toEqual(auto);
    const words = await tokens([{ kind: 'words', include: ['pub'] }], { steps: 8, samples: 4, seed: 21 });
    expect(words).toEqual(await tokens([{ kind: 'words', include: ['pub'] }], { steps: 8, samples: 4, seed: 21, temperature: T_UNC }));
    expect(distinct(words)).toBeGreaterThan(1);
  });

  it('a held record or text, or an infill template: sampler_defaults.temperature', async () => {
    for (const c of [
      { kind: 'record', value: { name: 'Alimentum' } },
      { kind: 'text', value: 'The Vaults is a pub.' },
      { kind: 'infill', template: 'The Vaults ___ Italian food.' },
    ] as ConstraintSetInput['constraints']) {
      const auto = await tokens([c], { steps: 8, samples: 4, seed: 21 });
      expect(auto, c.kind).toEqual(await tokens([c], { steps: 8, samples: 4, seed: 21, temperature: 0 }));
      expect(distinct(auto), c.kind).toBe(1);
      // the same as the bundle without the field
      expect(auto, c.kind).toEqual((await run(engine, { version: 1, constraints: [c], sampler: { steps: 8, samples: 4, seed: 21 } })).outputs.map((o) => o.tokens));
    }
  });

  it('a temperature the request gives always wins', async () => {
    const record: ConstraintSetInput['constraints'] = [{ kind: 'record', value: { name: 'The Vaults' } }];
    const hot = await tokens(record, { steps: 8, samples: 4, seed: 3, temperature: 1.5 });
    expect(distinct(hot)).toBeGreaterThan(1);
    expect(hot).toEqual((await run(engine, { version: 1, constraints: record, sampler: { steps: 8, samples: 4, seed: 3, temperature: 1.5 } })).outputs.map((o) => o.tokens));
    expect(distinct(await tokens([], { steps: 8, samples: 4, seed: 3, temperature: 0 }))).toBe(1);
    const other = await tokens([], { steps: 8, samples: 4, seed: 3, temperature: 1.5 });
    expect(other).not.toEqual(await tokens([], { steps: 8, samples: 4, seed: 3 }));
  });
});

describe('sampler_defaults.record_temperature_unconditional: the record segment\'s temperature when nothing is pinned', () => {
  const T_REC = 1.5;
  const variant = fixtureVariant('masked-rec', (m) => void (m.sampler_defaults.record_temperature_unconditional = T_REC));
  const tokens = async (constraints: ConstraintSetInput['constraints'], sampler: NonNullable<ConstraintSetInput['sampler']>, model = 'masked-rec') =>
    (await run(model === 'masked-rec' ? variant.engine() : engine, { version: 1, constraints, sampler }, model)).outputs.map((o) => o.tokens);
  const distinct = (ts: number[][]) => new Set(ts.map((t) => t.join(','))).size;
  const records = (ts: number[][]) => ts.map((t) => t.slice(0, RECORD));

  it('is listed in the model summary', async () => {
    const models = await variant.engine().listModels();
    expect(models.find((m) => m.id === 'masked-rec')?.samplerDefaults).toMatchObject({ temperature: 0, record_temperature_unconditional: T_REC });
  });

  it('unconditional, nothing given: the record is sampled at it and the text at the run\'s temperature (0 here)', async () => {
    const auto = await tokens([], { steps: 8, samples: 4, seed: 21 });
    expect(distinct(records(auto))).toBeGreaterThan(1);
    expect(auto).toEqual(await tokens([], { steps: 8, samples: 4, seed: 21, temperature: 0, record_temperature: T_REC }, 'masked-tiny'));
    // the bundle without the field writes one sample whatever the seed (argmax)
    expect(distinct(await tokens([], { steps: 8, samples: 4, seed: 21 }, 'masked-tiny'))).toBe(1);
  });

  it('a given temperature holds for the whole canvas, unless record_temperature is given too; a pinned run uses the run\'s', async () => {
    expect(distinct(await tokens([], { steps: 8, samples: 4, seed: 21, temperature: 0 }))).toBe(1);
    expect(distinct(records(await tokens([], { steps: 8, samples: 4, seed: 21, temperature: 0, record_temperature: T_REC })))).toBeGreaterThan(1);
    const text: ConstraintSetInput['constraints'] = [{ kind: 'text', value: 'The Vaults is a pub.' }];
    expect(await tokens(text, { steps: 8, samples: 4, seed: 21 })).toEqual(await tokens(text, { steps: 8, samples: 4, seed: 21 }, 'masked-tiny'));
    // a classifier-guided set (isGuidedRun) keeps the run's temperature for its record too
    const guided: ConstraintSetInput['constraints'] = [{ kind: 'sentiment', label: 'positive' }];
    expect(await tokens(guided, { steps: 8, samples: 4, seed: 21 })).toEqual(await tokens(guided, { steps: 8, samples: 4, seed: 21 }, 'masked-tiny'));
    expect(distinct(await tokens(guided, { steps: 8, samples: 4, seed: 21 }))).toBe(1);
  });
});

describe('sampler_defaults.record_schema_hold: a free run writes a valid record', () => {
  let fields: Record<string, string[]> = {};
  const variant = fixtureVariant('masked-hold', (m) => {
    m.sampler_defaults.record_schema_hold = true;
    fields = m.record_schema.fields;
  });
  const valid = (r: Record<string, unknown> | null) => !!r && Object.keys(r).length > 0 && Object.entries(r).every(([k, v]) => fields[k]?.includes(v as string));
  const sampler = { steps: 12, samples: 6, seed: 5, temperature: 1 };

  it('holds every free record to the record schema (the random fixture writes invalid ones without it), and says so', async () => {
    const held = await run(variant.engine(), { version: 1, constraints: [], sampler }, 'masked-hold');
    expect(held.outputs.map((o) => valid(o.record))).toEqual(Array(6).fill(true));
    expect(held.summary.notes?.join(' ') ?? '').toMatch(/record is held to the model's record schema/);
    const free = await run(engine, { version: 1, constraints: [], sampler });
    expect(free.outputs.filter((o) => valid(o.record)).length).toBeLessThan(6);
    // the same as asking for that schema on the record
    const asked = await run(engine, { version: 1, constraints: [{ kind: 'json-schema', schema: recordSchemaOf(fields) }], sampler });
    expect(held.outputs.map((o) => o.tokens)).toEqual(asked.outputs.map((o) => o.tokens));
  });

  it('leaves a pinned run, and a run with its own hard constraint on the record, as they were', async () => {
    for (const constraints of [
      [{ kind: 'text', value: 'The Vaults is a pub.' }],
      [{ kind: 'json-schema', schema: { type: 'object', properties: { name: { const: 'Alimentum' } }, required: ['name'] } }],
    ] as ConstraintSetInput['constraints'][]) {
      const a = await run(variant.engine(), { version: 1, constraints, sampler }, 'masked-hold');
      const b = await run(engine, { version: 1, constraints, sampler });
      expect(a.outputs.map((o) => o.tokens)).toEqual(b.outputs.map((o) => o.tokens));
    }
  });
});

describe('masked bundles the engine refuses, by name', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'dlm-masked-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const copy = (name: string, edit?: (m: Record<string, any>) => void, graph?: Uint8Array): string => {
    const dir = join(root, name);
    cpSync(FIXTURE, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    m.id = name;
    if (graph) {
      writeFileSync(join(dir, 'denoiser.onnx'), graph);
      const f = m.files.find((x: { path: string }) => x.path === 'denoiser.onnx');
      f.sha256 = createHash('sha256').update(graph).digest('hex');
      f.bytes = graph.length;
    }
    edit?.(m);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    return dir;
  };
  const refusal = async (dir: string): Promise<string> => {
    try {
      await loadBundle(dir);
    } catch (e) {
      expect((e as { code?: string }).code).toBe('BUNDLE_INVALID');
      return (e as Error).message;
    }
    throw new Error(`${dir} was accepted`);
  };

  /** A sentiment classifier entry whose graph is a file the bundle lists (the denoiser's), with these inputs/outputs. */
  const classifier = (m: Record<string, any>, inputs: Record<string, string>, outputs: Record<string, string>) => ({
    control: 'sentiment', files: { 1: m.denoiser.file }, batch_sizes: [1], segment: 'text', labels: ['negative', 'neutral', 'positive'], inputs, outputs,
  });

  /** A pos lexicon entry with this many rows, over a file the bundle lists (the vocabulary's; its bytes are not read). */
  const lexicon = (m: Record<string, any>, rows: number) => ({
    control: 'pos', file: m.tokenizer.vocab, shape: [rows, 2], dtype: 'float32', labels: ['NOUN', 'VERB'],
  });

  it('manifest: unknown kind, missing mask fields, wrong denoiser inputs/outputs, classifiers that read x_t', async () => {
    const cases: [string, (m: Record<string, any>) => void, RegExp][] = [
      ['kind', (m) => { m.kind = 'masked'; }, /manifest\.json: field kind: unknown model kind "masked" \(known: continuous-embedding-diffusion, masked-diffusion\)/],
      ['no-mask', (m) => { delete m.mask; }, /manifest\.json: field mask: /],
      ['no-mask-id', (m) => { delete m.mask.id; }, /manifest\.json: field mask\.id: /],
      ['mask-id', (m) => { m.mask.id = -1; }, /manifest\.json: field mask\.id: /],
      ['no-shift', (m) => { delete m.mask.shifted_logits; }, /manifest\.json: field mask\.shifted_logits: /],
      ['no-ids', (m) => { m.denoiser.inputs = { tokens: 'int64[B,N]' }; }, /field denoiser\.inputs\.tokens: unknown denoiser input \(known: ids, t\)/],
      ['ids-type', (m) => { m.denoiser.inputs = { ids: 'float32[B,N]' }; }, /field denoiser\.inputs\.ids: must be int64\[B,N\]/],
      ['no-ids-at-all', (m) => { m.denoiser.inputs = {}; }, /field denoiser\.inputs\.ids: missing/],
      ['logits', (m) => { m.denoiser.outputs = { logits: 'float32[B,V]' }; }, /field denoiser\.outputs\.logits: must be float32\[B,N,V\]/],
      ['confidence', (m) => { m.sampler_defaults.confidence = 'vibes'; }, /field sampler_defaults\.confidence/],
      ['top-p', (m) => { m.sampler_defaults.top_p = 0; }, /field sampler_defaults\.top_p/],
      ['t-unc-negative', (m) => { m.sampler_defaults.temperature_unconditional = -0.5; }, /manifest\.json: field sampler_defaults\.temperature_unconditional: /],
      ['t-unc-string', (m) => { m.sampler_defaults.temperature_unconditional = '0.5'; }, /manifest\.json: field sampler_defaults\.temperature_unconditional: /],
      // classifier graphs of a masked bundle read token ids and return the gradient over one-hot tokens
      ['clf-x_t', (m) => { m.classifiers = [classifier(m, { x_t: 'float32[B,N,16]', t: 'float32[B]' }, { grad: 'float32[B,N,16]' })]; }, /field classifiers\[0\]\.inputs\.ids: .*got x_t \(a continuous classifier\)/],
      ['clf-grad', (m) => { m.classifiers = [classifier(m, { ids: `int64[B,${m.canvas.length}]` }, { grad: 'float32[B,V]' })]; }, /field classifiers\[0\]\.outputs\.grad: must be float32\[B,Lt,V\]/],
      // an entry without graphs of its own is a head the joint graph serves: without one it is refused
      ['exact-no-top-k', (m) => { m.guidance_defaults = { ...m.guidance_defaults, top_k: 0, exact_top_k: { controls: ['pos'] } }; }, /field guidance_defaults\.exact_top_k: exact re-scoring scores the denoiser's top k candidates: guidance_defaults\.top_k must be above 0/],
      ['exact-kind', (m) => { m.guidance_defaults = { ...m.guidance_defaults, top_k: 6, exact_top_k: { controls: ['json-schema'] } }; }, /field guidance_defaults\.exact_top_k\.controls\[0\]: Invalid option: expected one of "pos"\|"spans"/],
      ['clf-no-graphs', (m) => { m.classifiers = [{ ...classifier(m, { ids: `int64[B,${m.canvas.length}]` }, { grad: 'float32[B,Lt,V]' }), files: {}, batch_sizes: [] }]; }, /field classifiers\[0\]\.batch_sizes: empty: a sentiment entry without graphs of its own needs joint_guidance to cover sentiment/],
      // token label lexicons: one row per tokenizer id, one column per label, a file the bundle lists, one per control
      ['lex-rows', (m) => { m.lexicons = [lexicon(m, m.tokenizer.size - 1)]; }, new RegExp(`field lexicons\\[0\\]\\.shape: has \\d+ rows; the tokenizer has \\d+ tokens`)],
      ['lex-cols', (m) => { m.lexicons = [{ ...lexicon(m, m.tokenizer.size), labels: ['NOUN'] }]; }, /field lexicons\[0\]\.shape: has 2 columns for 1 labels/],
      ['lex-unlisted', (m) => { m.lexicons = [{ ...lexicon(m, m.tokenizer.size), file: 'classifiers/pos.lexicon.f32' }]; }, /field lexicons\[0\]\.file: classifiers\/pos\.lexicon\.f32 is not listed/],
      ['lex-twice', (m) => { m.lexicons = [lexicon(m, m.tokenizer.size), lexicon(m, m.tokenizer.size)]; }, /field lexicons\[1\]\.control: a second pos lexicon/],
      ['lex-control', (m) => { m.lexicons = [{ ...lexicon(m, m.tokenizer.size), control: 'sentiment' }]; }, /field lexicons\[0\]\.control: Invalid option: expected one of "pos"\|"spans"/],
      // where a guided text may end: token ids of the tokenizer, at least one
      ['end-outside', (m) => { m.text_end = { tokens: [2, m.tokenizer.size] }; }, /field text_end\.tokens: names token \d+; the tokenizer has \d+ tokens/],
      ['end-empty', (m) => { m.text_end = { tokens: [] }; }, /field text_end\.tokens: /],
    ];
    for (const [name, edit, re] of cases) expect(await refusal(copy(name, edit)), name).toMatch(re);
    // no embedding or schedule is needed
    const ok = await loadBundle(FIXTURE);
    expect(ok.manifest.kind).toBe('masked-diffusion');
  });

  it('graph: an input or output that is not what the manifest promises fails the run, naming it', async () => {
    const V = 1796;
    const emb = new Float32Array(1791 * 4).fill(0.01);
    const out = new Float32Array(4 * V).fill(0.02);
    const inits = () => [tensor('EMB', [1791, 4], emb, FLOAT), tensor('OUT', [4, V], out, FLOAT)];
    const graphs: [string, Uint8Array, RegExp, ((m: Record<string, any>) => void)?][] = [
      ['tokens-input', onnxModel(
        [node('Gather', ['EMB', 'tokens'], ['E']), node('MatMul', ['E', 'OUT'], ['logits'])], inits(),
        [valueInfo('tokens', INT64, ['B', N])], [valueInfo('logits', FLOAT, ['B', N, V])],
      ), /denoiser\.onnx: input 'ids' must be int64\[B,N\]/],
      ['float-ids', onnxModel(
        [node('Cast', ['ids'], ['I'], [{ name: 'to', i: 7 }]), node('Gather', ['EMB', 'I'], ['E']), node('MatMul', ['E', 'OUT'], ['logits'])], inits(),
        [valueInfo('ids', FLOAT, ['B', N])], [valueInfo('logits', FLOAT, ['B', N, V])],
      ), /denoiser\.onnx: input 'ids' must be int64\[B,N\]/],
      ['flat-logits', onnxModel(
        [node('Gather', ['EMB', 'ids'], ['E']), node('ReduceMean', ['E'], ['M'], [{ name: 'axes', ints: [1] }, { name: 'keepdims', i: 0 }]), node('MatMul', ['M', 'OUT'], ['logits'])], inits(),
        [valueInfo('ids', INT64, ['B', N])], [valueInfo('logits', FLOAT, ['B', V])],
      ), /denoiser\.onnx: output 'logits' must be float32\[B,N,V\]/],
    ];
    // a denoiser that also takes t (the masked share of each row) runs; listing t for a graph without it is refused
    const withT = onnxModel(
      [
        node('Gather', ['EMB', 'ids'], ['E']), node('Reshape', ['t', 'SHAPE_B11'], ['T3']), node('Mul', ['T3', 'WT'], ['TW']),
        node('Add', ['E', 'TW'], ['E2']), node('MatMul', ['E2', 'OUT'], ['logits']),
      ],
      [...inits(), tensor('SHAPE_B11', [3], BigInt64Array.of(-1n, 1n, 1n), INT64), tensor('WT', [4], Float32Array.of(1, -1, 2, 0.5), FLOAT)],
      [valueInfo('ids', INT64, ['B', N]), valueInfo('t', FLOAT, ['B'])], [valueInfo('logits', FLOAT, ['B', N, V])],
    );
    copy('with-t', (m) => { m.denoiser.inputs = { ids: 'int64[B,N]', t: 'float32[B]' }; }, withT);
    graphs.push(['t-listed', readFileSync(join(FIXTURE, 'denoiser.onnx')), /denoiser\.onnx: input 't' must be float32\[B\]/, (m) => { m.denoiser.inputs = { ids: 'int64[B,N]', t: 'float32[B]' }; }]);
    const e = createEngine({ modelDirs: [root] });
    try {
      const ok = await run(e, { version: 1, constraints: [], sampler: { steps: 4, samples: 2, seed: 1 } }, 'with-t');
      expect(ok.summary.status).toBe('completed');
      expect(ok.outputs).toHaveLength(2);
      for (const [name, graph, re, edit] of graphs) {
        copy(name, edit, graph);
        await expect(e.generate({ model: name, device: 'cpu', constraints: parseConstraintSet({ version: 1, constraints: [], sampler: { steps: 2, samples: 1 } }) }, {}), name)
          .rejects.toMatchObject({ code: 'BUNDLE_INVALID', message: expect.stringMatching(re) });
      }
    } finally {
      await e.dispose();
    }
  });

  it('an int8 denoiser: precision auto on cpu runs it, fp32 the fp32 graph; a dynamic or unlisted one is refused by name', async () => {
    // a stand-in "int8" graph whose logits always favour token 7, so the tokens show which graph ran
    const V = 1796;
    const emb = new Float32Array(1791 * 4).fill(0.01);
    const out = new Float32Array(4 * V);
    for (let r = 0; r < 4; r++) out[r * V + 7] = 50;
    const favour7 = onnxModel(
      [node('Gather', ['EMB', 'ids'], ['E']), node('MatMul', ['E', 'OUT'], ['logits'])],
      [tensor('EMB', [1791, 4], emb, FLOAT), tensor('OUT', [4, V], out, FLOAT)],
      [valueInfo('ids', INT64, ['B', N])], [valueInfo('logits', FLOAT, ['B', N, V])],
    );
    const withInt8 = (name: string, int8: Record<string, unknown>, listed = true) => {
      const dir = copy(name, (m) => {
        m.denoiser.int8 = int8;
        if (listed) m.files.push({ path: 'denoiser.int8.onnx', bytes: favour7.length, sha256: createHash('sha256').update(favour7).digest('hex') });
      });
      writeFileSync(join(dir, 'denoiser.int8.onnx'), favour7);
      return dir;
    };
    withInt8('int8-static', { file: 'denoiser.int8.onnx', activations: 'static' });
    expect(await refusal(withInt8('int8-dynamic', { file: 'denoiser.int8.onnx', activations: 'dynamic' }))).toMatch(/field denoiser\.int8\.activations: /);
    expect(await refusal(withInt8('int8-unlisted', { file: 'denoiser.int8.onnx', activations: 'static' }, false))).toMatch(/denoiser\.int8\.file: denoiser\.int8\.onnx is not listed/);
    const e = createEngine({ modelDirs: [root] });
    try {
      const set = (precision?: 'int8' | 'fp32'): ConstraintSetInput => ({ version: 1, constraints: [], sampler: { steps: 6, samples: 2, seed: 3, ...(precision ? { precision } : {}) } });
      const auto = await run(e, set(), 'int8-static');
      expect(auto.summary.device.precision).toBe('int8');
      expect(auto.outputs.every((o) => o.tokens.every((t) => t === 7))).toBe(true);
      const fp32 = await run(e, set('fp32'), 'int8-static');
      expect(fp32.summary.device.precision).toBe('fp32');
      expect(fp32.outputs.some((o) => o.tokens.some((t) => t !== 7))).toBe(true);
      await expect(e.generate({ model: 'int8-static', device: 'cpu', constraints: parseConstraintSet(set('int8')) }, {})).resolves.toMatchObject({ status: 'completed' });
      // guided_runs fp32: under auto a classifier-guided run takes the fp32 graph, an unguided one the int8 graph;
      // asking for int8 still gets it
      withInt8('int8-guided-fp32', { file: 'denoiser.int8.onnx', activations: 'static', guided_runs: 'fp32' });
      const guidedSet = (precision?: 'int8' | 'fp32'): ConstraintSetInput => ({ ...set(precision), constraints: [{ kind: 'sentiment', label: 'positive' }] });
      const plain = await run(e, set(), 'int8-guided-fp32');
      expect(plain.summary.device.precision).toBe('int8');
      const guided = await run(e, guidedSet(), 'int8-guided-fp32');
      expect(guided.summary.device.precision).toBe('fp32');
      expect(guided.outputs.some((o) => o.tokens.some((t) => t !== 7))).toBe(true);
      const forced = await run(e, guidedSet('int8'), 'int8-guided-fp32');
      expect(forced.summary.device.precision).toBe('int8');
      expect(forced.outputs.every((o) => o.tokens.every((t) => t === 7))).toBe(true);
    } finally {
      await e.dispose();
    }
    // a bundle without an int8 graph: asking for one names the fix
    await expect(engine.generate({ model: 'masked-tiny', device: 'cpu', constraints: parseConstraintSet({ version: 1, constraints: [], sampler: { steps: 2, samples: 1, precision: 'int8' } }) }, {}))
      .rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/sampler\.precision: model masked-tiny has no int8 denoiser/) });
  });
});
