/**
 * compileConstraintSet: what the sampler needs from a constraint set (docs/ARCHITECTURE.md, "Compiler <-> engine
 * interface"): hard projectors per canvas segment, held tokens, soft targets for the guidance classifiers, and a
 * verdict per constraint. One bad constraint never fails the set: its verdict carries the named error.
 */
import type { DFA } from 'refa';
import type { Constraint, ConstraintSet, UposTag } from '../set';
import { ConstraintCompileError } from './errors';
import { compileJsonSchema, type JsonSchemaCompileOptions } from './json-schema';
import type { Lang } from './lang';
import { fromDfa, intersect, toDfa, withBudget } from './lang';
import { logPartition, sampleAccepted, viterbi, type PartitionResult, type ViterbiResult } from './projection';
import { infillLang, regexTextLang, wordsLang } from './text';
import { acceptsTokens, feasibleLengths, liftToTokens, type SegmentMode, type Specials, type TokenAutomaton } from './token-automaton';
import { Tokenizer } from '../../engine/tokenizer';

export { ConstraintCompileError, UnsupportedKeywordError, SchemaTooLargeError } from './errors';
export { compileJsonSchema, canonicalJson, CLAIMED_KEYWORDS } from './json-schema';
export type { CompiledJsonSchema, JsonSchemaCompileOptions, Draft } from './json-schema';
export { liftToTokens } from './token-automaton';
export type { TokenAutomaton, Specials } from './token-automaton';
export { viterbi, logPartition, sampleAccepted } from './projection';

/** E2E field order of the canonical record (docs/ARCHITECTURE.md, "Canvas layout"). */
export const E2E_FIELDS = ['name', 'eatType', 'food', 'priceRange', 'customer rating', 'area', 'familyFriendly', 'near'];

export interface CanvasSegment {
  name: string;
  start: number;
  length: number;
  format?: string;
}

export interface CompileModel {
  vocab: readonly string[];
  specials: Specials;
  canvas: { length: number; segments: CanvasSegment[] };
  /** Field -> known values (its key order is the record's field order when given). */
  recordFields?: Record<string, string[]>;
  /** Tokenizer for held tokens; defaults to the surface-piece tokenizer over `vocab`. */
  encode?: (text: string) => number[];
  /**
   * Soft kinds the model's family cannot steer (a masked bundle without classifiers for them): their verdicts
   * stay `soft` (the evaluators still score them) with `unserved` set and `detail` saying why, and they are left
   * out of `soft`.
   */
  unservedSoft?: { kinds: readonly string[]; detail: string };
  /** How the model's family serves a soft kind when not by classifier-gradient guidance alone (the verdict's detail). */
  softDetail?: Readonly<Record<string, string>>;
  /**
   * The family writes its text from the canvas's record segment (a joint record + text model): an attribute whose
   * value the record schema knows also holds that segment to a record with field = value, when no other constraint
   * decides the record. Its verdict's detail says so.
   */
  attributeRecord?: boolean;
}

export interface SegmentProjector {
  segment: 'record' | 'text';
  start: number;
  length: number;
  /** Indices of the constraints this projector enforces. */
  constraints: number[];
  automaton: TokenAutomaton;
  /** Most probable accepted token sequence filling the segment (logScores: [length, V]; fixed: -1 = free). */
  project(logScores: Float32Array, fixed?: Int32Array): Int32Array;
  projectDetailed(logScores: Float32Array, fixed?: Int32Array): ViterbiResult | null;
  logPartition(logScores: Float32Array, fixed?: Int32Array): PartitionResult;
  /** Exact sample from the per-position softmax distributions conditioned on acceptance. */
  sample(logScores: Float32Array, rng: () => number, fixed?: Int32Array): Int32Array;
  accepts(tokens: ArrayLike<number>): boolean;
}

export interface HeldToken {
  position: number;
  token: number;
}

export type SoftTarget =
  | { kind: 'pos'; index: number; weight: number; tags: (UposTag | null)[] }
  | { kind: 'attribute'; index: number; weight: number; field: string; value: string }
  | { kind: 'length'; index: number; weight: number; tokens: number }
  | { kind: 'sentiment'; index: number; weight: number; label: 'positive' | 'neutral' | 'negative' }
  | { kind: 'spans'; index: number; weight: number; spans: [number, number, 'NP' | 'VP' | 'PP'][] };

