import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StudioClient } from '../../../src-main/api/client';
import type { StudioEvent } from '../../../src-main/api/contract';
import { ApiError } from '../../../src-main/api/errors';
import { SCHEMA_VERSION } from '../../../src-main/store';
import { createStudioServices, type StudioServices } from '../../../src-main/services';
import { createInProcessClient } from '../../../src-main/transports/inproc';
import { FakeEngine } from './fake-engine';

let dir: string;
let engine: FakeEngine;
let services: StudioServices;
let client: StudioClient;
let events: StudioEvent[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dlm-svc-'));
  engine = new FakeEngine();
  services = createStudioServices({ dataDir: dir, modelDirs: ['/bundled/models'], engine, app: { name: 'DLM Studio', version: '9.9.9' } });
  client = createInProcessClient(services);
  events = [];
  client.onAny((e) => events.push(e));
});
afterEach(async () => {
  await services.close();
  rmSync(dir, { recursive: true, force: true });
});

const set = { version: 1 as const, name: 'happy', constraints: [{ kind: 'sentiment' as const, label: 'positive' as const }, { kind: 'length' as const, tokens: 10 }] };

async function finished(runId: number) {
  for (let i = 0; i < 400; i++) {
    const e = events.find((x) => x.name === 'run.finished' && x.payload.runId === runId);
    if (e) return e.payload as Extract<StudioEvent, { name: 'run.finished' }>['payload'];
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`run ${runId} did not finish`);
}

describe('settings and info', () => {
  it('has defaults, persists changes, and appends model folders to the bundled ones', async () => {
    expect(await client.call('settings.get')).toEqual({ defaultDevice: 'auto', modelFolders: [], theme: 'system' });
    const s = await client.call('settings.set', { theme: 'light', modelFolders: ['/home/me/models'] });
    expect(s).toEqual({ defaultDevice: 'auto', modelFolders: ['/home/me/models'], theme: 'light' });
    const info = await client.call('app.info');
    expect(info).toMatchObject({ version: '9.9.9', schemaVersion: SCHEMA_VERSION, modelDirs: ['/bundled/models', '/home/me/models'], engine: { available: true } });
    await expect(client.call('settings.set', { modelFolders: ['relative/path'] })).rejects.toMatchObject({ code: 'INVALID_INPUT', path: 'modelFolders[0]' });
  });
});

