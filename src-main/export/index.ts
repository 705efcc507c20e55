/**
 * Export runs as JSONL, CSV or Markdown, each carrying the full recipe, and read a recipe back from any
 * of the three (so an exported file can be dropped back in to reproduce the run).
 */
import { z } from 'zod';
import { parseConstraintSet, samplerSettings } from '../constraints/set';
import { DENOISER_PRECISIONS, DEVICE_PREFERENCES, type DenoiserPrecision, type DevicePreference } from '../engine/types';
import type { ExportFormat, ImportedRecipe, RecipeImportResult, RunRecipe, RunRecord, StoredOutput } from '../api/contract';
import { ApiError } from '../api/errors';
import { parseCsv, toCsv } from './csv';

export { writeFileAtomic } from './atomic';

export interface ExportItem {
  run: RunRecord;
  outputs: StoredOutput[];
}

export const EXPORT_EXTENSIONS: Record<ExportFormat, string> = { jsonl: '.jsonl', csv: '.csv', markdown: '.md' };
export const RECIPE_FENCE = 'json dlm-studio-recipe';

export function exportRuns(items: ExportItem[], format: ExportFormat): string {
  switch (format) {
    case 'jsonl':
      return toJsonl(items);
    case 'csv':
      return toCsvExport(items);
    case 'markdown':
      return toMarkdown(items);
  }
}

function runHeader(run: RunRecord) {
  return { runId: run.id, status: run.status, createdAt: run.createdAt, finishedAt: run.finishedAt, timings: run.timings, error: run.error };
}

function outputFields(o: StoredOutput) {
  return { index: o.index, seed: o.seed, text: o.text, record: o.record, recordText: o.recordText, tokens: o.tokens, constraints: o.constraints, fluency: o.fluency };
}

function toJsonl(items: ExportItem[]): string {
  const lines: string[] = [];
  for (const { run, outputs } of items) {
    lines.push(JSON.stringify({ type: 'recipe', ...runHeader(run), recipe: run.recipe }));
    for (const o of outputs) lines.push(JSON.stringify({ type: 'output', runId: run.id, ...outputFields(o) }));
  }
  return lines.join('\n') + '\n';
}

const CSV_HEADER = ['run_id', 'status', 'index', 'seed', 'text', 'record', 'satisfied', 'constraints', 'fluency', 'model', 'device', 'steps', 'recipe'];

function satisfiedCount(o: StoredOutput): string {
  return o.constraints.length ? `${o.constraints.filter((c) => c.satisfied).length}/${o.constraints.length}` : '';
}

function toCsvExport(items: ExportItem[]): string {
  const rows: string[][] = [];
  for (const { run, outputs } of items) {
    const r = run.recipe;
    const common = [`${r.model.id}@${r.model.version ?? '?'}`, `${r.device.requested}->${r.device.active ?? '?'}`, String(r.steps), JSON.stringify(r)];
    if (outputs.length === 0) rows.push([String(run.id), run.status, '', '', '', '', '', '', '', ...common]);
    for (const o of outputs) {
      rows.push([
        String(run.id),
        run.status,
        String(o.index),
        String(o.seed),
        o.text,
        o.record === null ? o.recordText : JSON.stringify(o.record),
        satisfiedCount(o),
        JSON.stringify(o.constraints),
        o.fluency === null ? '' : String(o.fluency),
        ...common,
      ]);
    }
  }
  return toCsv(CSV_HEADER, rows);
}

function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

