/**
 * WebSocket test transport: lets the real renderer, running in a plain browser (Playwright + Chromium), talk
 * to the real services. Listens on 127.0.0.1 only, on a random port, and requires a random token.
 *
 * Frames (JSON text):
 *   client -> server  {"id": 1, "method": "constraintSets.list", "input": {...}}
 *   server -> client  {"id": 1, "ok": true, "result": ...} | {"id": 1, "ok": false, "error": {code, message, path?}}
 *   server -> client  {"event": "run.progress", "payload": {...}}
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Dispatcher, EventHub } from '../api/dispatch';
import type { ApiErrorShape } from '../api/errors';

export const WS_MAX_PAYLOAD = 80 * 1024 * 1024;

export interface WsTransportOptions {
  dispatcher: Dispatcher;
  events: EventHub;
  /** Defaults to a fresh random token. */
  token?: string;
  /** 0 (default) picks a free port. */
  port?: number;
}

export interface WsTransport {
  url: string;
  token: string;
  port: number;
  /** The URL with the token as a query parameter, as browsers connect. */
  connectUrl: string;
  clients(): number;
  close(): Promise<void>;
}

function tokenMatches(given: string | null, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(ws: WebSocket, frame: unknown): void {
  if (ws.readyState !== ws.OPEN) return;
  try {
    ws.send(JSON.stringify(frame));
  } catch {
    // the peer went away; nothing to do
  }
}

function badFrame(id: unknown, message: string): { id: unknown; ok: false; error: ApiErrorShape } {
  return { id: validId(id) ? id : null, ok: false, error: { code: 'INVALID_MESSAGE', message } };
}

function validId(id: unknown): id is string | number {
  return (typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id.length <= 100);
}

export async function startWsTransport(options: WsTransportOptions): Promise<WsTransport> {
  const token = options.token ?? randomBytes(24).toString('hex');
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: options.port ?? 0,
    maxPayload: WS_MAX_PAYLOAD,
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
      const url = new URL(info.req.url ?? '/', 'http://127.0.0.1');
      if (!tokenMatches(url.searchParams.get('token'), token)) return done(false, 401, 'UNAUTHORIZED: missing or wrong token');
      // refuse DNS-rebinding style access: the Host header must name the loopback address
      const host = (info.req.headers.host ?? '').replace(/:\d+$/, '');
      if (host !== '127.0.0.1' && host !== 'localhost') return done(false, 403, 'FORBIDDEN: host must be 127.0.0.1');
      done(true);
    },
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  // never let a socket-level problem take the process down
  wss.on('error', () => undefined);

  wss.on('connection', (ws) => {
    ws.on('error', () => undefined);
    const unsubscribe = options.events.on((e) => send(ws, { event: e.name, payload: e.payload }));
    ws.on('close', unsubscribe);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return send(ws, badFrame(null, 'binary frames are not accepted; send JSON text'));
      let frame: unknown;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        return send(ws, badFrame(null, 'frame is not valid JSON'));
      }
      if (!frame || typeof frame !== 'object' || Array.isArray(frame)) return send(ws, badFrame(null, 'frame must be a JSON object {id, method, input}'));
      const { id, method, input } = frame as { id?: unknown; method?: unknown; input?: unknown };
      if (!validId(id)) return send(ws, badFrame(null, 'frame needs an "id" (number or short string)'));
      if (typeof method !== 'string') return send(ws, badFrame(id, 'frame needs a "method" string'));
      void options.dispatcher.invoke(method, input).then((envelope) => send(ws, { id, ...envelope }));
    });
  });

  const address = wss.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `ws://127.0.0.1:${port}/`;
  return {
    url,
    token,
    port,
    connectUrl: `${url}?token=${token}`,
    clients: () => wss.clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}
