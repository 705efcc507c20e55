/**
 * The trained masked bundle (models/e2e-masked, exported by training/dlm_train/masked_export.py) through the engine:
 * it loads and lists, generates unconditionally and data-to-text, enforces a JSON schema on the record, and agrees
 * with the PyTorch reference sampler (training/dlm_train/masked_sample.py) for the same seed when a Python with
 * torch is there ($PYTHON, default /usr/bin/python3). Skipped while the bundle is absent.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConstraintSetInput } from '../../../src-main/constraints/set';
import * as ort from 'onnxruntime-node';
import { createEngine } from '../../../src-main/engine/index';
import { FLOAT, INT64, model as onnxModel, node, tensor, valueInfo } from '../../../src-main/engine/onnx-graph';
import { logitsOf } from '../../../src-main/engine/families/masked/index';
import { maskedManifestSchema } from '../../../src-main/engine/families/masked/manifest';
import { readBackLogp } from '../../../src-main/engine/families/masked/sampler';
import type { Engine, GeneratedOutput, GenerateRequest, RunSummary } from '../../../src-main/engine/types';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIR = `${ROOT}models/e2e-masked`;
const PY = process.env.PYTHON ?? '/usr/bin/python3';
const present = existsSync(`${DIR}/manifest.json`);
const hasTorch = present && existsSync(PY) && spawnSync(PY, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;

let engine: Engine;

async function run(set: ConstraintSetInput, e: Engine = engine): Promise<{ outputs: GeneratedOutput[]; summary: RunSummary; steps: number }> {
  const outputs: GeneratedOutput[] = [];
  let steps = 0;
  const summary = await e.generate({ model: 'e2e-masked', device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outputs.push(o), onProgress: (p) => void (steps = p.steps) });
  return { outputs, summary, steps };
}

describe.skipIf(!present)(`engine on the masked bundle${present ? '' : ` [skipped: ${DIR} is absent]`}`, () => {
  beforeAll(() => {
    engine = createEngine({ modelDirs: [`${ROOT}models`] });
  });
  afterAll(() => engine.dispose());

  it('is listed with its kind and sampler defaults, and generates unconditionally and data-to-text', async () => {
    const m = (await engine.listModels()).find((x) => x.id === 'e2e-masked')!;
    expect(m.error).toBeUndefined();
    expect(m.kind).toBe('masked-diffusion');
    expect(m.samplerDefaults?.steps).toBeGreaterThan(0);
    const u = await run({ version: 1, constraints: [], sampler: { steps: 24, samples: 4, seed: 1 } });
    expect(u.summary.status).toBe('completed');
    // its int8 graph runs what does not guide; a classifier-guided run keeps the fp32 graph (denoiser.int8.guided_runs)
    expect(m.precisions).toEqual(['fp32', 'int8']);
    expect(m.int8GuidedRuns).toBe('fp32');
    expect(u.summary.device.precision).toBe('int8');
    const g = await run({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { steps: 24, samples: 1, seed: 1, candidates: 1 } });
    expect(g.summary.device.precision).toBe('fp32');
    expect(u.outputs).toHaveLength(4);
    const record = { name: 'The Vaults', eatType: 'pub', food: 'Italian' };
    const d = await run({ version: 1, constraints: [{ kind: 'record', value: record }], sampler: { steps: 24, samples: 2, seed: 2 } });
    for (const o of d.outputs) {
      expect(o.record).toEqual(record);
      expect(o.text.length).toBeGreaterThan(0);
    }
  });

  it('data-to-text candidates: the one whose text the denoiser reads the record back from best; text-to-record keeps consensus', async () => {
    const record = { name: 'Alimentum', area: 'city centre', familyFriendly: 'no' };
    const d = await run({ version: 1, constraints: [{ kind: 'record', value: record }], sampler: { steps: 24, samples: 2, seed: 3, candidates: 3 } });
    expect(d.outputs).toHaveLength(2);
    for (const o of d.outputs) {
      expect(o.record).toEqual(record);
      expect(o.consensus).toMatchObject({ candidates: 3, by: 'read-back' });
      const scores = o.consensus!.scores!;
      expect(scores).toHaveLength(3);
      for (const x of scores) expect(x).toBeLessThan(0);
      expect(scores[o.consensus!.chosen]).toBe(Math.max(...scores));
    }
    const t = await run({ version: 1, constraints: [{ kind: 'text', value: 'Alimentum is not family-friendly and is in the city centre.' }], sampler: { steps: 24, samples: 1, seed: 3, candidates: 2 } });
    expect(t.outputs[0]!.consensus).toMatchObject({ candidates: 2, by: 'consensus' });
  });

  it('a free run writes valid records (record_schema_hold) of many restaurants (record_temperature_unconditional)', async () => {
    const fields = JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8')).record_schema.fields as Record<string, string[]>;
    const r = await run({ version: 1, constraints: [], sampler: { steps: 48, samples: 8, seed: 4 } });
    for (const o of r.outputs) {
      expect(o.record, o.recordText).not.toBeNull();
      for (const [k, v] of Object.entries(o.record!)) expect(fields[k], `${k}: ${String(v)}`).toContain(v);
    }
    expect(new Set(r.outputs.map((o) => o.record!.name)).size, r.outputs.map((o) => o.recordText).join('\n')).toBeGreaterThan(2);
  });

  it('a JSON schema on the record holds in every output', async () => {
    const fields = JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8')).record_schema.fields as Record<string, string[]>;
    const schema = { type: 'object', properties: { name: { enum: fields.name!.slice(0, 5) }, eatType: { enum: fields.eatType } }, required: ['name', 'eatType'], additionalProperties: false };
    const r = await run({ version: 1, constraints: [{ kind: 'json-schema', schema }], sampler: { steps: 24, samples: 4, seed: 3, temperature: 1 } });
    for (const o of r.outputs) expect(o.constraints[0]!.satisfied, o.recordText).toBe(true);
  });

  it.skipIf(!hasTorch)(`same tokens as the PyTorch reference sampler${hasTorch ? '' : ` [skipped: ${PY} with torch is not available]`}`, async () => {
    const cases: { args: string[]; set: ConstraintSetInput }[] = [
      { args: ['--samples', '3', '--steps', '16', '--seed', '7'], set: { version: 1, constraints: [], sampler: { samples: 3, steps: 16, seed: 7, precision: 'fp32' } } },
      {
        args: ['--samples', '2', '--steps', '12', '--seed', '8', '--block-length', '16', '--temperature', '0.8', '--top-p', '0.9', '--record', '{"name":"Alimentum","food":"French"}'],
        set: { version: 1, constraints: [{ kind: 'record', value: { name: 'Alimentum', food: 'French' } }], sampler: { samples: 2, steps: 12, seed: 8, block_length: 16, temperature: 0.8, top_p: 0.9, candidates: 1, precision: 'fp32' } },
      },
    ];
    // the reference has no hard constraints: the engine's hold on a free record (record_schema_hold) is off here
    // (an engine's worker thread copies the environment when it starts, on its first run)
    process.env.DLM_MASKED_RECORD_HOLD = '0';
    const plain = createEngine({ modelDirs: [`${ROOT}models`] });
    let same = 0;
    let all = 0;
    for (const c of cases) {
      const r = spawnSync(PY, ['-m', 'training.dlm_train.masked_sample', '--bundle', DIR, '--json', '--threads', '1', ...c.args], {
        cwd: ROOT, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, timeout: 600_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const ref = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { ids: number[] }).ids);
      const mine = (await run(c.set, plain)).outputs.map((o) => o.tokens);
      ref.forEach((row, i) => row.forEach((t, j) => {
        all++;
        if (mine[i]?.[j] === t) same++;
      }));
    }
    await plain.dispose();
    delete process.env.DLM_MASKED_RECORD_HOLD;
    console.log(`e2e-masked: ${same}/${all} tokens equal to the PyTorch reference sampler's`);
    // float differences between ONNX Runtime and PyTorch may flip a near-tie, and a flip changes later steps
    expect(same / all).toBeGreaterThan(0.9);
  });

  describe('classifier guidance on masked canvases (issue 16)', () => {
    const manifest = JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8')) as { classifiers: { control: string }[] };
    const guided = manifest.classifiers.map((c) => c.control);
    const satisfied = (r: { outputs: GeneratedOutput[] }, k = 0) => r.outputs.filter((o) => o.constraints[k]!.satisfied).length;

    it.skipIf(!guided.includes('attribute'))('an attribute constraint is guided and holds the record, which is written first: more outputs name the value than without guidance', async () => {
      const set = (enabled: boolean): ConstraintSetInput => ({
        version: 1, constraints: [{ kind: 'attribute', field: 'food', value: 'Italian' }], sampler: { samples: 8, seed: 5, guidance: { enabled } },
      });
      const on = await run(set(true));
      const off = await run(set(false));
      expect(on.summary.status).toBe('completed');
      expect(on.summary.warnings ?? []).toEqual([]);
      expect(on.summary.guideMs).toBeGreaterThan(0);
      expect(off.summary.guideMs).toBeUndefined();
      expect(satisfied(on)).toBeGreaterThan(satisfied(off));
      expect(satisfied(on)).toBeGreaterThanOrEqual(7);
      // the record segment is held to a valid record with food = Italian: every output's record says so
      for (const o of on.outputs) expect(o.record?.food, o.recordText).toBe('Italian');
    });

    it.skipIf(!guided.includes('attribute'))('the attribute-held record is written before the text; without the hold (DLM_ATTRIBUTE_RECORD=0) the guided text goes first', async () => {
      const TEXT_START = 45;
      const firstCommitted = async (e: Engine): Promise<number[]> => {
        let first: number[] | null = null;
        await e.generate(
          { model: 'e2e-masked', device: 'cpu', constraints: { version: 1, constraints: [{ kind: 'attribute', field: 'area', value: 'riverside' }], sampler: { samples: 1, seed: 3 } } as GenerateRequest['constraints'] },
          { onProgress: (p) => { if (!first) first = Array.from({ length: 96 }, (_, i) => i).filter((i) => !p.masked![0]!.includes(i)); } },
        );
        return first!;
      };
      const held = await firstCommitted(engine);
      expect(held.length).toBeGreaterThan(0);
      expect(held.every((i) => i < TEXT_START), held.join(',')).toBe(true);
      // the engine's worker takes the environment it starts with (on its first request)
      process.env.DLM_ATTRIBUTE_RECORD = '0';
      const without = createEngine({ modelDirs: [`${ROOT}models`] });
      try {
        const guidedFirst = await firstCommitted(without);
        expect(guidedFirst.length).toBeGreaterThan(0);
        expect(guidedFirst.every((i) => i >= TEXT_START), guidedFirst.join(',')).toBe(true);
      } finally {
        delete process.env.DLM_ATTRIBUTE_RECORD;
        await without.dispose();
      }
    });

    it.skipIf(!guided.includes('sentiment'))('sentiment is guided, together with a JSON schema on the record that still holds', async () => {
      const schema = { type: 'object', properties: { eatType: { const: 'pub' } }, required: ['eatType'] };
      const set = (enabled: boolean): ConstraintSetInput => ({
        version: 1, constraints: [{ kind: 'sentiment', label: 'negative' }, { kind: 'json-schema', schema }], sampler: { samples: 8, seed: 6, guidance: { enabled } },
      });
      const on = await run(set(true));
      const off = await run(set(false));
      for (const o of on.outputs) expect(o.constraints[1]!.satisfied, o.recordText).toBe(true);
      expect(satisfied(on)).toBeGreaterThan(satisfied(off));
    });

    it.skipIf(!guided.includes('sentiment'))('guided candidates are ranked by the guidance terms plus the denoiser\'s read-back of their text (candidate_fluency)', async () => {
      const m = maskedManifestSchema.parse(JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8')));
      const fluency = m.guidance_defaults.candidate_fluency;
      expect(fluency.by).toBe('read-back');
      const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { samples: 1, steps: 32, seed: 9, candidates: 3 } };
      const ranked = (await run(set)).outputs[0]!;
      // the same candidates ranked by the guidance terms alone (the read-back changes no token: it scores finished texts)
      process.env.DLM_MASKED_SCORE_MODEL = '0';
      const termsOnly = createEngine({ modelDirs: [`${ROOT}models`] });
      let terms: GeneratedOutput;
      try {
        terms = (await run(set, termsOnly)).outputs[0]!;
      } finally {
        delete process.env.DLM_MASKED_SCORE_MODEL;
        await termsOnly.dispose();
      }
      const withFluency = ranked.consensus!.scores!;
      const termScores = terms.consensus!.scores!;
      expect(withFluency).toHaveLength(3);
      expect(ranked.consensus!.chosen).toBe(withFluency.indexOf(Math.max(...withFluency)));
      const added = withFluency.map((s, c) => s - termScores[c]!);
      for (const a of added) expect(a).toBeLessThan(0);
      expect(new Set(added.map((a) => a.toFixed(3))).size, 'the read-back differs between candidates').toBeGreaterThan(1);
      // the chosen candidate's share: weight x the log p of its text tokens, each masked in one of 4 groups, from the graph
      const session = await ort.InferenceSession.create(`${DIR}/${m.denoiser.file}`);
      const N = m.canvas.length;
      const text = m.canvas.segments.find((s) => s.name === 'text')!;
      const pll = await readBackLogp((ids, B) => logitsOf(session, m, ids, B, N), Int32Array.from(ranked.tokens), 1, N,
        Array.from({ length: text.length }, (_, j) => text.start + j), 4, { vocabSize: m.tokenizer.size, maskId: m.mask.id, shifted: m.mask.shifted_logits });
      await session.release();
      expect(added[ranked.consensus!.chosen]).toBeCloseTo(fluency.weight * pll[0]!, 2);
    });

    it('a length is pinned: every output has exactly that many tokens, with or without classifiers', async () => {
      const r = await run({ version: 1, constraints: [{ kind: 'length', tokens: 14 }], sampler: { samples: 6, seed: 7 } });
      // the evaluator counts words (wink-nlp), which a token is not always: most, not all, must pass it
      expect(satisfied(r)).toBeGreaterThanOrEqual(4);
      for (const o of r.outputs) {
        const text = o.tokens.slice(45);
        expect(text.indexOf(2), o.text).toBe(14); // <end> right after 14 text tokens, none of them <pad>
        expect(text.slice(0, 14)).not.toContain(0);
      }
      // guidance off: no pin either (the lengths are whatever the model writes)
      const off = await run({ version: 1, constraints: [{ kind: 'length', tokens: 14 }], sampler: { samples: 6, seed: 7, guidance: { enabled: false } } });
      expect(off.outputs.filter((o) => o.tokens.slice(45).indexOf(2) === 14).length).toBeLessThan(6);
      // text-to-record holds the text: the length cannot be steered there, and the run says so
      const t2r = await run({ version: 1, constraints: [{ kind: 'text', value: 'The Vaults is a pub.' }, { kind: 'length', tokens: 14 }], sampler: { samples: 1, seed: 1 } });
      expect(t2r.summary.warnings).toEqual([expect.stringMatching(/constraints\[1\] \(length\): the text is held, so its length is not steered/)]);
    });

    it.skipIf(!guided.includes('spans'))('phrase spans: the text goes one token past the last span (<end> and <pad> barred up to it) and ends on a token of text_end', async () => {
      const r = await run({ version: 1, constraints: [{ kind: 'spans', spans: [[22, 23, 'PP']] }], sampler: { samples: 4, seed: 9 } });
      const enders = new Set((JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8')) as { text_end?: { tokens: number[] } }).text_end?.tokens ?? []);
      for (const o of r.outputs) {
        const text = o.tokens.slice(45);
        expect(text.slice(0, 25).every((t) => t !== 0 && t !== 2), o.text).toBe(true);
        const end = text.indexOf(2);
        if (enders.size && end > 0) expect(enders.has(text[end - 1]!), o.text).toBe(true);
      }
    });

    const lexicons = (JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8')) as { lexicons?: { control: string }[] }).lexicons?.map((l) => l.control) ?? [];

    it.skipIf(!lexicons.includes('pos'))('a POS template is guided by its token label lexicon: the outputs take it exactly, unguided ones do not', async () => {
      // a dev reference's tags: "Alimentum is a family friendly establishment in the riverside area near the Burger King."
      const tags = ['PROPN', 'AUX', 'DET', 'NOUN', 'ADJ', 'NOUN', 'ADP', 'DET', 'NOUN', 'NOUN', 'ADP', 'DET', 'PROPN', 'PROPN', 'PUNCT'] as const;
      const set = (enabled: boolean): ConstraintSetInput => ({ version: 1, constraints: [{ kind: 'pos', tags: [...tags] }], sampler: { samples: 4, seed: 11, guidance: { enabled } } });
      const on = await run(set(true));
      const off = await run(set(false));
      expect(on.summary.warnings ?? []).toEqual([]);
      expect(satisfied(on), on.outputs.map((o) => o.text).join(' | ')).toBeGreaterThanOrEqual(3);
      expect(satisfied(off)).toBeLessThan(satisfied(on));
      const score = (r: { outputs: GeneratedOutput[] }) => r.outputs.reduce((a, o) => a + o.constraints[0]!.score!, 0) / r.outputs.length;
      expect(score(on)).toBeGreaterThan(0.9);
      expect(score(off)).toBeLessThan(0.5);
      // the bundle's remasking rounds run after a POS-guided plan and say so; an unguided run has none
      const remask = (JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8')) as { guidance_defaults?: { remask?: { rounds: number; fraction: number; controls: string[] } } }).guidance_defaults?.remask;
      if (remask?.controls.includes('pos')) {
        expect(on.summary.notes?.join(' ')).toMatch(new RegExp(`remasking: ${remask.rounds} rounds`));
        // the template pins 15 text tokens; each round writes its share of them again, one per step
        expect(on.steps - off.steps).toBe(remask.rounds * Math.ceil(remask.fraction * tags.length));
        expect((off.summary.notes ?? []).filter((n) => /remask/.test(n))).toEqual([]);
      }
    }, 180_000);

    it.skipIf(!lexicons.includes('spans'))('phrase spans are guided by their lexicon: more outputs chunk them as asked than without guidance', async () => {
      const set = (enabled: boolean): ConstraintSetInput => ({ version: 1, constraints: [{ kind: 'spans', spans: [[1, 3, 'PP']] }], sampler: { samples: 6, seed: 12, guidance: { enabled } } });
      const on = await run(set(true));
      const off = await run(set(false));
      expect(satisfied(on), on.outputs.map((o) => o.text).join(' | ')).toBeGreaterThan(satisfied(off));
      expect(satisfied(on)).toBeGreaterThanOrEqual(4);
    }, 180_000);

    it.skipIf(!guided.includes('spans'))('exact top-k re-scoring (sampler.guidance.exactTopK): noted, more classifier time, other tokens than the first-order estimate; refused where it cannot run', async () => {
      const set = (exactTopK: boolean | null, model = 'e2e-masked'): GenerateRequest => ({
        model, device: 'cpu',
        constraints: { version: 1, constraints: [{ kind: 'spans', spans: [[3, 5, 'PP']] }], sampler: { samples: 2, seed: 11, steps: 32, candidates: 1, guidance: { exactTopK } } } as GenerateRequest['constraints'],
      });
      const collect = async (req: GenerateRequest, e: Engine = engine) => {
        const outputs: GeneratedOutput[] = [];
        const summary = await e.generate(req, { onOutput: (o) => outputs.push(o) });
        return { outputs, summary };
      };
      const exact = await collect(set(true));
      const first = await collect(set(false));
      // unset: the bundle's default for the kinds the run guides (guidance_defaults.exact_top_k.controls)
      const defaults = (await engine.listModels()).find((x) => x.id === 'e2e-masked')!.exactTopK!;
      const byDefault = await collect(set(null));
      expect(byDefault.outputs.map((o) => o.tokens)).toEqual((defaults.includes('spans') ? exact : first).outputs.map((o) => o.tokens));
      expect(exact.summary.status).toBe('completed');
      expect(exact.summary.notes ?? []).toContainEqual(expect.stringMatching(/exact top-k re-scoring: at each guided position a step commits, the denoiser's top 6 tokens/));
      expect((first.summary.notes ?? []).some((n) => /exact top-k/.test(n))).toBe(false);
      // one batch of top-k canvases per step besides the gradient call: more time in the classifiers
      expect(exact.summary.guideMs!).toBeGreaterThan(first.summary.guideMs!);
      expect(exact.outputs.map((o) => o.tokens)).not.toEqual(first.outputs.map((o) => o.tokens));
      // a continuous model has no candidate tokens to score
      await expect(collect({ ...set(true), model: 'e2e-default' })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/sampler\.guidance\.exactTopK: exact top-k re-scoring is for masked models; e2e-default is a continuous model/) });
      // a bundle whose guidance re-ranks every token (top_k 0) has no top k to score: refused by name; its default is off
      const root = mkdtempSync(join(tmpdir(), 'dlm-exact-'));
      const dir = join(root, 'masked-all-tokens');
      mkdirSync(dir);
      for (const f of readdirSync(DIR)) if (f !== 'manifest.json') symlinkSync(join(DIR, f), join(dir, f));
      const m = JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8')) as { id: string; guidance_defaults: { top_k: number; exact_top_k?: unknown } };
      m.id = 'masked-all-tokens';
      m.guidance_defaults.top_k = 0;
      // (a default for some kinds would make the manifest invalid without a top k: masked.test.ts)
      delete m.guidance_defaults.exact_top_k;
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
      const e = createEngine({ modelDirs: [root] });
      try {
        expect((await e.listModels())[0]).not.toHaveProperty('exactTopK');
        await expect(collect(set(true, 'masked-all-tokens'), e)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/sampler\.guidance\.exactTopK: masked-all-tokens lets guidance re-rank every token \(its guidance_defaults\.top_k is 0\)/) });
      } finally {
        await e.dispose();
        rmSync(root, { recursive: true, force: true });
      }
      expect((await engine.listModels()).find((x) => x.id === 'e2e-masked')?.exactTopK).toBeDefined();
    });

    const logpGraphs = (JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8')) as { joint_guidance?: { files: Record<string, string>; logp?: { files: Record<string, string> } } }).joint_guidance;
    it.skipIf(!logpGraphs?.logp)('exact re-scoring reads the forward-only graph (joint_guidance.logp): the same log p as the gradient graph, and it is the one consulted', async () => {
      const cut = await ort.InferenceSession.create(`${DIR}/${logpGraphs!.logp!.files['8']}`);
      const full = await ort.InferenceSession.create(`${DIR}/${logpGraphs!.files['8']}`);
      expect(cut.outputNames).toEqual(['logp']);
      // 8 canvases: the mask everywhere, then text tokens written into some rows; targets for every control
      const N = 96;
      const ids = new BigInt64Array(8 * N).fill(1791n);
      for (let r = 1; r < 8; r++) for (let i = 45; i < 45 + 6 * r; i++) ids[r * N + i] = BigInt(100 + ((i * 7 + r) % 1500));
      const feeds: Record<string, ort.Tensor> = { ids: new ort.Tensor('int64', ids, [8, N]) };
      for (const name of full.inputNames.filter((n) => n !== 'ids')) {
        const meta = (full.inputMetadata as unknown as { name: string; shape: (number | string)[] }[]).find((x) => x.name === name)!;
        const dims = meta.shape.map((d) => (typeof d === 'number' ? d : 8));
        const n = dims.reduce((a, b) => a * b, 1);
        feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: n }, (_, k) => ((k * 37) % 11 === 0 ? 1 : 0)), dims);
      }
      const a = (await cut.run(feeds)).logp!.data as Float32Array;
      const b = (await full.run(feeds)).logp!.data as Float32Array;
      const scale = Math.max(1, ...Array.from(b, Math.abs));
      for (let k = 0; k < b.length; k++) expect(Math.abs(a[k]! - b[k]!)).toBeLessThan(1e-5 * scale);
      await cut.release();
      await full.release();
      // a copy whose forward-only graph says log p = 0 for every canvas: exact scores then add nothing, so its outputs
      // are not those of the bundle's own exact run
      const root = mkdtempSync(join(tmpdir(), 'dlm-logp-'));
      const dir = join(root, 'masked-zero-logp');
      mkdirSync(dir);
      for (const f of readdirSync(DIR)) if (f !== 'manifest.json' && f !== 'classifiers') symlinkSync(join(DIR, f), join(dir, f));
      mkdirSync(join(dir, 'classifiers'));
      for (const f of readdirSync(join(DIR, 'classifiers'))) symlinkSync(join(DIR, 'classifiers', f), join(dir, 'classifiers', f));
      const inputs = Object.entries(feeds).map(([name, t]) => valueInfo(name, name === 'ids' ? INT64 : FLOAT, t.dims as number[]));
      const zero = onnxModel([node('MatMul', ['target_sentiment', 'ZERO'], ['logp'])], [tensor('ZERO', [3, 1], new Float32Array(3), FLOAT)], inputs, [valueInfo('logp', FLOAT, [8, 1])]);
      writeFileSync(join(dir, 'classifiers', 'zero.logp.b8.onnx'), zero);
      const m = JSON.parse(readFileSync(`${DIR}/manifest.json`, 'utf8'));
      m.id = 'masked-zero-logp';
      m.joint_guidance.logp = { files: { 8: 'classifiers/zero.logp.b8.onnx' }, batch_sizes: [8] };
      m.files.push({ path: 'classifiers/zero.logp.b8.onnx', sha256: createHash('sha256').update(zero).digest('hex'), bytes: zero.length });
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
      const set = (model: string): GenerateRequest => ({
        model, device: 'cpu',
        constraints: { version: 1, constraints: [{ kind: 'spans', spans: [[3, 5, 'PP']] }], sampler: { samples: 2, seed: 11, steps: 32, candidates: 1, guidance: { exactTopK: true } } } as GenerateRequest['constraints'],
      });
      const e = createEngine({ modelDirs: [root] });
      try {
        const tokens = async (eng: Engine, model: string) => {
          const outs: GeneratedOutput[] = [];
          const summary = await eng.generate(set(model), { onOutput: (o) => outs.push(o) });
          expect(summary.status).toBe('completed');
          return outs.map((o) => o.tokens);
        };
        expect(await tokens(e, 'masked-zero-logp')).not.toEqual(await tokens(engine, 'e2e-masked'));
      } finally {
        await e.dispose();
        rmSync(root, { recursive: true, force: true });
      }
    });

    it('two different lengths are refused by name', async () => {
      await expect(run({ version: 1, constraints: [{ kind: 'length', tokens: 10 }, { kind: 'length', tokens: 12 }], sampler: { samples: 1, seed: 1 } }))
        .rejects.toMatchObject({ message: expect.stringMatching(/constraints\[0\], constraints\[1\]: two lengths asked for \(10 and 12 tokens\)/) });
    });
  });
});
