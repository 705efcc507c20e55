/**
 * Coverage of the JSON Schema compiler over the JSON-Schema-Test-Suite.
 *
 * For every schema of tests/<draft>/*.json (and the format assertion tests in optional/format/ for the formats
 * the compiler supports), compile it; a schema the compiler refuses (a named ConstraintCompileError) is counted as
 * refused. For every schema it compiles, each `valid: true` instance, in canonical form, must be accepted and
 * each `valid: false` instance rejected: any disagreement is a failure.
 *
 * Run: node --import tsx src-main/constraints/coverage.ts [suiteDir] [--draft 2020-12|7|all] [--json]
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConstraintCompileError } from './compiler/errors';
import { CLAIMED_KEYWORDS, compileJsonSchema, type Draft } from './compiler/json-schema';
import { SUPPORTED_FORMATS } from './compiler/strings';
import { cp } from './compiler/lang';
import { jsonSchemaSuiteDir } from '../data-paths';

export const DEFAULT_SUITE_DIR = jsonSchemaSuiteDir();

export interface KeywordCoverage {
  keyword: string;
  /** Whether the compiler claims this keyword. */
  claimed: boolean;
  schemas: number;
  /** Schemas compiled (not refused). */
  compiled: number;
  tests: number;
  /** Tests of compiled schemas whose verdict agrees with the suite. */
  passed: number;
  /** Tests of compiled schemas that disagree. */
  failed: number;
  /** Tests of refused schemas. */
  refused: number;
}

export interface CoverageFailure {
  file: string;
  schema: string;
  test: string;
  valid: boolean;
  canonical: string;
}

export interface CoverageReport {
  draft: Draft;
  keywords: KeywordCoverage[];
  totals: { schemas: number; compiled: number; tests: number; passed: number; failed: number; refused: number };
  failures: CoverageFailure[];
  /** Refusal messages by code, with counts. */
  refusals: Record<string, number>;
  skipped: { file: string; why: string }[];
  ms: number;
  /** The printable table (formatCoverage of this report). */
  table: string;
}

interface SuiteCase {
  description: string;
  schema: unknown;
  tests: { description: string; data: unknown; valid: boolean }[];
}

/** Suite files named after something other than the keyword they test. */
const FILE_KEYWORD: Record<string, string> = {
  'if-then-else': 'if', ref: '$ref', refRemote: '$ref', anchor: '$ref', defs: '$ref', definitions: '$ref',
};

const DIR_OF: Record<Draft, string> = { '2020-12': 'draft2020-12', '7': 'draft7' };

/** Files of the suite used for one draft: [keyword label, path]. */
function suiteFiles(suiteDir: string, draft: Draft): { label: string; path: string; file: string }[] {
  const dir = join(suiteDir, 'tests', DIR_OF[draft]);
  const out: { label: string; path: string; file: string }[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.json')) continue;
    out.push({ label: f.replace(/\.json$/, ''), path: join(dir, f), file: `${DIR_OF[draft]}/${f}` });
  }
  const fmtDir = join(dir, 'optional', 'format');
  if (existsSync(fmtDir)) {
    for (const name of SUPPORTED_FORMATS) {
      const p = join(fmtDir, `${name}.json`);
      if (existsSync(p)) out.push({ label: `format:${name}`, path: p, file: `${DIR_OF[draft]}/optional/format/${name}.json` });
    }
  }
  return out;
}

export interface CoverageOptions {
  suiteDir?: string;
  draft?: Draft;
  /** Per-schema compile limits. */
  timeLimitMs?: number;
  maxStates?: number;
  /** Only files whose label is listed. */
  only?: string[];
}

