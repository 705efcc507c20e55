/**
 * Reproduce a run from its export with the CLI, on the real engine and the tiny bundle made by
 * `npm run smoke:bundle`: generate -> export Markdown -> recipes show / run -> the same outputs again.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from './cli-harness';
import { defaultEngine } from '../../src-main/services/engine-loader';

const ROOT = join(import.meta.dirname, '..', '..');
const TINY = join(ROOT, 'tests', '.generated', 'tiny-e2e');
let dir: string;
beforeAll(() => {
  if (!existsSync(join(TINY, 'manifest.json'))) throw new Error(`${TINY} is missing: run \`npm run smoke:bundle\` first (npm test does)`);
  dir = mkdtempSync(join(tmpdir(), 'dlm-recipes-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...argv: string[]) => runCliCaptured(argv, { dir, bundledModelDirs: [TINY], engine: defaultEngine() });

describe('dlm-studio recipes', () => {
  it('re-runs an exported run and gets the same outputs (its sampler, ddim with eta 0.5 on steps spaced 0.5, comes back too)', { timeout: 240_000 }, async () => {
    const setFile = join(dir, 'set.json');
    writeFileSync(setFile, JSON.stringify({ version: 1, name: 'short pub', constraints: [{ kind: 'length', tokens: 12 }], sampler: { steps: 6, samples: 3, seed: 11, method: 'ddim', eta: 0.5, spacing: 0.5 } }));
    const gen = await cli('generate', '--model', 'tiny-e2e', '--constraints', setFile, '--device', 'cpu', '--out', join(dir, 'gen.jsonl'));
    expect(gen.code, gen.err).toBe(0);
    const runs = JSON.parse((await cli('runs', 'list', '--json')).out) as { id: number; status: string }[];
    expect(runs).toHaveLength(1);
    expect(runs[0]!.status).toBe('completed');
    const first = runs[0]!.id;

    const exported = join(dir, 'export.md');
    expect((await cli('runs', 'export', String(first), '--format', 'markdown', '--out', exported)).code).toBe(0);
    const show = await cli('recipes', 'show', exported, '--set-out', join(dir, 'set-again.json'));
    expect(show.code, show.err).toBe(0);
    expect(show.out).toMatch(new RegExp(`run ${first} \\(3 outputs\\): tiny-e2e 0\\.0\\.1`));
    expect(show.out).toMatch(/seed 11, 6 steps, 3 samples, sampler ddim \(eta 0\.5\), spacing 0\.5/);
    expect(readFileSync(exported, 'utf8')).toContain('| Sampler | ddim (eta 0.5), steps spaced 0.5 |');
    const again = JSON.parse(readFileSync(join(dir, 'set-again.json'), 'utf8'));
    expect(again).toMatchObject({ version: 1, name: 'short pub', constraints: [{ kind: 'length', tokens: 12 }], sampler: { steps: 6, samples: 3, seed: 11, method: 'ddim', eta: 0.5, spacing: 0.5 } });

    const rerun = await cli('recipes', 'run', exported);
    expect(rerun.code, rerun.err).toBe(0);
    expect(rerun.out).toMatch(/completed, 3 outputs/);
    const second = Number(/^run (\d+):/.exec(rerun.out)![1]);
    expect(second).not.toBe(first);
    const a = JSON.parse((await cli('runs', 'show', String(first), '--outputs', '--json')).out) as { run: { recipe: unknown }; outputs: { text: string; tokens: number[] }[] };
    const b = JSON.parse((await cli('runs', 'show', String(second), '--outputs', '--json')).out) as typeof a;
    expect(b.outputs.map((o) => o.tokens)).toEqual(a.outputs.map((o) => o.tokens));
    expect(b.outputs.map((o) => o.text)).toEqual(a.outputs.map((o) => o.text));
    expect(b.run.recipe).toMatchObject({ model: (a.run.recipe as { model: unknown }).model, seed: 11, steps: 6, samples: 3, sampler: { method: 'ddim', eta: 0.5, spacing: 0.5 } });
  });

  it('names the problem with a file that carries no recipe', async () => {
    const junk = join(dir, 'junk.md');
    writeFileSync(junk, '# notes\nnothing here\n');
    const r = await cli('recipes', 'show', junk);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/error \[IMPORT_FAILED\]: .*junk\.md: .*not a DLM Studio export/);
    expect((await cli('recipes', 'show', join(dir, 'nope.md'))).err).toMatch(/IO_ERROR.*nope\.md/);
  });
});
