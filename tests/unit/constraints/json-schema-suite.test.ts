import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SUITE_DIR, runCoverage } from '../../../src-main/constraints/coverage';
import { suiteOracle } from './suite-oracle';

suiteOracle('2020-12', 'draft2020-12');

const suite = process.env.JSON_SCHEMA_TEST_SUITE ?? DEFAULT_SUITE_DIR;
describe.skipIf(!existsSync(suite))('claimed keywords', () => {
  it('claims the keywords of the brief and compiles nearly all of their schemas', () => {
    const r = runCoverage({ suiteDir: suite, draft: '2020-12', only: ['type', 'enum', 'const', 'required', 'minimum', 'maximum', 'pattern', 'allOf', 'anyOf'] });
    for (const k of r.keywords) {
      expect(k.claimed, k.keyword).toBe(true);
      expect(k.compiled, k.keyword).toBeGreaterThanOrEqual(k.schemas - 1);
    }
  }, 300_000);
});
