/**
 * Helpers for the studio's end-to-end tests (issue 7): the model the tests run (the bundled e2e-default when
 * it is installed, else the tiny smoke bundle), a typed client on the same test transport as the page, and
 * small waits on the live page.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createClient, type StudioClient } from '../../src-main/api/client';
import { connectWsChannel, type SocketFactory } from '../../src-main/transports/ws-client';
import { ROOT, type Harness } from './harness';

export const TINY_BUNDLE = join(ROOT, 'tests', '.generated', 'tiny-e2e');

/** The folder to add to the studio's model folders, or null when the bundled default model is installed. */
export function extraModelFolder(): string | null {
  if (existsSync(join(ROOT, 'models', 'e2e-default', 'manifest.json'))) return null;
  if (existsSync(join(TINY_BUNDLE, 'manifest.json'))) return TINY_BUNDLE;
  throw new Error(`no model for the e2e tests: install models/e2e-default or run \`npm run smoke:bundle\` (makes ${TINY_BUNDLE})`);
}

/** A client on the page's test transport (same services, same SQLite file). */
export async function serviceClient(h: Harness): Promise<StudioClient & { close(): void }> {
  const connectUrl = decodeURIComponent(new URL(h.pageUrl).hash.replace(/^#ws=/, ''));
  const channel = await connectWsChannel(connectUrl, ((u: string) => new WebSocket(u)) as unknown as SocketFactory);
  return Object.assign(createClient(channel), { close: () => channel.close() });
}

/** Point the services at the test model (before the page loads) and open the page. */
export async function openStudio(h: Harness): Promise<StudioClient & { close(): void }> {
  const client = await serviceClient(h);
  const folder = extraModelFolder();
  if (folder) await client.call('settings.set', { modelFolders: [folder] });
  await h.page.goto(h.pageUrl);
  await h.page.getByRole('navigation', { name: 'Places' }).waitFor();
  return client;
}

export async function openPlace(h: Harness, name: string): Promise<void> {
  await h.page.getByRole('navigation', { name: 'Places' }).getByRole('button', { name: new RegExp(`^${name}`) }).click();
  await h.page.locator('#place-title', { hasText: name }).waitFor();
}

/** Dismiss the notices (they stack in a corner) so a screenshot shows the place itself. */
export async function clearNotices(h: Harness): Promise<void> {
  const buttons = h.page.locator('.notices').getByRole('button', { name: 'Dismiss' });
  for (let i = 0; i < 10 && (await buttons.count()) > 0; i++) await buttons.first().click({ timeout: 1000 }).catch(() => undefined);
}

/** Click Run in Generate and wait until that new run (not the one still on screen) has finished. */
export async function runFromGenerate(h: Harness, client: StudioClient, timeout = 120_000): Promise<number> {
  const [previous] = await client.call('runs.list', { limit: 1 });
  const runId = (previous?.id ?? 0) + 1;
  await h.page.getByTestId('generate-run').click();
  await h.page.locator('[data-testid="generate-status"]', { hasText: `Run #${runId} ·` }).waitFor({ timeout });
  await h.page.waitForFunction(
    (id) => {
      const el = document.querySelector('[data-testid="generate-status"]');
      return !!el?.textContent?.includes(`Run #${id} ·`) && ['completed', 'cancelled', 'failed'].includes(el.getAttribute('data-status') ?? '');
    },
    runId,
    { timeout },
  );
  return runId;
}

/** A relay of the page's WebSocket that can hold back the services' frames (to catch a run mid-way in the UI). */
export interface FrameGate {
  /** True from the frame `hold` accepted until flush(); the frames after it wait. */
  holding: boolean;
  /** Deliver the held frames and stop holding. */
  flush(): void;
}

/**
 * Relays the page's WebSocket to the services. After each server frame is delivered, `hold(frame)` (parsed JSON) is
 * asked while not holding; when it returns true, later frames are held back until gate.flush().
 */
export async function gateServerFrames(page: Harness['page'], hold: (frame: { event?: string; payload?: unknown }) => boolean): Promise<FrameGate> {
  const queue: (string | Buffer)[] = [];
  let send: (m: string | Buffer) => void = () => undefined;
  const gate: FrameGate = {
    holding: false,
    flush() {
      gate.holding = false;
      for (const m of queue.splice(0)) send(m);
    },
  };
  await page.routeWebSocket(/^ws:\/\/127\.0\.0\.1:/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    send = (m) => ws.send(m);
    server.onMessage((m) => {
      if (gate.holding) {
        queue.push(m);
        return;
      }
      ws.send(m);
      if (hold(JSON.parse(String(m)))) gate.holding = true;
    });
  });
  return gate;
}

