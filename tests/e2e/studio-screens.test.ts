/**
 * Curated screenshots for the README (test-results/screens/readme-*.png): the studio in use rather than
 * empty. Each also checks what it shows, so a broken screen fails here too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness';
import { clearNotices, openPlace, openStudio } from './studio-helpers';

let h: Harness;
let client: Awaited<ReturnType<typeof openStudio>>;
let model = '';
beforeAll(async () => {
  h = await startHarness();
  client = await openStudio(h);
  model = (await client.call('models.list')).find((m) => !m.error)!.id;
});
afterAll(async () => {
  client?.close();
  await h?.close();
});

async function theme(t: 'dark' | 'light') {
  await client.call('settings.set', { theme: t });
  await h.page.reload();
  await h.page.getByRole('navigation', { name: 'Places' }).waitFor();
  await h.page.waitForFunction((x) => document.documentElement.dataset.theme === x, t);
  await h.page.waitForFunction(() => !document.querySelector('[data-testid="status-device"]')?.textContent?.includes('probing'), undefined, { timeout: 120_000 });
}

describe('README screenshots', () => {
  it('Compose: a JSON schema, a POS template from an example sentence, an attribute (light)', async () => {
    const { page } = h;
    await theme('light');
    await openPlace(h, 'Compose');
    await page.getByTestId('compose-name').fill('family pub, by the river');
    await page.getByTestId('compose-description').fill('structured record + sentence shape + what to mention');
    await page.getByTestId('add-json-schema').click();
    await page.getByTestId('schema-editor').fill(
      JSON.stringify({ type: 'object', properties: { eatType: { enum: ['pub', 'coffee shop'] }, area: { const: 'riverside' }, familyFriendly: { enum: ['yes'] } }, required: ['eatType', 'area'], additionalProperties: false }, null, 2),
    );
    await page.getByTestId('add-pos').click();
    await page.getByTestId('pos-example').fill('The Punter is a family friendly pub by the river.');
    await page.getByTestId('pos-tag').click();
    await page.locator('[data-testid="pos-tags"] li select').nth(9).waitFor();
    await page.locator('[data-testid="pos-tags"] li').nth(1).getByRole('button', { name: 'any' }).click();
    await page.getByTestId('add-attribute').click();
    await page.getByTestId('attribute-field').selectOption('area');
    await page.getByTestId('attribute-value').selectOption('riverside');
    // every block has its verdict from the latest check
    await page.waitForFunction(() => {
      const v = [...document.querySelectorAll('[data-testid="block-verdict"]')].map((e) => e.getAttribute('data-status'));
      return v.length === 3 && v.every((x) => x !== 'pending');
    });
    await page.getByTestId('compose-summary').filter({ hasText: 'Ready to generate' }).waitFor();
    await page.getByRole('button', { name: /Source \(JSON/ }).click();
    await clearNotices(h);
    await page.mouse.move(0, 0);
    await h.screenshot('readme-compose-light');
    await page.getByTestId('compose-save').click();
    await page.getByText('Saved “family pub, by the river” as version 1').waitFor();
  });

  it('Generate: outputs of the first batch as cards while the live view settles the second (dark)', { timeout: 400_000 }, async () => {
    const { page } = h;
    await theme('dark');
    await openPlace(h, 'Compose');
    await page.getByTestId('compose-open-select').selectOption({ label: 'family pub, by the river (v1)' });
    await page.getByTestId('compose-open').click();
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-steps').fill('200');
    await page.getByTestId('generate-samples').fill('10');
    // one sample per output (the guided set's default would draw each output's candidates in the batches)
    await page.getByTestId('generate-candidates').fill('1');
    await page.getByTestId('generate-run').click();
    // second batch: eight cards in, the live view showing samples 8 and 9 part-way
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid="output-card"]').length >= 8 && Number(document.querySelector('[data-testid="live-view"]')?.getAttribute('data-step')) >= 40,
      undefined,
      { timeout: 180_000, polling: 50 },
    );
    await page.getByTestId('live-view').getByText('record').click();
    await page.locator('.runbar').evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await clearNotices(h);
    await h.screenshot('readme-generate-dark');
    expect(await page.getByTestId('live-sample').count()).toBe(2);
    await page.locator('[data-testid="generate-status"][data-status="completed"]').waitFor({ timeout: 180_000 });
    const [latest] = await client.call('runs.list', { limit: 1 });
    console.log(`screens: 10 samples x 200 steps on ${latest!.recipe.device.active}: ${latest!.timings?.perStepMs.toFixed(1)} ms/step, ${((latest!.timings?.totalMs ?? 0) / 1000).toFixed(1)} s`);
  });

  it('Compare and Library (dark, light)', { timeout: 400_000 }, async () => {
    const { page } = h;
    const set = (await client.call('constraintSets.list', { query: 'family pub' }))[0]!;
    const run = await client.call('runs.start', { model, constraintSetId: set.id, sampler: { steps: 60, samples: 10, seed: 5, guidance: { strength: 4 } } });
    for (let i = 0; i < 3600; i++) {
      const d = await client.call('runs.get', { runId: run.runId, outputs: false });
      if (d.run.status !== 'running' && d.run.status !== 'queued') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await openPlace(h, 'Compare');
    await page.getByTestId('compare-table').waitFor();
    await expect(page.getByTestId('compare-col').count()).resolves.toBe(2);
    await page.locator('details.picker').evaluate((el) => ((el as HTMLDetailsElement).open = false));
    // start the picture at the rows that differ, so timings and rates per constraint are in it
    await page.locator('tr.differs').first().evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await clearNotices(h);
    await h.screenshot('readme-compare-dark');

    await theme('light');
    await openPlace(h, 'Library');
    await page.getByRole('button', { name: `Open run ${run.runId}` }).click();
    await page.getByTestId('run-detail').waitFor();
    await clearNotices(h);
    await h.screenshot('readme-library-light');
    expect(h.problems).toEqual([]);
  });
});