export interface Verdict {
  index: number;
  kind: string;
  /** hard: enforced by a projector; held: tokens held on the canvas; soft: a guidance target; disabled; error. */
  status: 'hard' | 'held' | 'soft' | 'disabled' | 'error';
  detail?: string;
  /** A soft constraint the model's family cannot steer: evaluated on the outputs only (`detail` says why). */
  unserved?: boolean;
  error?: { code: string; message: string; keyword?: string; pointer?: string };
}

export interface CompiledConstraintSet {
  hard: SegmentProjector[];
  held: HeldToken[];
  soft: SoftTarget[];
  verdicts: Verdict[];
  compileMs: number;
  /** Whether this result came from the cache. */
  cached: boolean;
}

export interface CompileSetOptions {
  schema?: JsonSchemaCompileOptions;
  /** Top-k candidates per position in projection (default 32; 0 = whole vocabulary). */
  topK?: number;
}

// ---------------------------------------------------------------- caches

const vocabHashes = new WeakMap<readonly string[], string>();
export function vocabHash(vocab: readonly string[]): string {
  const hit = vocabHashes.get(vocab);
  if (hit) return hit;
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const t of vocab) {
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
    }
    h1 = Math.imul(h1 ^ 0xff, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ 0xff, 0x5bd1e995) >>> 0;
  }
  const h = `${vocab.length}:${h1.toString(16)}${h2.toString(16)}`;
  vocabHashes.set(vocab, h);
  return h;
}

// Bounded caches (oldest entry dropped first); token automata are the big ones (a dense [states x V] table each).
const setCache = new Map<string, CompiledConstraintSet>();
const dfaCache = new Map<string, DFA>();
const automatonCache = new Map<string, TokenAutomaton>();
const LIMITS = new Map<Map<string, unknown>, number>([[setCache, 32], [dfaCache, 64], [automatonCache, 16]]);
function remember<V>(m: Map<string, V>, k: string, v: V): V {
  if (m.size >= (LIMITS.get(m as Map<string, unknown>) ?? 32)) m.delete(m.keys().next().value!);
  m.set(k, v);
  return v;
}
export function clearCompileCaches(): void {
  setCache.clear();
  dfaCache.clear();
  automatonCache.clear();
}

// ---------------------------------------------------------------- compile

function errorOf(e: unknown): NonNullable<Verdict['error']> {
  if (e instanceof ConstraintCompileError) return { code: e.code, message: e.message, keyword: e.keyword, pointer: e.pointer };
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

function segmentOf(model: CompileModel, name: 'record' | 'text'): CanvasSegment {
  const s = model.canvas.segments.find((x) => x.name === name);
  if (!s) throw new ConstraintCompileError('SEGMENT_MISSING', `this bundle's canvas has no "${name}" segment`);
  return s;
}

function makeProjector(
  segment: 'record' | 'text',
  seg: CanvasSegment,
  automaton: TokenAutomaton,
  specials: Specials,
  constraints: number[],
  topK: number,
): SegmentProjector {
  const L = seg.length;
  const always = segment === 'record' ? [specials.pad] : [specials.end, specials.pad];
  const projectDetailed = (s: Float32Array, fixed?: Int32Array) => viterbi(automaton, s, L, fixed, { topK, always });
  return {
    segment, start: seg.start, length: L, constraints, automaton,
    projectDetailed,
    project(s, fixed) {
      const r = projectDetailed(s, fixed) ?? (fixed ? projectDetailed(s) : null);
      if (!r) throw new ConstraintCompileError('UNSATISFIABLE', `no accepted token sequence fills the ${segment} segment (${L} tokens)`);
      return r.tokens;
    },
    logPartition: (s, fixed) => logPartition(automaton, s, L, fixed),
    sample(s, rng, fixed) {
      const r = sampleAccepted(automaton, s, L, rng, fixed) ?? (fixed ? sampleAccepted(automaton, s, L, rng) : null);
      if (!r) throw new ConstraintCompileError('UNSATISFIABLE', `no accepted token sequence fills the ${segment} segment (${L} tokens)`);
      return r;
    },
    accepts: (tokens) => acceptsTokens(automaton, tokens),
  };
}

function automatonFor(key: string, dfa: DFA, model: CompileModel, mode: SegmentMode, L: number): TokenAutomaton {
  const k = `${key}|${vocabHash(model.vocab)}|${mode}|${JSON.stringify(model.specials)}`;
  let a = automatonCache.get(k);
  if (!a) a = remember(automatonCache, k, liftToTokens(dfa, model.vocab, model.specials, mode));
  if (a.start < 0) throw new ConstraintCompileError('UNSATISFIABLE', `no ${mode} text the constraints allow can be spelled with this vocabulary`);
  const feasible = feasibleLengths(a, L);
  if (!feasible[L]) {
    throw new ConstraintCompileError('UNSATISFIABLE', `the shortest ${mode} the constraints allow needs more than the segment's ${L} tokens`);
  }
  return a;
}

function recordOrder(model: CompileModel): string[] {
  const fromModel = model.recordFields ? Object.keys(model.recordFields) : [];
  return [...new Set([...E2E_FIELDS.filter((f) => fromModel.length === 0 || fromModel.includes(f)), ...fromModel])];
}

/**
 * The JSON Schema of a bundle's record (its `record_schema.fields`: field -> known values): an object whose
 * properties are string enums in the record field order, no other properties; `required` as given.
 */
export function recordSchemaOf(fields: Record<string, string[]>, required: string[] = []): Record<string, unknown> {
  const order = [...E2E_FIELDS.filter((f) => f in fields), ...Object.keys(fields).filter((f) => !E2E_FIELDS.includes(f))];
  const properties: Record<string, unknown> = {};
  for (const f of order) properties[f] = { type: 'string', enum: [...fields[f]!] };
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties, required, additionalProperties: false };
}

