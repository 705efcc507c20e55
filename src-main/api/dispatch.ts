/**
 * The one place where a (method, input) pair from any transport becomes a validated call on the services.
 * Never throws: every failure is returned as a named error envelope.
 */
import type { z } from 'zod';
import { formatPath } from '../constraints/set';
import { calls, type CallName, type CallParsed, type CallResult, type EventName, type StudioEvent, type StudioEvents } from './contract';
import { ApiError, toApiError, type Envelope } from './errors';

export type Handlers = { [K in CallName]: (input: CallParsed<K>) => Promise<CallResult<K>> | CallResult<K> };

export interface Dispatcher {
  invoke(method: unknown, input: unknown): Promise<Envelope<unknown>>;
}

export function isCallName(method: unknown): method is CallName {
  return typeof method === 'string' && Object.prototype.hasOwnProperty.call(calls, method);
}

/** Validate `input` against the method's schema; the error names the first offending field. */
export function parseInput<K extends CallName>(method: K, input: unknown): CallParsed<K> {
  const schema = calls[method].input as z.ZodType;
  const result = schema.safeParse(input === undefined ? {} : input);
  if (result.success) return result.data as CallParsed<K>;
  const issue = result.error.issues[0]!;
  const segments: PropertyKey[] = [...issue.path];
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) segments.push(issue.keys[0]!);
  const path = formatPath(segments) || '(input)';
  const extra = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more issue${result.error.issues.length > 2 ? 's' : ''})` : '';
  return throwInvalid(method, path, issue.message + extra);
}

function throwInvalid(method: string, path: string, message: string): never {
  throw new ApiError('INVALID_INPUT', `${method}: ${path}: ${message}`, path);
}

export function createDispatcher(handlers: Handlers): Dispatcher {
  return {
    async invoke(method, input) {
      try {
        if (!isCallName(method)) {
          const shown = typeof method === 'string' ? JSON.stringify(method.slice(0, 100)) : typeof method;
          throw new ApiError('UNKNOWN_METHOD', `unknown method ${shown}`);
        }
        const parsed = parseInput(method, input);
        const handler = handlers[method] as (i: unknown) => unknown;
        const result = await handler(parsed);
        return { ok: true, result };
      } catch (err) {
        return { ok: false, error: toApiError(err).toJSON() };
      }
    },
  };
}

export type EventListener = (event: StudioEvent) => void;

/** A tiny typed event hub; a throwing listener never breaks the emitter or other listeners. */
export class EventHub {
  private listeners = new Set<EventListener>();

  on(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit<K extends EventName>(name: K, payload: StudioEvents[K]): void {
    const event = { name, payload } as StudioEvent;
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch {
        // a broken subscriber (e.g. a closed socket) must not stop the run
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}
