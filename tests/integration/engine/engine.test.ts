import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConstraintSetInput } from '../../../src-main/constraints/set';
import { readManifest } from '../../../src-main/engine/bundle';
import { canonicalRecord } from '../../../src-main/engine/constraints-adapter';
import { familyManifest } from '../../../src-main/engine/families/manifests';
import { glueRule } from '../../../src-main/engine/projection';
import { processClockMs } from '../../../src-main/engine/clock';
import { selectConsensus } from '../../../src-main/engine/candidates';
import { Mulberry32 } from '../../../src-main/engine/prng';
import { trainingAbar } from '../../../src-main/engine/schedule';
import { createEngine } from '../../../src-main/engine/index';
import { Tokenizer } from '../../../src-main/engine/tokenizer';
import type { Engine, GeneratedOutput, GenerateRequest, StepProgress } from '../../../src-main/engine/types';
import { MICRO, MICRO_N, type MicroBundle, writeMicroBundle } from './micro-bundle';

let root: string;
let micro: MicroBundle;
let engine: Engine;
let modelId = 'micro';

function request(set: ConstraintSetInput, device: GenerateRequest['device'] = 'cpu'): GenerateRequest {
  return { model: modelId, device, constraints: set as GenerateRequest['constraints'] };
}

async function run(e: Engine, set: ConstraintSetInput, device: GenerateRequest['device'] = 'cpu') {
  const outputs: GeneratedOutput[] = [];
  const progress: StepProgress[] = [];
  const summary = await e.generate(request(set, device), { onOutput: (o) => outputs.push(o), onProgress: (p) => progress.push(p) });
  return { outputs, progress, summary };
}

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const REAL_BUNDLES = [
  { name: 'tiny bundle (training smoke test)', dir: `${ROOT}tests/.generated/tiny-e2e`, id: 'tiny-e2e', hint: ' (make it with npm run smoke:bundle)' },
  { name: 'default bundle', dir: `${ROOT}models/e2e-default`, id: 'e2e-default', hint: '' },
];

