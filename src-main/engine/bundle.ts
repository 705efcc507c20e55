/**
 * Model bundles (docs/ARCHITECTURE.md, "Model bundle"): find them, validate the manifest (the common fields here,
 * the family's own through its FamilyManifest, families/manifests.ts), verify every listed file's size and sha256,
 * and load the tokenizer. Every refusal is a BundleError (code BUNDLE_INVALID) whose message names the file and the
 * field.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, normalize, resolve, sep } from 'node:path';
import { BUNDLE_FORMATS, BundleError, type ManifestChecks } from './bundle-schema';
import type { FamilyManifestBase, LoadedBundle } from './families/family';
import { FAMILY_KINDS, familyManifest, type Manifest } from './families/manifests';
import { Tokenizer } from './tokenizer';
import type { ModelSummary } from './types';

export { BundleError } from './bundle-schema';
export type { ClassifierEntry } from './bundle-schema';
export type { Manifest } from './families/manifests';
export type { LoadedBundle } from './families/family';

function zodPath(path: PropertyKey[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');
}

/** Read and validate manifest.json (shape and internal consistency; no file hashing). */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new BundleError(`${file}: manifest.json is missing`, 'manifest.json');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BundleError(`${file}: manifest.json is not valid JSON (${(e as Error).message})`, 'manifest.json');
  }
  const fail = (field: string, msg: string): never => {
    throw new BundleError(`${file}: field ${field}: ${msg}`, 'manifest.json', field);
  };
  const top = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  // the format is a version and the kind picks the family: both are refused by name before the family's schema runs
  if (!(BUNDLE_FORMATS as readonly unknown[]).includes(top.format)) {
    fail('format', `${top.format === undefined ? 'missing' : `unknown bundle format ${JSON.stringify(top.format)}`} (this engine reads ${BUNDLE_FORMATS.join(', ')})`);
  }
  const family = familyManifest(typeof top.kind === 'string' ? top.kind : '');
  if (!family) fail('kind', `${top.kind === undefined ? 'missing' : `unknown model kind ${JSON.stringify(top.kind)}`} (known: ${FAMILY_KINDS.join(', ')})`);
  const parsed = family!.schema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    fail(zodPath(i.path) || '(root)', i.message);
  }
  const m = parsed.data as FamilyManifestBase;
  // canvas segments must tile the canvas in order and include a text segment
  let pos = 0;
  m.canvas.segments.forEach((s, i) => {
    if (s.start !== pos) fail(`canvas.segments[${i}].start`, `expected ${pos} (segments must tile the canvas), got ${s.start}`);
    pos += s.length;
  });
  if (pos !== m.canvas.length) fail('canvas.length', `segments cover ${pos} positions, length says ${m.canvas.length}`);
  if (!m.canvas.segments.some((s) => s.name === 'text')) fail('canvas.segments', 'no segment named "text"');
  const listed = new Set(m.files.map((f) => normalize(f.path)));
  const mustList = (field: string, p: string) => {
    if (!listed.has(normalize(p))) fail(field, `${p} is not listed in files (every bundle file needs a sha256)`);
  };
  mustList('tokenizer.vocab', m.tokenizer.vocab);
  m.classifiers.forEach((c, i) => {
    if (!c.batch_sizes.length && !m.joint_guidance?.controls.includes(c.control)) {
      fail(`classifiers[${i}].batch_sizes`, `empty: a ${c.control} entry without graphs of its own needs joint_guidance to cover ${c.control}`);
    }
    for (const b of c.batch_sizes) {
      const f = c.files[String(b)];
      if (!f) fail(`classifiers[${i}].files`, `no graph for batch size ${b}`);
      else mustList(`classifiers[${i}].files.${b}`, f);
    }
    if (!m.canvas.segments.some((s) => s.name === c.segment)) fail(`classifiers[${i}].segment`, `no canvas segment named ${JSON.stringify(c.segment)}`);
  });
  if (m.scorer) mustList('scorer.file', m.scorer.file);
  const outside = m.text_end?.tokens.find((t) => t >= m.tokenizer.size);
  if (outside !== undefined) fail('text_end.tokens', `names token ${outside}; the tokenizer has ${m.tokenizer.size} tokens`);
  m.lexicons.forEach((l, i) => {
    mustList(`lexicons[${i}].file`, l.file);
    if (l.shape[0] !== m.tokenizer.size) fail(`lexicons[${i}].shape`, `has ${l.shape[0]} rows; the tokenizer has ${m.tokenizer.size} tokens (one row per token id)`);
    if (l.shape[1] !== l.labels.length) fail(`lexicons[${i}].shape`, `has ${l.shape[1]} columns for ${l.labels.length} labels`);
    if (m.lexicons.findIndex((o) => o.control === l.control) !== i) fail(`lexicons[${i}].control`, `a second ${l.control} lexicon`);
  });
  const j = m.joint_guidance;
  if (j) {
    for (const [where, files] of [['joint_guidance.files', j.files], ['joint_guidance.one_field.files', j.one_field?.files]] as const) {
      if (!files) continue;
      for (const b of j.batch_sizes) {
        const f = files[String(b)];
        if (!f) fail(where, `no graph for batch size ${b}`);
        else mustList(`${where}.${b}`, f);
      }
    }
    for (const b of j.logp?.batch_sizes ?? []) {
      const f = j.logp!.files[String(b)];
      if (!f) fail('joint_guidance.logp.files', `no graph for batch size ${b}`);
      else mustList(`joint_guidance.logp.files.${b}`, f);
    }
    for (const c of j.controls) if (!m.classifiers.some((e) => e.control === c)) fail('joint_guidance.controls', `${c} has no entry in classifiers (its labels come from there)`);
    if (!m.canvas.segments.some((s) => s.name === j.segment)) fail('joint_guidance.segment', `no canvas segment named ${JSON.stringify(j.segment)}`);
  }
  const checks: ManifestChecks = { fail, mustList };
  family!.check(m, checks);
  return m as Manifest;
}

