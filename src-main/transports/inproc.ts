/** In-process transport: the CLI (and Node tests) call the services directly, through the same dispatcher. */
import { createClient, type RawChannel, type StudioClient } from '../api/client';
import type { StudioServices } from '../services';

export function inProcessChannel(services: Pick<StudioServices, 'dispatcher' | 'events'>): RawChannel {
  return {
    // a structured clone keeps callers from mutating service state and mirrors what IPC/WS deliver
    invoke: async (method, input) => structuredClone(await services.dispatcher.invoke(method, input)),
    subscribe: (listener) => services.events.on((e) => listener(structuredClone(e))),
  };
}

export function createInProcessClient(services: Pick<StudioServices, 'dispatcher' | 'events'>): StudioClient {
  return createClient(inProcessChannel(services));
}