function toMarkdown(items: ExportItem[]): string {
  const out: string[] = ['# DLM Studio export', ''];
  for (const { run, outputs } of items) {
    const r = run.recipe;
    const setName = r.constraintSet.name ? `${r.constraintSet.name}${r.constraintSet.version ? ` v${r.constraintSet.version}` : ''}` : 'unsaved constraint set';
    out.push(`## Run ${run.id}: ${mdCell(setName)} on ${mdCell(r.model.id)} (${run.status})`, '');
    out.push('| | |', '| --- | --- |');
    out.push(`| Model | ${mdCell(r.model.id)} ${mdCell(r.model.version ?? '')}${r.model.hash ? ` (\`${r.model.hash.slice(0, 12)}\`)` : ''} |`);
    out.push(`| Device | requested ${r.device.requested}, ran on ${r.device.active ?? 'unknown'}${r.device.precision ? ` (${r.device.precision} denoiser)` : ''} |`);
    out.push(`| Seed, steps, samples | ${r.seed}, ${r.steps}, ${r.samples} |`);
    if (r.model.kind !== 'masked-diffusion') out.push(`| Sampler | ${r.sampler.method === 'ddim' ? `ddim (eta ${r.sampler.eta})` : (r.sampler.method ?? 'ancestral')}${r.sampler.spacing !== undefined && r.sampler.spacing !== 1 ? `, steps spaced ${r.sampler.spacing}` : ''} |`);
    out.push(`| Constraints | ${r.constraintSet.body.constraints.map((c) => c.kind).join(', ') || 'none'} |`);
    if (run.timings) out.push(`| Timings | total ${Math.round(run.timings.totalMs)} ms, ${run.timings.perStepMs.toFixed(1)} ms/step |`);
    if (run.error) out.push(`| Error | ${mdCell(run.error)} |`);
    out.push('', `Created ${run.createdAt}.`, '');
    if (outputs.length) {
      out.push('| # | Text | Record | Satisfied | Fluency (ppl) |', '| ---: | --- | --- | :---: | ---: |');
      for (const o of outputs) {
        const record = o.record === null ? o.recordText : JSON.stringify(o.record);
        out.push(`| ${o.index} | ${mdCell(o.text)} | ${record ? `\`${mdCell(record).replace(/`/g, "'")}\`` : ''} | ${satisfiedCount(o)} | ${o.fluency === null ? '' : o.fluency.toFixed(2)} |`);
      }
      out.push('');
    } else {
      out.push('_No outputs._', '');
    }
    out.push('<details><summary>Recipe (drop this file into the studio to reproduce the run)</summary>', '');
    out.push('```' + RECIPE_FENCE, JSON.stringify({ runId: run.id, outputs: outputs.length, recipe: r }, null, 2), '```', '', '</details>', '');
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------

const nullableString = z.string().max(500).nullable();
export const recipeSchema = z
  .object({
    format: z.literal('dlm-studio-recipe/1'),
    model: z.object({ id: z.string().min(1).max(200), version: nullableString, hash: nullableString, kind: z.string().max(200).optional() }).strict(),
    device: z.object({ requested: z.enum(DEVICE_PREFERENCES as [DevicePreference, ...DevicePreference[]]), active: nullableString, precision: z.enum(DENOISER_PRECISIONS as [DenoiserPrecision, ...DenoiserPrecision[]]).nullable().optional() }).strict(),
    seed: z.number().int().min(0).max(0xffffffff),
    steps: z.number().int().min(1).max(2000),
    samples: z.number().int().min(1).max(1024),
    sampler: samplerSettings,
    constraintSet: z
      .object({
        id: z.number().int().nullable(),
        name: z.string().max(200).nullable(),
        version: z.number().int().nullable(),
        body: z.unknown().transform((v, ctx) => {
          try {
            return parseConstraintSet(v);
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
            return z.NEVER;
          }
        }),
      })
      .strict(),
    app: z.object({ name: z.string().max(200), version: z.string().max(100) }).strict(),
  })
  .strict();

function importError(where: string, message: string): ApiError {
  return new ApiError('IMPORT_FAILED', `${where}: ${message}`);
}

function validateRecipe(value: unknown, where: string): RunRecipe {
  const r = recipeSchema.safeParse(value);
  if (r.success) return r.data as RunRecipe;
  const issue = r.error.issues[0]!;
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  throw importError(where, `recipe${path}: ${issue.message}`);
}

export function detectFormat(content: string): ExportFormat {
  const head = content.replace(/^\uFEFF/, '').trimStart();
  if (head.startsWith('{')) return 'jsonl';
  if (content.includes('```' + RECIPE_FENCE)) return 'markdown';
  if (/^run_id,/.test(head)) return 'csv';
  throw importError('file', 'not a DLM Studio export (expected JSONL starting with "{", CSV with a run_id header, or Markdown with a recipe block)');
}