export function runCoverage(options: CoverageOptions = {}): CoverageReport {
  const t0 = performance.now();
  const suiteDir = options.suiteDir ?? DEFAULT_SUITE_DIR;
  const draft = options.draft ?? '2020-12';
  const claimed = new Set<string>(CLAIMED_KEYWORDS);
  // the suite's remote documents, served (as its README asks) at http://localhost:1234/
  const remotes = (uri: string): unknown => {
    const prefix = 'http://localhost:1234/';
    if (!uri.startsWith(prefix)) return undefined;
    const file = join(suiteDir, 'remotes', uri.slice(prefix.length));
    return existsSync(file) && file.endsWith('.json') ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
  };
  const keywords: KeywordCoverage[] = [];
  const failures: CoverageFailure[] = [];
  const refusals: Record<string, number> = {};
  const skipped: { file: string; why: string }[] = [];
  for (const { label, path, file } of suiteFiles(suiteDir, draft)) {
    if (options.only && !options.only.includes(label)) continue;
    if (label === 'format') {
      // The required format.json tests check that format is only an annotation by default; the compiler asserts
      // formats (as Ajv with ajv-formats does), so its oracle is the optional/format assertion tests instead.
      skipped.push({ file, why: 'format is asserted, not annotation-only: checked against optional/format/*.json' });
      continue;
    }
    const cases = JSON.parse(readFileSync(path, 'utf8')) as SuiteCase[];
    const kw = label.startsWith('format:') ? 'format' : (FILE_KEYWORD[label] ?? label);
    const k: KeywordCoverage = { keyword: label, claimed: claimed.has(kw), schemas: 0, compiled: 0, tests: 0, passed: 0, failed: 0, refused: 0 };
    for (const c of cases) {
      k.schemas++;
      k.tests += c.tests.length;
      let compiled;
      try {
        compiled = compileJsonSchema(c.schema, {
          draft, timeLimitMs: options.timeLimitMs ?? 20_000, maxStates: options.maxStates ?? 50_000, loadRemote: remotes,
        });
      } catch (e) {
        if (!(e instanceof ConstraintCompileError)) throw new Error(`${file} "${c.description}": compiler crashed: ${(e as Error).stack}`);
        k.refused += c.tests.length;
        const key = `${e.code}${e.keyword ? ` ${e.keyword}` : ''}`;
        refusals[key] = (refusals[key] ?? 0) + 1;
        continue;
      }
      k.compiled++;
      for (const t of c.tests) {
        const canonical = compiled.canonicalize(t.data);
        const accepted = compiled.dfa.test(cp(canonical));
        if (accepted === t.valid) k.passed++;
        else {
          k.failed++;
          failures.push({ file, schema: c.description, test: t.description, valid: t.valid, canonical });
        }
      }
    }
    keywords.push(k);
  }
  const totals = { schemas: 0, compiled: 0, tests: 0, passed: 0, failed: 0, refused: 0 };
  for (const k of keywords) {
    totals.schemas += k.schemas;
    totals.compiled += k.compiled;
    totals.tests += k.tests;
    totals.passed += k.passed;
    totals.failed += k.failed;
    totals.refused += k.refused;
  }
  const report: CoverageReport = { draft, keywords, totals, failures, refusals, skipped, ms: performance.now() - t0, table: '' };
  report.table = formatCoverage(report);
  return report;
}

export function formatCoverage(r: Omit<CoverageReport, 'table'>): string {
  const rows = [['keyword (file)', 'claimed', 'schemas', 'compiled', 'tests', 'passed', 'failed', 'refused']];
  for (const k of r.keywords) {
    rows.push([k.keyword, k.claimed ? 'yes' : 'no', `${k.schemas}`, `${k.compiled}`, `${k.tests}`, `${k.passed}`, `${k.failed}`, `${k.refused}`]);
  }
  const t = r.totals;
  rows.push(['TOTAL', '', `${t.schemas}`, `${t.compiled}`, `${t.tests}`, `${t.passed}`, `${t.failed}`, `${t.refused}`]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [`JSON-Schema-Test-Suite, draft ${r.draft} (${(r.ms / 1000).toFixed(1)} s)`, line(rows[0]!), ...rows.slice(1).map(line)];
  if (r.skipped.length) out.push('', ...r.skipped.map((s) => `skipped ${s.file}: ${s.why}`));
  if (Object.keys(r.refusals).length) {
    out.push('', 'refusals (schemas): ' + Object.entries(r.refusals).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', '));
  }
  if (r.failures.length) {
    out.push('', `FAILURES (${r.failures.length}):`);
    for (const f of r.failures.slice(0, 50)) out.push(`  ${f.file} | ${f.schema} | ${f.test} | valid=${f.valid} | ${f.canonical.slice(0, 80)}`);
  }
  return out.join('\n');
}

function main(argv: string[]): void {
  const args = argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const suiteDir = args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1]!.startsWith('--'))) ?? DEFAULT_SUITE_DIR;
  const which = opt('--draft') ?? 'all';
  const drafts: Draft[] = which === 'all' ? ['2020-12', '7'] : [which === '7' || which === 'draft7' ? '7' : '2020-12'];
  const only = opt('--only')?.split(',');
  const reports = drafts.map((draft) => runCoverage({ suiteDir, draft, only }));
  if (args.includes('--json')) console.log(JSON.stringify(reports.map(({ table: _t, ...r }) => r), null, 1));
  else console.log(reports.map((r) => r.table).join('\n\n'));
  if (reports.some((r) => r.failures.length > 0)) process.exitCode = 1;
}

if (process.argv[1] && /coverage\.ts$/.test(process.argv[1])) main(process.argv);