/** Canonical record JSON: keys in the record field order, then any others. */
export function canonicalRecord(value: Record<string, unknown>, order: string[] = E2E_FIELDS): string {
  const keys = Object.keys(value);
  const known = order.filter((k) => keys.includes(k));
  const rest = keys.filter((k) => !order.includes(k));
  const o: Record<string, unknown> = {};
  for (const k of [...known, ...rest]) o[k] = value[k];
  return JSON.stringify(o);
}

/**
 * The record-side half of attribute constraints on a joint record + text model: one projector holding the record
 * segment to a valid record (the bundle's record schema) with each attributed field at its value. The model writes
 * its text from that record, as in data-to-text, where the classifier's gradient on the text alone often lost to
 * a record that named another value. Left out (guidance alone) where the record segment holds tokens already, an
 * attribute names a value the schema does not know, or two attributes give one field different values.
 */
function attributeRecordProjector(model: CompileModel, soft: SoftTarget[], held: HeldToken[], verdicts: Verdict[], topK: number): SegmentProjector[] {
  const fields = model.recordFields;
  const seg = model.canvas.segments.find((x) => x.name === 'record');
  const attrs = soft.filter((t): t is Extract<SoftTarget, { kind: 'attribute' }> => t.kind === 'attribute' && t.weight > 0);
  if (!fields || !seg || attrs.length === 0) return [];
  if (held.some((h) => h.position >= seg.start && h.position < seg.start + seg.length)) return [];
  const values = new Map<string, string>();
  for (const a of attrs) {
    if (!fields[a.field]?.includes(a.value) || (values.has(a.field) && values.get(a.field) !== a.value)) return [];
    values.set(a.field, a.value);
  }
  const schema = recordSchemaOf(fields, [...values.keys()]) as { properties: Record<string, unknown> };
  for (const [f, v] of values) schema.properties[f] = { type: 'string', enum: [v] };
  const key = `attribute-record:${JSON.stringify(schema)}`;
  try {
    let dfa = dfaCache.get(key);
    if (!dfa) dfa = remember(dfaCache, key, compileJsonSchema(schema).dfa);
    const projector = makeProjector('record', seg, automatonFor(key, dfa, model, 'record', seg.length), model.specials, attrs.map((a) => a.index), topK);
    for (const a of attrs) {
      const v = verdicts[a.index]!;
      v.detail = `${v.detail ?? 'guided: classifier gradient'}; the record segment is held to ${a.field} = ${JSON.stringify(a.value)}`;
    }
    return [projector];
  } catch (e) {
    // e.g. a record segment too short for the schema's record: guidance alone, and the verdict says why
    for (const a of attrs) {
      const v = verdicts[a.index]!;
      v.detail = `${v.detail ?? 'guided: classifier gradient'}; the record segment is not held (${errorOf(e).message})`;
    }
    return [];
  }
}

