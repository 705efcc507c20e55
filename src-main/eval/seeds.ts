/**
 * `dlm-studio eval --seeds a,b,...`: the same evaluation at several base seeds, and what they say together. At 160
 * samples per control one seed moves a control's success by several points, so a close call against a target is read
 * off the mean over seeds, with the spread beside it.
 */
import type { EvalResults } from './run';

export interface SeedStat {
  /** Per seed, in the order of `seeds` (null where that run has no figure). */
  values: (number | null)[];
  mean: number | null;
  min: number | null;
  max: number | null;
}

export interface SeedsSummary {
  format: 'dlm-eval-seeds/1';
  model: EvalResults['model'];
  seeds: number[];
  /** Each seed's results file. */
  files: string[];
  controls: { control: string; guidedSuccess: SeedStat; unguidedSuccess: SeedStat; guidedPerplexity: SeedStat }[];
  dataToTextBleu: SeedStat | null;
  textToRecordFields: SeedStat | null;
  validUnconditional: SeedStat | null;
}

function stat(values: (number | null | undefined)[]): SeedStat {
  const v = values.map((x) => (typeof x === 'number' && Number.isFinite(x) ? x : null));
  const known = v.filter((x): x is number => x !== null);
  if (!known.length) return { values: v, mean: null, min: null, max: null };
  return { values: v, mean: known.reduce((a, b) => a + b, 0) / known.length, min: Math.min(...known), max: Math.max(...known) };
}

export function summarizeSeeds(seeds: number[], runs: EvalResults[], files: string[]): SeedsSummary {
  if (runs.length !== seeds.length || !runs.length) throw new Error(`summarizeSeeds: ${runs.length} runs for ${seeds.length} seeds`);
  const names = [...new Set(runs.flatMap((r) => r.controls.map((c) => c.control)))];
  const pick = (name: string) => runs.map((r) => r.controls.find((c) => c.control === name));
  const some = <T>(xs: (T | null | undefined)[]) => xs.some((x) => x !== null && x !== undefined);
  const d2t = runs.map((r) => r.dataToText?.bleu);
  const t2r = runs.map((r) => r.textToRecord?.meanFieldAccuracy);
  const unc = runs.map((r) => r.unconditional?.validShare);
  return {
    format: 'dlm-eval-seeds/1',
    model: runs[0]!.model,
    seeds,
    files,
    controls: names.map((control) => {
      const cs = pick(control);
      return {
        control,
        guidedSuccess: stat(cs.map((c) => c?.guided?.success)),
        unguidedSuccess: stat(cs.map((c) => c?.unguided?.success)),
        guidedPerplexity: stat(cs.map((c) => c?.guided?.fluencyMean)),
      };
    }),
    dataToTextBleu: some(d2t) ? stat(d2t) : null,
    textToRecordFields: some(t2r) ? stat(t2r) : null,
    validUnconditional: some(unc) ? stat(unc) : null,
  };
}

const pct = (x: number | null) => (x === null ? '-' : (100 * x).toFixed(1));
const num = (x: number | null) => (x === null ? '-' : x.toFixed(2));

export function renderSeedsMarkdown(s: SeedsSummary): string {
  const head = `| | ${s.seeds.map((x) => `seed ${x}`).join(' | ')} | mean | range |`;
  const rule = `| --- | ${s.seeds.map(() => '---:').join(' | ')} | ---: | ---: |`;
  const row = (label: string, st: SeedStat, f: (x: number | null) => string) =>
    `| ${label} | ${st.values.map(f).join(' | ')} | **${f(st.mean)}** | ${f(st.min)}-${f(st.max)} |`;
  const L = [
    `# Evaluation over ${s.seeds.length} seeds: ${s.model.id} ${s.model.version}`,
    '',
    `Produced by \`dlm-studio eval --seeds ${s.seeds.join(',')}\`: the same evaluation at each base seed (every target's`,
    'samples draw other seeds), and the mean over them. Each run is in its own file:',
    '',
    ...s.files.map((f, i) => `- seed ${s.seeds[i]}: ${f}`),
    '',
    '## Guided success % per control',
    '',
    head,
    rule,
    ...s.controls.map((c) => row(c.control, c.guidedSuccess, pct)),
    '',
    '## Unguided success % and guided perplexity per control',
    '',
    head,
    rule,
    ...s.controls.flatMap((c) => [row(`${c.control}, unguided`, c.unguidedSuccess, pct), row(`${c.control}, guided ppl`, c.guidedPerplexity, num)]),
  ];
  const others: [string, SeedStat | null, (x: number | null) => string][] = [
    ['data-to-text BLEU', s.dataToTextBleu, num],
    ['text-to-record field accuracy %', s.textToRecordFields, pct],
    ['valid unconditional records %', s.validUnconditional, pct],
  ];
  if (others.some(([, st]) => st)) {
    L.push('', '## Data-to-text, text-to-record, unconditional', '', head, rule);
    for (const [label, st, f] of others) if (st) L.push(row(label, st, f));
  }
  return L.join('\n') + '\n';
}
