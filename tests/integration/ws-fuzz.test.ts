/**
 * 1,000 malformed payloads to EACH call of the contract through the WebSocket test transport, on the real
 * services: every one gets a named INVALID_INPUT error with a path, nothing is written, and the server stays up.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calls, CALL_NAMES, type CallName } from '../../src-main/api/contract';
import { createClient } from '../../src-main/api/client';
import { SCHEMA_VERSION } from '../../src-main/store';
import { createStudioServices, type StudioServices } from '../../src-main/services';
import { defaultEngine } from '../../src-main/services/engine-loader';
import { connectWsChannel, type WsChannel } from '../../src-main/transports/ws-client';
import { startWsTransport, type WsTransport } from '../../src-main/transports/ws';

const PER_CALL = 1000;
const root = join(import.meta.dirname, '..', '..');

let dir: string;
let services: StudioServices;
let transport: WsTransport;
let channel: WsChannel;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dlm-fuzz-'));
  services = createStudioServices({ dataDir: dir, modelDirs: [join(root, 'models')], engine: defaultEngine().engine });
  transport = await startWsTransport({ dispatcher: services.dispatcher, events: services.events });
  channel = await connectWsChannel(transport.connectUrl, (u) => new WebSocket(u) as never);
});
afterAll(async () => {
  channel?.close();
  await transport?.close();
  await services?.close();
  rmSync(dir, { recursive: true, force: true });
});

// Seeded generator so a failure can be reproduced.
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
}

const body = { version: 1, constraints: [{ kind: 'length', tokens: 5 }] };
const examples: Record<CallName, Record<string, unknown>> = {
  'app.info': {},
  'settings.get': {},
  'settings.set': { theme: 'dark', defaultDevice: 'cpu', modelFolders: ['/models'] },
  'models.list': {},
  'devices.probe': { preference: 'cpu' },
  'constraintSets.list': { query: 'a', limit: 10, allVersions: true },
  'constraintSets.get': { name: 'a', version: 1 },
  'constraintSets.save': { name: 'a', body },
  'constraintSets.delete': { id: 1 },
  'constraintSets.validate': { body },
  'constraints.compile': { body, model: 'm' },
  'constraints.posTags': { sentence: 'The pub is nice.' },
  'presets.list': { query: 'x' },
  'presets.save': { name: 'p', settings: { steps: 10 } },
  'presets.delete': { name: 'p' },
  'runs.start': { model: 'm', device: 'cpu', constraintSet: body, sampler: { steps: 2 } },
  'runs.cancel': { runId: 1 },
  'runs.list': { status: 'failed', limit: 5, offset: 0 },
  'runs.get': { runId: 1, outputs: true },
  'runs.delete': { runId: 1 },
  'export.run': { runIds: [1], format: 'csv', fileName: 'x' },
  'recipes.import': { content: 'x', format: 'auto' },
};

function randomValue(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 2 ? 7 : 11));
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return [0, -1, 1.5, 2 ** 53, -(2 ** 31), 1e308, 7][Math.floor(r() * 7)];
    case 3: return ['', ' ', 'a', '../../etc/passwd', '\u0000', 'x'.repeat(300), '{"a":1}', 'cpu', '__proto__', 'NaN'][Math.floor(r() * 10)];
    case 4: return Math.floor(r() * 1e6) - 5e5;
    case 10: return `${['x', ' ', '../', '\u202e', 'ü'][Math.floor(r() * 5)]}${Math.floor(r() * 1e6)}`;
    case 5: return String.fromCharCode(...Array.from({ length: Math.floor(r() * 12) }, () => 32 + Math.floor(r() * 90000) % 0xd7ff));
    case 6: return r() * 100 - 50;
    case 7: return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    case 8: case 9: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 4); i > 0; i--) o[['id', 'name', 'body', 'runId', 'constraints', 'version', 'x', 'format', 'steps'][Math.floor(r() * 9)]!] = randomValue(r, depth + 1);
      return o;
    }
  }
  return undefined;
}

/** Mutate a valid example: drop, retype or add a key, nest deeper, or replace the whole payload. */
function malformed(method: CallName, r: () => number): unknown {
  const base = structuredClone(examples[method]);
  const keys = Object.keys(base);
  const mode = Math.floor(r() * 6);
  if (mode === 0 || keys.length === 0 && mode < 3) return randomValue(r);
  if (mode === 1) {
    base[`unexpected_${Math.floor(r() * 100)}`] = randomValue(r);
    return base;
  }
  const key = keys[Math.floor(r() * keys.length)]!;
  if (mode === 2) {
    delete base[key];
    return base;
  }
  if (mode === 3 && base[key] && typeof base[key] === 'object') {
    const inner = base[key] as Record<string, unknown>;
    const ik = Object.keys(inner);
    if (ik.length) inner[ik[Math.floor(r() * ik.length)]!] = randomValue(r);
    else (base as Record<string, unknown>)[key] = randomValue(r);
    return base;
  }
  base[key] = randomValue(r);
  return base;
}

