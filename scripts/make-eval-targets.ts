/**
 * Build the evaluation's control targets from the E2E dev set (never the test files).
 * Usage: tsx scripts/make-eval-targets.ts [--dev <devset.csv>] [--out tests/fixtures/eval/targets.json]
 *        [--seed 20221] [--per-control 40]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { buildTargets } from '../src-main/eval/targets';
import { e2eDataDir } from '../src-main/data-paths';
import { arg } from './arg';

const dev = arg('--dev', `${e2eDataDir()}/devset.csv`);
const out = resolve(arg('--out', 'tests/fixtures/eval/targets.json'));
const seed = Number(arg('--seed', '20221'));
const perControl = Number(arg('--per-control', '40'));
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${seed}`);
if (!Number.isInteger(perControl) || perControl < 1) throw new Error(`--per-control must be a positive integer, got ${perControl}`);
if (/test/i.test(dev.split('/').pop() ?? '')) throw new Error(`--dev ${dev}: targets come from the dev set only, never the test files`);

const file = buildTargets({ devPath: dev, seed, perControl });
mkdirSync(dirname(out), { recursive: true });
// one target per line keeps the file small and diffable
const body = JSON.stringify({ ...file, targets: [] }, null, 1).replace('"targets": []', `"targets": [\n${file.targets.map((t) => JSON.stringify(t)).join(',\n')}\n]`);
writeFileSync(out, body + '\n');
const counts: Record<string, number> = {};
for (const t of file.targets) counts[t.control] = (counts[t.control] ?? 0) + 1;
console.log(`${out}: ${file.targets.length} targets from ${file.source.file} (seed ${seed}): ${JSON.stringify(counts)}`);