const tokenizers = new WeakMap<readonly string[], Tokenizer>();
function encoder(model: CompileModel): (text: string) => number[] {
  if (model.encode) return model.encode;
  let t = tokenizers.get(model.vocab);
  if (!t) {
    t = new Tokenizer([...model.vocab]);
    tokenizers.set(model.vocab, t);
  }
  const tok = t;
  return (s) => tok.encode(s);
}

export function compileConstraintSet(set: ConstraintSet, model: CompileModel, options: CompileSetOptions = {}): CompiledConstraintSet {
  const t0 = performance.now();
  // the attributes' record hold is part of steering: a run with guidance off only scores its attributes
  const holdsRecord = !!model.attributeRecord && set.sampler.guidance.enabled && set.sampler.guidance.strength > 0;
  const key = `${vocabHash(model.vocab)}|${JSON.stringify(model.canvas)}|${JSON.stringify(model.specials)}|${JSON.stringify(options)}|${JSON.stringify(model.unservedSoft ?? null)}|${JSON.stringify(model.softDetail ?? null)}|${holdsRecord ? 'attribute-record' : ''}|${JSON.stringify(set.constraints)}`;
  const hit = setCache.get(key);
  if (hit) return { ...hit, cached: true, compileMs: performance.now() - t0 };

  const verdicts: Verdict[] = [];
  const held: HeldToken[] = [];
  const soft: SoftTarget[] = [];
  const hard: SegmentProjector[] = [];
  const recordHard: { index: number; key: string; dfa: DFA }[] = [];
  const textHard: { index: number; key: string; lang: () => Lang }[] = [];
  const topK = options.topK ?? 32;

  set.constraints.forEach((c: Constraint, index) => {
    const v: Verdict = { index, kind: c.kind, status: 'soft' };
    verdicts.push(v);
    if (!c.enabled) {
      v.status = 'disabled';
      return;
    }
    try {
      switch (c.kind) {
        case 'json-schema': {
          segmentOf(model, 'record');
          const k = `schema:${JSON.stringify(c.schema)}|${JSON.stringify(options.schema ?? {})}`;
          let dfa = dfaCache.get(k);
          if (!dfa) dfa = remember(dfaCache, k, compileJsonSchema(c.schema, options.schema).dfa);
          if (dfa.isEmpty) throw new ConstraintCompileError('UNSATISFIABLE', 'the schema accepts no value');
          recordHard.push({ index, key: k, dfa });
          v.status = 'hard';
          break;
        }
        case 'regex':
        case 'infill':
        case 'words': {
          segmentOf(model, 'text');
          const k = c.kind === 'regex' ? `regex:${c.pattern}` : c.kind === 'infill' ? `infill:${c.template}` : `words:${JSON.stringify([c.include, c.exclude])}`;
          const lang = c.kind === 'regex' ? () => regexTextLang(c.pattern) : c.kind === 'infill' ? () => infillLang(c.template) : () => wordsLang(c.include, c.exclude);
          // compile now so a bad pattern is reported against this constraint
          let dfa = dfaCache.get(k);
          if (!dfa) dfa = remember(dfaCache, k, withBudget({ maxStates: 20_000, deadline: Date.now() + 5000 }, () => toDfa(lang())));
          if (dfa.isEmpty) throw new ConstraintCompileError('UNSATISFIABLE', `the ${c.kind} constraint accepts no text`);
          textHard.push({ index, key: k, lang });
          v.status = 'hard';
          break;
        }
        case 'record': {
          const seg = segmentOf(model, 'record');
          const text = canonicalRecord(c.value, recordOrder(model));
          const ids = encoder(model)(text);
          if (ids.length > seg.length) {
            throw new ConstraintCompileError('HELD_TOO_LONG', `record needs ${ids.length} tokens, the record segment has ${seg.length}`, 'value');
          }
          for (let i = 0; i < seg.length; i++) held.push({ position: seg.start + i, token: i < ids.length ? ids[i]! : model.specials.pad });
          v.status = 'held';
          v.detail = text;
          break;
        }
        case 'text': {
          const seg = segmentOf(model, 'text');
          const ids = encoder(model)(c.value);
          if (ids.length + 1 > seg.length) {
            throw new ConstraintCompileError('HELD_TOO_LONG', `text needs ${ids.length} tokens + <end>, the text segment has ${seg.length}`, 'value');
          }
          for (let i = 0; i < seg.length; i++) {
            const token = i < ids.length ? ids[i]! : i === ids.length ? model.specials.end : model.specials.pad;
            held.push({ position: seg.start + i, token });
          }
          v.status = 'held';
          break;
        }
        case 'pos': {
          const seg = segmentOf(model, 'text');
          if (c.tags.length > seg.length) throw new ConstraintCompileError('HELD_TOO_LONG', `${c.tags.length} tags but the text segment has ${seg.length} positions`, 'tags');
          soft.push({ kind: 'pos', index, weight: c.weight, tags: c.tags.map((t) => (t === '*' ? null : t)) });
          break;
        }
        case 'attribute':
          if (model.recordFields && !(c.field in model.recordFields)) {
            throw new ConstraintCompileError('INVALID_SCHEMA', `unknown field "${c.field}" (fields: ${Object.keys(model.recordFields).join(', ')})`, 'field');
          }
          soft.push({ kind: 'attribute', index, weight: c.weight, field: c.field, value: c.value });
          break;
        case 'length': {
          const seg = segmentOf(model, 'text');
          if (c.tokens > seg.length - 1) throw new ConstraintCompileError('HELD_TOO_LONG', `length ${c.tokens} exceeds the text segment's ${seg.length - 1} tokens`, 'tokens');
          soft.push({ kind: 'length', index, weight: c.weight, tokens: c.tokens });
          break;
        }
        case 'sentiment':
          soft.push({ kind: 'sentiment', index, weight: c.weight, label: c.label });
          break;
        case 'spans': {
          const seg = segmentOf(model, 'text');
          const bad = c.spans.find(([, e]) => e >= seg.length);
          if (bad) throw new ConstraintCompileError('HELD_TOO_LONG', `span [${bad[0]}, ${bad[1]}] ends past the text segment (${seg.length} positions)`, 'spans');
          soft.push({ kind: 'spans', index, weight: c.weight, spans: c.spans.map((s) => [s[0], s[1], s[2]]) });
          break;
        }
      }
    } catch (e) {
      v.status = 'error';
      v.error = errorOf(e);
    }
  });

  // One projector per segment: several hard constraints on a segment are intersected.
  const build = (segment: 'record' | 'text', list: { index: number; key: string; dfa: () => DFA }[]) => {
    if (list.length === 0) return;
    try {
      const seg = segmentOf(model, segment);
      const key = list.map((x) => x.key).sort().join('&');
      let dfa = dfaCache.get(key);
      if (!dfa) {
        dfa = list.length === 1 ? list[0]!.dfa() : withBudget({ maxStates: 50_000, deadline: Date.now() + 5000 }, () => toDfa(intersect(...list.map((x) => fromDfa(x.dfa())))));
        remember(dfaCache, key, dfa);
      }
      const a = automatonFor(key, dfa, model, segment, seg.length);
      hard.push(makeProjector(segment, seg, a, model.specials, list.map((x) => x.index), topK));
    } catch (e) {
      for (const x of list) {
        const v = verdicts[x.index]!;
        v.status = 'error';
        v.error = errorOf(e);
      }
    }
  };
  // soft kinds the family cannot steer: reported, not silently dropped
  const unserved = model.unservedSoft;
  if (unserved) {
    for (let i = soft.length - 1; i >= 0; i--) {
      const t = soft[i]!;
      if (!unserved.kinds.includes(t.kind)) continue;
      const v = verdicts[t.index]!;
      v.unserved = true;
      v.detail = unserved.detail;
      soft.splice(i, 1);
    }
  }

  for (const t of soft) {
    const how = model.softDetail?.[t.kind];
    if (how) verdicts[t.index]!.detail = how;
  }

  build('record', recordHard.map((x) => ({ index: x.index, key: x.key, dfa: () => x.dfa })));
  if (holdsRecord && recordHard.length === 0) hard.push(...attributeRecordProjector(model, soft, held, verdicts, topK));
  build('text', textHard.map((x) => ({ index: x.index, key: x.key, dfa: () => dfaCache.get(x.key) ?? toDfa(x.lang()) })));

  const result: CompiledConstraintSet = { hard, held, soft, verdicts, compileMs: performance.now() - t0, cached: false };
  remember(setCache, key, result);
  return result;
}
