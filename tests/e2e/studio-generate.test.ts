/**
 * Compose a set from blocks (a JSON schema and a POS template, with the compiler's live verdicts), run it on
 * the real engine, watch the live view redraw at every step, get scored output cards, and cancel a long run.
 */
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness';
import { clearNotices, openPlace, openStudio, runFromGenerate } from './studio-helpers';

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

describe('compose and generate', () => {
  it('composes a set with a JSON schema and a POS template, checked live by the compiler', async () => {
    const { page } = h;
    await openPlace(h, 'Compose');
    await page.getByTestId('compose-name').fill('e2e schema and pos');
    await page.getByTestId('add-json-schema').click();
    const schemaBlock = page.locator('[data-block-index="0"]');
    await schemaBlock.locator('[data-testid="block-verdict"][data-status="hard"]').waitFor();

    // a keyword the compiler refuses is named, with its pointer
    const editor = schemaBlock.getByTestId('schema-editor');
    const good = await editor.inputValue();
    const refused = JSON.parse(good);
    refused.properties.tags = { type: 'array', items: { type: 'string' }, uniqueItems: true };
    await editor.fill(JSON.stringify(refused, null, 2));
    const err = schemaBlock.getByTestId('verdict-error');
    await err.waitFor();
    expect(await err.textContent()).toMatch(/uniqueItems.*#\/properties\/tags\/uniqueItems/s);
    await clearNotices(h);
    await h.screenshot('compose-schema-refused');
    // bad JSON is reported while typing
    await editor.fill('{"type": "object",');
    await schemaBlock.getByTestId('schema-parse-error').waitFor();
    expect(await schemaBlock.getByTestId('schema-parse-error').textContent()).toMatch(/Not valid JSON/);
    await editor.fill(good);
    await schemaBlock.locator('[data-testid="block-verdict"][data-status="hard"]').waitFor();

    // POS template from an example sentence, one position marked "any"
    await page.getByTestId('add-pos').click();
    const posBlock = page.locator('[data-block-index="1"]');
    await posBlock.getByTestId('pos-example').fill('The Eagle is a cheap pub.');
    await posBlock.getByTestId('pos-tag').click();
    await posBlock.locator('[data-testid="pos-tags"] li select').nth(6).waitFor();
    const tags = await posBlock.locator('[data-testid="pos-tags"] li select').evaluateAll((els) => els.map((e) => (e as HTMLSelectElement).value));
    expect(tags).toEqual(['DET', 'PROPN', 'AUX', 'DET', 'ADJ', 'NOUN', 'PUNCT']);
    await posBlock.locator('[data-testid="pos-tags"] li').nth(1).getByRole('button', { name: 'any' }).click();
    await posBlock.locator('[data-testid="block-verdict"][data-status="soft"]').waitFor();
    // the verdict tells whether this model can steer toward the template or only score it
    const controls = (await client.call('models.list')).find((m) => !m.error)!.controls;
    await expect(posBlock.getByTestId('verdict-unguided').count()).resolves.toBe(controls.includes('pos') ? 0 : 1);
    await page.getByTestId('compose-summary').waitFor();
    expect(await page.getByTestId('compose-summary').textContent()).toMatch(/Ready to generate/);

    await page.getByTestId('compose-save').click();
    await page.getByText('Saved “e2e schema and pos” as version 1').waitFor();
    const saved = await client.call('constraintSets.get', { name: 'e2e schema and pos' });
    expect(saved.body.constraints.map((c) => c.kind)).toEqual(['json-schema', 'pos']);
    expect(saved.body.constraints[1]).toMatchObject({ kind: 'pos', tags: ['DET', '*', 'AUX', 'DET', 'ADJ', 'NOUN', 'PUNCT'] });
    await clearNotices(h);
    await h.screenshot('compose');
  });

  it('runs the set and redraws the live view at every step until the outputs arrive', async () => {
    const { page } = h;
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-steps').fill('16');
    await page.getByTestId('generate-samples').fill('3');
    await page.getByTestId('generate-seed').fill('7');
    // one sample per output (a guided set's default on the bundled model is the classifiers' pick of several
    // candidates, drawn in batches one after another): one batch, whose steps the live view must all show in order
    await page.getByTestId('generate-candidates').fill('1');
    // steps spaced toward high noise; the run's recipe records the spacing that ran
    await page.getByTestId('generate-spacing').fill('0.5');
    await page.getByTestId('device-active').waitFor();
    // record, inside the page, every step the live view draws and what sample #0 reads at that step
    await page.evaluate(() => {
      const w = window as unknown as { __live: { steps: number[]; texts: string[]; samples: number } };
      w.__live = { steps: [], texts: [], samples: 0 };
      const record = () => {
        const el = document.querySelector('[data-testid="live-view"]');
        if (!el) return;
        const step = Number(el.getAttribute('data-step'));
        const samples = el.querySelectorAll('[data-testid="live-sample"]');
        w.__live.samples = Math.max(w.__live.samples, samples.length);
        if (step > 0 && w.__live.steps.at(-1) !== step) {
          w.__live.steps.push(step);
          w.__live.texts.push(samples[0]?.querySelector('.text')?.textContent ?? '');
        }
      };
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['data-step'] });
    });
    await page.getByTestId('generate-run').click();
    await page.locator('[data-testid="generate-status"][data-status="completed"], [data-testid="generate-status"][data-status="failed"]').waitFor({ timeout: 60_000 });
    const live = await page.evaluate(() => (window as unknown as { __live: { steps: number[]; texts: string[]; samples: number } }).__live);
    const seen = new Set(live.steps);
    const maxSamples = live.samples;
    // steps arrive in order, nearly all of them are drawn, and the text changes as it settles
    expect(live.steps).toEqual([...live.steps].sort((a, b) => a - b));
    expect(live.steps.at(-1)).toBe(16);
    expect(new Set(live.texts).size).toBeGreaterThan(1);
    console.log(`live view: drew ${seen.size} of 16 steps, sample #0 read ${new Set(live.texts).size} different texts`);
    expect(await page.getByTestId('generate-status').getAttribute('data-status')).toBe('completed');
    expect(seen.size).toBeGreaterThanOrEqual(8);
    expect(maxSamples).toBe(3);
    expect(Number(await page.getByTestId('live-view').getAttribute('data-step'))).toBe(16);
    const cards = page.getByTestId('output-card');
    await expect(cards.count()).resolves.toBe(3);
    // every card shows one badge per constraint score the services stored, satisfied or not
    const runs0 = await client.call('runs.list', {});
    const detail = await client.call('runs.get', { runId: runs0[0]!.id });
    // the denoiser precision the page announced is the one the run recorded (auto: int8 on cpu when the model has it)
    const usedModel = (await client.call('models.list')).find((m) => m.id === detail.run.recipe.model.id)!;
    expect(detail.run.recipe.device.precision).toBe(detail.run.recipe.device.active === 'cpu' && usedModel.precisions?.includes('int8') ? 'int8' : 'fp32');
    expect(await page.getByTestId('precision-runs').textContent()).toBe(detail.run.recipe.device.precision);
    expect(detail.run.recipe.sampler).toMatchObject({ method: 'ancestral', spacing: 0.5 });
    for (const o of detail.outputs) {
      const card = page.locator(`[data-testid="output-card"][data-index="${o.index}"]`);
      await expect(card.getByTestId('constraint-badge').count()).resolves.toBe(o.constraints.length);
      await expect(card.locator('[data-testid="constraint-badge"][data-satisfied="true"]').count()).resolves.toBe(o.constraints.filter((c) => c.satisfied).length);
      expect(await card.getByTestId('output-text').textContent()).toBe(o.text || '(empty text)');
    }
    await clearNotices(h);
    await h.screenshot('generate');
    // sorting by fluency orders the cards by perplexity
    await page.getByTestId('generate-sort').selectOption('fluency');
    const model = (await client.call('models.list')).find((m) => !m.error)!;
    if (model.hasScorer) {
      const ppl = await cards.evaluateAll((els) => els.map((e) => Number(/ppl ([\d.]+)/.exec(e.textContent ?? '')?.[1] ?? 'NaN')));
      expect(ppl.every((v) => Number.isFinite(v))).toBe(true);
      expect([...ppl].sort((a, b) => a - b)).toEqual(ppl);
    } else {
      // no scorer in this bundle: every card says so, and the order falls back to the sample index
      expect((await cards.allTextContents()).every((t) => t.includes('fluency n/a'))).toBe(true);
      expect(await cards.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-index'))))).toEqual([0, 1, 2]);
    }

    const runs = await client.call('runs.list', {});
    expect(runs[0]).toMatchObject({ status: 'completed', outputCount: 3 });
    expect(runs[0]!.recipe.constraintSet.name).toBe('e2e schema and pos');

    // export a selection of two outputs straight from the results
    await page.getByRole('checkbox', { name: 'Select output 0' }).check();
    await page.getByRole('checkbox', { name: 'Select output 2' }).check();
    await page.getByTestId('generate-export').click();
    const panel = page.getByTestId('export-panel');
    await panel.getByTestId('export-format-jsonl').check();
    await panel.getByTestId('export-save').click();
    expect(await panel.getByTestId('export-result').textContent()).toMatch(/^2 outputs from 1 run/);
    const lines = readFileSync((await panel.getByTestId('export-path').textContent())!, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const exported = lines.filter((l) => l.type === 'output').map((l) => l.index);
    expect(exported).toEqual([0, 2]);
  });

  /** A new set from a Compose example, changed by `adjust`, run from Generate at 8 steps x 2 samples; its run id. */
  async function runExample(title: string, adjust: () => Promise<void>, candidates?: number, acceptAt?: number): Promise<number> {
    const { page } = h;
    await openPlace(h, 'Compose');
    await page.getByTestId('compose-new').click();
    if (await page.getByText('Discard unsaved changes?').count()) await page.getByTestId('confirm-yes').click();
    await page.getByTestId('compose-example').filter({ hasText: title }).click();
    await adjust();
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-steps').fill('8');
    await page.getByTestId('generate-samples').fill('2');
    if (candidates !== undefined) await page.getByTestId('generate-candidates').fill(String(candidates));
    if (acceptAt !== undefined) await page.getByTestId('generate-accept-at').fill(String(acceptAt));
    const runId = await runFromGenerate(h, client);
    expect(await page.getByTestId('generate-status').getAttribute('data-status')).toBe('completed');
    return runId;
  }

  it('runs text-to-data (a held sentence): the cards lead with the record the model wrote', async () => {
    const { page } = h;
    // one sample per output, so that the live view holds one canvas per output (the model's default for a held
    // text is the consensus of several candidates, each a canvas of its own: the data-to-text case below)
    const runId = await runExample('Structure a sentence', () => page.locator('[data-block-index="1"]').waitFor(), 1);
    const detail = await client.call('runs.get', { runId });
    expect(detail.outputs).toHaveLength(2);
    // the sentence was held: every output carries it as its text
    for (const o of detail.outputs) expect(o.text.trim()).toBe('The Eagle is a cheap Italian pub near the river, and it is not family friendly.');
    // the live view shows the record canvas, the part that moves, from the start
    await expect(page.getByTestId('live-record').count()).resolves.toBe(2);
    const records = await page.getByTestId('output-record').allTextContents();
    expect(records).toHaveLength(2);
    detail.outputs.forEach((o, i) => expect(records[i]).toBe(o.record ? JSON.stringify(o.record, null, 2) : `${o.recordText || '(empty)'}\n(does not parse as JSON)`));
    await clearNotices(h);
    await h.screenshot('generate-text-to-data');
  });

  it('runs a guided set with 2 candidates: each card was the guidance classifiers\' pick, the live view said so', async () => {
    const { page } = h;
    // every candidate drawn (1: no early stop), so that each card is the pick of both
    const runId = await runExample('Short, positive, mentions the price', async () => {}, 2, 1);
    const detail = await client.call('runs.get', { runId });
    expect(detail.run.recipe.sampler.candidates).toBe(2);
    expect(detail.run.recipe.sampler.accept_at).toBe(1);
    const badges = page.getByTestId('output-consensus');
    await expect(badges.allTextContents()).resolves.toEqual(["classifiers' pick of 2", "classifiers' pick of 2"]);
    // the tooltip gives every candidate's score and says the satisfied badge is not from these classifiers
    expect(await badges.first().getAttribute('title')).toMatch(/log p per candidate: -?\d+\.\d\d, -?\d+\.\d\d\)\. The satisfied badge comes from the independent checks/);
    await expect(page.getByTestId('live-candidates').textContent()).resolves.toMatch(/of 2 · each chosen among 2 candidates/);
    // emptied, the field shows the model's rule for a guided set
    await page.getByTestId('generate-candidates').fill('');
    const auto = await page.getByTestId('generate-candidates').getAttribute('placeholder');
    expect(auto).toBe(`auto: ${detail.run.recipe.model.id === 'e2e-default' ? 4 : 1}`);
    // the early stop emptied: the model's level for a guided run (the bundled default's 0.9; the tiny bundle has none)
    const bundleAccept = (await client.call('models.list')).find((m) => m.id === detail.run.recipe.model.id)?.continuousDefaults?.acceptAt;
    await page.getByTestId('generate-candidates').fill('2');
    await page.getByTestId('generate-accept-at').fill('');
    expect(await page.getByTestId('generate-accept-at').getAttribute('placeholder')).toBe(`auto: ${bundleAccept ?? 'all'}`);
    const again = await client.call('runs.get', { runId: await runFromGenerate(h, client) });
    expect(again.run.recipe.sampler.accept_at).toBe(bundleAccept);
    if (bundleAccept !== undefined) {
      // each card says how many of its candidates were drawn before one was accepted
      const texts = await page.getByTestId('output-consensus').allTextContents();
      expect(texts).toHaveLength(2);
      for (const t of texts) expect(t).toMatch(/^classifiers' pick of [12]$/);
    }
    // the model's defaults back: the Steps field shows the bundle's steps, and a guided run takes its guided_steps
    const cd = (await client.call('models.list')).find((m) => m.id === detail.run.recipe.model.id)?.continuousDefaults;
    if (cd) await page.getByTestId('continuous-reset').click();
    else await page.getByTestId('generate-steps').fill('40');
    await page.getByTestId('generate-candidates').fill('1');
    expect(await page.getByTestId('generate-steps').inputValue()).toBe(String(cd?.steps ?? 40));
    if (cd?.guidedSteps !== undefined) await expect(page.getByTestId('continuous-defaults').textContent()).resolves.toContain(`guided runs ${cd.guidedSteps} steps`);
    const byDefault = await client.call('runs.get', { runId: await runFromGenerate(h, client) });
    expect(byDefault.run.recipe.sampler.steps).toBe(cd?.guidedSteps ?? cd?.steps ?? 40);
  });

  it('runs a length alone with 3 candidates: a card that has its length says the length chose it', async () => {
    const { page } = h;
    const runId = await runExample('Short, positive, mentions the price', async () => {
      for (const kind of ['sentiment', 'attribute']) {
        await page.locator(`[data-kind="${kind}"]`).getByTestId('block-enabled').uncheck();
        await page.locator(`[data-kind="${kind}"] [data-testid="block-verdict"][data-status="disabled"]`).waitFor();
      }
    }, 3, 0.9);
    const detail = await client.call('runs.get', { runId });
    const cards = await page.getByTestId('output-consensus').allTextContents();
    expect(cards).toHaveLength(detail.outputs.length);
    detail.outputs.forEach((o, i) => {
      // kept for its length, it was the first of its candidates to have it; none had it: the consensus of all 3
      const has = o.constraints.find((c) => c.kind === 'length')!.satisfied;
      expect(cards[i]).toMatch(has ? /^length pick of [123]$/ : /^consensus of 3 · [01]\.\d\d$/);
    });
  });

  it('runs an empty set at the model\'s rule: on the default bundle each card is the model\'s own pick of 2', async () => {
    const { page } = h;
    await openPlace(h, 'Compose');
    await page.getByTestId('compose-new').click();
    if (await page.getByText('Discard unsaved changes?').count()) await page.getByTestId('confirm-yes').click();
    await openPlace(h, 'Generate');
    await page.getByTestId('generate-steps').fill('8');
    await page.getByTestId('generate-samples').fill('2');
    await page.getByTestId('generate-candidates').fill('');
    const byDefault = (await client.call('models.list')).find((m) => m.id === 'e2e-default')?.freeCandidates ?? 1;
    const auto = await page.getByTestId('generate-candidates').getAttribute('placeholder');
    const runId = await runFromGenerate(h, client);
    const detail = await client.call('runs.get', { runId });
    const k = detail.run.recipe.model.id === 'e2e-default' ? byDefault : 1;
    expect(auto).toBe(`auto: ${k}`);
    expect(detail.run.recipe.sampler.candidates).toBe(k);
    const badges = page.getByTestId('output-consensus');
    if (k > 1) {
      await expect(badges.allTextContents()).resolves.toEqual([`model's pick of ${k}`, `model's pick of ${k}`]);
      expect(await badges.first().getAttribute('title')).toMatch(/reconstructs best .* its check per candidate, higher is better: -?\d+\.\d\d, -?\d+\.\d\d\)/);
    } else await expect(badges.count()).resolves.toBe(0);
  });

  it('runs data-to-text (a held record) as the consensus of 3 candidates; the run notes the text length it held', async () => {
    const { page } = h;
    // without its length block the record alone decides the length (when the bundle has a text length rule)
    const runId = await runExample('Describe a restaurant', async () => {
      await page.locator('[data-kind="length"]').getByTestId('block-enabled').uncheck();
      await page.locator('[data-kind="length"] [data-testid="block-verdict"][data-status="disabled"]').waitFor();
    }, 3);
    const detail = await client.call('runs.get', { runId });
    expect(detail.outputs).toHaveLength(2);
    // the recipe carries the candidates; each card names the consensus it came from; the live view said so
    expect(detail.run.recipe.sampler.candidates).toBe(3);
    const badges = await page.getByTestId('output-consensus').allTextContents();
    expect(badges).toHaveLength(2);
    for (const b of badges) expect(b).toMatch(/consensus of 3 · [01]\.\d\d/);
    await expect(page.getByTestId('live-candidates').textContent()).resolves.toMatch(/of 2 · each chosen among 3 candidates/);
    // emptied, the field says what the model's rule gives this set
    await page.getByTestId('generate-candidates').fill('');
    const auto = await page.getByTestId('generate-candidates').getAttribute('placeholder');
    expect(auto).toBe(`auto: ${detail.run.recipe.model.id === 'e2e-default' ? 8 : 1}`);
    // and the run button says what the next run takes
    const label = await page.getByTestId('generate-run').textContent();
    if (detail.run.recipe.model.id === 'e2e-default') expect(label).toMatch(/\(× 8 candidates\)/);
    else expect(label).not.toMatch(/candidates/);
    // the bundled default has a text length rule; the tiny smoke-test bundle (used when the default is absent) has not
    const ruled = detail.run.recipe.model.id === 'e2e-default';
    const notes = await page.getByTestId('generate-note').allTextContents();
    if (ruled) {
      expect(notes).toHaveLength(1);
      expect(notes[0]).toMatch(/^the text's length is held at \d+ tokens, the bundle's text_length for a record of \d+ tokens/);
    } else expect(notes).toEqual([]);
    await clearNotices(h);
  });

  it('cancels a long run from the Cancel button', async () => {
    const { page } = h;
    await page.getByTestId('generate-steps').fill('2000');
    await page.getByTestId('generate-samples').fill('8');
    const before = (await client.call('runs.list', { limit: 1 }))[0]!.id;
    await page.getByTestId('generate-run').click();
    // the new run (not the finished one still on screen) is running and its live view has moved
    await page.waitForFunction(
      (id) =>
        document.querySelector('[data-testid="generate-status"]')?.textContent?.includes(`Run #${id} · running`) &&
        Number(document.querySelector('[data-testid="live-view"]')?.getAttribute('data-step')) >= 3,
      before + 1,
    );
    expect(await page.getByTestId('live-sample').count()).toBe(8);
    await clearNotices(h);
    await h.screenshot('generate-live');
    // a reload mid-run picks the run up again (the window opens at once, though the engine is busy)
    // and the live view resumes with the next steps
    await page.reload();
    await page.getByRole('navigation', { name: 'Places' }).waitFor();
    await openPlace(h, 'Generate');
    await page.locator(`[data-testid="generate-status"][data-status="running"]`, { hasText: `Run #${before + 1}` }).waitFor();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="live-view"]')?.getAttribute('data-step')) >= 5);
    await page.getByTestId('generate-cancel').click();
    await page.locator('[data-testid="generate-status"][data-status="cancelled"]').waitFor();
    const db = new Database(h.dbPath, { readonly: true });
    const row = db.prepare('SELECT status FROM runs ORDER BY id DESC LIMIT 1').get() as { status: string };
    db.close();
    expect(row.status).toBe('cancelled');
    expect(h.problems).toEqual([]);
  });
});

describe('generate from the keyboard', () => {
  it('runs with Ctrl+Enter and cancels with Escape', async () => {
    const { page } = h;
    await page.keyboard.press('Alt+2');
    await page.locator('#place-title', { hasText: 'Generate' }).waitFor();
    await page.getByTestId('generate-steps').focus();
    await page.keyboard.press('Control+a');
    await page.keyboard.type('1500');
    const [previous] = await client.call('runs.list', { limit: 1 });
    await page.keyboard.press('Control+Enter');
    await page.locator('[data-testid="generate-status"][data-status="running"]', { hasText: `Run #${previous!.id + 1} ·` }).waitFor();
    await page.keyboard.press('Escape');
    await page.locator('[data-testid="generate-status"][data-status="cancelled"]', { hasText: `Run #${previous!.id + 1} ·` }).waitFor();
    expect((await client.call('runs.get', { runId: previous!.id + 1, outputs: false })).run.status).toBe('cancelled');
  });
});
