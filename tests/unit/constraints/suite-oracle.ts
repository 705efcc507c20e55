/**
 * The JSON-Schema-Test-Suite as the oracle of the compiler: for every schema the compiler compiles, every valid
 * instance (canonical form) is accepted and every invalid one rejected. Refusing a schema is allowed (it is
 * counted); disagreeing with the suite is a failure. One test per suite file (one test file per draft, so the two
 * drafts run in parallel workers).
 */
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SUITE_DIR, runCoverage } from '../../../src-main/constraints/coverage';
import { SUPPORTED_FORMATS } from '../../../src-main/constraints/compiler/strings';
import type { Draft } from '../../../src-main/constraints/compiler/json-schema';

export function suiteOracle(draft: Draft, dir: string): void {
  const suite = process.env.JSON_SCHEMA_TEST_SUITE ?? DEFAULT_SUITE_DIR;
  describe.skipIf(!existsSync(suite))(`JSON-Schema-Test-Suite oracle, ${dir}`, () => {
    const labels = existsSync(suite)
      ? readdirSync(join(suite, 'tests', dir)).filter((f) => f.endsWith('.json') && f !== 'format.json').map((f) => f.slice(0, -5))
      : [];
    labels.push(...SUPPORTED_FORMATS.filter((f) => existsSync(join(suite, 'tests', dir, 'optional', 'format', `${f}.json`))).map((f) => `format:${f}`));
    it.each(labels)(`${dir}: %s`, (label) => {
      const r = runCoverage({ suiteDir: suite, draft, only: [label] });
      expect(r.keywords).toHaveLength(1);
      const k = r.keywords[0]!;
      expect(k.tests).toBeGreaterThan(0);
      expect(r.failures, JSON.stringify(r.failures.slice(0, 5), null, 1)).toEqual([]);
      expect(k.passed + k.refused).toBe(k.tests);
    }, 300_000);
  });
}
