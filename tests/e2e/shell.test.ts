/**
 * The built renderer in Debian's Chromium against the real services: navigate the shell, use it from the
 * keyboard, switch themes (persisted), and save and reload a constraint set through the real SQLite file.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CALL_NAME_LIST } from '../../src-main/api/names';
import { startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.page.goto(h.pageUrl);
  await h.page.getByRole('navigation', { name: 'Places' }).waitFor();
});
afterAll(async () => {
  await h?.close();
});

const PLACES = ['Compose', 'Generate', 'Library', 'Compare', 'Settings'];

async function openPlace(name: string) {
  await h.page.getByRole('navigation', { name: 'Places' }).getByRole('button', { name: new RegExp(`^${name}`) }).click();
  await h.page.locator('#place-title', { hasText: name }).waitFor();
}

describe('studio shell in Chromium', () => {
  it('shows every place from the navigation, with the status bar', async () => {
    const { page } = h;
    await expect(page.getByTestId('status-device').textContent()).resolves.toMatch(/Device\s+\S+/);
    await expect(page.getByTestId('status-model').textContent()).resolves.toMatch(/Model\s+\S+/);
    await expect(page.getByTestId('status-transport').textContent()).resolves.toMatch(/test transport/);
    for (const name of PLACES) {
      await openPlace(name);
      const current = page.locator('nav [aria-current="page"]');
      await expect(current.textContent()).resolves.toContain(name);
      await h.screenshot(`shell-${name.toLowerCase()}`);
    }
  });

  it('is usable from the keyboard (Alt+number, arrow keys, Enter)', async () => {
    const { page } = h;
    await page.keyboard.press('Alt+3');
    await page.locator('#place-title', { hasText: 'Library' }).waitFor();
    await page.locator('nav button[data-place="library"]').focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.locator('#place-title', { hasText: 'Compare' }).waitFor();
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Space');
    await page.locator('#place-title', { hasText: 'Generate' }).waitFor();
    await page.keyboard.press('Alt+1');
    await page.locator('#place-title', { hasText: 'Compose' }).waitFor();
  });

  it('saves a constraint set, reloads the page, and opens it again from the library', async () => {
    const { page } = h;
    await openPlace('Compose');
    const body = { version: 1, description: 'made by the e2e test', constraints: [{ kind: 'attribute', field: 'eatType', value: 'pub' }, { kind: 'length', tokens: 18 }] };
    await page.getByTestId('compose-name').fill('e2e family pub');
    await page.getByTestId('compose-body').fill(JSON.stringify(body, null, 2));
    await page.getByTestId('compose-validate').click();
    await expect(page.getByTestId('compose-verdict').textContent()).resolves.toBe('Valid');
    await page.getByTestId('compose-save').click();
    await page.getByText('Saved “e2e family pub” as version 1').waitFor();
    await h.screenshot('compose-saved');

    // the set is in the real SQLite file
    const db = new Database(h.dbPath, { readonly: true });
    const row = db.prepare('SELECT name, version, description, body FROM constraint_sets WHERE name = ?').get('e2e family pub') as { name: string; version: number; description: string; body: string };
    db.close();
    expect(row).toMatchObject({ name: 'e2e family pub', version: 1, description: 'made by the e2e test' });
    expect(JSON.parse(row.body).constraints).toEqual([
      { kind: 'attribute', field: 'eatType', value: 'pub', weight: 1, enabled: true },
      { kind: 'length', tokens: 18, weight: 1, enabled: true },
    ]);

    // reload the whole page: the set comes back from the services, not from page state
    await page.reload();
    await page.getByRole('navigation', { name: 'Places' }).waitFor();
    await openPlace('Library');
    const libraryRow = page.locator('tr[data-set-name="e2e family pub"]');
    await libraryRow.waitFor();
    await expect(libraryRow.textContent()).resolves.toMatch(/v1.*attribute, length/s);
    await h.screenshot('library-with-set');
    await libraryRow.getByRole('button', { name: 'Open in Compose' }).click();
    await page.locator('#place-title', { hasText: 'Compose' }).waitFor();
    await expect(page.getByTestId('compose-name').inputValue()).resolves.toBe('e2e family pub');
    const loaded = JSON.parse(await page.getByTestId('compose-body').inputValue());
    expect(loaded.constraints[1]).toMatchObject({ kind: 'length', tokens: 18 });

    // saving again makes version 2
    await page.getByTestId('compose-save').click();
    await page.getByText('Saved “e2e family pub” as version 2').waitFor();
    await openPlace('Library');
    await expect(page.locator('tr[data-set-name="e2e family pub"]').textContent()).resolves.toMatch(/v2 \(2 versions\)/);
    // search narrows the list
    await page.getByTestId('library-search').fill('no such set');
    await page.getByTestId('library-empty').waitFor();
  });

  it('names the problem in an invalid set', async () => {
    const { page } = h;
    await openPlace('Compose');
    await page.getByTestId('compose-body').fill(JSON.stringify({ version: 1, constraints: [{ kind: 'rhyme' }] }));
    await page.getByTestId('compose-validate').click();
    await expect(page.getByTestId('compose-verdict').textContent()).resolves.toMatch(/constraints\[0\]\.kind.*unknown constraint kind "rhyme"/s);
    await page.getByTestId('compose-body').fill('{ not json');
    await page.getByTestId('compose-validate').click();
    await page.getByText(/Not valid JSON/).waitFor();
  });

  it('switches to the light theme and keeps it after a reload (persisted in settings)', async () => {
    const { page } = h;
    await openPlace('Settings');
    await page.getByTestId('theme-dark').check();
    await page.getByTestId('settings-save').click();
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
    await h.screenshot('settings-dark');
    await page.getByTestId('theme-light').check();
    await page.getByTestId('settings-save').click();
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'light');
    await page.reload();
    await page.getByRole('navigation', { name: 'Places' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('light');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(247, 248, 250)');
    await openPlace('Library');
    await h.screenshot('library-light');
    const db = new Database(h.dbPath, { readonly: true });
    expect(db.prepare("SELECT value FROM settings WHERE key = 'theme'").get()).toEqual({ value: '"light"' });
    db.close();
  });

  it('runs the same renderer through a preload-style window.dlm (the Electron code path)', async () => {
    // What src-main/electron/preload.ts exposes, stood in for by a script that forwards each named call over
    // the test transport; the page URL has no #ws=, so the renderer must pick window.dlm.
    const page = await h.context.newPage();
    await page.addInitScript(
      ({ url, names }) => {
        const ws = new WebSocket(url);
        const open = new Promise((resolve) => ws.addEventListener('open', resolve));
        const pending = new Map<number, (v: unknown) => void>();
        const listeners = new Set<(e: unknown) => void>();
        let next = 1;
        ws.addEventListener('message', (m) => {
          const f = JSON.parse(String(m.data));
          if (typeof f.event === 'string') listeners.forEach((l) => l({ name: f.event, payload: f.payload }));
          else pending.get(f.id)?.({ ok: f.ok, result: f.result, error: f.error });
        });
        const call = (method: string) => async (input: unknown) => {
          await open;
          const id = next++;
          return new Promise((resolve) => {
            pending.set(id, resolve);
            ws.send(JSON.stringify({ id, method, input }));
          });
        };
        (window as unknown as { dlm: unknown }).dlm = Object.freeze({
          calls: Object.freeze(Object.fromEntries(names.map((n) => [n, call(n)]))),
          subscribe(listener: (e: unknown) => void) {
            listeners.add(listener);
            return () => listeners.delete(listener);
          },
        });
      },
      { url: h.connectUrl, names: [...CALL_NAME_LIST] },
    );
    await page.goto(h.plainUrl);
    await page.getByRole('navigation', { name: 'Places' }).waitFor();
    await expect(page.getByTestId('status-transport').textContent()).resolves.toMatch(/Services\s+app/);
    await page.getByRole('navigation', { name: 'Places' }).getByRole('button', { name: /^Library/ }).click();
    await page.locator('tr[data-set-name="e2e family pub"]').waitFor();
    await page.close();
  });

  it('ran without console errors, page errors or CSP violations', () => {
    expect(h.problems).toEqual([]);
  });
});
