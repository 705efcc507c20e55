/**
 * The JSON-Schema-Test-Suite as the oracle of the compiler: for every schema the compiler compiles, every valid
 * instance (canonical form) is accepted and every invalid one rejected. Refusing a schema is allowed (it is
 * counted); disagreeing with the suite is a failure. One test per suite file.
 */
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SUITE_DIR, runCoverage } from '../../../src-main/constraints/coverage';
import { SUPPORTED_FORMATS } from '../../../src-main/constraints/compiler/strings';

const suite = process.env.JSON_SCHEMA_TEST_SUITE ?? DEFAULT_SUITE_DIR;
const drafts = [['2020-12', 'draft2020-12'], ['7', 'draft7']] as const;

describe.skipIf(!existsSync(suite))('JSON-Schema-Test-Suite oracle', () => {
  for (const [draft, dir] of drafts) {
    const labels = readdirSync(join(suite, 'tests', dir)).filter((f) => f.endsWith('.json') && f !== 'format.json').map((f) => f.slice(0, -5));
    labels.push(...SUPPORTED_FORMATS.filter((f) => existsSync(join(suite, 'tests', dir, 'optional', 'format', `${f}.json`))).map((f) => `format:${f}`));
    it.each(labels)(`${dir}: %s`, (label) => {
      const r = runCoverage({ suiteDir: suite, draft, only: [label] });
      expect(r.keywords).toHaveLength(1);
      const k = r.keywords[0]!;
      expect(k.tests).toBeGreaterThan(0);
      expect(r.failures, JSON.stringify(r.failures.slice(0, 5), null, 1)).toEqual([]);
      expect(k.passed + k.refused).toBe(k.tests);
    }, 180_000);
  }

  it('claims the keywords of the brief and compiles most of their schemas', () => {
    const r = runCoverage({ suiteDir: suite, draft: '2020-12', only: ['type', 'enum', 'const', 'required', 'minimum', 'maximum', 'pattern', 'allOf', 'anyOf'] });
    for (const k of r.keywords) {
      expect(k.claimed, k.keyword).toBe(true);
      expect(k.compiled, k.keyword).toBeGreaterThanOrEqual(k.schemas - 1);
    }
  }, 180_000);
});
