/**
 * The Electron IPC transport with a stand-in ipcMain (the Electron binary is not available here): only the
 * top frame of the studio window, showing app://studio/, may call; events go only to that window.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IPC_CALL_CHANNEL, IPC_EVENT_CHANNEL } from '../../src-main/api/names';
import { isTrustedUrl } from '../../src-main/electron/security';
import { createStudioServices, type StudioServices } from '../../src-main/services';
import { registerIpcTransport } from '../../src-main/transports/ipc';

type Handler = (event: unknown, ...args: unknown[]) => Promise<unknown>;

function fakeWindow(url: string) {
  const mainFrame = { url };
  const sent: unknown[][] = [];
  return { mainFrame, sent, destroyed: false, send: (...a: unknown[]) => sent.push(a), isDestroyed() { return this.destroyed; } };
}

let dir: string;
let services: StudioServices;
const handlers = new Map<string, Handler>();
const ipcMain = { handle: (ch: string, h: Handler) => handlers.set(ch, h), removeHandler: (ch: string) => handlers.delete(ch) };
const win = fakeWindow('app://studio/index.html');
let dispose: () => void;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dlm-ipc-'));
  services = createStudioServices({ dataDir: dir, modelDirs: [], engine: null });
  dispose = registerIpcTransport({ ipcMain: ipcMain as never, dispatcher: services.dispatcher, events: services.events, isTrustedUrl, targets: () => [win as never] });
});
afterAll(async () => {
  dispose();
  await services.close();
  rmSync(dir, { recursive: true, force: true });
});

const call = (event: unknown, method: string, input: unknown) => handlers.get(IPC_CALL_CHANNEL)!(event, method, input);

describe('IPC transport', () => {
  it('serves the studio window top frame', async () => {
    const reply = await call({ sender: win, senderFrame: win.mainFrame }, 'constraintSets.list', {});
    expect(reply).toEqual({ ok: true, result: [] });
    const bad = await call({ sender: win, senderFrame: win.mainFrame }, 'runs.get', { runId: -1 });
    expect(bad).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', path: 'runId' } });
  });

  it('refuses other origins, subframes, other windows and missing frames', async () => {
    const other = fakeWindow('app://studio/index.html');
    const evil = fakeWindow('https://evil.example/');
    const cases = [
      { sender: win, senderFrame: { url: 'https://evil.example/' } },
      { sender: win, senderFrame: { url: 'app://studio/index.html' } }, // a subframe with our URL, not the main frame
      { sender: other, senderFrame: other.mainFrame }, // a window that is not the studio window
      { sender: evil, senderFrame: evil.mainFrame },
      { sender: win, senderFrame: null },
      { sender: win, senderFrame: { url: 'app://other/index.html' } },
      { sender: win, senderFrame: { url: 'file:///etc/passwd' } },
    ];
    for (const event of cases) {
      expect(await call(event, 'app.info', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN_SENDER' } });
    }
  });

  it('pushes events to the studio window only while it shows the studio', () => {
    services.events.emit('run.started', { runId: 7 });
    expect(win.sent.at(-1)).toEqual([IPC_EVENT_CHANNEL, { name: 'run.started', payload: { runId: 7 } }]);
    const n = win.sent.length;
    win.mainFrame.url = 'https://evil.example/';
    services.events.emit('run.started', { runId: 8 });
    expect(win.sent.length).toBe(n);
    win.mainFrame.url = 'app://studio/index.html';
  });

  it('recognises only app://studio/ as trusted', () => {
    expect(isTrustedUrl('app://studio/index.html')).toBe(true);
    for (const u of ['app://studio.evil/x', 'https://studio/', 'app://', 'not a url', 'APP://other/']) expect(isTrustedUrl(u), u).toBe(false);
  });
});