const hashCache = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

async function sha256File(path: string): Promise<string> {
  const st = await stat(path);
  const hit = hashCache.get(path);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha256;
  const h = createHash('sha256');
  await new Promise<void>((res, rej) => {
    createReadStream(path).on('data', (c) => h.update(c)).on('end', () => res()).on('error', rej);
  });
  const sha256 = h.digest('hex');
  hashCache.set(path, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
  return sha256;
}

/** Check that every listed file exists with the listed size and sha256. */
export async function verifyFiles(dir: string, m: FamilyManifestBase): Promise<void> {
  for (let i = 0; i < m.files.length; i++) {
    const f = m.files[i]!;
    const p = join(dir, f.path);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch {
      throw new BundleError(`${dir}: file ${f.path} (files[${i}]) is missing`, f.path, `files[${i}].path`);
    }
    if (size !== f.bytes) {
      throw new BundleError(`${dir}: file ${f.path} has ${size} bytes, files[${i}].bytes says ${f.bytes}`, f.path, `files[${i}].bytes`);
    }
    const sha = await sha256File(p);
    if (sha !== f.sha256) {
      throw new BundleError(`${dir}: file ${f.path} has sha256 ${sha}, files[${i}].sha256 says ${f.sha256} (corrupt or modified)`, f.path, `files[${i}].sha256`);
    }
  }
}

/** sha256 over the manifest's file list: identifies the exact weights. */
export function bundleHash(m: FamilyManifestBase): string {
  const list = [...m.files].sort((a, b) => a.path.localeCompare(b.path)).map((f) => `${f.path}\t${f.bytes}\t${f.sha256}`).join('\n');
  return createHash('sha256').update(list).digest('hex');
}

/** Validate, verify and load a bundle's tokenizer (the family loads its own resources: ModelFamily.open). */
export async function loadBundle(dir: string): Promise<LoadedBundle<Manifest>> {
  const m = await readManifest(dir);
  await verifyFiles(dir, m);
  const vocabPath = join(dir, m.tokenizer.vocab);
  let vocabRaw: unknown;
  try {
    vocabRaw = JSON.parse(await readFile(vocabPath, 'utf8'));
  } catch (e) {
    throw new BundleError(`${vocabPath}: not valid JSON (${(e as Error).message})`, m.tokenizer.vocab);
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = Tokenizer.fromJSON(vocabRaw, vocabPath);
  } catch (e) {
    throw new BundleError((e as Error).message, m.tokenizer.vocab, 'tokens');
  }
  if (tokenizer.size !== m.tokenizer.size) {
    throw new BundleError(`${dir}: ${m.tokenizer.vocab} has ${tokenizer.size} tokens, manifest field tokenizer.size says ${m.tokenizer.size}`, m.tokenizer.vocab, 'tokenizer.size');
  }
  await familyManifest(m.kind)!.verify?.(dir, m, tokenizer.size);
  return { dir, manifest: m, hash: bundleHash(m), tokenizer, vocabSize: tokenizer.size };
}

export function summarize(dir: string, m: Manifest, source: 'bundled' | 'user'): ModelSummary {
  return {
    id: m.id,
    name: m.name,
    version: m.version,
    kind: m.kind,
    path: dir,
    hash: bundleHash(m),
    source,
    canvas: { length: m.canvas.length, segments: m.canvas.segments.map((s) => ({ name: s.name, start: s.start, length: s.length, ...(s.format ? { format: s.format } : {}) })) },
    recordFields: m.record_schema?.fields ?? {},
    controls: [...new Set(m.classifiers.map((c) => c.control))],
    hasScorer: !!m.scorer,
    precisions: familyManifest(m.kind)!.precisions(m),
    ...(m.sampler_defaults?.pinned_candidates !== undefined ? { pinnedCandidates: m.sampler_defaults.pinned_candidates } : {}),
    ...(m.sampler_defaults?.guided_candidates !== undefined ? { guidedCandidates: m.sampler_defaults.guided_candidates } : {}),
    ...(m.sampler_defaults?.free_candidates !== undefined ? { freeCandidates: m.sampler_defaults.free_candidates } : {}),
    ...familyManifest(m.kind)!.summary?.(m),
  };
}

/** Candidate bundle folders: each models dir that is itself a bundle, else its subfolders. */
export async function bundleFolders(modelDirs: string[]): Promise<{ dir: string; source: 'bundled' | 'user' }[]> {
  const out: { dir: string; source: 'bundled' | 'user' }[] = [];
  for (let i = 0; i < modelDirs.length; i++) {
    const root = resolve(modelDirs[i]!);
    const source = i === 0 ? 'bundled' : 'user';
    if (!existsSync(root)) continue;
    if (existsSync(join(root, 'manifest.json'))) {
      out.push({ dir: root, source });
      continue;
    }
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(root, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory() && !e.name.startsWith('.')) out.push({ dir: root + sep + e.name, source });
    }
  }
  return out;
}

