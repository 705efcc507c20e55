/**
 * The Electron main process with `electron` mocked (the binary cannot run here): what the shell registers,
 * how it configures the window and sessions, that navigation/new windows/permissions are refused, and the
 * app:// handler (real files, real Response objects).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rendererProtocolHandler } from '../../src-main/electron/protocol';
import { APP_ENTRY, CONTENT_SECURITY_POLICY } from '../../src-main/electron/security';

type Fn = (...a: any[]) => any; // eslint-disable-line @typescript-eslint/no-explicit-any

const m = vi.hoisted(() => {
  const appHandlers = new Map<string, Fn>();
  let ready!: () => void;
  const readyPromise = new Promise<void>((r) => (ready = r));
  const makeSession = (name: string) => ({
    name,
    permissionRequest: null as Fn | null,
    permissionCheck: null as Fn | null,
    devicePermission: null as Fn | null,
    headers: null as Fn | null,
    protocolHandlers: new Map<string, Fn>(),
    preloads: [] as unknown[],
    setPermissionRequestHandler(h: Fn) { this.permissionRequest = h; },
    setPermissionCheckHandler(h: Fn) { this.permissionCheck = h; },
    setDevicePermissionHandler(h: Fn) { this.devicePermission = h; },
    webRequest: { onHeadersReceived(h: Fn) { sessions.current!.headers = h; } },
    protocol: { handle(scheme: string, h: Fn) { sessions.current!.protocolHandlers.set(scheme, h); } },
    registerPreloadScript(p: unknown) { this.preloads.push(p); return 'id'; },
  });
  const sessions = { defaultSession: makeSession('default'), partitions: new Map<string, ReturnType<typeof makeSession>>(), current: null as ReturnType<typeof makeSession> | null };
  const windows: { options: Record<string, any>; url?: string; webContents: object }[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const calls = { privileged: [] as unknown[], sandbox: 0, userData: '' as string, ipc: new Map<string, Fn>() };
  return { appHandlers, ready: () => ready(), readyPromise, sessions, makeSession, windows, calls };
});

vi.mock('electron', () => {
  const withCurrent = (s: ReturnType<typeof m.makeSession>) =>
    new Proxy(s, {
      get(target, prop, receiver) {
        m.sessions.current = target;
        return Reflect.get(target, prop, receiver);
      },
    });
  class BrowserWindow {
    webContents = { send() {}, isDestroyed: () => false, mainFrame: { url: APP_ENTRY } };
    constructor(readonly options: Record<string, unknown>) {
      m.windows.push(this as never);
    }
    once() {}
    on() {}
    isDestroyed() { return false; }
    isMinimized() { return true; }
    restore() { (this as unknown as { restored: boolean }).restored = true; }
    focus() { (this as unknown as { focused: boolean }).focused = true; }
    loadURL(url: string) { (this as unknown as { url: string }).url = url; return Promise.resolve(); }
  }
  return {
    app: {
      on: (ev: string, h: Fn) => m.appHandlers.set(ev, h),
      whenReady: () => m.readyPromise,
      enableSandbox: () => void m.calls.sandbox++,
      setPath: (_k: string, v: string) => void (m.calls.userData = v),
      isPackaged: false,
      getAppPath: () => '/app',
      getVersion: () => '0.0.0-test',
      quit: () => {},
      requestSingleInstanceLock: () => true,
    },
    BrowserWindow,
    ipcMain: { handle: (ch: string, h: Fn) => m.calls.ipc.set(ch, h), removeHandler: (ch: string) => m.calls.ipc.delete(ch) },
    protocol: { registerSchemesAsPrivileged: (s: unknown[]) => m.calls.privileged.push(...s) },
    session: {
      get defaultSession() { return withCurrent(m.sessions.defaultSession); },
      fromPartition(p: string) {
        if (!m.sessions.partitions.has(p)) m.sessions.partitions.set(p, m.makeSession(p));
        return withCurrent(m.sessions.partitions.get(p)!);
      },
    },
  };
});

let dataDir: string;
beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'dlm-shell-'));
  process.env.DLM_STUDIO_DATA_DIR = dataDir;
  await import('../../src-main/electron/main');
  m.ready();
  await new Promise((r) => setTimeout(r, 50));
});
afterAll(async () => {
  await new Promise<void>((resolve) => {
    const ev = { preventDefault: () => undefined };
    m.appHandlers.get('before-quit')?.(ev);
    setTimeout(resolve, 100);
  });
  delete process.env.DLM_STUDIO_DATA_DIR;
  rmSync(dataDir, { recursive: true, force: true });
});

describe('Electron main process (electron mocked)', () => {
  it('registers app:// as a standard secure scheme, enables the sandbox, and uses the shared data folder', () => {
    expect(m.calls.privileged).toEqual([{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
    expect(m.calls.sandbox).toBe(1);
    expect(m.calls.userData).toBe(dataDir);
  });

  it('opens one locked-down window on app://studio/', () => {
    expect(m.windows).toHaveLength(1);
    const w = m.windows[0]!;
    expect(w.url).toBe(APP_ENTRY);
    expect(w.options.webPreferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      partition: 'persist:studio',
    });
    expect(w.options.webPreferences.preload).toBeUndefined();
  });

  it('registers the preload on the studio session for app://studio/* only, and serves app:// there', () => {
    const s = m.sessions.partitions.get('persist:studio')!;
    expect(s.preloads).toEqual([expect.objectContaining({ type: 'frame', matches: ['app://studio/*'], filePath: expect.stringMatching(/preload[/\\]index\.cjs$/) })]);
    expect([...s.protocolHandlers.keys()]).toEqual(['app']);
  });

  it('denies every permission request and check, in both sessions, and sets the CSP on responses', () => {
    for (const s of [m.sessions.defaultSession, m.sessions.partitions.get('persist:studio')!]) {
      for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal']) {
        const cb = vi.fn();
        s.permissionRequest!({}, permission, cb);
        expect(cb).toHaveBeenCalledWith(false);
        expect(s.permissionCheck!({}, permission)).toBe(false);
      }
      expect(s.devicePermission!({})).toBe(false);
      const cb = vi.fn();
      s.headers!({ responseHeaders: { 'X-Other': ['1'] } }, cb);
      expect(cb.mock.calls[0]![0].responseHeaders).toEqual({ 'X-Other': ['1'], 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] });
    }
  });

  it('blocks navigation, redirects, webviews and new windows for every web contents', () => {
    const handlers = new Map<string, Fn>();
    let openHandler: Fn | null = null;
    const contents = { on: (ev: string, h: Fn) => handlers.set(ev, h), setWindowOpenHandler: (h: Fn) => (openHandler = h) };
    m.appHandlers.get('web-contents-created')!({}, contents);
    for (const ev of ['will-navigate', 'will-redirect', 'will-attach-webview']) {
      const e = { preventDefault: vi.fn() };
      handlers.get(ev)!(e, 'https://example.com/');
      expect(e.preventDefault, ev).toHaveBeenCalled();
    }
    expect(openHandler!({ url: 'https://example.com/' })).toEqual({ action: 'deny' });
    expect(openHandler!({ url: 'app://studio/index.html' })).toEqual({ action: 'deny' });
  });

  it('a second launch focuses the existing window', () => {
    m.appHandlers.get('second-instance')!({}, [], '/');
    expect(m.windows[0]).toMatchObject({ restored: true, focused: true });
    expect(m.windows).toHaveLength(1);
  });

  it('answers IPC calls from the studio window and refuses others', async () => {
    const handler = m.calls.ipc.get('dlm:call')!;
    const wc = (m.windows[0] as unknown as { webContents: { mainFrame: object } }).webContents;
    expect(await handler({ sender: wc, senderFrame: wc.mainFrame }, 'settings.get', {})).toMatchObject({ ok: true, result: { theme: 'system' } });
    expect(await handler({ sender: wc, senderFrame: { url: 'https://evil.example/' } }, 'settings.get', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN_SENDER' } });
  });
});

describe('app:// protocol handler', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-proto-'));
  const root = join(dir, 'renderer');
  mkdirSync(join(root, 'assets'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>x</title>');
  writeFileSync(join(root, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(join(dir, 'secret.txt'), 'do not serve');
  const handle = rendererProtocolHandler(root);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves files of the renderer folder with the CSP and a content type', async () => {
    const r = await handle(new Request('app://studio/index.html'));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(await r.text()).toContain('<title>x</title>');
    const js = await handle(new Request('app://studio/assets/app.js'));
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await handle(new Request('app://studio/'))).status).toBe(200);
  });

  it('serves nothing outside the folder, from other hosts, or for other methods', async () => {
    for (const url of ['app://studio/%2e%2e/secret.txt', 'app://studio/..%2fsecret.txt', 'app://studio/assets/..%2f..%2fsecret.txt', 'app://studio/%2e%2e%5csecret.txt']) {
      const r = await handle(new Request(url));
      expect([403, 404], url).toContain(r.status);
      expect(await r.text(), url).not.toContain('do not serve');
    }
    expect((await handle(new Request('app://other/index.html'))).status).toBe(404);
    expect((await handle(new Request('app://studio/missing.js'))).status).toBe(404);
    expect((await handle(new Request('app://studio/%E0%A4%A'))).status).toBe(400);
    expect((await handle(new Request('app://studio/index.html', { method: 'POST', body: 'x' }))).status).toBe(405);
  });
});
