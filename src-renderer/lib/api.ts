/**
 * The renderer's typed API client. Inside Electron it uses the preload's `window.dlm`; in a plain browser
 * (end-to-end tests) it uses the WebSocket test transport named in the URL hash: `#ws=<url-encoded connectUrl>`.
 */
import { createClient, preloadChannel, type StudioClient } from '../../src-main/api/client';
import { connectWsChannel } from '../../src-main/transports/ws-client';
import { ApiError } from '../../src-main/api/errors';

export type { StudioClient };
export { ApiError };

export type TransportKind = 'electron' | 'websocket';

export async function connectStudio(): Promise<{ client: StudioClient; transport: TransportKind }> {
  if (window.dlm) return { client: createClient(preloadChannel(window.dlm)), transport: 'electron' };
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const ws = params.get('ws');
  if (!ws) throw new ApiError('INTERNAL', 'No studio services: open this page inside the app, or with #ws=<test transport URL> for tests.');
  if (!/^ws:\/\/127\.0\.0\.1:\d+\//.test(ws)) throw new ApiError('INTERNAL', 'The test transport must be on ws://127.0.0.1.');
  const channel = await connectWsChannel(ws);
  return { client: createClient(channel), transport: 'websocket' };
}

/** A user-facing message for any error (named API errors keep their code). */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return `${err.message}${err.code === 'INTERNAL' ? '' : ` (${err.code})`}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
