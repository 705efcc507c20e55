/**
 * Two runs of one set compared side by side; a run exported as JSONL, Markdown and CSV (files written by the
 * services, one downloaded by the browser), its recipe re-imported and run again with identical outputs; a run
 * opened and deleted (with confirmation) in the library; screenshots of every place in both themes.
 */
import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunDetail } from '../../src-main/api/contract';
import { startHarness, type Harness } from './harness';
import { clearNotices, openPlace, openStudio, runFromGenerate } from './studio-helpers';

let h: Harness;
let client: Awaited<ReturnType<typeof openStudio>>;
let runA: RunDetail;
let runB: RunDetail;
let jsonl = '';
let mdFile = '';

async function finished(runId: number): Promise<RunDetail> {
  for (let i = 0; i < 1200; i++) {
    const d = await client.call('runs.get', { runId });
    if (d.run.status !== 'queued' && d.run.status !== 'running') return d;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`run ${runId} did not finish`);
}

beforeAll(async () => {
  h = await startHarness();
  client = await openStudio(h);
  const set = await client.call('constraintSets.save', {
    name: 'e2e compare',
    body: {
      version: 1,
      description: 'two seeds, two guidance strengths',
      constraints: [
        { kind: 'json-schema', schema: { type: 'object', properties: { eatType: { enum: ['pub', 'restaurant'] } }, required: ['eatType'], additionalProperties: false } },
        { kind: 'length', tokens: 14 },
        { kind: 'sentiment', label: 'positive', weight: 2 },
      ],
    },
  });
  const models = await client.call('models.list');
  const model = models.find((m) => !m.error)!.id;
  const a = await client.call('runs.start', { model, device: 'cpu', constraintSetId: set.id, sampler: { steps: 10, samples: 3, seed: 1 } });
  const b = await client.call('runs.start', { model, device: 'cpu', constraintSetId: set.id, sampler: { steps: 10, samples: 3, seed: 2, guidance: { strength: 3 } } });
  runA = await finished(a.runId);
  runB = await finished(b.runId);
  expect([runA.run.status, runB.run.status]).toEqual(['completed', 'completed']);
});
afterAll(async () => {
  client?.close();
  await h?.close();
});