/** The checks every bundle must pass, on a bundle trained by the training pipeline. */
for (const b of REAL_BUNDLES) {
  const missing = existsSync(join(b.dir, 'manifest.json')) ? '' : `${b.dir} is absent${b.hint}`;
  describe.skipIf(missing !== '')(`engine on the ${b.name}${missing ? ` [skipped: ${missing}]` : ''}`, () => {
    let e: Engine;
    let tok: Tokenizer;
    let segs: { name: string; start: number; length: number }[];
    const go = async (set: ConstraintSetInput, device: GenerateRequest['device'] = 'cpu') => {
      const outputs: GeneratedOutput[] = [];
      const progress: StepProgress[] = [];
      const summary = await e.generate({ model: b.id, device, constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outputs.push(o), onProgress: (p) => progress.push(p) });
      return { outputs, progress, summary };
    };
    beforeAll(async () => {
      e = createEngine({ modelDirs: [dirname(b.dir)] });
      const m = (await e.listModels()).find((x) => x.id === b.id)!;
      segs = m.canvas.segments;
      tok = Tokenizer.fromJSON(JSON.parse(readFileSync(join(b.dir, 'vocab.json'), 'utf8')));
    });
    afterAll(() => e.dispose());

    it('determinism: same seed + settings + device -> identical outputs', async () => {
      const set: ConstraintSetInput = { version: 1, constraints: [], sampler: { steps: 10, samples: 3, seed: 5 } };
      const a = await go(set);
      const c = await go(set);
      expect(a.summary.status).toBe('completed');
      expect(a.outputs.map((o) => o.tokens)).toEqual(c.outputs.map((o) => o.tokens));
      expect(a.outputs.map((o) => o.text)).toEqual(c.outputs.map((o) => o.text));
    });

    it('guided sampling with two classifiers is deterministic, and the same on the helper thread as without it', async () => {
      const m = (await e.listModels()).find((x) => x.id === b.id)!;
      const controls = ['pos', 'attribute', 'length', 'sentiment'].filter((c) => m.controls.includes(c));
      if (controls.length < 2) return;
      const set: ConstraintSetInput = {
        version: 1,
        constraints: [{ kind: 'length', tokens: 12 }, { kind: 'sentiment', label: 'positive' }, { kind: 'pos', tags: ['PROPN', 'AUX', 'DET', 'NOUN', 'PUNCT'] }]
          .filter((c) => controls.includes(c.kind)).slice(0, 2) as ConstraintSetInput['constraints'],
        sampler: { steps: 8, samples: 3, seed: 4, guidance: { offLastSteps: 2 } },
      };
      const a = await go(set);
      const again = await go(set);
      expect(a.summary.warnings ?? []).toEqual([]);
      expect(again.outputs.map((o) => o.tokens)).toEqual(a.outputs.map((o) => o.tokens));
      // an engine's worker thread copies the environment when it starts, on its first run: set until then
      process.env.DLM_GUIDANCE_PARALLEL = '0';
      const seq = createEngine({ modelDirs: [dirname(b.dir)] });
      try {
        const outs: GeneratedOutput[] = [];
        await seq.generate({ model: b.id, device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outs.push(o) });
        expect(outs.map((o) => o.tokens)).toEqual(a.outputs.map((o) => o.tokens));
      } finally {
        delete process.env.DLM_GUIDANCE_PARALLEL;
        await seq.dispose();
      }
    });

    it('int8 denoiser: picked by auto on cpu and reported, batch-independent, close to fp32', async () => {
      const m = (await e.listModels()).find((x) => x.id === b.id)!;
      if (!m.precisions?.includes('int8')) return;
      // agreement with fp32 is estimated over 32 samples: in 5, one trajectory that diverges is about 15 points
      const samples = b.id === 'e2e-default' ? 32 : 5;
      const set: ConstraintSetInput = { version: 1, constraints: [], sampler: { steps: 30, samples, seed: 9 } };
      const auto = await go(set);
      expect(auto.summary.device.precision).toBe('int8');
      const fp32 = await go({ ...set, sampler: { ...set.sampler, precision: 'fp32' } });
      expect(fp32.summary.device.precision).toBe('fp32');
      // calibrated (static) activation ranges: a sample's tokens do not depend on the samples beside it
      const one = createEngine({ modelDirs: [dirname(b.dir)], batchSize: 1 });
      try {
        const outs: GeneratedOutput[] = [];
        // sample i draws the same seed in a run of 5 as in a run of 32
        const s1 = await one.generate({ model: b.id, device: 'cpu', constraints: { ...set, sampler: { ...set.sampler, samples: 5, precision: 'int8' } } as GenerateRequest['constraints'] }, { onOutput: (o) => outs.push(o) });
        expect(s1.device.precision).toBe('int8');
        expect(outs.map((o) => o.tokens)).toEqual(auto.outputs.slice(0, 5).map((o) => o.tokens));
      } finally {
        await one.dispose();
      }
      if (b.id === 'e2e-default') {
        let same = 0;
        let all = 0;
        auto.outputs.forEach((o, i) => o.tokens.forEach((t, j) => {
          all++;
          if (fp32.outputs[i]!.tokens[j] === t) same++;
        }));
        expect(same / all).toBeGreaterThanOrEqual(0.9);
      }
    });

    it('candidates: each output is one of its own candidates, which are the samples a plain run draws; unpinned and unguided, the model\'s pick', async () => {
    const set: ConstraintSetInput = { version: 1, constraints: [], sampler: { steps: 6, samples: 3, seed: 21 } };
    // output j's candidate c draws the seed a plain run gives sample j + c * samples
    const plain = await run(engine, { ...set, sampler: { ...set.sampler, samples: 9 } });
    const chosen = await run(engine, { ...set, sampler: { ...set.sampler, candidates: 3 } });
    expect(chosen.outputs.map((o) => o.index)).toEqual([0, 1, 2]);
    for (const o of chosen.outputs) {
      const own = [0, 1, 2].map((c) => plain.outputs[o.index + 3 * c]!);
      expect(o.consensus).toMatchObject({ candidates: 3, by: 'model' });
      expect(o.consensus!.scores).toHaveLength(3);
      expect(o.consensus!.chosen).toBe(o.consensus!.scores!.indexOf(Math.max(...o.consensus!.scores!)));
      const pick = own[o.consensus!.chosen]!;
      expect(o.seed).toBe(pick.seed);
      expect(o.tokens).toEqual(pick.tokens);
      expect(o.text).toBe(pick.text);
      expect(o.consensus!.agreement).toBeGreaterThanOrEqual(0);
      expect(o.consensus!.agreement).toBeLessThanOrEqual(1);
    }
    // progress names the output each canvas of a batch is a candidate for (batches of 4: outputs 0,0,0,1 first)
    expect(chosen.progress[0]).toMatchObject({ batchStart: 0, candidates: 3, outputOf: [0, 0, 0, 1], candidateOf: [0, 1, 2, 0] });
    // one candidate is the plain run
    const one = await run(engine, { ...set, sampler: { ...set.sampler, candidates: 1 } });
    expect(one.outputs.map((o) => o.tokens)).toEqual(plain.outputs.slice(0, 3).map((o) => o.tokens));
    expect(one.outputs.every((o) => o.consensus === undefined)).toBe(true);
  });

  it('cancel stops within one step', async () => {
      const ctl = new AbortController();
      const progress: StepProgress[] = [];
      let abortedAt = 0;
      const summary = await e.generate({ model: b.id, device: 'cpu', constraints: { version: 1, constraints: [], sampler: { steps: 500, samples: 8, seed: 1 } } as unknown as GenerateRequest['constraints'] }, {
        signal: ctl.signal,
        onProgress: (p) => {
          progress.push(p);
          if (p.step === 2) {
            abortedAt = processClockMs();
            ctl.abort();
          }
        },
      });
      expect(summary.status).toBe('cancelled');
      expect(progress.filter((p) => p.at! > abortedAt).length).toBeLessThanOrEqual(1);
    });

    it('webgpu falls back to cpu here and says why', async () => {
      const { summary } = await go({ version: 1, constraints: [], sampler: { steps: 2, samples: 1 } }, 'webgpu');
      expect(summary.device.active).toBe('cpu');
      const w = summary.device.probes.find((p) => p.provider === 'webgpu');
      if (w?.usable) return; // a machine with a WebGPU adapter: nothing to fall back from
      expect(w?.reason).toBeTruthy();
    });

    it('infilling holds the given record and text exactly', async () => {
      const record = { name: 'The Vaults', eatType: 'pub', priceRange: 'moderate' };
      const r = await go({ version: 1, constraints: [{ kind: 'record', value: record }], sampler: { steps: 10, samples: 2, seed: 9 } });
      const ids = tok.encode(canonicalRecord(record));
      const rec = segs.find((s) => s.name === 'record')!;
      for (const o of r.outputs) {
        expect(o.tokens.slice(rec.start, rec.start + ids.length)).toEqual(ids);
        expect(o.tokens.slice(rec.start + ids.length, rec.start + rec.length).every((t) => t === 0)).toBe(true);
        expect(o.record).toEqual(record);
      }
      const text = 'The Vaults is a moderately priced pub near Café Adriatic.';
      const t = await go({ version: 1, constraints: [{ kind: 'text', value: text }], sampler: { steps: 10, samples: 2, seed: 9 } });
      for (const o of t.outputs) expect(o.text).toBe(text);
    });

    it('a corrupt copy of the bundle is refused by name', async () => {
      const tmp = mkdtempSync(join(tmpdir(), 'dlm-corrupt-'));
      try {
        const dir = join(tmp, 'copy');
        cpSync(b.dir, dir, { recursive: true });
        const buf = readFileSync(join(dir, 'embeddings.f32'));
        buf[7] ^= 0x10;
        writeFileSync(join(dir, 'embeddings.f32'), buf);
        const e2 = createEngine({ modelDirs: [tmp] });
        expect((await e2.listModels())[0]?.error).toMatch(/embeddings\.f32.*sha256/);
        await expect(e2.generate({ model: b.id, device: 'cpu', constraints: { version: 1, constraints: [] } as unknown as GenerateRequest['constraints'] }, {})).rejects.toMatchObject({ code: 'BUNDLE_INVALID' });
        await e2.dispose();
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  });
}

const tok = Tokenizer.fromJSON(JSON.parse(readFileSync(new URL('../../fixtures/tokenizer/vocab.json', import.meta.url), 'utf8')));

/** The micro bundle's linear sentiment classifier, by hand: log p(class `target` | the tokens' embeddings). */
function microSentimentLogp(tokens: number[], target: number): number {
  const d = MICRO.d;
  const logits = [0, 0, 0];
  tokens.forEach((t, i) => {
    for (let j = 0; j < d; j++) for (let c = 0; c < 3; c++) logits[c]! += micro.emb[t * d + j]! * micro.clsW[(i * d + j) * 3 + c]!;
  });
  const m = Math.max(...logits);
  return logits[target]! - (m + Math.log(logits.reduce((a, l) => a + Math.exp(l - m), 0)));
}

beforeAll(() => {
  modelId = 'micro';
  root = mkdtempSync(join(tmpdir(), 'dlm-engine-'));
  micro = writeMicroBundle(join(root, 'micro'));
  engine = createEngine({ modelDirs: [root], batchSize: 4 });
});
afterAll(async () => {
  await engine.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe('engine on the micro bundle (worker thread, ONNX Runtime)', () => {
  it('generates the requested samples with progress per step, in index order', async () => {
    const { outputs, progress, summary } = await run(engine, { version: 1, constraints: [], sampler: { steps: 6, samples: 6, seed: 3 } });
    expect(summary.status).toBe('completed');
    expect(summary.device.active).toBe('cpu');
    expect(summary.model.id).toBe('micro');
    expect(outputs.map((o) => o.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const o of outputs) {
      expect(o.tokens).toHaveLength(MICRO_N);
      expect(typeof o.text).toBe('string');
      expect(typeof o.fluency).toBe('number');
      expect(o.fluency).toBeGreaterThan(1);
    }
    // two batches (4 + 2) x 6 steps; each progress carries the batch's canvases
    expect(progress).toHaveLength(12);
    expect(progress[0]).toMatchObject({ step: 1, steps: 6, batchStart: 0 });
    expect(progress[0]!.canvases).toHaveLength(4);
    expect(progress[11]).toMatchObject({ step: 6, batchStart: 4 });
    expect(progress[11]!.canvases).toHaveLength(2);
    expect(summary.timings.perStepMs).toBeGreaterThan(0);
  });

  it('same seed + settings + device gives identical outputs; another seed differs; batching does not matter', async () => {
    const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { steps: 8, samples: 5, seed: 11 } };
    const a = await run(engine, set);
    const b = await run(engine, set);
    expect(a.outputs.map((o) => o.tokens)).toEqual(b.outputs.map((o) => o.tokens));
    expect(a.outputs.map((o) => o.fluency)).toEqual(b.outputs.map((o) => o.fluency));
    const other = await run(engine, { ...set, sampler: { ...set.sampler, seed: 12 } });
    expect(other.outputs.map((o) => o.tokens)).not.toEqual(a.outputs.map((o) => o.tokens));
    const e1 = createEngine({ modelDirs: [root], batchSize: 1 });
    try {
      const c = await run(e1, set);
      expect(c.outputs.map((o) => o.seed)).toEqual(a.outputs.map((o) => o.seed));
      expect(c.outputs.map((o) => o.tokens)).toEqual(a.outputs.map((o) => o.tokens));
    } finally {
      await e1.dispose();
    }
  });

  it('cancel stops within one step', async () => {
    const ctl = new AbortController();
    const progress: StepProgress[] = [];
    const outputs: GeneratedOutput[] = [];
    let abortedAt = 0;
    const summary = await engine.generate(request({
      version: 1, constraints: [{ kind: 'sentiment', label: 'negative' }],
      sampler: { steps: 2000, samples: 4, seed: 1, guidance: { iterations: 5, offLastSteps: 0 } },
    }), {
      signal: ctl.signal,
      onOutput: (o) => outputs.push(o),
      onProgress: (p) => {
        progress.push(p);
        if (p.step === 3) {
          abortedAt = processClockMs();
          ctl.abort();
        }
      },
    });
    expect(summary.status).toBe('cancelled');
    expect(outputs).toHaveLength(0);
    // steps the worker finished after the abort (by wall clock): at most the one in flight
    const after = progress.filter((p) => p.at! > abortedAt);
    expect(after.length).toBeLessThanOrEqual(1);
    expect(progress.length).toBeLessThan(2000);
    // the engine is usable right after
    const next = await run(engine, { version: 1, constraints: [], sampler: { steps: 2, samples: 1, seed: 1 } });
    expect(next.summary.status).toBe('completed');
  });

  it('webgpu without an adapter falls back to cpu and says why', async () => {
    const report = await engine.probeDevices('webgpu', 'micro');
    expect(report.requested).toBe('webgpu');
    expect(report.active).toBe('cpu');
    const webgpu = report.probes.find((p) => p.provider === 'webgpu');
    expect(webgpu?.usable).toBe(false);
    expect(webgpu?.reason).toMatch(/adapter|not|no /i);
    const { summary } = await run(engine, { version: 1, constraints: [], sampler: { steps: 2, samples: 1 } }, 'webgpu');
    expect(summary.device.active).toBe('cpu');
    expect(summary.device.probes[0]).toMatchObject({ provider: 'webgpu', usable: false });
    const auto = await engine.probeDevices('auto', 'micro');
    expect(auto.active).toBe('cpu');
    expect(auto.probes.filter((p) => !p.usable).every((p) => typeof p.reason === 'string' && p.reason.length > 0)).toBe(true);
  });

  it('infilling holds the given record (data-to-text) and the given text (text-to-record) exactly', async () => {
    const record = { name: 'Alimentum', food: 'Italian' };
    const r = await run(engine, { version: 1, constraints: [{ kind: 'record', value: record }], sampler: { steps: 10, samples: 3, seed: 5 } });
    const recIds = tok.encode(canonicalRecord(record));
    for (const o of r.outputs) {
      expect(o.tokens.slice(0, recIds.length)).toEqual(recIds);
      expect(o.tokens.slice(recIds.length, MICRO.record).every((t) => t === 0)).toBe(true);
      expect(o.record).toEqual(record);
      expect(o.recordText).toBe('{"name":"Alimentum","food":"Italian"}');
    }
    const text = 'The Vaults is a pub.';
    const t = await run(engine, { version: 1, constraints: [{ kind: 'text', value: text }], sampler: { steps: 10, samples: 2, seed: 6 } });
    for (const o of t.outputs) expect(o.text).toBe(text);
    // every progress canvas shows the held text too
    expect(t.progress.every((p) => p.canvases.every((c) => c.text === text))).toBe(true);
  });

  it('infill templates and JSON Schemas are enforced by projection where clamping rounds', async () => {
    const r = await run(engine, {
      version: 1,
      constraints: [
        { kind: 'infill', template: 'The ___ is a pub.' },
        { kind: 'json-schema', schema: { type: 'object', properties: { name: { enum: ['Aromi', 'Zizzi'] } }, required: ['name'], additionalProperties: false } },
      ],
      sampler: { steps: 8, samples: 3, seed: 2 },
    });
    expect(r.summary.status).toBe('completed');
    for (const o of r.outputs) {
      expect(o.text).toMatch(/^The .+ is a pub\.$/s);
      expect(['Aromi', 'Zizzi']).toContain((o.record as { name: string } | null)?.name);
      expect(Object.keys(o.record!)).toEqual(['name']);
    }
    // the live canvases are projected too
    expect(r.progress.every((p) => p.canvases.every((c) => c.text.startsWith('The ') && c.text.endsWith(' is a pub.')))).toBe(true);
  });

  it('precision int8 on a bundle without an int8 denoiser is refused by name; auto falls back to fp32', async () => {
    await expect(engine.generate(request({ version: 1, constraints: [], sampler: { steps: 2, samples: 1, precision: 'int8' } }), {}))
      .rejects.toMatchObject({ message: expect.stringMatching(/sampler\.precision: model micro has no int8 denoiser/) });
    const r = await run(engine, { version: 1, constraints: [], sampler: { steps: 2, samples: 1 } });
    expect(r.summary.device.precision).toBe('fp32');
  });

  it('a constraint the compiler refuses fails the run with its name', async () => {
    await expect(engine.generate(request({ version: 1, constraints: [{ kind: 'length', tokens: 3 }, { kind: 'json-schema', schema: { type: 'object', properties: { a: { type: 'array', uniqueItems: true } } } }] }), {}))
      .rejects.toMatchObject({ message: expect.stringMatching(/constraints\[1\] \(json-schema\)/) });
  });

  it('guidance raises the classifier log-probability of the target over unguided sampling', async () => {
    const logp = microSentimentLogp;
    const base = { steps: 20, samples: 8, seed: 21 };
    const plain = await run(engine, { version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { ...base, guidance: { enabled: false } } });
    const guided = await run(engine, { version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { ...base, guidance: { iterations: 3, stepSize: 0.3, offLastSteps: 0 } } });
    const mean = (os: GeneratedOutput[]) => os.reduce((a, o) => a + logp(o.tokens, 2), 0) / os.length;
    expect(mean(guided.outputs)).toBeGreaterThan(mean(plain.outputs) + 0.5);
    expect(guided.summary.warnings ?? []).toEqual([]);
  });

  it('a guided run with candidates keeps, for each output, the candidate its classifier scores highest', async () => {
    const logp = (tokens: number[]) => microSentimentLogp(tokens, 2);
    const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { steps: 10, samples: 3, seed: 8, guidance: { iterations: 2, stepSize: 0.3 } } };
    const plain = await run(engine, { ...set, sampler: { ...set.sampler, samples: 12 } });
    const chosen = await run(engine, { ...set, sampler: { ...set.sampler, candidates: 4 } });
    let notConsensus = 0;
    for (const o of chosen.outputs) {
      const own = [0, 1, 2, 3].map((c) => plain.outputs[o.index + 3 * c]!);
      const scores = own.map((x) => logp(x.tokens));
      expect(o.consensus).toMatchObject({ candidates: 4, by: 'classifiers' });
      // the best score (float32 in the engine: saturated candidates tie at 0 and the lowest index wins)
      expect(scores[o.consensus!.chosen]!).toBeGreaterThan(Math.max(...scores) - 1e-4);
      expect(o.tokens).toEqual(own[o.consensus!.chosen]!.tokens);
      expect(o.seed).toBe(own[o.consensus!.chosen]!.seed);
      // the engine's scores are the classifier's log p, as computed here
      o.consensus!.scores!.forEach((v, c) => expect(v).toBeCloseTo(scores[c]!, 3));
      notConsensus += Number(o.consensus!.chosen !== selectConsensus(own.map((x) => x.tokens)).chosen);
    }
    // the classifier's choice is not the consensus in general (it would make this test unable to tell them apart)
    expect(notConsensus).toBeGreaterThan(0);
    // unguided, the same candidates are the model's pick (the next test); pinned, the consensus
    const off = await run(engine, { ...set, sampler: { ...set.sampler, candidates: 4, guidance: { enabled: false } } });
    expect(off.outputs.every((o) => o.consensus?.by === 'model')).toBe(true);
    const pinned = await run(engine, { ...set, constraints: [{ kind: 'text', value: 'The Vaults is a pub.' }], sampler: { ...set.sampler, candidates: 4, guidance: { enabled: false } } });
    expect(pinned.outputs.every((o) => o.consensus?.by === 'consensus' && o.consensus.scores === undefined)).toBe(true);
  });

  it('accept_at: a guided output stops drawing candidates at the first its classifier accepts, and keeps the best drawn', async () => {
    const logp = (tokens: number[]) => microSentimentLogp(tokens, 1);
    // weak guidance toward "neutral", so that the classifier's scores spread rather than all saturate near 0
    const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'sentiment', label: 'neutral' }], sampler: { steps: 10, samples: 6, seed: 8, guidance: { iterations: 1, stepSize: 0.1, strength: 0.2 } } };
    const K = 3;
    const acceptAt = 0.5;
    const strength = 0.2;
    const plain = await run(engine, { ...set, sampler: { ...set.sampler, samples: 6 * K } });
    const stopped = await run(engine, { ...set, sampler: { ...set.sampler, candidates: K, accept_at: acceptAt } });
    expect(stopped.outputs.map((o) => o.index)).toEqual([0, 1, 2, 3, 4, 5]);
    const drawnCounts: number[] = [];
    for (const o of stopped.outputs) {
      const own = Array.from({ length: K }, (_, c) => plain.outputs[o.index + 6 * c]!);
      // the engine's scores carry the run's strength; accept_at reads them at strength 1
      const scores = own.map((x) => strength * logp(x.tokens));
      const accepted = scores.findIndex((s) => s / strength >= Math.log(acceptAt));
      const drawn = accepted < 0 ? K : accepted + 1;
      expect(o.consensus!.drawn ?? K).toBe(drawn);
      expect(o.consensus!.scores).toHaveLength(drawn);
      o.consensus!.scores!.forEach((v, c) => expect(v).toBeCloseTo(scores[c]!, 3));
      const kept = scores.slice(0, drawn);
      expect(kept[o.consensus!.chosen]!).toBeGreaterThan(Math.max(...kept) - 1e-4);
      expect(o.tokens).toEqual(own[o.consensus!.chosen]!.tokens);
      drawnCounts.push(drawn);
    }
    // the threshold splits these outputs: some stop at their first candidate, some draw all
    expect(drawnCounts).toContain(1);
    expect(drawnCounts).toContain(K);
    // at 1, or unguided, every candidate is drawn
    const one = await run(engine, { ...set, sampler: { ...set.sampler, candidates: K, accept_at: 1 } });
    expect(one.outputs.every((o) => o.consensus!.drawn === undefined)).toBe(true);
    const off = await run(engine, { ...set, sampler: { ...set.sampler, candidates: K, accept_at: 0.01, guidance: { enabled: false } } });
    expect(off.outputs.every((o) => o.consensus!.drawn === undefined && o.consensus!.by === 'model')).toBe(true);
  });

  it('a length: the candidates with the length asked for are kept, and with accept_at the first of them ends the drawing', async () => {
    const K = 3;
    const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'length', tokens: 13 }], sampler: { steps: 8, samples: 6, seed: 5 } };
    // (the micro bundle holds no length: its texts run 13 to 18 tokens, so few candidates have 13)
    const plain = await run(engine, { ...set, sampler: { ...set.sampler, samples: 6 * K } });
    const has = (o: GeneratedOutput) => o.constraints[0]!.satisfied;
    const stopped = await run(engine, { ...set, sampler: { ...set.sampler, candidates: K, accept_at: 0.5 } });
    const drawnCounts: number[] = [];
    for (const o of stopped.outputs) {
      const own = Array.from({ length: K }, (_, c) => plain.outputs[o.index + 6 * c]!);
      const first = own.findIndex(has);
      const drawn = first < 0 ? K : first + 1;
      expect(o.consensus!.drawn ?? K).toBe(drawn);
      if (first >= 0) {
        expect(o.consensus!.chosen).toBe(first);
        expect(o.tokens).toEqual(own[first]!.tokens);
        expect(has(o)).toBe(true);
      }
      drawnCounts.push(drawn);
    }
    // these outputs split: some find the length before their last candidate, some draw all
    expect(drawnCounts.some((d) => d < K)).toBe(true);
    expect(drawnCounts).toContain(K);
    // drawing all (accept_at 1), an output keeps one with the length wherever one of its candidates has it
    const all = await run(engine, { ...set, sampler: { ...set.sampler, candidates: K, accept_at: 1 } });
    for (const o of all.outputs) {
      const own = Array.from({ length: K }, (_, c) => plain.outputs[o.index + 6 * c]!);
      expect(o.consensus!.drawn).toBeUndefined();
      expect(has(o)).toBe(own.some(has));
      if (own.filter(has).length === 1 && !has(own[0]!)) expect(o.consensus!.by).toBe('length');
    }
  });

  it('a run that neither guides nor pins keeps the candidate the denoiser reconstructs best from a re-noised copy', async () => {
    const steps = 10;
    const set: ConstraintSetInput = { version: 1, constraints: [], sampler: { steps, samples: 3, seed: 8 } };
    const plain = await run(engine, { ...set, sampler: { ...set.sampler, samples: 12 } });
    const chosen = await run(engine, { ...set, sampler: { ...set.sampler, candidates: 4 } });
    // the check, computed here with the bundle's denoiser: re-noised to t = 0.15 T with the stream's next draw,
    // minus the squared reconstruction error over the record segment (the one segment with a format)
    const session = await ort.InferenceSession.create(join(root, 'micro', 'denoiser.onnx'));
    const T = 2000;
    const tTrain = Math.round(0.15 * T);
    const abar = trainingAbar(T, 1e-4)[tTrain]!;
    const { d } = MICRO;
    const check = async (o: GeneratedOutput) => {
      const stream = new Mulberry32(o.seed);
      const skip = new Float32Array(MICRO_N * d);
      for (let k = 0; k < steps; k++) stream.fillNormal(skip);
      const x = new Float32Array(MICRO_N * d);
      stream.fillNormal(x);
      o.tokens.forEach((tk, i) => {
        for (let j = 0; j < d; j++) x[i * d + j] = Math.sqrt(abar) * micro.emb[tk * d + j]! + Math.sqrt(1 - abar) * x[i * d + j]!;
      });
      const out = await session.run({ x_t: new ort.Tensor('float32', x, [1, MICRO_N, d]), t: new ort.Tensor('float32', Float32Array.of(tTrain), [1]) });
      const x0 = out.x0!.data as Float32Array;
      let s = 0;
      for (let i = 0; i < MICRO.record; i++) for (let j = 0; j < d; j++) s -= (x0[i * d + j]! - micro.emb[o.tokens[i]! * d + j]!) ** 2;
      return s;
    };
    let notConsensus = 0;
    for (const o of chosen.outputs) {
      const own = [0, 1, 2, 3].map((c) => plain.outputs[o.index + 3 * c]!);
      const scores = await Promise.all(own.map(check));
      expect(o.consensus).toMatchObject({ candidates: 4, by: 'model' });
      o.consensus!.scores!.forEach((v, c) => expect(v).toBeCloseTo(scores[c]!, 3));
      expect(o.consensus!.chosen).toBe(scores.indexOf(Math.max(...scores)));
      expect(o.tokens).toEqual(own[o.consensus!.chosen]!.tokens);
      notConsensus += Number(o.consensus!.chosen !== selectConsensus(own.map((x) => x.tokens)).chosen);
    }
    expect(notConsensus).toBeGreaterThan(0);
  });

  it('a control\'s weight in the manifest (guidance_defaults.weights) scales its guidance as the run\'s strength does', async () => {
    // the same micro bundle, with sentiment weighted 2.5
    const dir = join(root, 'weighted');
    writeMicroBundle(dir, { id: 'weighted' });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...m, guidance_defaults: { weights: { sentiment: 2.5 } } }));
    const e = createEngine({ modelDirs: [root], batchSize: 4 });
    try {
      const set = (model: string, strength: number) => ({ model, device: 'cpu' as const, constraints: { version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { steps: 8, samples: 4, seed: 13, guidance: { strength } } } as ConstraintSetInput as GenerateRequest['constraints'] });
      const tokens = async (model: string, strength: number) => {
        const outs: GeneratedOutput[] = [];
        await e.generate(set(model, strength), { onOutput: (o) => outs.push(o) });
        return outs.map((o) => o.tokens);
      };
      const weighted = await tokens('weighted', 1);
      expect(weighted).toEqual(await tokens('micro', 2.5));
      expect(weighted).not.toEqual(await tokens('micro', 1));
    } finally {
      await e.dispose();
    }
  });

  it('dispose during a run rejects it with a named error instead of hanging', async () => {
    const e = createEngine({ modelDirs: [root], batchSize: 4 });
    let started!: () => void;
    const firstStep = new Promise<void>((r) => (started = r));
    const run = e.generate(request({ version: 1, constraints: [], sampler: { steps: 2000, samples: 4, seed: 1 } }), { onProgress: () => started() });
    await firstStep;
    await e.dispose();
    await expect(run).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
    await expect(e.generate(request({ version: 1, constraints: [] }), {})).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
  });

  it('refuses a corrupt bundle by name, and an unknown model', async () => {
    const dir = join(root, 'broken');
    cpSync(micro.dir, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    m.id = 'broken';
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    const buf = readFileSync(join(dir, 'denoiser.onnx'));
    buf[buf.length - 3] ^= 0x55;
    writeFileSync(join(dir, 'denoiser.onnx'), buf);
    const list = await engine.listModels();
    expect(list.find((x) => x.path === dir)?.error).toMatch(/denoiser\.onnx.*sha256/);
    await expect(engine.generate({ ...request({ version: 1, constraints: [] }), model: 'broken' }, {})).rejects.toMatchObject({ code: 'BUNDLE_INVALID', message: expect.stringMatching(/denoiser\.onnx/) });
    await expect(engine.generate({ ...request({ version: 1, constraints: [] }), model: 'nope' }, {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
    copyFileSync(join(micro.dir, 'denoiser.onnx'), join(dir, 'denoiser.onnx'));
    expect((await engine.listModels()).find((x) => x.path === dir)?.error).toBeUndefined();
  });
});

/** Token label lexicons on the continuous default (src-main/engine/lexicon.ts): added to the rounding scores. */
const DEFAULT_DIR = `${ROOT}models/e2e-default`;
const defaultLexicons = existsSync(join(DEFAULT_DIR, 'manifest.json'))
  ? ((JSON.parse(readFileSync(join(DEFAULT_DIR, 'manifest.json'), 'utf8')) as { lexicons?: { control: string }[] }).lexicons ?? []).map((l) => l.control)
  : [];
describe.skipIf(!defaultLexicons.includes('pos'))('a POS template on the continuous default, with its lexicon', () => {
  let e: Engine;
  beforeAll(() => {
    e = createEngine({ modelDirs: [dirname(DEFAULT_DIR)] });
  });
  afterAll(() => e.dispose());

  it('most outputs take the template exactly, and the verdict names the lexicon', async () => {
    // a dev reference's tags: "Alimentum is a family friendly establishment in the riverside area near the Burger King."
    const tags = ['PROPN', 'AUX', 'DET', 'NOUN', 'ADJ', 'NOUN', 'ADP', 'DET', 'NOUN', 'NOUN', 'ADP', 'DET', 'PROPN', 'PROPN', 'PUNCT'] as const;
    const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'pos', tags: [...tags] }], sampler: { steps: 50, samples: 4, seed: 21 } };
    const outputs: GeneratedOutput[] = [];
    const summary = await e.generate({ model: 'e2e-default', device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outputs.push(o) });
    expect(summary.status).toBe('completed');
    expect(outputs.filter((o) => o.constraints[0]!.satisfied).length, outputs.map((o) => o.text).join(' | ')).toBeGreaterThanOrEqual(3);
    const m = await readManifest(DEFAULT_DIR);
    expect(familyManifest(m.kind)!.softDetail!(m)!.pos).toMatch(/^guided: classifier gradient on x_t, and .*token label lexicon.* where x0 is rounded to tokens$/);
  }, 180_000);

  it('guided texts never glue a piece onto the word before it (unguided ones are left to the model)', async () => {
    const m = await readManifest(DEFAULT_DIR);
    const pieces = (JSON.parse(readFileSync(join(DEFAULT_DIR, m.tokenizer.vocab), 'utf8')) as { tokens: string[] }).tokens;
    const glue = glueRule(pieces);
    const text = m.canvas.segments.find((s) => s.name === 'text')!;
    const glued = (o: GeneratedOutput) => o.tokens.slice(text.start + 1, text.start + text.length).some((t, i) => glue.continues[t] === 1 && glue.endsWord[o.tokens[text.start + i]!] === 1);
    // spans and sentiment: the controls whose guidance wrote the most glued pieces on 2.2.3 ("theKnown", "customerWant")
    const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'spans', spans: [[6, 7, 'PP']] }, { kind: 'sentiment', label: 'negative' }], sampler: { steps: 40, samples: 8, seed: 5 } };
    const outputs: GeneratedOutput[] = [];
    await e.generate({ model: 'e2e-default', device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outputs.push(o) });
    expect(outputs).toHaveLength(8);
    expect(outputs.filter(glued).map((o) => o.text)).toEqual([]);
    // a length alone is held, not guided, and its texts are rounded the same way ("isstyle" missed its word count)
    const lengthOnly: ConstraintSetInput = { version: 1, constraints: [{ kind: 'length', tokens: 26 }], sampler: { steps: 30, samples: 16, seed: 5 } };
    const held: GeneratedOutput[] = [];
    await e.generate({ model: 'e2e-default', device: 'cpu', constraints: lengthOnly as GenerateRequest['constraints'] }, { onOutput: (o) => held.push(o) });
    expect(held).toHaveLength(16);
    expect(held.filter(glued).map((o) => o.text)).toEqual([]);
  }, 180_000);

  it('an attribute holds the record segment to its value, and the text follows the record', async () => {
    // "customer rating = high": guided on the text alone (2.2.4), 1 of 4 dev samples named it; their records said
    // "1 out of 5" or "3 out of 5"
    const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'attribute', field: 'customer rating', value: 'high' }], sampler: { steps: 40, samples: 8, seed: 11 } };
    const outputs: GeneratedOutput[] = [];
    const summary = await e.generate({ model: 'e2e-default', device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outputs.push(o) });
    expect(summary.status).toBe('completed');
    expect(outputs.map((o) => o.record?.['customer rating'])).toEqual(Array(8).fill('high'));
    expect(outputs.filter((o) => o.constraints[0]!.satisfied).length, outputs.map((o) => o.text).join(' | ')).toBeGreaterThanOrEqual(6);
  }, 180_000);
});
