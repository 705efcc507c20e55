/**
 * The typed client every consumer uses (renderer, CLI, tests), whatever carries the calls. Browser-safe.
 */
import type { CallInput, CallName, CallResult, EventName, StudioEvent, StudioEvents } from './contract';
import { ApiError, isApiErrorShape, type Envelope } from './errors';

/** The raw, untyped pipe a transport provides. */
export interface RawChannel {
  invoke(method: string, input: unknown): Promise<Envelope<unknown>>;
  subscribe(listener: (event: StudioEvent) => void): () => void;
}

export interface StudioClient {
  call<K extends CallName>(method: K, ...input: {} extends CallInput<K> ? [input?: CallInput<K>] : [input: CallInput<K>]): Promise<CallResult<K>>;
  on<K extends EventName>(name: K, listener: (payload: StudioEvents[K]) => void): () => void;
  onAny(listener: (event: StudioEvent) => void): () => void;
}

export function createClient(channel: RawChannel): StudioClient {
  return {
    async call(method, ...rest) {
      const envelope = await channel.invoke(method, rest[0] ?? {});
      if (envelope && typeof envelope === 'object' && envelope.ok === true) return envelope.result as never;
      const error = envelope && typeof envelope === 'object' && envelope.ok === false ? envelope.error : undefined;
      if (isApiErrorShape(error)) throw new ApiError(error.code, error.message, error.path);
      throw new ApiError('INTERNAL', `malformed reply to ${method}`);
    },
    on(name, listener) {
      return channel.subscribe((event) => {
        if (event.name === name) listener(event.payload as never);
      });
    },
    onAny(listener) {
      return channel.subscribe(listener);
    },
  };
}

/** What the Electron preload exposes as `window.dlm`: one named function per call, and one subscription. */
export interface PreloadApi {
  readonly calls: { readonly [K in CallName]: (input: unknown) => Promise<Envelope<unknown>> };
  subscribe(listener: (event: StudioEvent) => void): () => void;
}

export function preloadChannel(api: PreloadApi): RawChannel {
  return {
    invoke: (method, input) => {
      const fn = (api.calls as Record<string, ((input: unknown) => Promise<Envelope<unknown>>) | undefined>)[method];
      if (!fn) return Promise.resolve({ ok: false, error: { code: 'UNKNOWN_METHOD', message: `unknown method ${JSON.stringify(method)}` } });
      return fn(input);
    },
    subscribe: (listener) => api.subscribe(listener),
  };
}
