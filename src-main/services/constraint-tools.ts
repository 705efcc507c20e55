/**
 * Compose-time helpers behind `constraints.compile` and `constraints.posTags`: the compiler's verdict on a set
 * against a real model's vocabulary and canvas, and the UPOS tags of an example sentence. The compiler and the
 * NLP model load lazily (they take a moment), so the studio starts without them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConstraintSet } from '../constraints/set';
import { UPOS_TAGS, type UposTag } from '../constraints/set';
import type { ModelSummary } from '../engine/types';
import type { CompileReport, CompileVerdict, PosTagsResult } from '../api/contract';
import { ApiError } from '../api/errors';

interface VocabModel {
  vocab: string[];
  specials: { pad: number; sep: number; end: number; unk: number };
  canvas: ModelSummary['canvas'];
  recordFields: Record<string, string[]>;
  /** What the model's family cannot steer (families/manifests.ts), and how it serves the rest when that needs saying. */
  unservedSoft?: { kinds: readonly string[]; detail: string };
  softDetail?: Readonly<Record<string, string>>;
  attributeRecord?: boolean;
}

const vocabCache = new Map<string, VocabModel>();

async function vocabModelOf(model: ModelSummary): Promise<VocabModel> {
  const hit = vocabCache.get(model.hash);
  if (hit) return hit;
  const { readManifest } = await import('../engine/bundle');
  const { familyCompileHints } = await import('../engine/families/manifests');
  const { SPECIALS, Tokenizer } = await import('../engine/tokenizer');
  const manifest = await readManifest(model.path);
  const file = join(model.path, manifest.tokenizer.vocab);
  const tokenizer = Tokenizer.fromJSON(JSON.parse(await readFile(file, 'utf8')), file);
  const vm: VocabModel = {
    vocab: tokenizer.tokens,
    specials: SPECIALS,
    canvas: model.canvas,
    recordFields: model.recordFields,
    ...familyCompileHints(manifest),
  };
  if (vocabCache.size > 8) vocabCache.clear();
  vocabCache.set(model.hash, vm);
  return vm;
}

/** Without a model: the JSON-schema compile alone (it needs no vocabulary); other kinds stay unchecked. */
async function schemaOnly(set: ConstraintSet, note: string, t0: number): Promise<CompileReport> {
  const { compileJsonSchema, ConstraintCompileError } = await import('../constraints/compiler/index');
  const verdicts: CompileVerdict[] = set.constraints.map((c, index) => {
    if (!c.enabled) return { index, kind: c.kind, status: 'disabled' };
    if (c.kind !== 'json-schema') return { index, kind: c.kind, status: 'unchecked' };
    try {
      compileJsonSchema(c.schema);
      return { index, kind: c.kind, status: 'hard' };
    } catch (e) {
      const error = e instanceof ConstraintCompileError
        ? { code: e.code, message: e.message, keyword: e.keyword, pointer: e.pointer }
        : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
      return { index, kind: c.kind, status: 'error', error };
    }
  });
  return { model: null, note, compileMs: performance.now() - t0, verdicts };
}

export async function compileReport(set: ConstraintSet, modelId: string | undefined, listModels: () => Promise<ModelSummary[]>): Promise<CompileReport> {
  const t0 = performance.now();
  let models: ModelSummary[];
  try {
    models = await listModels();
  } catch (e) {
    if (modelId !== undefined) throw e;
    return schemaOnly(set, `no model to compile against (${e instanceof Error ? e.message : String(e)})`, t0);
  }
  const model = modelId !== undefined ? models.find((m) => m.id === modelId) : models.find((m) => !m.error);
  if (modelId !== undefined && !model) {
    throw new ApiError('NOT_FOUND', `model "${modelId}" is not installed (known: ${models.map((m) => m.id).join(', ') || 'none'})`, 'model');
  }
  if (!model) return schemaOnly(set, 'no model is installed: only JSON schemas were checked', t0);
  if (model.error) throw new ApiError('BUNDLE_INVALID', `model "${model.id}" cannot be loaded: ${model.error}`, 'model');
  let vm: VocabModel;
  try {
    vm = await vocabModelOf(model);
  } catch (e) {
    return schemaOnly(set, `the vocabulary of "${model.id}" could not be read (${e instanceof Error ? e.message : String(e)})`, t0);
  }
  const { compileConstraintSet } = await import('../constraints/compiler/index');
  const compiled = compileConstraintSet(set, vm);
  const verdicts: CompileVerdict[] = compiled.verdicts.map((v) => ({
    index: v.index,
    kind: v.kind,
    status: v.status,
    ...(v.detail !== undefined ? { detail: v.detail } : {}),
    ...(v.unserved ? { unserved: true } : {}),
    ...(v.error ? { error: { ...v.error } } : {}),
  }));
  return { model: model.id, compileMs: performance.now() - t0, verdicts };
}

export async function posTagsReport(sentence: string): Promise<PosTagsResult> {
  const { winkTokens } = await import('../constraints/nlp');
  const known = UPOS_TAGS as readonly string[];
  return { tokens: winkTokens(sentence).map((t) => ({ text: t.value, tag: (known.includes(t.pos) ? t.pos : 'X') as UposTag })) };
}
