import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConstraintSet } from '../../../src-main/constraints/set';
import type { RunRecipe } from '../../../src-main/api/contract';
import { openStore, type Store } from '../../../src-main/store';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dlm-store-'));
  store = openStore(dir);
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const body = (tokens: number, description?: string) => parseConstraintSet({ version: 1, description, constraints: [{ kind: 'length', tokens }] });

export function recipe(overrides: Partial<RunRecipe> = {}): RunRecipe {
  const set = parseConstraintSet({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }] });
  return {
    format: 'dlm-studio-recipe/1',
    model: { id: 'e2e-default', version: '1.0.0', hash: 'abc' },
    device: { requested: 'auto', active: null },
    seed: 7,
    steps: 10,
    samples: 3,
    sampler: set.sampler,
    constraintSet: { id: null, name: 'happy', version: null, body: set },
    app: { name: 'DLM Studio', version: 'test' },
    ...overrides,
  };
}

describe('constraint sets', () => {
  it('saves a new version on each save and returns the latest by name', () => {
    const a = store.constraintSets.save('pub', body(10));
    const b = store.constraintSets.save('pub', body(12));
    const c = store.constraintSets.save('cafe', body(5));
    expect([a.version, b.version, c.version]).toEqual([1, 2, 1]);
    expect(store.constraintSets.getByName('pub')!.body.constraints[0]).toMatchObject({ kind: 'length', tokens: 12 });
    expect(store.constraintSets.getByName('pub', 1)!.body.constraints[0]).toMatchObject({ tokens: 10 });
    expect(store.constraintSets.getByName('pub', 3)).toBeNull();
    const list = store.constraintSets.list();
    expect(list.map((s) => [s.name, s.version, s.versions])).toEqual([
      ['cafe', 1, 1],
      ['pub', 2, 2],
    ]);
    expect(store.constraintSets.list('', 100, true)).toHaveLength(3);
  });

  it('searches names and descriptions, treating % and _ literally', () => {
    store.constraintSets.save('family pub', body(10, 'kid friendly places'));
    store.constraintSets.save('100% vegan', body(10));
    store.constraintSets.save('other', body(10));
    expect(store.constraintSets.list('PUB').map((s) => s.name)).toEqual(['family pub']);
    expect(store.constraintSets.list('kid').map((s) => s.name)).toEqual(['family pub']);
    expect(store.constraintSets.list('%').map((s) => s.name)).toEqual(['100% vegan']);
    expect(store.constraintSets.list('_')).toEqual([]);
  });

  it('deletes one version by id or all versions by name', () => {
    const a = store.constraintSets.save('x', body(1));
    store.constraintSets.save('x', body(2));
    expect(store.constraintSets.deleteById(a.id)).toBe(1);
    expect(store.constraintSets.getByName('x')!.version).toBe(2);
    expect(store.constraintSets.deleteByName('x')).toBe(1);
    expect(store.constraintSets.list()).toEqual([]);
  });
});

describe('presets', () => {
  it('upserts by name', () => {
    const s = parseConstraintSet({ version: 1, constraints: [] }).sampler;
    store.presets.save('fast', { ...s, steps: 20 });
    const p = store.presets.save('fast', { ...s, steps: 40 });
    expect(p.settings.steps).toBe(40);
    expect(store.presets.list()).toHaveLength(1);
    expect(store.presets.deleteByName('fast')).toBe(1);
    expect(store.presets.deleteByName('fast')).toBe(0);
  });
});

describe('runs and outputs', () => {
  it('stores the recipe, outputs in order, timings, and cascades deletes', () => {
    const run = store.runs.create(recipe());
    expect(run.status).toBe('queued');
    store.runs.markRunning(run.id);
    for (const i of [0, 1, 2]) {
      store.runs.addOutput(run.id, { index: i, seed: 100 + i, text: `text ${i}`, record: i === 1 ? null : { name: 'X' }, recordText: '{"name":"X"}', tokens: [5, 6], constraints: [{ index: 0, kind: 'sentiment', satisfied: i > 0, score: 0.5 }], fluency: i === 2 ? null : 12.5 });
    }
    store.runs.finish(run.id, 'completed', { loadMs: 1, compileMs: 2, sampleMs: 3, perStepMs: 0.3, totalMs: 6 }, null);
    const got = store.runs.get(run.id)!;
    expect(got.status).toBe('completed');
    expect(got.outputCount).toBe(3);
    expect(got.recipe.constraintSet.body.constraints[0]).toMatchObject({ kind: 'sentiment', label: 'positive' });
    expect(got.timings!.totalMs).toBe(6);
    const outs = store.runs.outputs(run.id);
    expect(outs.map((o) => o.index)).toEqual([0, 1, 2]);
    expect(outs[1]!.record).toBeNull();
    expect(outs[2]!.fluency).toBeNull();
    expect(store.runs.outputs(run.id, 0, 100, [2])).toHaveLength(1);
    // the same index twice is refused (UNIQUE(run_id, idx))
    expect(() => store.runs.addOutput(run.id, { ...outs[0]!, index: 0 })).toThrow(/UNIQUE/);
    expect(store.runs.delete(run.id)).toBe(1);
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM outputs').get()).toEqual({ n: 0 });
  });

  it('lists with status and query filters', () => {
    const a = store.runs.create(recipe());
    store.runs.create(recipe({ model: { id: 'other-model', version: null, hash: null } }));
    store.runs.finish(a.id, 'failed', null, 'boom');
    expect(store.runs.list({ status: 'failed' }).map((r) => r.id)).toEqual([a.id]);
    expect(store.runs.list({ query: 'other' })).toHaveLength(1);
    expect(store.runs.list({ query: 'happy' })).toHaveLength(2);
    expect(store.runs.list({ limit: 1 })).toHaveLength(1);
  });

  it('marks runs left running by a dead process as failed', () => {
    const a = store.runs.create(recipe());
    store.runs.markRunning(a.id);
    const b = store.runs.create(recipe());
    expect(store.runs.failInterrupted()).toBe(2);
    expect(store.runs.get(a.id)!.error).toMatch(/interrupted/);
    expect(store.runs.get(b.id)!.status).toBe('failed');
  });

  it('leaves runs of another live process alone and fails those of a dead one', () => {
    const host = hostname();
    const live = store.runs.create(recipe());
    const dead = store.runs.create(recipe());
    const foreign = store.runs.create(recipe());
    const setOwner = store.db.prepare('UPDATE runs SET owner = ? WHERE id = ?');
    setOwner.run(`${host}:${process.ppid}`, live.id); // the test runner's parent is alive
    setOwner.run(`${host}:${2 ** 22 + 12345}`, dead.id); // above Linux's pid_max: never a live process
    setOwner.run(`another-machine:1`, foreign.id);
    expect(store.runs.failInterrupted()).toBe(1);
    expect(store.runs.get(live.id)!.status).toBe('queued');
    expect(store.runs.get(dead.id)!.status).toBe('failed');
    expect(store.runs.get(foreign.id)!.status).toBe('queued');
  });

  it('keeps a run row when its constraint set is deleted (set id becomes null)', () => {
    const set = store.constraintSets.save('s', body(3));
    const run = store.runs.create(recipe({ constraintSet: { id: set.id, name: 's', version: 1, body: set.body } }));
    store.constraintSets.deleteByName('s');
    const row = store.db.prepare('SELECT constraint_set_id FROM runs WHERE id = ?').get(run.id) as { constraint_set_id: number | null };
    expect(row.constraint_set_id).toBeNull();
    expect(store.runs.get(run.id)!.recipe.constraintSet.name).toBe('s');
  });
});
