/**
 * Model bundles (docs/ARCHITECTURE.md, "Model bundle"): find them, validate the manifest, verify every listed
 * file's size and sha256, and load the tokenizer and embeddings. Every refusal is a BundleError (code
 * BUNDLE_INVALID) whose message names the file and the field.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { z } from 'zod';
import { Tokenizer } from './tokenizer';
import type { ModelSummary } from './types';

export class BundleError extends Error {
  readonly code = 'BUNDLE_INVALID';
  constructor(message: string, readonly file?: string, readonly field?: string) {
    super(message);
    this.name = 'BundleError';
  }
}

const relPath = z.string().min(1).refine((p) => !isAbsolute(p) && !normalize(p).split(/[\\/]/).includes('..'), {
  message: 'must be a relative path inside the bundle',
});

const segmentSchema = z.object({
  name: z.string().min(1),
  start: z.number().int().min(0),
  length: z.number().int().min(1),
  format: z.string().optional(),
}).passthrough();

const classifierSchema = z.object({
  control: z.enum(['pos', 'spans', 'attribute', 'length', 'sentiment']),
  files: z.record(z.string().regex(/^\d+$/), relPath),
  batch_sizes: z.array(z.number().int().min(1)).min(1),
  segment: z.string().min(1),
  labels: z.array(z.string()),
  fields: z.array(z.string()).optional(),
  value_labels: z.record(z.string(), z.array(z.string())).optional(),
  /** Per-control fluency-anchor weight the guidance helper recommends (overrides the engine's default). */
  lambda: z.number().min(0).optional(),
  inputs: z.record(z.string(), z.string()).optional(),
  outputs: z.record(z.string(), z.string()).optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
}).passthrough();

/** One gradient graph over every control's head on the shared trunk (training/guidance/joint.py). */
const jointGuidanceSchema = z.object({
  controls: z.array(z.enum(['pos', 'spans', 'attribute', 'length', 'sentiment'])).min(1),
  files: z.record(z.string().regex(/^\d+$/), relPath),
  batch_sizes: z.array(z.number().int().min(1)).min(1),
  segment: z.string().min(1),
  /** The same graphs with the attribute head scored for one field (select_attribute input): same batch sizes. */
  one_field: z.object({ files: z.record(z.string().regex(/^\d+$/), relPath) }).passthrough().nullable().optional(),
}).passthrough();

const scorerSchema = z.object({
  file: relPath,
  inputs: z.record(z.string(), z.string()).optional(),
  outputs: z.record(z.string(), z.string()).optional(),
  bos: z.number().int().min(0).default(1),
  eos: z.number().int().min(0).default(2),
  metrics: z.record(z.string(), z.unknown()).optional(),
}).passthrough();

