/**
 * Client side of the WebSocket test transport. Browser-safe (the renderer uses it in Chromium); Node tests
 * pass the `ws` package's WebSocket class.
 */
import type { RawChannel } from '../api/client';
import type { StudioEvent } from '../api/contract';
import type { ApiErrorShape, Envelope } from '../api/errors';

interface MinimalSocket {
  readyState: number;
  send(data: string): void;
  close(): void;
  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (ev: { data?: unknown }) => void): void;
}
export type SocketFactory = (url: string) => MinimalSocket;

export interface WsChannel extends RawChannel {
  close(): void;
  /** Send a raw frame (tests use it to send malformed ones); resolves with the reply that carries `id`, if any. */
  sendRaw(frame: string, id?: string | number): Promise<unknown>;
}

export async function connectWsChannel(connectUrl: string, factory: SocketFactory = (u) => new WebSocket(u) as unknown as MinimalSocket): Promise<WsChannel> {
  const socket = factory(connectUrl);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve());
    socket.addEventListener('error', () => reject(new Error(`cannot connect to the studio test transport at ${connectUrl.replace(/token=[^&]+/, 'token=…')}`)));
  });
  let nextId = 1;
  const pending = new Map<string | number, (reply: unknown) => void>();
  const untagged: ((reply: unknown) => void)[] = [];
  const listeners = new Set<(e: StudioEvent) => void>();
  let closedError: ApiErrorShape | null = null;

  socket.addEventListener('message', (ev) => {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(String(ev.data)) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof frame.event === 'string') {
      for (const l of [...listeners]) l({ name: frame.event, payload: frame.payload } as StudioEvent);
      return;
    }
    const id = frame.id as string | number | null;
    const resolve = id !== null && id !== undefined ? pending.get(id) : untagged.shift();
    if (resolve) {
      if (id !== null && id !== undefined) pending.delete(id);
      resolve(frame);
    }
  });
  socket.addEventListener('close', () => {
    closedError = { code: 'INTERNAL', message: 'the connection to the studio services closed' };
    for (const [, resolve] of pending) resolve({ ok: false, error: closedError });
    pending.clear();
    for (const resolve of untagged.splice(0)) resolve({ ok: false, error: closedError });
  });

  return {
    invoke(method, input) {
      if (closedError) return Promise.resolve({ ok: false, error: closedError });
      const id = nextId++;
      return new Promise<Envelope<unknown>>((resolve) => {
        pending.set(id, (reply) => {
          const r = reply as { ok?: unknown; result?: unknown; error?: unknown };
          resolve(r.ok === true ? { ok: true, result: r.result } : { ok: false, error: r.error as ApiErrorShape });
        });
        socket.send(JSON.stringify({ id, method, input }));
      });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    sendRaw(frame, id) {
      return new Promise((resolve) => {
        if (id === undefined) untagged.push(resolve);
        else pending.set(id, resolve);
        socket.send(frame);
      });
    },
    close() {
      socket.close();
    },
  };
}