describe('compare, export, import, library', () => {
  it('compares two runs: what differs, timings and satisfaction rate per constraint', async () => {
    const { page } = h;
    await page.reload();
    await openPlace(h, 'Compare');
    await page.getByTestId('compare-table').waitFor();
    await expect(page.getByTestId('compare-col').allTextContents()).resolves.toEqual([`Run #${runA.run.id}`, `Run #${runB.run.id}`].map((t) => expect.stringContaining(t)) as never);
    const differing = await page.locator('tr.differs th').allTextContents();
    expect(differing.map((t) => t.replace('differs', '').trim()).sort()).toEqual(['Guidance', 'Seed']);
    // one row per constraint; each cell is the services' own satisfaction rate (or says it was not scored)
    const rows = page.getByTestId('compare-rate');
    await expect(rows.count()).resolves.toBe(3);
    for (let i = 0; i < 3; i++) {
      const cells = await rows.nth(i).getByTestId('compare-rate-cell').allTextContents();
      [runA, runB].forEach((d, k) => {
        const scores = d.outputs.map((o) => o.constraints.find((c) => c.index === i)).filter((c) => c !== undefined);
        const want = scores.length ? `${Math.round((scores.filter((c) => c.satisfied).length / scores.length) * 100)}%` : 'not scored';
        expect(cells[k]).toContain(want);
      });
    }
    // timings come from the run records
    const total = await page.locator('tr', { has: page.locator('th', { hasText: /^Total$/ }) }).locator('td').allTextContents();
    expect(total).toHaveLength(2);
    expect(total.every((t) => /\d/.test(t))).toBe(true);
    await clearNotices(h);
    await h.screenshot('compare');
  });

  it('exports a run as JSONL and Markdown files and a CSV download, each with the recipe', async () => {
    const { page } = h;
    await openPlace(h, 'Export');
    // pick run A only
    await page.locator(`[data-testid="export-pick"][data-run-id="${runB.run.id}"]`).uncheck();
    await page.locator(`[data-testid="export-pick"][data-run-id="${runA.run.id}"]`).check();
    const panel = page.getByTestId('export-panel');
    await panel.getByTestId('export-format-jsonl').check();
    await panel.getByTestId('export-filename').fill('e2e-run-a');
    await panel.getByTestId('export-save').click();
    const jsonlPath = (await panel.getByTestId('export-path').textContent())!;
    expect(jsonlPath).toMatch(/e2e-run-a\.jsonl$/);
    jsonl = readFileSync(jsonlPath, 'utf8');
    expect(jsonl).toContain('"dlm-studio-recipe/1"');
    for (const o of runA.outputs) expect(jsonl).toContain(JSON.stringify(o.text));

    await panel.getByTestId('export-format-markdown').check();
    await panel.getByTestId('export-save').click();
    await page.getByTestId('export-path').filter({ hasText: /\.md$/ }).waitFor();
    const mdPath = (await panel.getByTestId('export-path').textContent())!;
    mdFile = mdPath;
    expect(existsSync(mdPath)).toBe(true);
    const md = readFileSync(mdPath, 'utf8');
    expect(md).toContain('dlm-studio-recipe');
    for (const o of runA.outputs) if (o.text.trim()) expect(md).toContain(o.text.trim().slice(0, 20));

    await panel.getByTestId('export-format-csv').check();
    const [download] = await Promise.all([page.waitForEvent('download'), panel.getByTestId('export-download').click()]);
    expect(download.suggestedFilename()).toBe('e2e-run-a.csv');
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.split('\n')[0]).toContain('run_id');
    expect(csv).toContain('dlm-studio-recipe/1');
    await clearNotices(h);
    await h.screenshot('export');
  });

  it('reads the recipe back from the Markdown file chosen with the file input', async () => {
    const { page } = h;
    await page.getByTestId('import-file').setInputFiles(mdFile);
    await page.getByText('read as markdown').waitFor();
    expect(await page.getByTestId('import-recipes').textContent()).toMatch(new RegExp(`e2e compare.*from run #${runA.run.id}.*seed 1`, 's'));
    expect(await page.getByTestId('import-content').inputValue()).toContain('dlm-studio-recipe');
    // something that is not an export is refused with a reason
    await page.getByTestId('import-content').fill('hello, this is not an export');
    await page.getByTestId('import-run').click();
    await page.getByTestId('import-error').waitFor();
    expect(await page.getByTestId('import-error').textContent()).toMatch(/not a DLM Studio export/);
  });

  it('re-imports the JSONL recipe and reproduces the run exactly', async () => {
    const { page } = h;
    await page.getByTestId('import-content').fill(jsonl);
    await page.getByTestId('import-run').click();
    const recipes = page.getByTestId('import-recipes');
    await recipes.waitFor();
    expect(await recipes.textContent()).toMatch(/e2e compare.*seed 1/s);
    await clearNotices(h);
    await h.screenshot('export-import');
    await page.getByTestId('import-load').click();
    await page.locator('#place-title', { hasText: 'Generate' }).waitFor();
    expect(await page.getByTestId('generate-set-name').textContent()).toBe('e2e compare');
    expect(await page.getByTestId('generate-steps').inputValue()).toBe('10');
    expect(await page.getByTestId('generate-seed').inputValue()).toBe('1');
    const runId = await runFromGenerate(h, client);
    expect(runId).toBeGreaterThan(runB.run.id);
    const again = await client.call('runs.get', { runId });
    expect(again.run.status).toBe('completed');
    expect(again.run.recipe.constraintSet.body.constraints).toEqual(runA.run.recipe.constraintSet.body.constraints);
    expect([again.run.recipe.seed, again.run.recipe.steps, again.run.recipe.samples]).toEqual([1, 10, 3]);
    expect(again.outputs.map((o) => o.text)).toEqual(runA.outputs.map((o) => o.text));
  });

  it('opens a run in the library with its recipe and outputs, and deletes it after confirmation', async () => {
    const { page } = h;
    await openPlace(h, 'Library');
    await page.getByTestId('library-search').fill('e2e compare');
    await page.locator(`tr[data-run-id="${runB.run.id}"]`).waitFor();
    await page.getByRole('button', { name: `Open run ${runB.run.id}` }).click();
    const detail = page.getByTestId('run-detail');
    await detail.waitFor();
    expect(await detail.textContent()).toMatch(new RegExp(`Run #${runB.run.id}.*e2e compare v1.*seed 2.*strength 3`, 's'));
    await expect(detail.getByTestId('output-card').count()).resolves.toBe(3);
    await clearNotices(h);
    await h.screenshot('library');
    await detail.getByTestId('run-delete').click();
    await page.getByTestId('confirm-dialog').getByText(`Delete run #${runB.run.id}?`).waitFor();
    // Escape cancels: nothing is deleted
    await page.keyboard.press('Escape');
    await expect(page.locator(`tr[data-run-id="${runB.run.id}"]`).count()).resolves.toBe(1);
    await detail.getByTestId('run-delete').click();
    await page.getByTestId('confirm-yes').click();
    await page.getByText(`Deleted run #${runB.run.id}`).waitFor();
    await page.locator(`tr[data-run-id="${runB.run.id}"]`).waitFor({ state: 'detached' });
    await expect(page.getByTestId('run-detail').count()).resolves.toBe(0);
    const db = new Database(h.dbPath, { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n FROM runs WHERE id = ?').get(runB.run.id)).toEqual({ n: 0 });
    expect(db.prepare('SELECT COUNT(*) AS n FROM outputs WHERE run_id = ?').get(runB.run.id)).toEqual({ n: 0 });
    db.close();
  });

  it('screenshots every place in the dark and the light theme', async () => {
    const { page } = h;
    const places = ['Compose', 'Generate', 'Library', 'Compare', 'Export', 'Settings'];
    for (const theme of ['dark', 'light'] as const) {
      await openPlace(h, 'Settings');
      await page.getByTestId(`theme-${theme}`).check();
      await page.getByTestId('settings-save').click();
      await page.waitForFunction((t) => document.documentElement.dataset.theme === t, theme);
      for (const name of places) {
        await openPlace(h, name);
        if (name === 'Compose') {
          await page.getByTestId('compose-open-select').selectOption({ label: 'e2e compare (v1)' });
          await page.getByTestId('compose-open').click();
          await page.locator('[data-block-index="2"]').waitFor();
        }
        if (name === 'Library') {
          await page.getByRole('button', { name: `Open run ${runA.run.id}` }).click();
          await page.getByTestId('run-detail').waitFor();
        }
        await page.waitForTimeout(150);
        await clearNotices(h);
    await h.screenshot(`place-${name.toLowerCase()}-${theme}`);
      }
    }
    expect(h.problems).toEqual([]);
  });
});