export const manifestSchema = z.object({
  format: z.literal('dlm-bundle/1'),
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-"'),
  version: z.string().min(1),
  kind: z.literal('continuous-embedding-diffusion'),
  name: z.string().min(1),
  tokenizer: z.object({ type: z.literal('surface-pieces/1'), vocab: relPath, size: z.number().int().min(5) }).passthrough(),
  canvas: z.object({ length: z.number().int().min(1), segments: z.array(segmentSchema).min(1) }).passthrough(),
  embedding: z.object({ file: relPath, dim: z.number().int().min(1), dtype: z.literal('float32') }).passthrough(),
  schedule: z.object({ type: z.literal('sqrt'), T: z.number().int().min(1), s: z.number().positive() }).passthrough(),
  denoiser: z.object({
    file: relPath,
    /** Int8-weight variant of the same denoiser (training/dlm_train/quantize.py), used on cpu by precision auto. */
    int8: z.object({
      file: relPath,
      /** static: calibrated fixed activation ranges; dynamic: a range per call (couples the samples of a call). */
      activations: z.enum(['static', 'dynamic']).default('dynamic'),
    }).passthrough().optional(),
  }).passthrough(),
  record_schema: z.object({ fields: z.record(z.string(), z.array(z.string())) }).passthrough().nullable().optional(),
  files: z.array(z.object({ path: relPath, sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'), bytes: z.number().int().min(0) }).passthrough()).min(1),
  training: z.record(z.string(), z.unknown()).optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
  classifiers: z.array(classifierSchema).default([]),
  scorer: scorerSchema.nullable().default(null),
  joint_guidance: jointGuidanceSchema.nullable().optional(),
}).passthrough();
export type Manifest = z.infer<typeof manifestSchema>;
export type ClassifierEntry = z.infer<typeof classifierSchema>;

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
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    const field = zodPath(i.path) || '(root)';
    throw new BundleError(`${file}: field ${field}: ${i.message}`, 'manifest.json', field);
  }
  const m = parsed.data;
  const fail = (field: string, msg: string): never => {
    throw new BundleError(`${file}: field ${field}: ${msg}`, 'manifest.json', field);
  };
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
  mustList('embedding.file', m.embedding.file);
  mustList('denoiser.file', m.denoiser.file);
  if (m.denoiser.int8) mustList('denoiser.int8.file', m.denoiser.int8.file);
  m.classifiers.forEach((c, i) => {
    for (const b of c.batch_sizes) {
      const f = c.files[String(b)];
      if (!f) fail(`classifiers[${i}].files`, `no graph for batch size ${b}`);
      else mustList(`classifiers[${i}].files.${b}`, f);
    }
    if (!m.canvas.segments.some((s) => s.name === c.segment)) fail(`classifiers[${i}].segment`, `no canvas segment named ${JSON.stringify(c.segment)}`);
  });
  if (m.scorer) mustList('scorer.file', m.scorer.file);
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
    for (const c of j.controls) if (!m.classifiers.some((e) => e.control === c)) fail('joint_guidance.controls', `${c} has no entry in classifiers (its labels come from there)`);
    if (!m.canvas.segments.some((s) => s.name === j.segment)) fail('joint_guidance.segment', `no canvas segment named ${JSON.stringify(j.segment)}`);
  }
  return m;
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
export async function verifyFiles(dir: string, m: Manifest): Promise<void> {
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
export function bundleHash(m: Manifest): string {
  const list = [...m.files].sort((a, b) => a.path.localeCompare(b.path)).map((f) => `${f.path}\t${f.bytes}\t${f.sha256}`).join('\n');
  return createHash('sha256').update(list).digest('hex');
}

export interface LoadedBundle {
  dir: string;
  manifest: Manifest;
  hash: string;
  tokenizer: Tokenizer;
  /** [V, d] row-major. */
  embeddings: Float32Array;
  vocabSize: number;
  dim: number;
}

/** Validate, verify and load a bundle's tokenizer and embeddings. */
export async function loadBundle(dir: string): Promise<LoadedBundle> {
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
  const buf = await readFile(join(dir, m.embedding.file));
  const expected = tokenizer.size * m.embedding.dim * 4;
  if (buf.byteLength !== expected) {
    throw new BundleError(`${dir}: ${m.embedding.file} has ${buf.byteLength} bytes, expected vocab size ${tokenizer.size} x embedding.dim ${m.embedding.dim} x 4 = ${expected}`, m.embedding.file, 'embedding.dim');
  }
  const embeddings = new Float32Array(tokenizer.size * m.embedding.dim);
  for (let i = 0; i < embeddings.length; i++) embeddings[i] = buf.readFloatLE(i * 4);
  return { dir, manifest: m, hash: bundleHash(m), tokenizer, embeddings, vocabSize: tokenizer.size, dim: m.embedding.dim };
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
    precisions: m.denoiser.int8 ? ['fp32', 'int8'] : ['fp32'],
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

/** List every bundle (valid ones fully verified; invalid ones with their error). Ids: the first folder wins. */
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
  const seen = new Set<string>();
  return out.filter((s) => (s.error ? true : seen.has(s.id) ? false : (seen.add(s.id), true)));
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