describe('constraint sets', () => {
  it('save -> list -> get -> validate -> delete', async () => {
    const v1 = await client.call('constraintSets.save', { name: 'happy', body: set });
    const v2 = await client.call('constraintSets.save', { name: 'happy', body: { ...set, description: 'positive and short' } });
    expect([v1.version, v2.version]).toEqual([1, 2]);
    expect(v2.body.sampler.steps).toBe(200);
    expect((await client.call('constraintSets.list', { query: 'short' })).map((s) => s.version)).toEqual([2]);
    expect((await client.call('constraintSets.get', { name: 'happy', version: 1 })).id).toBe(v1.id);
    await expect(client.call('constraintSets.get', { name: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND', path: 'name' });
    const verdict = await client.call('constraintSets.validate', { body: { version: 1, constraints: [{ kind: 'length', tokens: -1 }] } });
    expect(verdict.valid).toBe(false);
    expect(verdict.issues[0]!.path).toBe('constraints[0].tokens');
    expect((await client.call('constraintSets.validate', { body: set })).valid).toBe(true);
    expect(await client.call('constraintSets.delete', { name: 'happy' })).toEqual({ deleted: 2 });
    await expect(client.call('constraintSets.delete', { name: 'happy' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('runs', () => {
  it('records the full recipe, streams progress and outputs, stores each output, and closes with timings', async () => {
    const saved = await client.call('constraintSets.save', { name: 'happy', body: set });
    const { runId, status } = await client.call('runs.start', { model: 'fake-model', device: 'cpu', constraintSetId: saved.id, sampler: { steps: 3, samples: 4, seed: 42 } });
    expect(status).toBe('queued');
    const fin = await finished(runId);
    expect(fin.status).toBe('completed');
    const { run, outputs } = await client.call('runs.get', { runId });
    expect(run.status).toBe('completed');
    expect(run.recipe).toMatchObject({
      model: { id: 'fake-model', version: '0.1.0', hash: 'f'.repeat(64), kind: 'continuous-embedding-diffusion' },
      device: { requested: 'cpu', active: 'cpu' },
      seed: 42,
      steps: 3,
      samples: 4,
      constraintSet: { id: saved.id, name: 'happy', version: 1 },
    });
    expect(run.recipe.constraintSet.body.sampler.seed).toBe(42);
    expect(run.timings!.totalMs).toBeGreaterThan(0);
    expect(outputs.map((o) => o.index)).toEqual([0, 1, 2, 3]);
    expect(outputs[0]!.constraints).toHaveLength(2);
    const names = events.filter((e) => 'runId' in e.payload && e.payload.runId === runId).map((e) => e.name);
    expect(names[0]).toBe('run.queued');
    expect(names.filter((n) => n === 'run.progress')).toHaveLength(12);
    expect(names.filter((n) => n === 'run.output')).toHaveLength(4);
    expect(names.at(-1)).toBe('run.finished');
    // the engine got the request as the recipe says
    expect(engine.calls[0]).toMatchObject({ model: 'fake-model', device: 'cpu', constraints: { sampler: { steps: 3, samples: 4, seed: 42 } } });
  });

  it('runs one at a time, in order', async () => {
    engine.stepDelayMs = 2;
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.call('runs.start', { model: 'fake-model', constraintSet: set, sampler: { steps: 2, samples: 2, seed: i } })).runId);
    for (const id of ids) await finished(id);
    expect(engine.maxActive).toBe(1);
    const started = events.filter((e) => e.name === 'run.started').map((e) => (e.payload as { runId: number }).runId);
    expect(started).toEqual(ids);
  });

  it('cancels the running run and a queued one', async () => {
    engine.stepDelayMs = 5;
    const a = await client.call('runs.start', { model: 'fake-model', constraintSet: set, sampler: { steps: 50, samples: 10 } });
    const b = await client.call('runs.start', { model: 'fake-model', constraintSet: set, sampler: { steps: 2, samples: 1 } });
    expect(b.queuePosition).toBe(1);
    expect(await client.call('runs.cancel', { runId: b.runId })).toEqual({ runId: b.runId, status: 'cancelled' });
    while (!events.some((e) => e.name === 'run.progress')) await new Promise((r) => setTimeout(r, 2));
    await client.call('runs.cancel', { runId: a.runId });
    expect((await finished(a.runId)).status).toBe('cancelled');
    expect((await client.call('runs.get', { runId: a.runId })).run.status).toBe('cancelled');
    expect((await client.call('runs.get', { runId: b.runId })).run.status).toBe('cancelled');
    expect(engine.calls).toHaveLength(1);
  });

  it('marks a failing run failed with the message and keeps the outputs it committed', async () => {
    engine.failWith = 'out of memory on sample 1';
    const { runId } = await client.call('runs.start', { model: 'fake-model', constraintSet: set, sampler: { steps: 1, samples: 3 } });
    const fin = await finished(runId);
    expect(fin).toMatchObject({ status: 'failed', error: 'out of memory on sample 1' });
    const detail = await client.call('runs.get', { runId });
    expect(detail.run.error).toBe('out of memory on sample 1');
    expect(detail.outputs.map((o) => o.index)).toEqual([0]);
  });

  it('refuses unknown and broken models by name', async () => {
    await expect(client.call('runs.start', { model: 'nope', constraintSet: set })).rejects.toMatchObject({ code: 'NOT_FOUND', path: 'model' });
    await expect(client.call('runs.start', { model: 'broken-model', constraintSet: set })).rejects.toMatchObject({ code: 'BUNDLE_INVALID' });
    await expect(client.call('runs.start', { model: 'fake-model', constraintSetId: 999 })).rejects.toMatchObject({ code: 'NOT_FOUND', path: 'constraintSetId' });
  });

  it('refuses to delete a queued or running run', async () => {
    engine.stepDelayMs = 5;
    const { runId } = await client.call('runs.start', { model: 'fake-model', constraintSet: set, sampler: { steps: 20, samples: 2 } });
    await expect(client.call('runs.delete', { runId })).rejects.toMatchObject({ code: 'CONFLICT' });
    await client.call('runs.cancel', { runId });
    await finished(runId);
    expect(await client.call('runs.delete', { runId })).toEqual({ deleted: 1 });
  });
});

describe('export and recipe import', () => {
  it('round-trips the recipe through JSONL, CSV and Markdown, inline and as an atomic file', async () => {
    const { runId } = await client.call('runs.start', { model: 'fake-model', device: 'cpu', constraintSet: { ...set, name: 'tricky, "quoted"\nname | pipe' }, sampler: { steps: 2, samples: 3, seed: 9 } });
    await finished(runId);
    const { run } = await client.call('runs.get', { runId });
    for (const format of ['jsonl', 'csv', 'markdown'] as const) {
      const inline = await client.call('export.run', { runIds: [runId], format });
      expect(inline.outputs).toBe(3);
      expect(inline.content!.length).toBe(inline.bytes);
      const imported = await client.call('recipes.import', { content: inline.content! });
      expect(imported.format).toBe(format);
      expect(imported.recipes).toHaveLength(1);
      expect(imported.recipes[0]!.recipe).toEqual(run.recipe);
      expect(imported.recipes[0]!.sourceRunId).toBe(runId);
      expect(imported.recipes[0]!.outputs).toBe(3);

      const file = await client.call('export.run', { runIds: [runId], format, fileName: `run-${format}` });
      expect(file.path).toBe(join(dir, 'exports', `run-${format}${format === 'markdown' ? '.md' : `.${format}`}`));
      expect(readFileSync(file.path!, 'utf8')).toBe(inline.content);
    }
    // no temp files left behind by the atomic writes
    expect(readdirSync(join(dir, 'exports')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const only = await client.call('export.run', { runIds: [runId], format: 'jsonl', outputs: [1] });
    expect(only.outputs).toBe(1);
  });

  it('names what is wrong with a file that is not an export', async () => {
    const cases: [string, RegExp][] = [
      ['hello world', /not a DLM Studio export/],
      ['{"type":"recipe","recipe":{"format":"dlm-studio-recipe/1"}}', /line 1: recipe\.model: /],
      ['{"type":"weird"}', /line 1: unknown line type "weird"/],
      ['{"type":"recipe"}\n{oops', /line 1: recipe: /],
      ['run_id,text\n1,hi\n', /missing the run_id or recipe column/],
    ];
    for (const [content, re] of cases) {
      const err = await client.call('recipes.import', { content }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe('IMPORT_FAILED');
      expect((err as ApiError).message).toMatch(re);
    }
  });

  it('refuses exports of runs that do not exist, naming which', async () => {
    await expect(client.call('export.run', { runIds: [12345], format: 'csv' })).rejects.toMatchObject({ code: 'NOT_FOUND', path: 'runIds[0]' });
  });
});

describe('shutdown', () => {
  it('does not hang on an engine that never stops; the abandoned run is marked failed', async () => {
    const d4 = mkdtempSync(join(tmpdir(), 'dlm-svc-stuck-'));
    const stuck = new FakeEngine();
    stuck.generate = () => new Promise(() => undefined);
    const s4 = createStudioServices({ dataDir: d4, modelDirs: [], engine: stuck, shutdownTimeoutMs: 150 });
    const c4 = createInProcessClient(s4);
    try {
      const { runId } = await c4.call('runs.start', { model: 'fake-model', constraintSet: set });
      while (s4.runs.activeRunId !== runId) await new Promise((r) => setTimeout(r, 5));
      const t0 = Date.now();
      await s4.close();
      expect(Date.now() - t0).toBeLessThan(2000);
      const { openStore } = await import('../../../src-main/store');
      const store = openStore(d4);
      expect(store.runs.get(runId)).toMatchObject({ status: 'failed', error: expect.stringMatching(/did not stop within 150 ms/) });
      store.close();
    } finally {
      rmSync(d4, { recursive: true, force: true });
    }
  });
});

describe('without an engine', () => {
  it('answers ENGINE_UNAVAILABLE with the reason, while the library still works', async () => {
    const d2 = mkdtempSync(join(tmpdir(), 'dlm-svc-noeng-'));
    const s2 = createStudioServices({ dataDir: d2, modelDirs: [], engine: null, engineUnavailableReason: 'no onnxruntime here' });
    const c2 = createInProcessClient(s2);
    try {
      await expect(c2.call('models.list')).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE', message: 'no onnxruntime here' });
      await expect(c2.call('runs.start', { model: 'x', constraintSet: set })).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
      expect((await c2.call('constraintSets.save', { name: 'a', body: set })).version).toBe(1);
    } finally {
      await s2.close();
      rmSync(d2, { recursive: true, force: true });
    }
  });

  it('recreates a factory-made engine when the model folders change', async () => {
    const d3 = mkdtempSync(join(tmpdir(), 'dlm-svc-fac-'));
    const made: string[][] = [];
    const engines: FakeEngine[] = [];
    const s3 = createStudioServices({ dataDir: d3, modelDirs: ['/b'], engine: (dirs) => { made.push(dirs); const e = new FakeEngine(); engines.push(e); return e; } });
    const c3 = createInProcessClient(s3);
    try {
      await Promise.all([c3.call('models.list'), c3.call('models.list'), c3.call('devices.probe', {})]);
      await c3.call('models.list');
      await c3.call('settings.set', { modelFolders: ['/u'] });
      await c3.call('models.list');
      expect(made).toEqual([['/b'], ['/b', '/u']]);
      expect(engines[0]!.disposed).toBe(true);
    } finally {
      await s3.close();
      rmSync(d3, { recursive: true, force: true });
    }
  });
});
