/**
 * Where the reference data sets live, without private absolute paths: `$DLM_SHARED_DATA` if set, else
 * `shared/data` beside the repository checkout (`<repo>/../shared/data`). `$E2E_DATA` overrides the E2E folder.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root: the nearest folder above this module (source or built) that holds package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export function sharedDataDir(): string {
  return process.env.DLM_SHARED_DATA ?? resolve(repoRoot(), '..', 'shared', 'data');
}

export function e2eDataDir(): string {
  return process.env.E2E_DATA ?? join(sharedDataDir(), 'e2e');
}

export function jsonSchemaSuiteDir(): string {
  return join(sharedDataDir(), 'json-schema-test-suite');
}
