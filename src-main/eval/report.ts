/** Markdown rendering of evaluation results (the table committed under docs/evaluation/). */
import { acceptWords, type ControlResult, type EvalResults, type SideStats } from './run';

const pct = (x: number | undefined | null) => (x === undefined || x === null || !Number.isFinite(x) ? '-' : (100 * x).toFixed(1));
const num = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

function side(s: SideStats | null): [string, string, string] {
  if (!s) return ['-', '-', '-'];
  return [pct(s.success), pct(s.meanScore), s.fluencyMean === null ? '-' : `${num(s.fluencyMean)} (${num(s.fluencyMedian)})`];
}

function publishedCell(c: ControlResult): string {
  if (!c.published) return '-';
  return `${c.published.success.toFixed(1)} / ${c.published.lmScore.toFixed(2)}`;
}

/** The figure of ours that matches the paper's metric (POS: mean per-position match; others: success). */
function comparable(c: ControlResult): string {
  if (!c.published || !c.guided) return '-';
  return pct(c.published.compare === 'score' ? c.guided.meanScore : c.guided.success);
}

/** The run's step spacing in words: --spacing's, else the bundle's (and its spacing for guided runs); empty when even. */
function spacingWords(s: EvalResults['settings']): string {
  if (s.sampler?.spacing !== undefined) return s.sampler.spacing !== 1 ? `, step spacing ${s.sampler.spacing}` : '';
  const d = s.defaultSpacing;
  if (!d) return '';
  const guided = d.guidedSpacing !== undefined && d.guidedSpacing !== d.spacing ? ` (${d.guidedSpacing} for guided runs)` : '';
  return d.spacing !== 1 || guided ? `, step spacing ${d.spacing}${guided}` : '';
}

/** Candidates per output in words: --candidates' for every run, else the bundle's for the runs that pin; empty for 1. */
function candidatesWords(s: EvalResults['settings'], masked: boolean): string {
  const rule = candidatesRule(s, masked);
  const chosen = s.sampler?.accept_at;
  // a level of 1 draws every candidate: nothing to say
  const words = chosen !== undefined ? (chosen < 1 ? String(chosen) : '')
    : s.acceptAtByKind || (s.acceptAt !== undefined && s.acceptAt < 1) ? acceptWords(s.acceptAt, s.acceptAtByKind) : '';
  const accept = rule && words ? `; guided outputs stop drawing at the first candidate the classifiers give p >= ${words}` : '';
  return rule + accept;
}

function candidatesRule(s: EvalResults['settings'], masked: boolean): string {
  const pinned = masked ? 'data-to-text: by reading the record back, text-to-record: by consensus' : 'pinned: by consensus';
  if (s.candidates !== undefined) return s.candidates > 1 ? `, each output chosen among ${s.candidates} candidates (guided: by the classifiers; ${pinned}; otherwise by the model's own check)` : '';
  const parts: string[] = [];
  if (s.pinnedCandidates !== undefined && s.pinnedCandidates > 1) {
    parts.push(masked
      ? `data-to-text outputs each the read-back pick of ${s.pinnedCandidates} candidates, text-to-record outputs the consensus of ${s.pinnedCandidates}`
      : `data-to-text and text-to-record outputs each the consensus of ${s.pinnedCandidates} candidates`);
  }
  if (s.guidedCandidates !== undefined && s.guidedCandidates > 1) parts.push(`guided outputs each the classifiers' pick of ${s.guidedCandidates} candidates`);
  if (s.freeCandidates !== undefined && s.freeCandidates > 1) parts.push(`unguided outputs each the model's pick of ${s.freeCandidates} candidates`);
  return parts.length ? `, ${parts.join(', ')}` : '';
}