function isInvalid(method: CallName, payload: unknown): boolean {
  const seen = payload === undefined ? {} : JSON.parse(JSON.stringify(payload));
  return !calls[method].input.safeParse(seen).success;
}

describe('WebSocket transport under malformed input', () => {
  it(`answers ${PER_CALL} malformed payloads to each of the ${CALL_NAMES.length} calls with named errors`, { timeout: 300_000 }, async () => {
    const r = rng(424242);
    const summary: Record<string, number> = {};
    const distinct: Record<string, number> = {};
    for (const method of CALL_NAMES) {
      const payloads: unknown[] = [];
      const seen = new Set<string>();
      let attempts = 0;
      while (payloads.length < PER_CALL) {
        if (++attempts > PER_CALL * 200) throw new Error(`could not generate enough distinct malformed payloads for ${method}`);
        const p = malformed(method, r);
        if (p === undefined) continue;
        const key = JSON.stringify(p);
        if (seen.has(key) || !isInvalid(method, p)) continue;
        seen.add(key);
        payloads.push(p);
      }
      const replies: { ok: boolean; error?: { code: string; message: string; path?: string } }[] = [];
      for (let i = 0; i < payloads.length; i += 200) {
        replies.push(...(await Promise.all(payloads.slice(i, i + 200).map((p) => channel.invoke(method, p)))) as typeof replies);
      }
      const bad = replies.map((rep, i) => ({ rep, payload: payloads[i] })).filter(({ rep }) => rep.ok || rep.error?.code !== 'INVALID_INPUT' || !rep.error.message || typeof rep.error.path !== 'string');
      expect(bad.slice(0, 3), method).toEqual([]);
      summary[method] = replies.length;
      distinct[method] = new Set(payloads.map((p) => JSON.stringify(p))).size;
    }
    expect(Object.values(summary).reduce((a, b) => a + b, 0)).toBe(PER_CALL * CALL_NAMES.length);
    console.log(`fuzz: ${PER_CALL} malformed payloads x ${CALL_NAMES.length} calls = ${PER_CALL * CALL_NAMES.length}, all INVALID_INPUT with a path; distinct payloads per call ${Math.min(...Object.values(distinct))}-${Math.max(...Object.values(distinct))}`);

    // still up, and nothing was written by any malformed call
    const client = createClient(channel);
    expect((await client.call('app.info')).schemaVersion).toBe(SCHEMA_VERSION);
    expect(await client.call('constraintSets.list', {})).toEqual([]);
    expect(await client.call('presets.list', {})).toEqual([]);
    expect(await client.call('runs.list', {})).toEqual([]);
    expect(await client.call('settings.get')).toEqual({ defaultDevice: 'auto', modelFolders: [], theme: 'system' });
  });

  it('answers malformed frames and unknown methods with named errors and stays up', async () => {
    const frames: [string, string | number | undefined, string][] = [
      ['not json', undefined, 'INVALID_MESSAGE'],
      ['[1,2,3]', undefined, 'INVALID_MESSAGE'],
      ['{"method":"app.info"}', undefined, 'INVALID_MESSAGE'],
      ['{"id":{"x":1},"method":"app.info"}', undefined, 'INVALID_MESSAGE'],
      ['{"id":5,"method":7}', 5, 'INVALID_MESSAGE'],
      ['{"id":6,"method":"system.exec","input":{}}', 6, 'UNKNOWN_METHOD'],
      ['{"id":7,"method":"__proto__","input":{}}', 7, 'UNKNOWN_METHOD'],
      ['{"id":8,"method":"toString","input":{}}', 8, 'UNKNOWN_METHOD'],
      ['null', undefined, 'INVALID_MESSAGE'],
    ];
    for (const [frame, id, code] of frames) {
      const reply = (await channel.sendRaw(frame, id)) as { ok: boolean; error: { code: string } };
      expect(reply.ok, frame).toBe(false);
      expect(reply.error.code, frame).toBe(code);
    }
    expect((await createClient(channel).call('app.info')).name).toBe('DLM Studio');
  });

  it('refuses connections without the right token', async () => {
    for (const url of [transport.url, `${transport.url}?token=wrong`, `${transport.url}?token=${transport.token.slice(0, -1)}`]) {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(url);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(200));
        ws.on('error', () => undefined);
      });
      expect(status, url).toBe(401);
    }
  });
});
