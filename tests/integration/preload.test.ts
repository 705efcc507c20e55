/**
 * The preload with `electron` mocked: it exposes exactly one object, `dlm`, with one function per call of the
 * contract and a subscription function; calls go over one channel; only known events reach the page.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient, preloadChannel, type PreloadApi } from '../../src-main/api/client';
import { ApiError } from '../../src-main/api/errors';
import { CALL_NAME_LIST, IPC_CALL_CHANNEL, IPC_EVENT_CHANNEL } from '../../src-main/api/names';

type Fn = (...a: any[]) => any; // eslint-disable-line @typescript-eslint/no-explicit-any
const m = vi.hoisted(() => ({
  exposed: new Map<string, unknown>(),
  invoked: [] as unknown[][],
  listeners: new Map<string, Set<Fn>>(),
}));

vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, api: unknown) => m.exposed.set(key, api) },
  ipcRenderer: {
    invoke: (...args: unknown[]) => {
      m.invoked.push(args);
      const [, method] = args;
      return Promise.resolve(method === 'app.info' ? { ok: true, result: { name: 'x' } } : { ok: false, error: { code: 'NOT_FOUND', message: 'nope', path: 'id' } });
    },
    on: (ch: string, h: Fn) => {
      if (!m.listeners.has(ch)) m.listeners.set(ch, new Set());
      m.listeners.get(ch)!.add(h);
    },
    removeListener: (ch: string, h: Fn) => m.listeners.get(ch)?.delete(h),
  },
}));

let api: PreloadApi;
beforeAll(async () => {
  await import('../../src-main/electron/preload');
  api = m.exposed.get('dlm') as PreloadApi;
});

describe('preload', () => {
  it('exposes only window.dlm with one frozen function per call and a subscribe function', () => {
    expect([...m.exposed.keys()]).toEqual(['dlm']);
    expect(Object.keys(api).sort()).toEqual(['calls', 'subscribe']);
    expect(Object.keys(api.calls).sort()).toEqual([...CALL_NAME_LIST].sort());
    for (const fn of Object.values(api.calls)) expect(typeof fn).toBe('function');
    expect(Object.isFrozen(api) && Object.isFrozen(api.calls)).toBe(true);
    expect(JSON.stringify(Object.keys(api))).not.toMatch(/ipc|invoke|send/i);
  });

  it('sends each call over the one call channel, and the typed client unwraps results and errors', async () => {
    const client = createClient(preloadChannel(api));
    expect(await client.call('app.info')).toEqual({ name: 'x' });
    await expect(client.call('constraintSets.get', { id: 3 })).rejects.toEqual(new ApiError('NOT_FOUND', 'nope', 'id'));
    expect(m.invoked).toEqual([
      [IPC_CALL_CHANNEL, 'app.info', {}],
      [IPC_CALL_CHANNEL, 'constraintSets.get', { id: 3 }],
    ]);
    await expect(preloadChannel(api).invoke('shell.openExternal', {})).resolves.toMatchObject({ ok: false, error: { code: 'UNKNOWN_METHOD' } });
  });

  it('delivers known events only, and unsubscribes', () => {
    const got: unknown[] = [];
    const off = api.subscribe((e) => got.push(e));
    const fire = (msg: unknown) => [...(m.listeners.get(IPC_EVENT_CHANNEL) ?? [])].forEach((h) => h({ sender: 'ipc' }, msg));
    fire({ name: 'run.started', payload: { runId: 1 } });
    fire({ name: 'evil.event', payload: {} });
    fire(null);
    fire('run.started');
    expect(got).toEqual([{ name: 'run.started', payload: { runId: 1 } }]);
    off();
    fire({ name: 'run.started', payload: { runId: 2 } });
    expect(got).toHaveLength(1);
    expect(() => api.subscribe('not a function' as never)).toThrow(TypeError);
  });
});
