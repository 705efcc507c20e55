/** The WebSocket test transport: events reach every client, a vanished client breaks nothing, Host is checked. */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src-main/api/client';
import type { StudioEvent } from '../../src-main/api/contract';
import { createStudioServices, type StudioServices } from '../../src-main/services';
import { startWsTransport, type WsTransport } from '../../src-main/transports/ws';
import { connectWsChannel } from '../../src-main/transports/ws-client';

let dir: string;
let services: StudioServices;
let transport: WsTransport;
const factory = (u: string) => new WebSocket(u) as never;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dlm-ws-'));
  services = createStudioServices({ dataDir: dir, modelDirs: [], engine: null });
  transport = await startWsTransport({ dispatcher: services.dispatcher, events: services.events });
});
afterAll(async () => {
  await transport.close();
  await services.close();
  rmSync(dir, { recursive: true, force: true });
});

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('WebSocket test transport', () => {
  it('listens on 127.0.0.1 only, with a 48-hex-digit random token', () => {
    expect(transport.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    expect(transport.token).toMatch(/^[0-9a-f]{48}$/);
  });

  it('pushes events to every connected client, in order', async () => {
    const a = await connectWsChannel(transport.connectUrl, factory);
    const b = await connectWsChannel(transport.connectUrl, factory);
    const gotA: StudioEvent[] = [];
    const gotB: StudioEvent[] = [];
    a.subscribe((e) => gotA.push(e));
    createClient(b).on('run.progress', (p) => gotB.push({ name: 'run.progress', payload: p }));
    await until(() => transport.clients() === 2);
    for (let step = 1; step <= 5; step++) services.events.emit('run.progress', { runId: 1, step, steps: 5, elapsedMs: step, batchStart: 0, canvases: [] });
    services.events.emit('run.finished', { runId: 1, status: 'completed', summary: null, error: null });
    await until(() => gotA.length === 6 && gotB.length === 5);
    expect(gotA.map((e) => e.name)).toEqual(['run.progress', 'run.progress', 'run.progress', 'run.progress', 'run.progress', 'run.finished']);
    expect(gotB.map((e) => (e.payload as { step: number }).step)).toEqual([1, 2, 3, 4, 5]);
    a.close();
    b.close();
  });

  it('keeps serving after a client vanishes mid-stream, and answers its pending calls with an error', async () => {
    const c = await connectWsChannel(transport.connectUrl, factory);
    const pending = c.invoke('app.info', {});
    c.close();
    const reply = await pending;
    // either the call made it before the close, or it is answered with a named error
    expect(reply.ok === true || (reply.ok === false && typeof reply.error.code === 'string')).toBe(true);
    services.events.emit('run.started', { runId: 2 });
    const d = await connectWsChannel(transport.connectUrl, factory);
    expect((await createClient(d).call('settings.get')).theme).toBe('system');
    d.close();
  });

  it('refuses a Host header other than the loopback address', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: transport.port,
        path: `/?token=${transport.token}`,
        headers: { Host: 'evil.example', Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('upgrade', () => resolve(101));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });
});