export function importRecipes(content: string, format: ExportFormat | 'auto' = 'auto'): RecipeImportResult {
  const fmt = format === 'auto' ? detectFormat(content) : format;
  const recipes = fmt === 'jsonl' ? fromJsonl(content) : fmt === 'csv' ? fromCsv(content) : fromMarkdown(content);
  if (recipes.length === 0) throw importError('file', `no recipe found in this ${fmt} file`);
  return { format: fmt, recipes };
}

function fromJsonl(content: string): ImportedRecipe[] {
  const recipes: ImportedRecipe[] = [];
  const byRun = new Map<number, ImportedRecipe>();
  content.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw importError(`line ${i + 1}`, `not JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw importError(`line ${i + 1}`, 'expected a JSON object');
    const o = obj as Record<string, unknown>;
    if (o.type === 'recipe') {
      const item: ImportedRecipe = { recipe: validateRecipe(o.recipe, `line ${i + 1}`), sourceRunId: typeof o.runId === 'number' ? o.runId : null, outputs: 0 };
      recipes.push(item);
      if (item.sourceRunId !== null) byRun.set(item.sourceRunId, item);
    } else if (o.type === 'output') {
      const item = typeof o.runId === 'number' ? byRun.get(o.runId) : undefined;
      if (item) item.outputs++;
    } else {
      throw importError(`line ${i + 1}`, `unknown line type ${JSON.stringify(o.type)} (expected "recipe" or "output")`);
    }
  });
  return recipes;
}

function fromCsv(content: string): ImportedRecipe[] {
  let rows: string[][];
  try {
    rows = parseCsv(content);
  } catch (err) {
    throw importError('csv', err instanceof Error ? err.message : String(err));
  }
  const header = rows[0] ?? [];
  const col = (n: string) => header.indexOf(n);
  const iRecipe = col('recipe');
  const iRun = col('run_id');
  const iIndex = col('index');
  if (iRecipe < 0 || iRun < 0) throw importError('csv header', 'missing the run_id or recipe column');
  const byRun = new Map<string, ImportedRecipe>();
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    if (row.length === 1 && row[0] === '') continue;
    const runKey = row[iRun] ?? '';
    let item = byRun.get(runKey);
    if (!item) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(row[iRecipe] ?? '');
      } catch {
        throw importError(`csv row ${r + 1}`, 'the recipe column is not JSON');
      }
      const id = Number(runKey);
      item = { recipe: validateRecipe(parsed, `csv row ${r + 1}`), sourceRunId: Number.isInteger(id) && runKey !== '' ? id : null, outputs: 0 };
      byRun.set(runKey, item);
    }
    if (iIndex >= 0 && row[iIndex] !== '') item.outputs++;
  }
  return [...byRun.values()];
}

function fromMarkdown(content: string): ImportedRecipe[] {
  const recipes: ImportedRecipe[] = [];
  const fence = /```json dlm-studio-recipe\r?\n([\s\S]*?)\r?\n```/g;
  let m: RegExpExecArray | null;
  let n = 0;
  while ((m = fence.exec(content))) {
    n++;
    let obj: unknown;
    try {
      obj = JSON.parse(m[1]!);
    } catch {
      throw importError(`recipe block ${n}`, 'not JSON');
    }
    const o = (obj && typeof obj === 'object' ? obj : {}) as Record<string, unknown>;
    recipes.push({
      recipe: validateRecipe(o.recipe, `recipe block ${n}`),
      sourceRunId: typeof o.runId === 'number' ? o.runId : null,
      outputs: typeof o.outputs === 'number' ? o.outputs : 0,
    });
  }
  return recipes;
}
