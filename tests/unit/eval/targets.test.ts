import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConstraintSet } from '../../../src-main/constraints/set';
import { evaluateOutputs } from '../../../src-main/constraints/evaluators';
import { readE2ECsv } from '../../../src-main/eval/e2e';
import { aligned, pieces } from '../../../src-main/eval/nlp';
import { buildTargets, COMPOSITIONS, CONTROLS, loadTargets } from '../../../src-main/eval/targets';
import { e2eDataDir } from '../../../src-main/data-paths';

const DEV = `${e2eDataDir()}/devset.csv`;
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

  it('derives targets that the source dev text itself meets, by the independent evaluators', () => {
    const dev = new Map(readE2ECsv(DEV).map((r) => [r.line, r]));
    for (const t of a.targets) {
      if (t.control === 'json-schema') continue;
      const row = dev.get(t.source.line!)!;
      expect(row.text).toBe(t.source.text);
      const set = parseConstraintSet({ version: 1, constraints: t.constraints });
      const verdicts = evaluateOutputs(set, [{ text: row.text, record: row.record }])[0]!;
      expect(verdicts.map((v) => [t.id, v.kind, v.satisfied])).toEqual(t.constraints.map((c) => [t.id, c.kind, true]));
      for (const c of t.constraints) {
        if (c.kind === 'length') expect([c.tokens >= 10, c.tokens <= 40, pieces(row.text).length]).toEqual([true, true, c.tokens]);
        // positions mean the same to the classifiers (pieces) and the evaluators (wink-nlp words)
        if (c.kind === 'pos' || c.kind === 'length' || c.kind === 'spans') expect(aligned(row.text)).toBe(true);
      }
    }
  });

  it('json-schema targets accept a matching dev record and reject an empty one', () => {
    const schemas = a.targets.filter((t) => t.control === 'json-schema');
    expect(schemas.length).toBe(4);
    const first = parseConstraintSet({ version: 1, constraints: schemas[0]!.constraints });
    const ok = { name: 'The Vaults', eatType: 'pub', food: 'Italian' };
    expect(evaluateOutputs(first, [{ text: '', record: ok }, { text: '', record: {} }]).map((v) => v[0]!.satisfied)).toEqual([true, false]);
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
