/**
 * README screenshots on the REAL bundles in models/ (e2e-masked, e2e-default), written to docs/screens/:
 *   generate-masked-live.png     e2e-masked, data-to-text (a pinned record), 4 samples, the model's default
 *                                sampler settings, the live view held mid-run with the masks filling in
 *   generate-masked-outputs.png  the finished outputs of that run with their constraint badges
 *   compare-families.png         that run beside a run of e2e-default (50 steps) on the same set, in Compare
 *   generate-masked-guided.png   e2e-masked guided by its classifiers on masked canvases (food = Italian), nothing
 *                                pinned, 4 samples, the outputs with their badges
 * Run with `npm run screens:readme` (build, then vitest.screens.config.ts); not part of `npm test`.
 * The outputs' texts are printed so a re-run on a new bundle can be read without opening the PNGs.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelSummary } from '../../src-main/api/contract';
import { ROOT, startHarness, type Harness } from './harness';
import { clearNotices, type FrameGate, gateServerFrames, openPlace, runFromGenerate, serviceClient } from './studio-helpers';

const OUT = join(ROOT, 'docs', 'screens');
const MASKED = 'e2e-masked';
const CONTINUOUS = 'e2e-default';
const SET_NAME = 'describe Alimentum (data-to-text)';
const RECORD = { name: 'Alimentum', area: 'city centre', familyFriendly: 'no' };
const SAMPLES = 4;
const SEED = 7;
const CONTINUOUS_STEPS = 50;
const MASK = '\u2591';
/** Hold the live view at the latest once sample #0 shows this many committed words with masks still in its text. */
const MID_WORDS = 10;

let h: Harness;
let client: Awaited<ReturnType<typeof serviceClient>>;
let masked: ModelSummary;
let maskedRun = 0;

/**
 * The page's socket goes through Playwright so the server's frames can be held mid-run (see MID_WORDS): the live
 * view stays there for the screenshot, then the held frames are sent on and the run finishes.
 */
/** When to hold the frames (gateServerFrames): armed for one run; `first` is its first count of masks left. */
const hold = { armed: false, first: 0 };
let gate: FrameGate;

async function shot(name: string): Promise<void> {
  await clearNotices(h);
  await h.page.mouse.move(0, 0);
  await h.page.screenshot({ path: join(OUT, `${name}.png`) });
}

/** Scroll the place so that this element's bottom is at the viewport's bottom (the shell scrolls, not the page). */
async function scrollToBottomOf(selector: string): Promise<void> {
  await h.page.locator(selector).last().evaluate((el) => el.scrollIntoView({ block: 'end' }));
  await h.page.evaluate(() => window.scrollTo(0, 0));
}

async function theme(t: 'dark' | 'light'): Promise<void> {
  await client.call('settings.set', { theme: t });
  await h.page.reload();
  await h.page.getByRole('navigation', { name: 'Places' }).waitFor();
  await h.page.waitForFunction((x) => document.documentElement.dataset.theme === x, t);
  await h.page.waitForFunction(() => !document.querySelector('[data-testid="status-device"]')?.textContent?.includes('probing'), undefined, { timeout: 120_000 });
}

async function selectModel(id: string, family: 'masked' | 'continuous'): Promise<void> {
  await openPlace(h, 'Generate');
  await h.page.getByTestId('generate-model').selectOption(id);
  await h.page.locator(`[data-testid="model-family"][data-family="${family}"]`).waitFor();
}

const texts = () => h.page.locator('[data-testid="output-card"]').evaluateAll((els) => els.map((e) => (e.textContent ?? '').replace(/\s+/g, ' ').trim()));

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  h = await startHarness();
  client = await serviceClient(h);
  const models = await client.call('models.list');
  const find = (id: string) => {
    const m = models.find((x) => x.id === id);
    if (!m || m.error) throw new Error(`models/${id} is ${m ? `not usable: ${m.error}` : 'not installed'}; these screenshots need the real bundle`);
    return m;
  };
  masked = find(MASKED);
  expect(masked.kind).toBe('masked-diffusion');
  expect(find(CONTINUOUS).kind).toBe('continuous-embedding-diffusion');
  gate = await gateServerFrames(h.page, (f) => {
    if (!hold.armed) return false;
    const payload = f.payload as { batchStart?: number; masked?: number[][]; canvases?: { text: string }[] } | undefined;
    const p = f.event === 'run.progress' && payload?.batchStart === 0 ? payload : undefined;
    const text = p?.canvases?.[0]?.text;
    const left = p?.masked?.[0]?.length;
    if (text === undefined || left === undefined) return false;
    if (!hold.first) hold.first = left;
    // mid-sentence in sample #0: a mask between committed words (a token committed out of order), else
    // MID_WORDS words committed with masks still in the text, else half its masks left
    const words = text.split(MASK).join(' ').split(/\s+/).filter(Boolean).length;
    const gap = text.replace(/[\u2591\s]+$/, '').includes(MASK);
    if ((gap && words >= 3) || (text.includes(MASK) && words >= MID_WORDS) || (left > 0 && left <= hold.first / 2)) {
      hold.armed = false;
      return true;
    }
    return false;
  });
  await h.page.goto(h.pageUrl);
  await h.page.getByRole('navigation', { name: 'Places' }).waitFor();
});
afterAll(async () => {
  gate?.flush();
  client?.close();
  await h?.close();
});

