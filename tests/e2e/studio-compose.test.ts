/**
 * Compose in depth: every block kind from the palette (keyboard only), pickers fed by the model's record
 * schema, reorder / switch off / remove, the JSON source kept in step, and presets saved in Generate and
 * used from the Library.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness';
import { clearNotices, openPlace, openStudio } from './studio-helpers';

let h: Harness;
let client: Awaited<ReturnType<typeof openStudio>>;
beforeAll(async () => {
  h = await startHarness();
  client = await openStudio(h);
});
afterAll(async () => {
  client?.close();
  await h?.close();
});

const KINDS = ['json-schema', 'pos', 'spans', 'attribute', 'length', 'sentiment', 'infill', 'record', 'text', 'regex', 'words'];

describe('compose blocks', () => {
  it('adds every kind of block from the keyboard, and the compiler accepts each default', async () => {
    const { page } = h;
    await openPlace(h, 'Compose');
    for (const kind of KINDS) {
      await page.getByTestId(`add-${kind}`).focus();
      await page.keyboard.press('Enter');
    }
    await expect(page.locator('[data-block-index]').count()).resolves.toBe(KINDS.length);
    expect(await page.locator('[data-block-index]').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')))).toEqual(KINDS);
    // every block gets its verdict from the compiler; none is refused
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="block-verdict"]:not([data-status="pending"])').length === n, KINDS.length);
    const statuses = await page.getByTestId('block-verdict').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
    expect(statuses).toEqual(['hard', 'soft', 'soft', 'soft', 'soft', 'soft', 'hard', 'held', 'held', 'hard', 'hard']);
    await clearNotices(h);
    // the shell scrolls inside <main>: a tall window shows the whole stack of blocks
    await page.setViewportSize({ width: 1280, height: 3000 });
    await h.screenshot('compose-all-blocks');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('offers the model record fields and values in the attribute and record pickers', async () => {
    const { page } = h;
    const models = await client.call('models.list');
    const fields = models.find((m) => !m.error)!.recordFields;
    const attr = page.locator('[data-kind="attribute"]');
    const fieldOptions = await attr.getByTestId('attribute-field').locator('option').allTextContents();
    expect(fieldOptions).toEqual(Object.keys(fields));
    await attr.getByTestId('attribute-field').selectOption('food');
    const values = await attr.getByTestId('attribute-value').locator('option').allTextContents();
    expect(values).toEqual(fields.food);
    await attr.getByTestId('attribute-value').selectOption(fields.food!.at(-1)!);
    // the JSON source follows the blocks
    await page.waitForFunction((v) => document.querySelector<HTMLTextAreaElement>('[data-testid="compose-body"]')!.value.includes(`"value": "${v}"`), fields.food!.at(-1)!);
  });

  it('reorders, switches off and removes blocks, and saves exactly what is shown', async () => {
    const { page } = h;
    // keep json-schema, pos, attribute, length; remove the rest
    for (const kind of ['spans', 'sentiment', 'infill', 'record', 'text', 'regex', 'words']) {
      const i = await page.locator(`[data-kind="${kind}"]`).getAttribute('data-block-index');
      await page.getByRole('button', { name: `Remove block ${Number(i) + 1}`, exact: true }).click();
    }
    expect(await page.locator('[data-block-index]').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')))).toEqual(['json-schema', 'pos', 'attribute', 'length']);
    await page.getByRole('button', { name: 'Move block 4 up', exact: true }).click();
    // Alt+Down inside block 1 moves it down, keeping the focus in its control
    await page.getByRole('spinbutton', { name: 'Block 1 weight' }).focus();
    await page.keyboard.press('Alt+ArrowDown');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Block 2 weight');
    expect(await page.locator('[data-block-index]').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')))).toEqual(['pos', 'json-schema', 'length', 'attribute']);
    await page.locator('[data-kind="length"]').getByTestId('block-enabled').uncheck();
    await page.locator('[data-kind="length"] [data-testid="block-verdict"][data-status="disabled"]').waitFor();
    await page.getByRole('spinbutton', { name: 'Block 4 weight' }).fill('2.5');
    await page.getByTestId('compose-name').fill('e2e reordered');
    await page.keyboard.press('Control+s');
    await page.getByText('Saved “e2e reordered” as version 1').waitFor();
    const saved = await client.call('constraintSets.get', { name: 'e2e reordered' });
    expect(saved.body.constraints.map((c) => [c.kind, c.enabled, c.weight])).toEqual([
      ['pos', true, 1],
      ['json-schema', true, 1],
      ['length', false, 1],
      ['attribute', true, 2.5],
    ]);
    expect(saved.body.constraints[3]).toMatchObject({ field: 'food' });
    // and the source panel shows the same set
    const source = JSON.parse(await page.getByTestId('compose-body').inputValue());
    expect(source.constraints).toEqual(saved.body.constraints);

    // unsaved edits are not thrown away without asking
    await page.getByRole('spinbutton', { name: 'Block 1 weight' }).fill('3');
    await page.getByTestId('compose-new').click();
    await page.getByText('Discard unsaved changes?').waitFor();
    await page.keyboard.press('Escape');
    await expect(page.locator('[data-block-index]').count()).resolves.toBe(4);
    await page.getByTestId('compose-new').click();
    await page.getByTestId('confirm-yes').click();
    await expect(page.locator('[data-block-index]').count()).resolves.toBe(0);
    expect(await page.getByTestId('compose-name').inputValue()).toBe('');
    await page.getByTestId('compose-open-select').selectOption({ label: 'e2e reordered (v1)' });
    await page.getByTestId('compose-open').click();
    await page.locator('[data-block-index="3"]').waitFor();
  });

  it('keeps every saved version and opens an older one from the library', async () => {
    const { page } = h;
    await openPlace(h, 'Compose');
    await page.getByRole('spinbutton', { name: 'Block 4 weight' }).fill('7');
    await page.keyboard.press('Control+s');
    await page.getByText('Saved “e2e reordered” as version 2').waitFor();
    await openPlace(h, 'Library');
    const row = page.locator('tr[data-set-name="e2e reordered"]');
    await row.getByRole('button', { name: 'v2 (2 versions)' }).click();
    await page.getByTestId('set-version').nth(1).waitFor();
    await expect(page.getByTestId('set-version').count()).resolves.toBe(2);
    await page.getByRole('button', { name: 'Open version 1 of e2e reordered in Compose' }).click();
    await page.locator('#place-title', { hasText: 'Compose' }).waitFor();
    await page.getByTestId('compose-origin').filter({ hasText: 'e2e reordered v1 · saved' }).waitFor();
    expect(await page.getByRole('spinbutton', { name: 'Block 4 weight' }).inputValue()).toBe('2.5');
  });

  it('saves sampler settings as a preset in Generate and uses it from the Library', async () => {
    const { page } = h;
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-steps').fill('33');
    await page.getByTestId('generate-seed').fill('4242');
    await page.getByRole('textbox', { name: 'Preset name' }).fill('e2e quick');
    await page.getByRole('textbox', { name: 'Preset name' }).press('Enter');
    await page.getByText('Saved preset “e2e quick”').waitFor();
    expect((await client.call('presets.list', {})).find((p) => p.name === 'e2e quick')?.settings).toMatchObject({ steps: 33, seed: 4242 });
    await page.getByTestId('generate-steps').fill('5');
    await openPlace(h, 'Library');
    const row = page.getByTestId('library-presets').locator('tr', { hasText: 'e2e quick' });
    expect(await row.textContent()).toMatch(/33 steps.*seed 4242/);
    await row.getByRole('button', { name: 'Use in Generate' }).click();
    await page.locator('#place-title', { hasText: 'Generate' }).waitFor();
    expect(await page.getByTestId('generate-steps').inputValue()).toBe('33');
    expect(await page.getByTestId('generate-seed').inputValue()).toBe('4242');
    expect(h.problems).toEqual([]);
  });
});

describe('compose examples', () => {
  it('starts from each example set, and the compiler accepts all of them', async () => {
    const { page } = h;
    await openPlace(h, 'Compose');
    const examples = page.getByTestId('compose-example');
    for (let i = 0; i < 4; i++) {
      await page.getByTestId('compose-new').click();
      if (await page.getByText('Discard unsaved changes?').count()) await page.getByTestId('confirm-yes').click();
      await examples.nth(i).click();
      await page.locator('[data-block-index="1"]').waitFor();
      await page.getByTestId('compose-summary').waitFor();
      expect(await page.getByTestId('compose-summary').textContent()).toMatch(/Ready to generate/);
      const statuses = await page.getByTestId('block-verdict').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
      expect(statuses.every((s) => s === 'hard' || s === 'held' || s === 'soft')).toBe(true);
    }
    expect(h.problems).toEqual([]);
  });
});

describe('compose errors', () => {
  it('names an invalid field on its block, in Generate, and in the refusal to run', async () => {
    const { page } = h;
    await openPlace(h, 'Compose');
    await page.getByTestId('compose-new').click();
    if (await page.getByText('Discard unsaved changes?').count()) await page.getByTestId('confirm-yes').click();
    await page.getByTestId('compose-body').fill(JSON.stringify({ version: 1, name: 'broken', constraints: [{ kind: 'length', tokens: 0 }] }));
    const verdict = page.locator('[data-block-index="0"] [data-testid="block-verdict"][data-status="invalid"]');
    await verdict.waitFor();
    expect(await verdict.textContent()).toMatch(/tokens.*(>=\s*1|too small|at least)/i);
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-set-check').filter({ hasText: '1 problem' }).waitFor();
    await page.getByTestId('generate-run').click();
    const notice = page.locator('.notice.error');
    await notice.waitFor();
    expect(await notice.textContent()).toMatch(/constraints\[0\]\.tokens/);
    expect(await page.getByTestId('generate-status').count()).toBe(0);
  });
});
