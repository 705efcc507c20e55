import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConstraintSet } from '../../../src-main/constraints/set';
import { pieces } from '../../../src-main/eval/nlp';
import { buildTargets, COMPOSITIONS, CONTROLS, loadTargets } from '../../../src-main/eval/targets';

const DEV = '/work/shared/data/e2e/devset.csv';
const FIXTURE = 'tests/fixtures/eval/targets.json';

describe('eval targets', () => {
  const a = buildTargets({ devPath: DEV, seed: 7, perControl: 6 });

  it('is deterministic for a seed and changes with the seed', () => {
    expect(buildTargets({ devPath: DEV, seed: 7, perControl: 6 })).toEqual(a);
    const b = buildTargets({ devPath: DEV, seed: 8, perControl: 6 });
    expect(b.targets.map((t) => t.source.line)).not.toEqual(a.targets.map((t) => t.source.line));
  });

  it('covers every control and composition with valid constraint sets from the dev set', () => {
    const controls = new Set(a.targets.map((t) => t.control));
    for (const c of [...CONTROLS, ...COMPOSITIONS]) expect(controls.has(c)).toBe(true);
    expect(a.source.file).toBe('devset.csv');
    for (const t of a.targets) {
      expect(() => parseConstraintSet({ version: 1, constraints: t.constraints })).not.toThrow();
      expect(t.constraints.length).toBe(t.control.includes('+') ? 2 : 1);
    }
  });

  it('derives targets the source text itself satisfies', () => {
    for (const t of a.targets) {
      const text = t.source.text;
      for (const c of t.constraints) {
        if (c.kind === 'length') {
          expect(pieces(text!).length).toBe(c.tokens);
          expect(c.tokens).toBeGreaterThanOrEqual(10);
          expect(c.tokens).toBeLessThanOrEqual(40);
        }
        if (c.kind === 'pos') expect(c.tags.length).toBe(pieces(text!).length);
        if (c.kind === 'spans') for (const [s, e] of c.spans) expect(e).toBeLessThan(pieces(text!).length), expect(s).toBeLessThanOrEqual(e);
      }
    }
  });

  it('the committed fixture is what the script reproduces', () => {
    const committed = loadTargets(FIXTURE);
    const rebuilt = buildTargets({ devPath: DEV, seed: committed.seed, perControl: committed.perControl });
    expect(rebuilt).toEqual(committed);
    expect(JSON.parse(readFileSync(FIXTURE, 'utf8')).source.sha256).toBe(rebuilt.source.sha256);
  });

  it('refuses a targets file built from the test set, and names a missing dev file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eval-targets-'));
    const bad = join(dir, 'targets.json');
    writeFileSync(bad, JSON.stringify({ ...a, source: { file: 'testset_w_refs.csv', sha256: 'x' } }));
    expect(() => loadTargets(bad)).toThrow(/built from testset_w_refs\.csv; only the dev set/);
    writeFileSync(bad, JSON.stringify({ ...a, seed: 'one' }));
    expect(() => loadTargets(bad)).toThrow(/targets\.json: invalid targets file at seed/);
    expect(() => buildTargets({ devPath: '/nonexistent/devset.csv' })).toThrow(/devset\.csv/);
  });
});