/** List every bundle (valid ones fully verified; invalid ones, and ones whose id an earlier folder took, with their error). */
export async function scanModels(modelDirs: string[]): Promise<ModelSummary[]> {
  const out: ModelSummary[] = [];
  for (const { dir, source } of await bundleFolders(modelDirs)) {
    try {
      const m = await readManifest(dir);
      await verifyFiles(dir, m);
      out.push(summarize(dir, m, source));
    } catch (e) {
      // name an invalid bundle by its manifest's id when that much is readable, else by its folder
      let name = dir.split(sep).pop() ?? dir;
      try {
        const raw = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { id?: unknown };
        if (typeof raw.id === 'string' && raw.id) name = raw.id;
      } catch {
        // keep the folder name
      }
      out.push({
        id: name, name, version: '', kind: '', path: dir, hash: '', source,
        canvas: { length: 0, segments: [] }, recordFields: {}, controls: [], hasScorer: false,
        error: (e as Error).message,
      });
    }
  }
  // the first folder wins an id; a later bundle with the same id is listed as unusable, saying why, not dropped
  const first = new Map<string, string>();
  return out.map((s) => {
    if (s.error) return s;
    const taken = first.get(s.id);
    if (taken === undefined) {
      first.set(s.id, s.path);
      return s;
    }
    return { ...s, error: `id ${JSON.stringify(s.id)} is already taken by ${taken} (the first models folder wins); give this bundle another id in its manifest.json to use it` };
  });
}

export const DEFAULT_MODEL_ID = 'e2e-default';

/** Find a bundle folder by id among the valid bundles. */
export async function resolveModel(modelDirs: string[], id: string): Promise<ModelSummary> {
  const all = await scanModels(modelDirs);
  const hit = all.find((s) => s.id === id && !s.error);
  if (hit) return hit;
  const bad = all.find((s) => s.id === id || s.path.endsWith(sep + id));
  if (bad?.error) throw new BundleError(`model ${JSON.stringify(id)} is invalid: ${bad.error}`);
  const known = all.filter((s) => !s.error).map((s) => s.id);
  const err = new Error(`unknown model ${JSON.stringify(id)} (available: ${known.join(', ') || 'none'})`) as Error & { code: string };
  err.code = 'NOT_FOUND';
  throw err;
}
