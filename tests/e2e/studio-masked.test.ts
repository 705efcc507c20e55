/**
 * The masked (absorbing-state) family in the studio, on the real services with the tiny masked test bundle
 * (tests/fixtures/masked-tiny, made by its make_fixture.py) beside the continuous model the other e2e tests use:
 * the family badge in the model picker, the masked sampler settings (prefilled from the bundle, the temperature left
 * to the bundle's rule, switched with the model, carried into the recipe and the export), the masks filling in in the live view, soft constraints the
 * family cannot steer named in Compose and Generate, and a continuous and a masked run side by side in Compare.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startHarness, type Harness } from './harness';
import { clearNotices, extraModelFolder, type FrameGate, gateServerFrames, openPlace, runFromGenerate, serviceClient } from './studio-helpers';

const MASKED_FIXTURE = join(ROOT, 'tests', 'fixtures', 'masked-tiny');
const MASKED = 'masked-tiny';
/** A copy of it whose manifest lists a classifier and a top-k (the exact top-k switch). */
const GUIDED = 'masked-tiny-guided';
/** The fixture's sampler_defaults plus temperature_unconditional (argmax when something is pinned, 0.5 when not). */
const AUTO = 'auto: 0 with a record, text or infill given, 0.5 unconditional';
let bundleRoot = '';
const MASK = '\u2591';

let h: Harness;
let client: Awaited<ReturnType<typeof serviceClient>>;
let continuousId = '';
/** What Generate shows as the continuous model's steps: its sampler_defaults, else the studio's 40. */
let continuousSteps = '40';
let maskedRunId = 0;

/**
 * The page's socket to the services goes through Playwright, so a test can hold the server's frames after a given
 * progress step of a run (the tiny model runs in milliseconds) and look at the live view mid-run.
 */
/** The progress step of sample #0 at which the studio's frames are held (0: none); see gateServerFrames. */
let holdAt = 0;
let gate: FrameGate;

