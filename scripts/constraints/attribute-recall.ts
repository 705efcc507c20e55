/**
 * How often the attribute evaluator finds each E2E field value in the human reference that realises it (dev set).
 * The references do not always mention every attribute, so 100% is not expected; a low figure points at a phrasing
 * the evaluator misses. Run: node --import tsx scripts/constraints/attribute-recall.ts [devset.csv]
 */
import { readFileSync } from 'node:fs';
import { expresses } from '../../src-main/constraints/evaluators/e2e';
import { e2eDataDir } from '../../src-main/data-paths';

const file = process.argv[2] ?? `${e2eDataDir()}/devset.csv`;
const lines = readFileSync(file, 'utf8').split(/\r?\n/).slice(1).filter(Boolean);
const parse = (line: string) => {
  const m = /^"((?:[^"]|"")*)","((?:[^"]|"")*)"$/.exec(line);
  return m ? [m[1]!.replace(/""/g, '"'), m[2]!.replace(/""/g, '"')] as const : null;
};
const stats = new Map<string, [number, number]>();
let rows = 0;
for (const line of lines) {
  const p = parse(line);
  if (!p) continue;
  rows++;
  for (const m of p[0].matchAll(/([^,[]+)\[([^\]]*)\]/g)) {
    const field = m[1]!.trim();
    const value = m[2]!;
    const key = `${field} = ${field === 'name' || field === 'near' ? '(any name)' : value}`;
    const s = stats.get(key) ?? [0, 0];
    s[1]++;
    if (expresses(field, value, p[1])) s[0]++;
    stats.set(key, s);
  }
}
console.log(`${file}: ${rows} references`);
let hit = 0;
let all = 0;
for (const [k, [a, b]] of [...stats].sort()) {
  hit += a;
  all += b;
  console.log(`${k.padEnd(34)} ${String(a).padStart(5)}/${String(b).padEnd(5)} ${((a / b) * 100).toFixed(1)}%`);
}
console.log(`${'all attributes'.padEnd(34)} ${String(hit).padStart(5)}/${String(all).padEnd(5)} ${((hit / all) * 100).toFixed(1)}%`);
