import { describe, expect, it } from 'vitest';
import { calls, CALL_NAMES } from '../../../src-main/api/contract';
import { createDispatcher, EventHub, parseInput, type Handlers } from '../../../src-main/api/dispatch';
import { ApiError, ERROR_CODES } from '../../../src-main/api/errors';
import { CALL_NAME_LIST } from '../../../src-main/api/names';

const echo = Object.fromEntries(CALL_NAMES.map((n) => [n, (input: unknown) => ({ method: n, input })])) as unknown as Handlers;

describe('contract', () => {
  it('lists the same calls in names.ts (for the preload) and contract.ts', () => {
    expect([...CALL_NAME_LIST].sort()).toEqual([...CALL_NAMES].sort());
    expect(Object.keys(calls)).toHaveLength(CALL_NAME_LIST.length);
  });
});

describe('dispatcher', () => {
  const d = createDispatcher(echo);

  it('passes validated input (defaults applied) to the handler', async () => {
    const r = await d.invoke('presets.save', { name: '  fast ', settings: { steps: 20 } });
    expect(r.ok).toBe(true);
    const input = (r as { result: { input: { name: string; settings: { steps: number; samples: number } } } }).result.input;
    expect(input.name).toBe('fast');
    expect(input.settings).toMatchObject({ steps: 20, samples: 8 });
  });

  it('treats a missing input as {} for calls without parameters', async () => {
    expect((await d.invoke('app.info', undefined)).ok).toBe(true);
  });

  it('names the field of bad input', async () => {
    const r = await d.invoke('runs.get', { runId: 'seven' });
    expect(r).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', path: 'runId' } });
    expect((r as { error: { message: string } }).error.message).toMatch(/runs\.get: runId: .*number/);
  });

  it('names unknown keys', async () => {
    const r = await d.invoke('settings.set', { theme: 'dark', colour: 'red' });
    expect(r).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', path: 'colour' } });
  });

  it('reports constraint-set issues at their path below the body', async () => {
    const bad = await d.invoke('constraintSets.save', { name: 'x', body: { version: 1, constraints: [{ kind: 'length', tokens: 5 }, { kind: 'nope' }] } });
    expect(bad).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', path: 'body.constraints[1].kind' } });
    expect((bad as { error: { message: string } }).error.message).toMatch(/unknown constraint kind "nope"/);
    const bad2 = await d.invoke('constraintSets.save', { name: 'x', body: { version: 1, constraints: [{ kind: 'pos', tags: ['NOUN', 'BOGUS'] }] } });
    expect(bad2).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', path: 'body.constraints[0].tags[1]' } });
  });

  it('refuses runs.start with both or neither of constraintSetId/constraintSet', async () => {
    for (const input of [{ model: 'm' }, { model: 'm', constraintSetId: 1, constraintSet: { version: 1, constraints: [] } }]) {
      const r = await d.invoke('runs.start', input);
      expect(r).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
      expect((r as { error: { message: string } }).error.message).toMatch(/exactly one of constraintSetId or constraintSet/);
    }
  });

  it('refuses export file names that could escape the export folder', async () => {
    for (const fileName of ['../x', '/etc/passwd', 'a/b', '..', 'C:\\x']) {
      const r = await d.invoke('export.run', { runIds: [1], format: 'csv', fileName });
      expect(r).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', path: 'fileName' } });
    }
  });

  it('answers unknown or non-string methods with UNKNOWN_METHOD', async () => {
    for (const m of ['nope', '__proto__', 'constructor', 42, null, { a: 1 }]) {
      const r = await d.invoke(m, {});
      expect(r).toMatchObject({ ok: false, error: { code: 'UNKNOWN_METHOD' } });
    }
  });

  it('turns handler exceptions into named errors', async () => {
    const failing = createDispatcher({ ...echo, 'app.info': () => { throw new ApiError('NOT_FOUND', 'gone'); }, 'settings.get': () => { throw new TypeError('oops'); } });
    expect(await failing.invoke('app.info', {})).toEqual({ ok: false, error: { code: 'NOT_FOUND', message: 'gone' } });
    expect(await failing.invoke('settings.get', {})).toMatchObject({ ok: false, error: { code: 'INTERNAL', message: 'oops' } });
  });

  it('parseInput throws ApiError with a code from the list', () => {
    try {
      parseInput('runs.list', { limit: 0 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      expect(ERROR_CODES).toContain((e as ApiError).code);
      expect((e as ApiError).path).toBe('limit');
    }
  });
});

describe('EventHub', () => {
  it('delivers to every listener even when one throws, and unsubscribes', () => {
    const hub = new EventHub();
    const got: string[] = [];
    hub.on(() => {
      throw new Error('bad listener');
    });
    const off = hub.on((e) => got.push(e.name));
    hub.emit('run.started', { runId: 1 });
    off();
    hub.emit('run.started', { runId: 2 });
    expect(got).toEqual(['run.started']);
    expect(hub.size).toBe(1);
  });
});