describe('README screenshots on the real bundles', () => {
  it('e2e-masked, data-to-text: the live view mid-run, then the outputs with their badges', async () => {
    const { page } = h;
    await theme('dark');
    await selectModel(MASKED, 'masked');

    // Compose: one "Record to describe" block holding the record (the model's record schema fills the choices)
    await openPlace(h, 'Compose');
    await page.getByTestId('compose-name').fill(SET_NAME);
    await page.getByTestId('compose-description').fill('Data-to-text: the record is pinned, the model writes the sentence.');
    await page.getByTestId('add-record').click();
    const block = page.locator('[data-block-index="0"]');
    // the new block's default record: keep name and area (new values), remove the rest, add familyFriendly
    const rows = async () => block.locator('tbody tr').count();
    for (const field of ['eatType', 'food', 'priceRange', 'customer rating', 'near', 'familyFriendly']) {
      const remove = block.getByRole('button', { name: `Remove ${field}`, exact: true });
      if (await remove.count()) await remove.click();
    }
    await block.getByLabel('Value of name', { exact: true }).fill(RECORD.name);
    await block.getByLabel('Value of name', { exact: true }).press('Tab');
    await block.getByLabel('Value of area', { exact: true }).fill(RECORD.area);
    await block.getByLabel('Value of area', { exact: true }).press('Tab');
    await block.getByRole('button', { name: '+ field' }).click();
    await block.getByLabel(`Record field ${await rows()}`, { exact: true }).selectOption('familyFriendly');
    await block.getByLabel('Value of familyFriendly', { exact: true }).fill(RECORD.familyFriendly);
    await block.getByLabel('Value of familyFriendly', { exact: true }).press('Tab');
    // the compiler's verdict on the record: held (pinned), not pending or refused
    await page.locator('[data-block-index="0"] [data-testid="block-verdict"]:is([data-status="held"], [data-status="hard"])').waitFor();
    const source = page.getByRole('button', { name: /Source \(JSON/ });
    if ((await source.getAttribute('aria-expanded')) !== 'true') await source.click();
    const body = JSON.parse(await page.getByTestId('compose-body').inputValue()) as { constraints: { kind: string; value: unknown }[] };
    expect(body.constraints).toEqual([expect.objectContaining({ kind: 'record', value: RECORD })]);
    await page.getByTestId('compose-save').click();
    await page.getByText(`Saved “${SET_NAME}” as version 1`).waitFor();

    // Generate: the model's default sampler settings, 4 samples
    await openPlace(h, 'Generate');
    await page.getByTestId('masked-settings').waitFor();
    await page.getByTestId('masked-reset').click();
    const d = masked.samplerDefaults!;
    expect(await page.getByTestId('generate-steps').inputValue()).toBe(String(d.steps));
    expect(await page.getByTestId('generate-block-length').inputValue()).toBe(String(d.block_length));
    expect(await page.getByTestId('generate-confidence').inputValue()).toBe(d.confidence);
    await page.getByTestId('generate-samples').fill(String(SAMPLES));
    await page.getByTestId('generate-seed').fill(String(SEED));

    const [previous] = await client.call('runs.list', { limit: 1 });
    maskedRun = (previous?.id ?? 0) + 1;
    const live = page.getByTestId('live-view');
    hold.first = 0;
    hold.armed = true;
    try {
      await page.getByTestId('generate-run').click();
      await page.waitForFunction(() => document.querySelector('[data-testid="live-view"]')?.getAttribute('data-family') === 'masked', undefined, { timeout: 60_000 });
      await expect.poll(() => gate.holding, { timeout: 120_000 }).toBe(true);
      // let the page draw the last frame it was sent
      await page.waitForTimeout(300);
      const box = live.getByLabel('record');
      if (!(await box.isChecked())) await box.check();
      // a pinned run draws each output's candidates (the bundle's pinned_candidates): the live view shows the batch's
      // canvases, at least one per output
      expect(await live.getByTestId('live-sample').count()).toBeGreaterThanOrEqual(SAMPLES);
      expect(await live.getByTestId('live-mask').count()).toBeGreaterThan(0);
      await page.locator('.runbar').evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await page.evaluate(() => window.scrollTo(0, 0));
      await shot('generate-masked-live');
    } finally {
      hold.armed = false;
      gate.flush();
    }
    await page.locator('[data-testid="generate-status"][data-status="completed"]', { hasText: `Run #${maskedRun} ·` }).waitFor({ timeout: 300_000 });
    expect(await page.getByTestId('output-card').count()).toBe(SAMPLES);
    expect(await live.getByTestId('live-mask').count()).toBe(0);
    // the finished live view above the four output cards
    await scrollToBottomOf('[data-testid="output-card"]');
    console.log(`e2e-masked run #${maskedRun}:\n  ${(await texts()).join('\n  ')}`);
    await shot('generate-masked-outputs');
  });

  it(`Compare: e2e-default (${CONTINUOUS_STEPS} steps) and e2e-masked on the same set, side by side`, async () => {
    const { page } = h;
    await theme('light');
    await selectModel(CONTINUOUS, 'continuous');
    await page.getByTestId('generate-strength').waitFor();
    // the reload for the theme started a new draft: open the saved set again
    await page.getByTestId('generate-set-select').selectOption({ label: `${SET_NAME} (v1)` });
    await page.getByTestId('generate-set-name').filter({ hasText: SET_NAME }).waitFor();
    await page.getByTestId('generate-steps').fill(String(CONTINUOUS_STEPS));
    await page.getByTestId('generate-samples').fill(String(SAMPLES));
    await page.getByTestId('generate-seed').fill(String(SEED));
    const continuousRun = await runFromGenerate(h, client, 300_000);
    expect(await page.locator('[data-testid="generate-status"]').getAttribute('data-status')).toBe('completed');
    console.log(`e2e-default run #${continuousRun}:\n  ${(await texts()).join('\n  ')}`);

    await openPlace(h, 'Compare');
    await page.getByTestId('compare-table').waitFor();
    const cols = await page.getByTestId('compare-col').evaluateAll((els) => els.map((e) => ({ text: e.textContent ?? '', family: e.getAttribute('data-family') })));
    expect(cols.map((c) => Number(/#(\d+)/.exec(c.text)![1]))).toEqual([maskedRun, continuousRun]);
    expect(cols.map((c) => c.family)).toEqual(['masked', 'continuous']);
    await page.getByRole('heading', { name: 'Best outputs' }).waitFor();
    expect(await page.getByTestId('compare-out-family').evaluateAll((els) => els.map((e) => e.getAttribute('data-family')))).toEqual(['masked', 'continuous']);
    // the end of the place: recipe rows, timings, quality and each run's best outputs side by side
    await scrollToBottomOf('.outs');
    await shot('compare-families');
    expect(h.problems).toEqual([]);
  });

  it('e2e-masked guided: a record value steers unconditional samples (classifiers on masked canvases)', async () => {
    const { page } = h;
    await theme('dark');
    await selectModel(MASKED, 'masked');
    await openPlace(h, 'Compose');
    await page.getByTestId('compose-new').click();
    await page.getByTestId('compose-name').fill('Italian food (guided)');
    await page.getByTestId('add-attribute').click();
    const attr = page.locator('[data-block-index="0"]');
    await attr.getByTestId('attribute-field').selectOption('food');
    await attr.getByTestId('attribute-value').selectOption('Italian');
    await page.locator('[data-block-index="0"] [data-testid="block-verdict"][data-status="soft"] [data-testid="verdict-how"]').waitFor();
    await page.getByTestId('compose-save').click();
    await page.getByText('Saved “Italian food (guided)” as version 1').waitFor();
    await openPlace(h, 'Generate');
    await page.getByTestId('masked-reset').click();
    expect(await page.getByTestId('masked-guidance').isChecked()).toBe(true);
    await page.getByTestId('generate-samples').fill(String(SAMPLES));
    await page.getByTestId('generate-seed').fill(String(SEED));
    const run = await runFromGenerate(h, client, 300_000);
    const detail = await client.call('runs.get', { runId: run });
    const held = detail.outputs.map((o) => o.constraints.map((c) => c.satisfied));
    console.log(`e2e-masked guided run #${run}:\n  ${(await texts()).join('\n  ')}\n  satisfied: ${JSON.stringify(held)}`);
    await scrollToBottomOf('[data-testid="output-card"]');
    await shot('generate-masked-guided');
    expect(h.problems).toEqual([]);
  });
});