beforeAll(async () => {
  // the fixture with sampler_defaults.temperature_unconditional (the manifest is not among the hashed files)
  bundleRoot = mkdtempSync(join(tmpdir(), 'dlm-e2e-masked-'));
  const bundle = join(bundleRoot, MASKED);
  cpSync(MASKED_FIXTURE, bundle, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8'));
  manifest.sampler_defaults.temperature_unconditional = 0.5;
  manifest.sampler_defaults.record_temperature_unconditional = 1;
  manifest.sampler_defaults.record_schema_hold = true;
  writeFileSync(join(bundle, 'manifest.json'), JSON.stringify(manifest));
  // the same bundle with a sentiment classifier entry and a top-k, as a bundle that offers exact top-k re-scoring
  // (its graph is the denoiser's file: listing reads no graph, and no guided run is made on it)
  const guided = join(bundleRoot, GUIDED);
  cpSync(bundle, guided, { recursive: true });
  writeFileSync(join(guided, 'manifest.json'), JSON.stringify({
    ...manifest, id: GUIDED, name: GUIDED,
    classifiers: [{ control: 'sentiment', files: { 1: manifest.denoiser.file }, batch_sizes: [1], segment: 'text', labels: ['negative', 'neutral', 'positive'], inputs: { ids: `int64[B,${manifest.canvas.length}]` }, outputs: { grad: 'float32[B,Lt,V]' } }],
    guidance_defaults: { ...manifest.guidance_defaults, top_k: 4 },
  }));
  h = await startHarness();
  client = await serviceClient(h);
  const extra = extraModelFolder();
  await client.call('settings.set', { modelFolders: [...(extra ? [extra] : []), bundleRoot] });
  const models = await client.call('models.list');
  expect(models.find((m) => m.id === MASKED)).toMatchObject({ kind: 'masked-diffusion', samplerDefaults: { steps: 12, block_length: 0, confidence: 'low_confidence', temperature: 0, temperature_unconditional: 0.5, record_temperature_unconditional: 1, record_schema_hold: true } });
  const continuous = models.find((m) => !m.error && m.kind === 'continuous-embedding-diffusion')!;
  continuousId = continuous.id;
  continuousSteps = String(continuous.continuousDefaults?.steps ?? 40);
  gate = await gateServerFrames(h.page, (f) => {
    const p = f.payload as { step?: number; batchStart?: number; masked?: unknown } | undefined;
    if (!holdAt || f.event !== 'run.progress' || !p?.masked || p.batchStart !== 0 || p.step !== holdAt) return false;
    holdAt = 0;
    return true;
  });
  await h.page.goto(h.pageUrl);
  await h.page.getByRole('navigation', { name: 'Places' }).waitFor();
});
afterAll(async () => {
  gate?.flush();
  client?.close();
  await h?.close();
  if (bundleRoot) rmSync(bundleRoot, { recursive: true, force: true });
});

const value = (testid: string) => h.page.getByTestId(testid).inputValue();

describe('masked diffusion models in the studio', () => {
  it('the model picker shows each bundle’s family, with a tooltip that says what it means', async () => {
    const { page } = h;
    await openPlace(h, 'Generate');
    await page.getByTestId('device-active').waitFor();
    const badge = page.getByTestId('model-family');
    expect(await badge.getAttribute('data-family')).toBe('continuous');
    expect(await badge.getAttribute('title')).toMatch(/Continuous \(embedding\) diffusion/);
    // every option names its family
    const options = await page.getByTestId('generate-model').locator('option').evaluateAll((els) => els.map((e) => ({ value: (e as HTMLOptionElement).value, family: e.getAttribute('data-family'), text: e.textContent ?? '' })));
    expect(options.find((o) => o.value === MASKED)).toMatchObject({ family: 'masked' });
    expect(options.find((o) => o.value === MASKED)!.text).toMatch(/· masked$/);
    expect(options.find((o) => o.value === continuousId)!.text).toMatch(/· continuous$/);

    await page.getByTestId('generate-model').selectOption(MASKED);
    await page.locator('[data-testid="model-family"][data-family="masked"]').waitFor();
    expect(await badge.getAttribute('title')).toMatch(/Masked \(absorbing-state\) diffusion.*masks fill in/);
    expect(await badge.textContent()).toContain('masked');

    // Settings lists each bundle with its family too
    await openPlace(h, 'Settings');
    const families = await page.locator('.models [data-testid="model-family"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-family')));
    expect(families).toContain('masked');
    expect(families).toContain('continuous');
  });

  it('Generate shows the family’s sampler settings, prefilled from the bundle (the temperature left to its rule) and switched with the model', async () => {
    const { page } = h;
    await openPlace(h, 'Generate');
    // masked-tiny is selected (previous test): its sampler_defaults, no continuous controls
    const panel = page.getByTestId('masked-settings');
    await panel.waitFor();
    expect(await page.getByTestId('sampler-panel').getAttribute('data-family')).toBe('masked');
    expect(await value('generate-steps')).toBe('12');
    expect(await value('generate-block-length')).toBe('0');
    expect(await value('generate-confidence')).toBe('low_confidence');
    // no temperature unless the user sets one: the placeholder says what the bundle's rule picks
    expect(await value('generate-temperature')).toBe('');
    expect(await page.getByTestId('generate-temperature').getAttribute('placeholder')).toBe(AUTO);
    expect(await page.getByTestId('masked-defaults').textContent()).toContain('temperature 0 with a record, text or infill given, 0.5 unconditional (the record 1 unconditional), top-p 1; an unconditional record is held to its record schema');
    expect(await value('generate-record-temperature')).toBe('');
    expect(await page.getByTestId('generate-record-temperature').getAttribute('placeholder')).toBe('auto: 1 unconditional and unguided, else the temperature');
    expect(await value('generate-top-p')).toBe('1');
    // top-p can matter: an unconditional run samples at 0.5
    expect(await page.getByTestId('generate-top-p').isEnabled()).toBe(true);
    // a temperature the user types goes into the set; "Use the model's defaults" leaves it out again
    await page.getByTestId('generate-temperature').fill('0');
    expect(await page.getByTestId('generate-top-p').isDisabled()).toBe(true);
    // a given temperature holds for the record too, unless a record temperature is given
    expect(await page.getByTestId('generate-record-temperature').getAttribute('placeholder')).toBe('the temperature (0)');
    await page.getByTestId('generate-record-temperature').fill('1.5');
    await openPlace(h, 'Compose');
    expect(JSON.parse(await page.getByTestId('compose-body').inputValue()).sampler).toMatchObject({ temperature: 0, record_temperature: 1.5 });
    await openPlace(h, 'Generate');
    await page.getByTestId('masked-reset').click();
    expect(await value('generate-temperature')).toBe('');
    expect(await value('generate-record-temperature')).toBe('');
    expect(await page.getByTestId('generate-top-p').isEnabled()).toBe(true);
    await openPlace(h, 'Compose');
    expect(JSON.parse(await page.getByTestId('compose-body').inputValue()).sampler).not.toHaveProperty('temperature');
    await openPlace(h, 'Generate');
    await panel.waitFor();
    expect(await page.getByTestId('generate-confidence').locator('option').count()).toBe(5);
    expect(await page.getByTestId('confidence-hint').textContent()).toMatch(/most probable first/);
    expect(await page.getByTestId('generate-strength').count()).toBe(0);
    // precision as for any model: this fixture ships no int8 graph, so int8 is offered but disabled
    expect(await page.getByTestId('generate-precision').locator('option[value="int8"]').isDisabled()).toBe(true);
    expect(await page.getByLabel('clamp to embeddings').count()).toBe(0);

    // each choice explains itself
    await page.getByTestId('generate-confidence').selectOption('topk_margin');
    expect(await page.getByTestId('confidence-hint').textContent()).toMatch(/best token leads the runner-up/);
    await page.getByTestId('generate-block-length').fill('8');

    // a continuous model: its own controls only, and its steps back
    await page.getByTestId('generate-model').selectOption(continuousId);
    await page.getByTestId('generate-strength').waitFor();
    expect(await page.getByTestId('masked-settings').count()).toBe(0);
    expect(await page.getByTestId('generate-precision').count()).toBe(1);
    expect(await page.getByLabel('clamp to embeddings').count()).toBe(1);
    expect(await value('generate-steps')).toBe(continuousSteps);
    // the draft set carries no masked settings while a continuous model is selected
    await openPlace(h, 'Compose');
    const body = JSON.parse(await page.getByTestId('compose-body').inputValue());
    expect(body.sampler.confidence).toBeUndefined();

    // back to the masked model: what was chosen for it comes back
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-model').selectOption(MASKED);
    await panel.waitFor();
    expect(await value('generate-confidence')).toBe('topk_margin');
    expect(await value('generate-block-length')).toBe('8');
    expect(await value('generate-steps')).toBe('12');
    await openPlace(h, 'Compose');
    const sampler = JSON.parse(await page.getByTestId('compose-body').inputValue()).sampler;
    expect(sampler).toMatchObject({ steps: 12, block_length: 8, confidence: 'topk_margin', top_p: 1 });
    expect(sampler).not.toHaveProperty('temperature');
  });

  it('the live view shows the masks filling in, committed tokens appearing step by step', async () => {
    const { page } = h;
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-samples').fill('3');
    await page.getByTestId('generate-seed').fill('5');
    await page.getByTestId('masked-settings').waitFor();
    // record, inside the page, what sample #0 shows at every step the live view draws
    await page.evaluate(() => {
      const w = window as unknown as { __masks: { step: number; masked: number; chips: number; words: number }[] };
      w.__masks = [];
      new MutationObserver(() => {
        const el = document.querySelector('[data-testid="live-view"]');
        const s0 = el?.querySelector('[data-testid="live-sample"]');
        if (!el || !s0 || el.getAttribute('data-family') !== 'masked') return;
        const step = Number(el.getAttribute('data-step'));
        if (step > 0 && w.__masks.at(-1)?.step !== step) {
          w.__masks.push({
            step,
            masked: Number(s0.getAttribute('data-masked')),
            chips: s0.querySelectorAll('[data-testid="live-mask"]').length,
            words: s0.querySelectorAll('.text span:not(.mask)').length,
          });
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['data-step'] });
    });
    const [previous] = await client.call('runs.list', { limit: 1 });
    maskedRunId = (previous?.id ?? 0) + 1;
    holdAt = 7;
    const live = page.getByTestId('live-view');
    try {
      await page.getByTestId('generate-run').click();
      // held after step 7 of 12 (blocks of 8 positions, 3 steps each: the record is written, the text is being filled)
      await page.locator('[data-testid="live-view"][data-step="7"]').waitFor();
      expect(gate.holding).toBe(true);
      expect(await live.getAttribute('data-family')).toBe('masked');
      await live.getByLabel('record').check();
      const samples = live.getByTestId('live-sample');
      expect(await samples.count()).toBe(3);
      for (let i = 0; i < 3; i++) {
        const s = samples.nth(i);
        const masked = Number(await s.getAttribute('data-masked'));
        expect(masked, `sample ${i}`).toBeGreaterThan(0);
        expect(masked, `sample ${i}`).toBeLessThan(31);
        // still-masked positions show as mask chips beside the tokens already committed
        expect(await s.getByTestId('live-mask').count(), `sample ${i}`).toBeGreaterThan(0);
        expect(await s.locator('.record span:not(.mask)').count(), `sample ${i}`).toBeGreaterThan(0);
      }
      expect(await live.getByTestId('live-mask').first().textContent()).toBe(MASK);
      expect(await page.getByTestId('live-masks-left').textContent()).toMatch(/^\d+ masks left$/);
      await clearNotices(h);
      await page.mouse.move(0, 0);
      await h.screenshot('generate-masked');
    } finally {
      holdAt = 0;
      gate.flush();
    }
    await page.locator('[data-testid="generate-status"][data-status="completed"]', { hasText: `Run #${maskedRunId} ·` }).waitFor({ timeout: 60_000 });
    const drawn = await page.evaluate(() => (window as unknown as { __masks: { step: number; masked: number; chips: number; words: number }[] }).__masks);
    // masks only ever fill in, committed words only accrue, and at the end none is left
    expect(drawn.length).toBeGreaterThanOrEqual(3);
    expect(drawn[0]!.masked).toBeGreaterThan(0);
    for (let i = 1; i < drawn.length; i++) expect(drawn[i]!.masked, `step ${drawn[i]!.step}`).toBeLessThan(drawn[i - 1]!.masked);
    expect(drawn.at(-1)).toMatchObject({ step: 12, masked: 0, chips: 0 });
    expect(await live.getByTestId('live-mask').count()).toBe(0);
    expect(await page.getByTestId('live-masks-left').textContent()).toBe('all committed');
    await expect(page.getByTestId('output-card').count()).resolves.toBe(3);

    // the settings went into the recipe, the stored run and the export
    const detail = await client.call('runs.get', { runId: maskedRunId });
    expect(detail.run.recipe.model).toMatchObject({ id: MASKED, kind: 'masked-diffusion' });
    expect(detail.run.recipe.sampler).toMatchObject({ steps: 12, samples: 3, seed: 5, block_length: 8, confidence: 'topk_margin', top_p: 1 });
    // no temperature in the recipe: nothing pinned, so the run sampled at temperature_unconditional (0.5), not argmax
    expect(detail.run.recipe.sampler).not.toHaveProperty('temperature');
    expect(detail.run.recipe.constraintSet.body.constraints).toEqual([]);
    expect(new Set(detail.outputs.map((o) => o.tokens.join(','))).size).toBe(3);
    expect(detail.run.recipe.constraintSet.body.sampler).toMatchObject({ block_length: 8, confidence: 'topk_margin' });
    await page.getByTestId('generate-export').click();
    const exportPanel = page.getByTestId('export-panel');
    await exportPanel.getByTestId('export-format-jsonl').check();
    await exportPanel.getByTestId('export-save').click();
    await exportPanel.getByTestId('export-path').waitFor();
    const lines = readFileSync((await exportPanel.getByTestId('export-path').textContent())!, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const recipe = lines.find((l) => l.type === 'recipe').recipe;
    expect(recipe.model.kind).toBe('masked-diffusion');
    expect(recipe.sampler).toMatchObject({ block_length: 8, confidence: 'topk_margin', top_p: 1 });
    expect(recipe.sampler).not.toHaveProperty('temperature');
  });

  it('soft constraints the masked family cannot steer are named in Compose and Generate, not dropped', async () => {
    const { page } = h;
    await openPlace(h, 'Compose');
    await page.getByTestId('add-sentiment').click();
    await page.getByTestId('add-words').click();
    const soft = page.locator('[data-block-index="0"]');
    await soft.getByTestId('verdict-unserved').waitFor();
    expect(await soft.getByTestId('block-verdict').textContent()).toMatch(/not served by this masked bundle/);
    await page.locator('[data-block-index="1"] [data-testid="block-verdict"][data-status="hard"]').waitFor();
    expect(await page.locator('[data-block-index="1"]').getByTestId('verdict-unserved').count()).toBe(0);
    expect(await page.getByTestId('compose-unserved').textContent()).toMatch(/1 not served/);
    await clearNotices(h);
    await h.screenshot('compose-masked-unserved');
    await openPlace(h, 'Generate');
    const note = page.getByTestId('generate-unserved');
    await note.waitFor();
    expect(await note.textContent()).toMatch(/Not served by this model:\s*1\. Sentiment/);
    expect(await note.textContent()).toMatch(/scored on the outputs, not steered/);
    await h.screenshot('generate-masked-unserved');
    // a continuous model steers (or at least is not refused) the same constraint: no such note
    await page.getByTestId('generate-model').selectOption(continuousId);
    await page.locator('[data-testid="model-family"][data-family="continuous"]').waitFor();
    await page.waitForFunction(() => !document.querySelector('[data-testid="generate-unserved"]'));
    await page.getByTestId('generate-model').selectOption(MASKED);
    await note.waitFor();
    // the run says so too, and the outputs are still scored on it
    const runId = await runFromGenerate(h, client);
    maskedRunId = runId;
    expect(await page.locator('.warn-text', { hasText: 'not served by this masked bundle' }).count()).toBeGreaterThan(0);
    const detail = await client.call('runs.get', { runId });
    for (const o of detail.outputs) expect(o.constraints.map((c) => c.kind)).toEqual(['sentiment', 'words']);
  });

  it('Compare puts a continuous run and a masked run side by side, each with its family and sampler settings', async () => {
    const { page } = h;
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-model').selectOption(continuousId);
    await page.getByTestId('generate-strength').waitFor();
    await page.getByTestId('generate-steps').fill('8');
    await page.getByTestId('generate-samples').fill('2');
    const continuousRun = await runFromGenerate(h, client);
    expect((await client.call('runs.get', { runId: continuousRun, outputs: false })).run.recipe.sampler).not.toHaveProperty('confidence');

    await openPlace(h, 'Compare');
    const table = page.getByTestId('compare-table');
    await table.waitFor();
    const cols = await page.getByTestId('compare-col').evaluateAll((els) => els.map((e) => ({ text: e.textContent ?? '', family: e.getAttribute('data-family') })));
    expect(cols.map((c) => Number(/#(\d+)/.exec(c.text)![1]))).toEqual([maskedRunId, continuousRun]);
    expect(cols.map((c) => c.family)).toEqual(['masked', 'continuous']);
    expect(await table.getByTestId('compare-family').evaluateAll((els) => els.map((e) => e.getAttribute('data-family')))).toEqual(['masked', 'continuous']);
    const row = async (label: string) => page.locator(`[data-testid="compare-row"][data-label="${label}"] td`).allTextContents();
    expect(await row('Family')).toEqual(['Masked diffusion', 'Continuous diffusion']);
    expect(await row('Block length')).toEqual(['8 positions', 'n/a (continuous)']);
    expect(await row('Confidence')).toEqual(['top-k margin', 'n/a (continuous)']);
    expect(await row('Temperature')).toEqual(['model default (auto)', 'n/a (continuous)']);
    expect(await row('Top-p')).toEqual(['1', 'n/a (continuous)']);
    expect(await row('Record temperature')).toEqual(['model default (auto)', 'n/a (continuous)']);
    // the masked run had guidance on (the default) and a sentiment constraint: its guidance is over tokens
    expect((await row('Guidance'))[0]).toBe('×1 (on tokens)');
    expect((await row('Guidance'))[1]).toMatch(/^×1, 3 it\.$|^off$/);
    expect(await row('Steps')).toEqual(['12', '8']);
    await clearNotices(h);
    await h.screenshot('compare-masked');
    expect(h.problems).toEqual([]);
  });

  it('a length on a masked model is pinned, and Compose says so instead of "not guided"', async () => {
    const { page } = h;
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-model').selectOption(MASKED);
    await openPlace(h, 'Compose');
    for (let n = await page.locator('[data-block-index]').count(); n > 0; n--) await page.getByRole('button', { name: 'Remove block 1' }).click();
    await page.getByTestId('add-length').click();
    const block = page.locator('[data-block-index="0"]');
    // the fixture's text segment holds 14 tokens (the block's default of 20 is refused, by name)
    await block.locator('[data-testid="block-verdict"][data-status="error"]').waitFor();
    await block.getByLabel('Tokens').first().fill('6');
    await block.getByTestId('verdict-how').waitFor();
    expect(await block.getByTestId('verdict-how').textContent()).toMatch(/<end> is pinned at the target position/);
    expect(await block.getByTestId('verdict-unguided').count()).toBe(0);
    expect(await block.getByTestId('verdict-unserved').count()).toBe(0);
    expect(h.problems).toEqual([]);
  });
  it('a masked model with classifiers and a top-k offers exact top-k re-scoring: the bundle\u2019s default, carried into the set, reset with the model\u2019s defaults', async () => {
    const { page } = h;
    await openPlace(h, 'Generate');
    // the fixture itself has no classifiers: no switch
    await page.getByTestId('generate-model').selectOption(MASKED);
    await page.getByTestId('masked-settings').waitFor();
    expect(await page.getByTestId('masked-exact-top-k').count()).toBe(0);
    await page.getByTestId('generate-model').selectOption(GUIDED);
    const exact = page.getByTestId('masked-exact-top-k');
    await exact.waitFor();
    // the bundle's default (exact_top_k absent: off), not marked as the model's default
    expect(await exact.isChecked()).toBe(false);
    expect(await page.locator('label', { has: exact }).textContent()).not.toMatch(/model default/);
    await exact.check();
    await openPlace(h, 'Compose');
    expect(JSON.parse(await page.getByTestId('compose-body').inputValue()).sampler.guidance.exactTopK).toBe(true);
    await openPlace(h, 'Generate');
    expect(await page.getByTestId('masked-exact-top-k').isChecked()).toBe(true);
    // guidance off: the switch has nothing to do
    await page.getByTestId('masked-guidance').uncheck();
    expect(await page.getByTestId('masked-exact-top-k').isDisabled()).toBe(true);
    await page.getByTestId('masked-guidance').check();
    await page.getByTestId('masked-reset').click();
    expect(await page.getByTestId('masked-exact-top-k').isChecked()).toBe(false);
    await openPlace(h, 'Compose');
    expect(JSON.parse(await page.getByTestId('compose-body').inputValue()).sampler.guidance.exactTopK).toBeNull();
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-model').selectOption(MASKED);
    expect(h.problems).toEqual([]);
  });
});
