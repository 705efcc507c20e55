/**
 * `dlm-studio eval --quick` end to end on the tiny bundle from the training smoke test (npm run smoke:bundle):
 * the real engine, the real evaluators, the real targets file and E2E test set.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../../../src-main/cli/main';
import type { EvalResults } from '../../../src-main/eval/run';
import { COMPOSITIONS, CONTROLS } from '../../../src-main/eval/targets';
import { e2eDataDir } from '../../../src-main/data-paths';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TINY = join(ROOT, 'tests/.generated/tiny-e2e');
const TEST_SET = join(e2eDataDir(), 'testset_w_refs.csv');
const missing = !existsSync(join(TINY, 'manifest.json'))
  ? `${TINY} is absent (make it with npm run smoke:bundle)`
  : !existsSync(TEST_SET) ? `${TEST_SET} is absent (set E2E_DATA)` : '';

describe.skipIf(missing !== '')(`eval --quick on the tiny bundle${missing ? ` [skipped: ${missing}]` : ''}`, () => {
  it('writes results with every control, rates in [0, 1], guided and unguided, BLEU and per-field accuracy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlm-eval-'));
    const out = join(dir, 'quick.json');
    const stdout: string[] = [];
    const stderr: string[] = [];
    const samplesOut = join(dir, 'samples.jsonl');
    const argv = ['eval', '--quick', '--model', 'tiny-e2e', '--models', join(ROOT, 'tests/.generated'), '--device', 'cpu', '--test-set', TEST_SET, '--out', out, '--samples-out', samplesOut];
    const prev = { log: process.stdout.write, err: process.stderr.write };
    process.stdout.write = ((s: string) => (stdout.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (stderr.push(String(s)), true)) as typeof process.stderr.write;
    let code: number;
    try {
      code = await main(argv);
    } finally {
      process.stdout.write = prev.log;
      process.stderr.write = prev.err;
    }
    expect(code, stderr.join('')).toBe(0);
    const r = JSON.parse(readFileSync(out, 'utf8')) as EvalResults;
    expect(r.format).toBe('dlm-eval-results/1');
    expect(r.mode).toBe('quick');
    expect(r.model.id).toBe('tiny-e2e');
    expect(r.model.hash).toMatch(/^[0-9a-f]{16,}$/);
    expect(r.device?.active).toBe('cpu');
    expect(r.controls.map((c) => c.control)).toEqual([...CONTROLS, ...COMPOSITIONS]);
    for (const c of r.controls) {
      expect(c.error, `${c.control}: ${c.error}`).toBeUndefined();
      for (const side of [c.guided, c.unguided]) {
        expect(side, c.control).not.toBeNull();
        expect(side!.samples).toBe(2);
        for (const x of [side!.success, side!.meanScore]) {
          expect(x).toBeGreaterThanOrEqual(0);
          expect(x).toBeLessThanOrEqual(1);
        }
      }
    }
    // hard projection makes every record valid, whatever the (barely trained) model does
    expect(r.controls.find((c) => c.control === 'json-schema')!.guided!.success).toBe(1);
    expect(r.dataToText!.items).toBe(3);
    expect(r.dataToText!.bleu).toBeGreaterThanOrEqual(0);
    expect(r.dataToText!.bleu).toBeLessThanOrEqual(100);
    expect(r.textToRecord!.items).toBe(3);
    expect(Object.keys(r.textToRecord!.perField)).toContain('customer rating');
    const md = readFileSync(out.replace(/\.json$/, '.md'), 'utf8');
    expect(md).toContain('| attribute+length |');
    expect(md).toContain('TGen (challenge baseline, all 630 MRs) | 65.93');
    expect(stdout.join('')).toContain(`results: ${out}`);
    // --samples-out: every scored sample, and the rates in the results are their means
    const lines = readFileSync(samplesOut, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { control: string; guided: boolean; text: string; success: boolean; target: { kind: string }[] });
    // and each data-to-text text with its record, success = no slot error
    const d2t = lines.filter((x) => x.control === 'data-to-text');
    expect(d2t).toHaveLength(r.dataToText!.items);
    expect(d2t.filter((x) => x.success)).toHaveLength(r.dataToText!.slots!.exact);
    expect(lines).toHaveLength(r.controls.reduce((a, c) => a + c.guided!.samples + c.unguided!.samples, 0) + d2t.length);
    for (const c of r.controls) {
      for (const guided of [true, false]) {
        const mine = lines.filter((x) => x.control === c.control && x.guided === guided);
        const side = guided ? c.guided! : c.unguided!;
        expect(mine).toHaveLength(side.samples);
        expect(mine.filter((x) => x.success).length / mine.length).toBeCloseTo(side.success, 10);
        for (const x of mine) expect(typeof x.text).toBe('string');
      }
      expect(lines.find((x) => x.control === c.control)!.target.length).toBe(c.control.split('+').length);
    }
  }, 180_000);

  it('refuses bad flags by name', async () => {
    const stderr: string[] = [];
    const prev = process.stderr.write;
    process.stderr.write = ((s: string) => (stderr.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(['eval', '--quick', '--device', 'tpu'])).toBe(2);
      expect(await main(['eval', '--quick', '--steps', '0'])).toBe(2);
      expect(await main(['eval', '--quick', '--test-set', join(e2eDataDir(), 'devset.csv')])).toBe(2);
      expect(await main(['eval', '--quick', '--split', 'train'])).toBe(2);
      expect(await main(['eval', '--quick', '--split', 'dev', '--test-set', join(e2eDataDir(), 'testset_w_refs.csv')])).toBe(2);
      expect(await main(['eval', '--quick', '--sampler', 'euler'])).toBe(2);
      expect(await main(['eval', '--quick', '--sampler', 'ddim', '--eta', '2'])).toBe(2);
      expect(await main(['eval', '--quick', '--sampler', 'dpm2m', '--eta', '0.5'])).toBe(2);
      expect(await main(['eval', '--quick', '--guidance', 'foo=1'])).toBe(2);
      expect(await main(['eval', '--quick', '--guidance', 'stepSize=-1'])).toBe(2);
      expect(await main(['eval', '--quick', '--guidance', 'scaleToSteps=1'])).toBe(2);
    } finally {
      process.stderr.write = prev;
    }
    const text = stderr.join('');
    expect(text).toMatch(/--device must be one of/);
    expect(text).toMatch(/--steps must be at least 1/);
    expect(text).toMatch(/evaluated on the E2E test set/);
    expect(text).toMatch(/--split: unknown value "train" \(known: test, dev\)/);
    expect(text).toMatch(/--split dev reads devset.csv/);
    expect(text).toMatch(/--sampler must be one of ancestral, ddim, dpm2m \(got "euler"\)/);
    expect(text).toMatch(/--eta must be a number from 0 to 1 \(got "2"\)/);
    expect(text).toMatch(/--eta applies to --sampler ddim only \(the sampler is dpm2m\)/);
    expect(text).toMatch(/--guidance foo: not a guidance setting \(names: iterations, stepSize, strength, fluencyWeight, offLastSteps, scaleToSteps, exactTopK\)/);
    expect(text).toMatch(/--guidance stepSize=-1: Too small/);
    expect(text).toMatch(/--guidance scaleToSteps=1: .*expected boolean/);
  });
});