export function renderMarkdown(r: EvalResults): string {
  const L: string[] = [];
  const s = r.settings;
  L.push(`# Evaluation: ${r.model.id} (${r.date.slice(0, 10)}, ${r.mode} mode)`);
  L.push('');
  L.push('Produced by `dlm-studio eval` (src-main/eval/). Numbers are what this run measured.');
  L.push('');
  L.push('| | |');
  L.push('| --- | --- |');
  L.push(`| date | ${r.date} |`);
  L.push(`| hardware | ${r.hardware.cpu}, ${r.hardware.cores} logical cores visible, ${r.hardware.memoryGiB} GiB, ${r.hardware.platform}, Node ${r.hardware.node} |`);
  L.push(`| device | ${r.device ? `${r.device.active} (requested ${r.device.requested})${denoiserWords(r)}` : '-'} |`);
  L.push(`| bundle | ${r.model.id} ${r.model.version}, hash \`${r.model.hash}\` |`);
  L.push(`| classifiers | ${r.model.controls.join(', ') || 'none'}; scorer: ${r.model.hasScorer ? 'yes' : 'no'} |`);
  L.push(`| settings | ${s.steps} steps${s.guidedSteps !== undefined ? ` (${s.guidedSteps} for guided runs)` : ''}, ${s.sampler ? `sampler ${s.sampler.method ?? 'ancestral'}${s.sampler.method === 'ddim' ? ` (eta ${s.sampler.eta ?? 0})` : ''}${spacingWords(s)}, ` : ''}${s.samplesPerTarget} samples per target, up to ${s.targetsPerControl} targets per control, unguided pool ${s.unguidedPool}, seed ${s.seed}${candidatesWords(s, r.model.kind === 'masked-diffusion')}${s.overrides ? `, per-control overrides ${JSON.stringify(s.overrides)}` : ''}${s.guidance ? `, guidance ${JSON.stringify(s.guidance)}` : ''} |`);
  L.push(`| targets | ${s.targets.file} (sha256 \`${s.targets.sha256.slice(0, 16)}...\`, seed ${s.targets.seed}; built from the dev set) |`);
  L.push(`| wall time | ${(r.seconds / 60).toFixed(1)} min${s.maxMinutes !== undefined ? ` (budget ${s.maxMinutes} min)` : ''} |`);
  L.push('');
  L.push('## Control success and fluency (E2E targets from the dev set)');
  L.push('');
  L.push('Success: % of samples satisfying every constraint of their target (independent evaluators: wink-nlp, compromise,');
  L.push('VADER, ajv). Score: mean per-constraint score (POS: fraction of positions whose tag matches). Perplexity: mean');
  L.push('(median) under the bundle\'s autoregressive scorer; it is a different LM from the paper\'s, so lm-scores are not');
  L.push('directly comparable. "Comparable" is our guided figure in the paper\'s metric.');
  L.push('');
  L.push('| control | targets | samples (g/u) | guided success % | guided score % | guided ppl | unguided success % | unguided score % | unguided ppl | comparable % | Diffusion-LM success / lm-score |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const c of r.controls) {
    const g = side(c.guided);
    const u = side(c.unguided);
    L.push(`| ${c.control} | ${c.targets} | ${c.guided?.samples ?? 0}/${c.unguided?.samples ?? 0} | ${g[0]} | ${g[1]} | ${g[2]} | ${u[0]} | ${u[1]} | ${u[2]} | ${comparable(c)} | ${publishedCell(c)} |`);
  }
  const notes = r.controls.filter((c) => c.error || c.warnings.length || c.perKind);
  if (notes.length) {
    L.push('');
    for (const c of notes) {
      if (c.perKind) L.push(`- ${c.control}: guided success per part: ${Object.entries(c.perKind).map(([k, v]) => `${k} ${pct(v)}%`).join(', ')}`);
      for (const w of c.warnings) L.push(`- ${c.control}: warning: ${w}`);
      if (c.error) L.push(`- ${c.control}: error: ${c.error}`);
    }
  }
  const timed = r.controls.filter((c) => c.guided && c.guided.samples > 0);
  if (timed.length) {
    L.push('');
    L.push(`Guided generation time per output (seconds, scoring excluded; candidates drawn per output): ${timed.map((c) => `${c.control} ${c.guided!.secondsPerSample.toFixed(2)}${c.guided!.candidatesDrawn !== undefined ? ` (${c.guided!.candidatesDrawn.toFixed(2)})` : ''}`).join(', ')}.`);
  }
  const ex = r.controls.filter((c) => c.examples);
  if (ex.length) {
    L.push('');
    L.push('Example outputs (first sample of the first target; the unguided one is scored against the same target):');
    L.push('');
    for (const c of ex) {
      const e = c.examples!;
      const clip = (t: string) => JSON.stringify(t.length > 160 ? `${t.slice(0, 160)}...` : t);
      L.push(`- ${c.control} \`${e.target.length > 200 ? `${e.target.slice(0, 200)}...` : e.target}\`: guided ${clip(e.guided)}; unguided ${e.unguided === null ? '-' : clip(e.unguided)}`);
    }
  }
  L.push('');
  L.push('## Unconditional samples (the unguided pool)');
  L.push('');
  const u = r.unconditional;
  if (u) {
    L.push(`${u.samples} samples: ${u.parsedRecords} record segments parse as JSON, ${u.validRecords} are valid records (every field and value known to the bundle) = ${pct(u.validShare)}%; ${u.distinct} distinct = ${pct(u.distinctShare)}%.`);
    if (u.examples.length) {
      L.push('');
      for (const e of u.examples) L.push(`- ${JSON.stringify(e.record)} ${JSON.stringify(e.text)}`);
    }
  } else L.push('Unconditional samples: none (the pool failed or was empty).');
  if (r.notes?.length) {
    L.push('');
    for (const n of r.notes) L.push(`Note: ${n}.`);
  }
  L.push('');
  const split = r.settings.split ?? 'test';
  L.push(`## Data-to-text and text-to-record (E2E ${split} set)`);
  L.push('');
  const d = r.dataToText;
  if (d) {
    L.push(`Data-to-text (record held on the canvas, text generated): BLEU-4 over ${d.items} of ${d.totalMrs} ${split} MRs, multi-reference`);
    L.push(`(${d.references} references, grouped by MR as in the official evaluation; mteval-v13a tokenization, lowercased).`);
    if (d.lengthHeld) L.push(`The text's length was held where the bundle's text_length rule puts it for the record in ${d.lengthHeld} of ${d.items} items.`);
    L.push('');
    L.push('| system | BLEU | n-gram precisions (1-4) | brevity penalty |');
    L.push('| --- | ---: | --- | ---: |');
    L.push(`| this bundle (${d.items} MRs) | ${num(d.bleu)} | ${d.precisions.map((p) => num(p, 3)).join(' / ')} | ${num(d.brevityPenalty, 3)} |`);
    L.push(`| TGen (challenge baseline, all 630 MRs) | ${d.tgenBleu.toFixed(2)} | | |`);
    if (d.slots) {
      const sl = d.slots;
      L.push('');
      L.push(`Slot errors (the record's fields against the text, E2E phrasings; src-main/eval/slots.ts): ${num(100 * sl.errorRate)}% of ${sl.fields} fields — ${sl.missing} missing, ${sl.wrong} wrong (another value written), ${sl.added} added (a field the record lacks); ${sl.exact} of ${sl.texts} texts without one.`);
    }
    if (d.stoppedEarly) L.push(`\nStopped early: ${d.stoppedEarly} (BLEU is over the MRs done).`);
    if (d.error) L.push(`\nError: ${d.error}`);
    if (d.examples.length) {
      L.push('');
      L.push('Examples:');
      L.push('');
      for (const e of d.examples) L.push(`- \`${JSON.stringify(e.record)}\` -> ${JSON.stringify(e.text)}`);
    }
  } else L.push('Data-to-text: not run.');
  L.push('');
  const t = r.textToRecord;
  if (t) {
    L.push(`Text-to-record (first reference text held, record generated): ${t.items} texts, ${t.parsed} records parsed, ${t.exact} exact` +
      (t.meanFieldAccuracy !== undefined ? `; mean per-field accuracy ${num(100 * t.meanFieldAccuracy, 1)}%` : '') +
      (t.skipped ? `; ${t.skipped} reference text(s) skipped, longer than the text segment` : '') + '.');
    L.push('');
    L.push('| field | gold mentions | correct | accuracy % | spurious |');
    L.push('| --- | ---: | ---: | ---: | ---: |');
    for (const [f, v] of Object.entries(t.perField)) L.push(`| ${f} | ${v.gold} | ${v.correct} | ${pct(v.accuracy)} | ${v.spurious} |`);
    if (t.stoppedEarly) L.push(`\nStopped early: ${t.stoppedEarly}.`);
    if (t.error) L.push(`\nError: ${t.error}`);
  } else L.push('Text-to-record: not run.');
  L.push('');
  L.push('Published references: Diffusion-LM, Li et al. 2022, Table 2 (E2E); TGen, E2E NLG Challenge baseline (test set).');
  L.push('E2E data: Novikova, Dušek and Rieser (2017), CC BY-SA 4.0.');
  return L.join('\n') + '\n';
}

/** The denoiser weights the runs took: one for all, or which parts ran on which (precision auto mixes them). */
export function denoiserWords(r: Pick<EvalResults, 'device' | 'precisions'>): string {
  if (r.device?.precision) return `, ${r.device.precision} denoiser`;
  const byPrecision = new Map<string, string[]>();
  for (const [part, ps] of Object.entries(r.precisions ?? {})) for (const p of ps) byPrecision.set(p, [...(byPrecision.get(p) ?? []), part]);
  if (byPrecision.size === 0) return '';
  return `, denoiser ${[...byPrecision].map(([p, parts]) => `${p} (${parts.join(', ')})`).join('; ')}`;
}
