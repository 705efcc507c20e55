/**
 * JSON Schema (Draft 2020-12 and Draft 7) -> regular language of canonical JSON texts -> minimized DFA.
 *
 * Canonical form: compact JSON exactly as JSON.stringify writes it, with object keys ordered by the schema's key
 * order (every property name in the order it first appears in the schema document, `properties` then `required`),
 * then keys the schema never names, sorted by UTF-16 code units. `canonicalJson` writes it. The automaton accepts the
 * canonical text of an instance iff the instance is valid (within the stated approximations, docs/constraints.md).
 *
 * The compiler splits each schema by JSON type, since most keywords only constrain one type: scalar types become
 * languages, arrays and objects stay structural (so allOf can merge them exactly) until they are materialized.
 */
import { JS, TooManyNodesError, type DFA } from 'refa';
import { ConstraintCompileError, SchemaTooLargeError, UnsupportedKeywordError, ptrJoin } from './errors';
import type { Budget, Lang } from './lang';
import {
  alt, charSet, checkDeadline, cp, disjoint, empty, eps, intersect, isEmptyLang, lit, minimal, minus,
  quotientDfa, regexLang, rep, seq, setWhere, toDfa, withBudget, words, chars, mapChar,
} from './lang';
import { BoundNotExactError, MAX_SAFE, ceilDiv, decimalMultiple, floorDiv, fracAll, fracBound, intRange, multipleOfInt, toRational } from './numbers';
import { encodeContent, encodedFormat, formatLang, stringChar, stringContentAll, SUPPORTED_FORMATS } from './strings';

export type Draft = '2020-12' | '7';

export interface JsonSchemaCompileOptions {
  /** Draft used when the schema has no recognised $schema (default 2020-12). */
  draft?: Draft;
  /** How many times one $ref target may be expanded inside itself (default 3). Deeper instances are rejected. */
  maxRefDepth?: number;
  /** Nesting depth of arrays/objects allowed where the schema leaves a value unconstrained (default 3). */
  anyDepth?: number;
  /** Most DFA states of any intermediate automaton (default 20000). */
  maxStates?: number;
  /** Compile time limit in ms (default 5000). */
  timeLimitMs?: number;
  /** Retrieval URI of the schema (base of relative $id / $ref). */
  baseUri?: string;
  /** Documents for remote $refs (absolute URI without fragment -> schema); none by default (not fetched). */
  loadRemote?: (uri: string) => unknown;
}

export interface CompiledJsonSchema {
  /** Minimized DFA over code points of the canonical JSON text. */
  dfa: DFA;
  draft: Draft;
  /** Key order of the canonical form. */
  keyRank: Map<string, number>;
  /** Canonical JSON text of an instance (the string the automaton must accept when the instance is valid). */
  canonicalize(value: unknown): string;
  /** Whether the automaton accepts this instance (in canonical form). */
  accepts(value: unknown): boolean;
  /** The language as a JavaScript regular expression source (u flag, whole-string); can be long. */
  regexSource(): string;
  /** Schema keywords this schema used (all of them compiled). */
  keywords: string[];
  states: number;
  compileMs: number;
}

/** Keywords with no effect on validity: accepted and ignored. */
const ANNOTATIONS = new Set([
  '$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly',
  '$defs', 'definitions', 'contentMediaType', 'contentEncoding', 'contentSchema', '$anchor',
]);
/** Keywords the compiler turns into automata (the "claimed" keywords of the coverage report). */
export const CLAIMED_KEYWORDS = [
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items', 'prefixItems', 'additionalItems',
  'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern', 'format', 'minimum', 'maximum', 'exclusiveMinimum',
  'exclusiveMaximum', 'multipleOf', 'anyOf', 'oneOf', 'allOf', '$ref', 'uniqueItems', 'not', 'if', 'then', 'else',
  'patternProperties', 'propertyNames', 'minProperties', 'maxProperties', 'dependentRequired', 'dependentSchemas',
  'dependencies', 'contains', 'minContains', 'maxContains', 'unevaluatedProperties', 'unevaluatedItems',
] as const;
const SUPPORTED = new Set<string>(CLAIMED_KEYWORDS);
const TYPE_NAMES = ['null', 'boolean', 'integer', 'number', 'string', 'array', 'object'];

// ---------------------------------------------------------------- typed languages

type Part<D> = { struct: D; lang?: undefined } | { lang: Lang; struct?: undefined };
interface ArrDesc {
  prefix: Typed[];
  items: Typed;
  min: number;
  max: number;
  /** contains: how many elements must match it (minContains..maxContains). */
  contains?: { schema: Typed; min: number; max: number };
}
interface PatternProp {
  /** The JS regex source (search semantics) and the language of the JSON-encoded keys it matches. */
  src: string;
  key: Lang;
  schema: Typed;
}
interface ObjDesc {
  props: Map<string, Typed>;
  required: Set<string>;
  ap: Typed;
  patterns?: PatternProp[];
  /** propertyNames: language of the allowed JSON-encoded keys (null = any). */
  names?: Lang | null;
  minProps?: number;
  maxProps?: number;
}
/** A schema's language split by JSON type. Scalars are languages of canonical JSON text (strings encoded). */
interface Typed {
  null: Lang | null;
  boolean: Lang | null;
  int: Lang | null;
  frac: Lang | null;
  string: Lang | null;
  array: Part<ArrDesc>[];
  object: Part<ObjDesc>[];
  /** Set on the unconstrained value (nesting depth): intersecting with it is the identity. */
  any?: number;
}
const SCALARS = ['null', 'boolean', 'int', 'frac', 'string'] as const;

const emptyTyped = (): Typed => ({ null: null, boolean: null, int: null, frac: null, string: null, array: [], object: [] });

interface Ctx {
  root: unknown;
  draft: Draft;
  keyRank: Map<string, number>;
  refStack: Map<string, number>;
  maxRefDepth: number;
  anyDepth: number;
  used: Set<string>;
  /** Base URI, pointer of every indexed subschema; resources by URI; anchors by URI#name; the current base. */
  nodes: Map<object, NodeInfo>;
  resources: Map<string, unknown>;
  anchors: Map<string, unknown>;
  base: string;
  loadRemote?: (uri: string) => unknown;
  anyCache: Map<number, Typed>;
  matCache: WeakMap<Typed, Lang>;
  defaults: { null: Lang; boolean: Lang; int: Lang; frac: Lang; string: Lang; looseInt: Lang };
}

function anyTyped(ctx: Ctx, depth: number): Typed {
  const hit = ctx.anyCache.get(depth);
  if (hit) return hit;
  const d = ctx.defaults;
  const t: Typed = {
    null: d.null, boolean: d.boolean, int: d.looseInt, frac: d.frac, string: d.string,
    array: depth > 0 ? [{ struct: { prefix: [], items: anyTyped(ctx, depth - 1), min: 0, max: Infinity } }] : [],
    object: depth > 0 ? [{ struct: { props: new Map(), required: new Set(), ap: anyTyped(ctx, depth - 1) } }] : [],
    any: depth,
  };
  ctx.anyCache.set(depth, t);
  return t;
}

function isEmptyTyped(t: Typed): boolean {
  return SCALARS.every((k) => t[k] === null) && t.array.length === 0 && t.object.length === 0;
}

const MAX_PARTS = 64;

function intersectTyped(ctx: Ctx, a: Typed, b: Typed): Typed {
  if (a.any !== undefined && (b.any === undefined || b.any <= a.any)) return b;
  if (b.any !== undefined) return a;
  const out = emptyTyped();
  for (const k of SCALARS) {
    const x = a[k];
    const y = b[k];
    if (x && y) {
      // the default language of a type contains every language of that type: intersecting with it is the identity
      if (x === ctx.defaults[k]) out[k] = y;
      else if (y === ctx.defaults[k]) out[k] = x;
      else {
        const z = intersect(x, y);
        out[k] = isEmptyLang(z) ? null : z;
      }
    }
  }
  for (const pa of a.array) for (const pb of b.array) pushPart(out.array, mergeArr(ctx, pa, pb));
  for (const pa of a.object) for (const pb of b.object) pushPart(out.object, mergeObj(ctx, pa, pb));
  if (out.array.length > MAX_PARTS || out.object.length > MAX_PARTS) throw new SchemaTooLargeError(whereNow, 'too many alternatives after merging allOf/anyOf');
  return out;
}
function pushPart<D>(list: Part<D>[], p: Part<D> | null): void {
  if (p) list.push(p);
}

function unionTyped(a: Typed, b: Typed): Typed {
  if (a.any !== undefined && (b.any === undefined || a.any >= b.any)) return a;
  if (b.any !== undefined && a.any === undefined) return b;
  const out = emptyTyped();
  for (const k of SCALARS) {
    const x = a[k];
    const y = b[k];
    out[k] = x && y ? minimal(alt(x, y)) : (x ?? y);
  }
  out.array = [...a.array, ...b.array];
  out.object = [...a.object, ...b.object];
  return out;
}

function elemAt(d: ArrDesc, i: number): Typed {
  return i < d.prefix.length ? d.prefix[i]! : d.items;
}

function mergeArr(ctx: Ctx, a: Part<ArrDesc>, b: Part<ArrDesc>): Part<ArrDesc> | null {
  if (a.struct && b.struct && !a.struct.contains && !b.struct.contains) {
    const n = Math.max(a.struct.prefix.length, b.struct.prefix.length);
    const prefix: Typed[] = [];
    for (let i = 0; i < n; i++) prefix.push(intersectTyped(ctx, elemAt(a.struct, i), elemAt(b.struct, i)));
    const d: ArrDesc = {
      prefix,
      items: intersectTyped(ctx, a.struct.items, b.struct.items),
      min: Math.max(a.struct.min, b.struct.min),
      max: Math.min(a.struct.max, b.struct.max),
    };
    return d.min > d.max ? null : { struct: d };
  }
  const la = a.lang ?? matArr(ctx, a.struct!);
  const lb = b.lang ?? matArr(ctx, b.struct!);
  const l = intersect(la, lb);
  return isEmptyLang(l) ? null : { lang: l };
}

const hasKeyRules = (d: ObjDesc) => (d.patterns?.length ?? 0) > 0 || (d.names !== undefined && d.names !== null);

function mergeObj(ctx: Ctx, a: Part<ObjDesc>, b: Part<ObjDesc>): Part<ObjDesc> | null {
  // with patternProperties/propertyNames the per-key rules do not merge structurally: intersect the languages
  if (a.struct && b.struct && !hasKeyRules(a.struct) && !hasKeyRules(b.struct)) {
    const props = new Map<string, Typed>();
    const keys = new Set([...a.struct.props.keys(), ...b.struct.props.keys()]);
    for (const k of keys) {
      props.set(k, intersectTyped(ctx, a.struct.props.get(k) ?? a.struct.ap, b.struct.props.get(k) ?? b.struct.ap));
    }
    return {
      struct: {
        props,
        required: new Set([...a.struct.required, ...b.struct.required]),
        ap: intersectTyped(ctx, a.struct.ap, b.struct.ap),
        minProps: Math.max(a.struct.minProps ?? 0, b.struct.minProps ?? 0),
        maxProps: Math.min(a.struct.maxProps ?? Infinity, b.struct.maxProps ?? Infinity),
      },
    };
  }
  const la = a.lang ?? matObj(ctx, a.struct!);
  const lb = b.lang ?? matObj(ctx, b.struct!);
  const l = intersect(la, lb);
  return isEmptyLang(l) ? null : { lang: l };
}

// ---------------------------------------------------------------- materialization

/** Materialized unconstrained values by depth (independent of the schema, so shared by all compiles). */
const anyLangCache = new Map<number, Lang>();

function materialize(ctx: Ctx, t: Typed): Lang {
  const hit = ctx.matCache.get(t);
  if (hit) return hit;
  if (t.any !== undefined) {
    const shared = anyLangCache.get(t.any);
    if (shared) return shared;
  }
  checkDeadline();
  const parts: Lang[] = [];
  for (const k of SCALARS) if (t[k]) parts.push(t[k]!);
  for (const p of t.array) parts.push(p.lang ?? matArr(ctx, p.struct));
  for (const p of t.object) parts.push(p.lang ?? matObj(ctx, p.struct));
  const l = parts.length === 1 ? parts[0]! : minimal(alt(...parts));
  ctx.matCache.set(t, l);
  if (t.any !== undefined) anyLangCache.set(t.any, l);
  return l;
}

/** `[` elements `]`, built as ("," element)* and then stripped of its first comma. */
function matArr(ctx: Ctx, d: ArrDesc): Lang {
  const P = d.prefix.length;
  const itemsEmpty = isEmptyTyped(d.items);
  const max = itemsEmpty ? Math.min(d.max, P) : d.max;
  const min = d.min;
  if (min > max) return empty();
  const K = Math.max(P, min);
  const c = d.contains;
  // separators: MARK before an element; with `contains`, MARK2 before an element that matches it (counted)
  const elem = (i: number): Lang => {
    const e = elemAt(d, i);
    if (!c) return seq(lit(MARK_STR), materialize(ctx, e));
    const hit = intersectTyped(ctx, e, c.schema);
    const miss = complementTyped(ctx, e, c.schema);
    const parts: Lang[] = [];
    if (!isEmptyTyped(hit)) parts.push(seq(lit(MARK2_STR), materialize(ctx, hit)));
    if (!isEmptyTyped(miss)) parts.push(seq(lit(MARK_STR), materialize(ctx, miss)));
    return alt(...parts);
  };
  // Suffix from K on: only `items` elements remain.
  let tail: Lang;
  if (K >= max) tail = eps();
  else tail = rep(elem(K), 0, max === Infinity ? Infinity : max - K);
  for (let i = Math.min(K, max) - 1; i >= 0; i--) {
    const more = seq(elem(i), tail);
    tail = i >= min ? alt(eps(), more) : more;
    tail = minimal(tail);
  }
  if (c) {
    if (c.min > c.max) return empty();
    if (Math.max(c.min, c.max === Infinity ? 0 : c.max) > 64) throw new SchemaTooLargeError(whereNow, 'minContains/maxContains above 64');
    const other = chars(charSet([[0, MARK2 - 1], [MARK2 + 1, 0x10ffff]]));
    tail = intersect(tail, seq(rep(seq(rep(other, 0, Infinity), lit(MARK2_STR)), c.min, c.max), rep(other, 0, Infinity)));
    tail = mapChar(tail, MARK2, MARK);
  }
  const dm = toDfa(tail);
  const inner = mapChar(quotientDfa(dm, MARK), MARK, 0x2c);
  return seq(lit('['), dm.test([]) ? alt(eps(), inner) : inner, lit(']'));
}

/** Separator used while building object members (a lone surrogate: never part of a JSON string value here). */
const MARK = 0xd800;
const MARK_STR = String.fromCharCode(MARK);
const MARK2 = 0xd801;
const MARK2_STR = String.fromCharCode(MARK2);

/**
 * `{` members `}`. Members are built as (MARK member)*, so that min/maxProperties can count the marks; then the
 * first mark is removed by a DFA quotient and the others become commas.
 */
function matObj(ctx: Ctx, d: ObjDesc): Lang {
  // the canonical order: keys the schema names by rank, others by code units (as canonicalJson)
  const keys = [...new Set([...d.props.keys(), ...d.required])].sort((a, b) => rankOf(ctx, a) - rankOf(ctx, b) || (a < b ? -1 : a > b ? 1 : 0));
  const patterns = d.patterns ?? [];
  const names = d.names ?? null;
  const matching = (k: string) => patterns.filter((p) => new RegExp(p.src, 'u').test(k));
  const any = () => anyTyped(ctx, ctx.anyDepth);

  // additional members: one alternative per set of patterns the key matches (none: additionalProperties)
  let extraKeys = encodeContent(keys.length ? minus(stringContentAll(), words(keys)) : stringContentAll());
  if (names) extraKeys = intersect(extraKeys, names);
  const alternatives: Lang[] = [];
  for (let mask = 0; mask < 1 << patterns.length; mask++) {
    let value: Typed = mask === 0 ? d.ap : any();
    let keyLang = extraKeys;
    patterns.forEach((p, i) => {
      if (mask & (1 << i)) {
        value = intersectTyped(ctx, value, p.schema);
        keyLang = intersect(keyLang, p.key);
      } else keyLang = minus(keyLang, p.key);
    });
    if (isEmptyTyped(value) || isEmptyLang(keyLang)) continue;
    alternatives.push(seq(lit(MARK_STR), keyLang, lit(':'), materialize(ctx, value)));
  }
  const extra = alternatives.length ? minimal(rep(alt(...alternatives), 0, Infinity)) : eps();

  const parts: Lang[] = [extra];
  for (const k of keys) {
    const enc = JSON.stringify(k);
    const allowed = !names || names.test(cp(enc));
    const m = matching(k);
    let t = d.props.get(k) ?? (m.length ? any() : d.ap);
    for (const p of m) t = intersectTyped(ctx, t, p.schema);
    if (!allowed || isEmptyTyped(t)) {
      if (d.required.has(k)) return empty();
      continue;
    }
    const member = seq(lit(`${MARK_STR}${enc}:`), materialize(ctx, t));
    parts.push(d.required.has(k) ? member : rep(member, 0, 1), extra);
  }
  let members = seq(...parts);
  const minP = d.minProps ?? 0;
  const maxP = d.maxProps ?? Infinity;
  if (minP > 0 || maxP < Infinity) {
    if (minP > maxP) return empty();
    if (Math.max(minP, maxP === Infinity ? 0 : maxP) > 64) throw new SchemaTooLargeError(whereNow, 'minProperties/maxProperties above 64');
    const notMark = chars(charSet([[0, MARK - 1], [MARK + 1, 0x10ffff]]));
    const counted = seq(rep(seq(rep(notMark, 0, Infinity), lit(MARK_STR)), minP, maxP), rep(notMark, 0, Infinity));
    members = intersect(members, counted);
  }
  const dm = toDfa(members);
  const inner = mapChar(quotientDfa(dm, MARK), MARK, 0x2c);
  return seq(lit('{'), dm.test([]) ? alt(eps(), inner) : inner, lit('}'));
}

function rankOf(ctx: Ctx, key: string): number {
  return ctx.keyRank.get(key) ?? Number.MAX_SAFE_INTEGER;
}

// ---------------------------------------------------------------- schema walk

let whereNow = '';

function compileNode(ctx: Ctx, schema: unknown, ptr: string): Typed {
  checkDeadline();
  const prevWhere = setWhere(ptr);
  const prevNow = whereNow;
  const prevBase = ctx.base;
  whereNow = ptr;
  const info = isObj(schema) ? ctx.nodes.get(schema) : undefined;
  if (info) ctx.base = info.base;
  try {
    return compileNodeInner(ctx, schema, ptr);
  } finally {
    setWhere(prevWhere);
    whereNow = prevNow;
    ctx.base = prevBase;
  }
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function invalid(keyword: string, ptr: string, msg: string): ConstraintCompileError {
  return new ConstraintCompileError('INVALID_SCHEMA', `invalid schema: "${keyword}" at #${ptr}: ${msg}`, keyword, ptr);
}

function compileNodeInner(ctx: Ctx, schema: unknown, ptr: string): Typed {
  if (schema === true) return anyTyped(ctx, ctx.anyDepth);
  if (schema === false) return emptyTyped();
  if (!isObj(schema)) throw new ConstraintCompileError('INVALID_SCHEMA', `invalid schema at #${ptr}: expected an object or a boolean`, undefined, ptr);

  for (const k of Object.keys(schema)) {
    if (ANNOTATIONS.has(k)) continue;
    if (k === 'prefixItems' && ctx.draft === '7') throw new UnsupportedKeywordError(k, ptrJoin(ptr, k), 'prefixItems is a Draft 2020-12 keyword');
    if (k === 'additionalItems' && ctx.draft === '2020-12') throw new UnsupportedKeywordError(k, ptrJoin(ptr, k), 'additionalItems is not a Draft 2020-12 keyword (use prefixItems + items)');
    if ((k === 'minContains' || k === 'maxContains') && ctx.draft === '7') throw new UnsupportedKeywordError(k, ptrJoin(ptr, k), `${k} is a Draft 2019-09+ keyword`);
    if ((k === 'unevaluatedProperties' || k === 'unevaluatedItems') && ctx.draft === '7') throw new UnsupportedKeywordError(k, ptrJoin(ptr, k), `${k} is a Draft 2019-09+ keyword`);
    if (k === 'dependencies' && ctx.draft === '2020-12') throw new UnsupportedKeywordError(k, ptrJoin(ptr, k), 'dependencies is a Draft 7 keyword (use dependentRequired / dependentSchemas)');
    if (!SUPPORTED.has(k)) throw new UnsupportedKeywordError(k, ptrJoin(ptr, k));
    if (k === 'uniqueItems' && schema[k] === true) throw new UnsupportedKeywordError(k, ptrJoin(ptr, k), 'uniqueItems: true is not a regular language');
    ctx.used.add(k);
  }

  if (typeof schema.$ref === 'string' && ctx.draft === '7') {
    // Draft 7: $ref overrides its siblings.
    return compileRef(ctx, schema.$ref, ptrJoin(ptr, '$ref'));
  }

  const parts: Typed[] = [typeBase(ctx, schema, ptr)];
  if ('enum' in schema) {
    if (!Array.isArray(schema.enum)) throw invalid('enum', ptr, 'must be an array');
    parts.push(literalTyped(ctx, schema.enum));
  }
  if ('const' in schema) parts.push(literalTyped(ctx, [schema.const]));
  if ('$ref' in schema) {
    if (typeof schema.$ref !== 'string') throw invalid('$ref', ptr, 'must be a string');
    parts.push(compileRef(ctx, schema.$ref, ptrJoin(ptr, '$ref')));
  }
  if ('allOf' in schema) {
    const list = schemaList(schema.allOf, 'allOf', ptr);
    list.forEach((s, i) => parts.push(compileNode(ctx, s, ptrJoin(ptrJoin(ptr, 'allOf'), i))));
  }
  if ('anyOf' in schema) {
    const list = schemaList(schema.anyOf, 'anyOf', ptr);
    let u = emptyTyped();
    list.forEach((s, i) => { u = unionTyped(u, compileNode(ctx, s, ptrJoin(ptrJoin(ptr, 'anyOf'), i))); });
    parts.push(u);
  }
  if ('oneOf' in schema) {
    const list = schemaList(schema.oneOf, 'oneOf', ptr);
    // oneOf(A, B) and P = exactly one of (A and P), (B and P): restricting the branches first keeps them small
    const base = parts[0]!;
    parts.push(oneOfTyped(ctx, list.map((s, i) => intersectTyped(ctx, base, compileNode(ctx, s, ptrJoin(ptrJoin(ptr, 'oneOf'), i))))));
  }
  if ('not' in schema) {
    parts.push(complementTyped(ctx, parts[0]!, compileNode(ctx, schema.not, ptrJoin(ptr, 'not'))));
  }
  if ('if' in schema && ('then' in schema || 'else' in schema)) {
    // (if and then) or (not if and else); a missing then/else is `true`
    const base = parts[0]!;
    const cond = intersectTyped(ctx, base, compileNode(ctx, schema.if, ptrJoin(ptr, 'if')));
    const thenT = 'then' in schema ? intersectTyped(ctx, cond, compileNode(ctx, schema.then, ptrJoin(ptr, 'then'))) : cond;
    const notCond = complementTyped(ctx, base, cond);
    const elseT = 'else' in schema ? intersectTyped(ctx, notCond, compileNode(ctx, schema.else, ptrJoin(ptr, 'else'))) : notCond;
    parts.push(unionTyped(thenT, elseT));
  }
  // dependentRequired / dependentSchemas / Draft 7 dependencies: "if the object has key a, then ..."
  const deps: [string, unknown, string][] = [];
  const collect = (kw: string, want: 'array' | 'schema' | 'either') => {
    if (!(kw in schema)) return;
    const v = schema[kw];
    if (!isObj(v)) throw invalid(kw, ptr, 'must be an object');
    for (const [k, d] of Object.entries(v)) {
      const isArr = Array.isArray(d);
      if ((want === 'array' && !isArr) || (want === 'schema' && isArr)) throw invalid(kw, ptr, `"${k}" has the wrong form`);
      deps.push([k, isArr ? { required: d } : d, ptrJoin(ptrJoin(ptr, kw), k)]);
    }
  };
  collect('dependentRequired', 'array');
  collect('dependentSchemas', 'schema');
  if (ctx.draft === '7') collect('dependencies', 'either');
  for (const [key, then, at] of deps) {
    const base = parts[0]!;
    const cond = intersectTyped(ctx, base, compileNode(ctx, { type: 'object', required: [key] }, at));
    const thenT = intersectTyped(ctx, cond, compileNode(ctx, then, at));
    parts.push(unionTyped(thenT, complementTyped(ctx, base, cond)));
  }
  if ('unevaluatedProperties' in schema) parts.push(unevaluated(ctx, schema, ptr, 'unevaluatedProperties'));
  if ('unevaluatedItems' in schema) parts.push(unevaluated(ctx, schema, ptr, 'unevaluatedItems'));
  let t = parts[0]!;
  for (let i = 1; i < parts.length; i++) {
    if (isEmptyTyped(t)) break;
    t = intersectTyped(ctx, t, parts[i]!);
  }
  return t;
}

/** In-place applicators whose annotations depend on which branch validates: unevaluated* next to them is refused. */
const DYNAMIC_APPLICATORS = ['anyOf', 'oneOf', 'if', 'then', 'else', '$ref', '$dynamicRef', 'dependentSchemas'];

/**
 * unevaluatedProperties / unevaluatedItems when the evaluated properties (items) are known statically: the schema
 * and its allOf subschemas (recursively) declare them; no applicator whose annotations depend on the instance.
 * Compiled as additionalProperties (items) over everything those declare.
 */
function unevaluated(ctx: Ctx, schema: Record<string, unknown>, ptr: string, kw: 'unevaluatedProperties' | 'unevaluatedItems'): Typed {
  const names = new Set<string>();
  const patterns = new Set<string>();
  let prefix = 0;
  let all = false;
  const visit = (node: unknown, self: boolean): void => {
    if (!isObj(node)) return;
    const dyn = DYNAMIC_APPLICATORS.find((k) => k in node);
    if (dyn) throw new UnsupportedKeywordError(kw, ptrJoin(ptr, kw), `only compiled when the evaluated ${kw === 'unevaluatedItems' ? 'items' : 'properties'} are static (here "${dyn}" makes them depend on the instance)`);
    if (kw === 'unevaluatedProperties') {
      if (isObj(node.properties)) for (const k of Object.keys(node.properties)) names.add(k);
      if (isObj(node.patternProperties)) for (const k of Object.keys(node.patternProperties)) patterns.add(k);
      if ('additionalProperties' in node || (!self && 'unevaluatedProperties' in node)) all = true;
    } else {
      if (Array.isArray(node.prefixItems)) prefix = Math.max(prefix, node.prefixItems.length);
      if ('items' in node || (!self && 'unevaluatedItems' in node)) all = true;
      if ('contains' in node) throw new UnsupportedKeywordError(kw, ptrJoin(ptr, kw), 'contains makes the evaluated items depend on the instance');
    }
    if (Array.isArray(node.allOf)) for (const b of node.allOf) visit(b, false);
  };
  visit(schema, true);
  if (all) return anyTyped(ctx, ctx.anyDepth);
  const u = schema[kw];
  const synthetic: Record<string, unknown> = kw === 'unevaluatedProperties'
    ? { properties: Object.fromEntries([...names].map((n) => [n, true])), patternProperties: Object.fromEntries([...patterns].map((p) => [p, true])), additionalProperties: u }
    : { prefixItems: Array.from({ length: prefix }, () => true), items: u };
  return compileNode(ctx, synthetic, ptrJoin(ptr, kw));
}

function schemaList(x: unknown, kw: string, ptr: string): unknown[] {
  if (!Array.isArray(x) || x.length === 0) throw invalid(kw, ptr, 'must be a non-empty array of schemas');
  return x;
}

/** The words in exactly one of the languages. */
function exactlyOne(langs: Lang[]): Lang {
  let pairwiseDisjoint = true;
  for (let i = 0; i < langs.length && pairwiseDisjoint; i++) {
    for (let j = i + 1; j < langs.length; j++) {
      if (!disjoint(langs[i]!, langs[j]!)) {
        pairwiseDisjoint = false;
        break;
      }
    }
  }
  if (pairwiseDisjoint) return minimal(alt(...langs));
  const pieces = langs.map((l, i) => minus(l, alt(...langs.filter((_, j) => j !== i))));
  return minimal(alt(...pieces));
}

/**
 * Exactly one branch. JSON types are disjoint, so this is decided type by type: a type only one branch allows is
 * kept as it is (structure included); otherwise pairwise disjoint languages (checked on the DFAs) are a union, and
 * overlapping ones give the exact "in exactly one" language built with complements.
 */
function oneOfTyped(ctx: Ctx, branches: Typed[]): Typed {
  const out = emptyTyped();
  for (const k of SCALARS) {
    const langs = branches.map((b) => b[k]).filter((l): l is Lang => l !== null);
    if (langs.length === 0) continue;
    const l = langs.length === 1 ? langs[0]! : exactlyOne(langs);
    out[k] = isEmptyLang(l) ? null : l;
  }
  const composite = <D,>(pick: (b: Typed) => Part<D>[], mat: (d: D) => Lang): Part<D>[] => {
    const withParts = branches.map(pick).filter((p) => p.length > 0);
    if (withParts.length === 0) return [];
    if (withParts.length === 1) return withParts[0]!;
    const langs = withParts.map((ps) => minimal(alt(...ps.map((p) => p.lang ?? mat(p.struct as D)))));
    const l = exactlyOne(langs);
    return isEmptyLang(l) ? [] : [{ lang: l }];
  };
  out.array = composite((b) => b.array, (d: ArrDesc) => matArr(ctx, d));
  out.object = composite((b) => b.object, (d: ObjDesc) => matObj(ctx, d));
  return out;
}

/**
 * Values of `universe` not in `neg` (JSON Schema `not`, relative to what the rest of the schema allows). Exact for
 * values within the unconstrained-nesting bound (anyDepth), like everything else.
 */
function complementTyped(ctx: Ctx, universe: Typed, neg: Typed): Typed {
  if (isEmptyTyped(neg)) return universe;
  if (neg.any !== undefined) return emptyTyped();
  const out = emptyTyped();
  // scalars type by type (cheap); arrays and objects through their materialized languages
  for (const k of SCALARS) {
    const u = universe[k];
    if (!u) continue;
    const n = neg[k];
    if (!n) out[k] = u;
    else {
      const d = minus(u, n);
      out[k] = isEmptyLang(d) ? null : d;
    }
  }
  const composite = (parts: Part<ArrDesc>[] | Part<ObjDesc>[], negParts: Part<ArrDesc>[] | Part<ObjDesc>[], mat: (p: never) => Lang): Lang | null => {
    if (parts.length === 0) return null;
    const u = minimal(alt(...parts.map((p) => p.lang ?? mat(p.struct as never))));
    if (negParts.length === 0) return u;
    const n = minimal(alt(...negParts.map((p) => p.lang ?? mat(p.struct as never))));
    const d = minus(u, n);
    return isEmptyLang(d) ? null : d;
  };
  const arr = composite(universe.array, neg.array, (d: ArrDesc) => matArr(ctx, d));
  if (arr) out.array.push({ lang: arr });
  const obj = composite(universe.object, neg.object, (d: ObjDesc) => matObj(ctx, d));
  if (obj) out.object.push({ lang: obj });
  return out;
}

function literalTyped(ctx: Ctx, values: unknown[]): Typed {
  const buckets: Record<(typeof SCALARS)[number] | 'array' | 'object', string[]> = {
    null: [], boolean: [], int: [], frac: [], string: [], array: [], object: [],
  };
  for (const v of values) {
    const s = canonicalJson(v, ctx.keyRank);
    if (v === null) buckets.null.push(s);
    else if (typeof v === 'boolean') buckets.boolean.push(s);
    else if (typeof v === 'number') {
      if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) buckets.int.push(s);
      else buckets.frac.push(s);
    } else if (typeof v === 'string') buckets.string.push(s);
    else if (Array.isArray(v)) buckets.array.push(s);
    else buckets.object.push(s);
  }
  const t = emptyTyped();
  for (const k of SCALARS) if (buckets[k].length) t[k] = minimal(words(buckets[k]));
  if (buckets.array.length) t.array.push({ lang: minimal(words(buckets.array)) });
  if (buckets.object.length) t.object.push({ lang: minimal(words(buckets.object)) });
  return t;
}

// ---------------------------------------------------------------- $ref resolution ($id, $anchor, JSON pointers)

const DEFAULT_BASE = 'https://dlm-studio.invalid/schema.json';

interface NodeInfo { base: string; ptr: string }

/** Index a schema document: the base URI of every subschema, its resources ($id) and anchors. */
function indexDocument(ctx: Ctx, doc: unknown, uri: string, ptrPrefix: string): void {
  ctx.resources.set(uri, doc);
  const walk = (node: unknown, base: string, ptr: string): void => {
    if (Array.isArray(node)) {
      node.forEach((x, i) => walk(x, base, ptrJoin(ptr, i)));
      return;
    }
    if (!isObj(node)) return;
    // Draft 7: a $ref makes the node's other keywords (its $id too) ignored
    const refOnly = ctx.draft === '7' && typeof node.$ref === 'string';
    if (!refOnly && typeof node.$id === 'string') {
      if (ctx.draft === '7' && node.$id.startsWith('#')) ctx.anchors.set(`${base}#${node.$id.slice(1)}`, node);
      else {
        try {
          const u = new URL(node.$id, base);
          const frag = u.hash;
          u.hash = '';
          base = u.href;
          ctx.resources.set(base, node);
          if (ctx.draft === '7' && frag.length > 1) ctx.anchors.set(`${base}${frag}`, node);
        } catch {
          throw invalid('$id', ptr, `not a URI reference: ${JSON.stringify(node.$id)}`);
        }
      }
    }
    if (!refOnly && typeof node.$anchor === 'string') ctx.anchors.set(`${base}#${node.$anchor}`, node);
    ctx.nodes.set(node, { base, ptr });
    for (const [k, v] of Object.entries(node)) {
      if (k === 'enum' || k === 'const' || k === 'default' || k === 'examples') continue;
      walk(v, base, ptrJoin(ptr, k));
    }
  };
  walk(doc, uri, ptrPrefix);
}

function resolveRef(ctx: Ctx, ref: string, ptr: string): { target: unknown; key: string; at: string } {
  let abs: URL;
  try {
    abs = new URL(ref, ctx.base);
  } catch {
    throw invalid('$ref', ptr, `malformed reference ${JSON.stringify(ref)}`);
  }
  let frag: string;
  try {
    frag = decodeURIComponent(abs.hash.slice(1));
  } catch {
    throw invalid('$ref', ptr, `malformed reference ${JSON.stringify(ref)}`);
  }
  abs.hash = '';
  const docUri = abs.href;
  let doc = ctx.resources.get(docUri);
  if (doc === undefined && ctx.loadRemote) {
    const remote = ctx.loadRemote(docUri);
    if (remote !== undefined) {
      indexDocument(ctx, remote, docUri, docUri);
      doc = remote;
    }
  }
  if (doc === undefined) throw new UnsupportedKeywordError('$ref', ptr, `reference ${JSON.stringify(ref)} is outside this schema (remote references are not fetched)`);
  let node: unknown = doc;
  if (frag !== '' && !frag.startsWith('/')) {
    node = ctx.anchors.get(`${docUri}#${frag}`);
    if (node === undefined) throw new ConstraintCompileError('INVALID_SCHEMA', `$ref at #${ptr}: anchor ${JSON.stringify(ref)} does not resolve`, '$ref', ptr);
  } else if (frag !== '') {
    for (const raw of frag.slice(1).split('/')) {
      const tok = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      if (Array.isArray(node) && /^\d+$/.test(tok)) node = node[Number(tok)];
      else if (isObj(node) && Object.prototype.hasOwnProperty.call(node, tok)) node = node[tok];
      else throw new ConstraintCompileError('INVALID_SCHEMA', `$ref at #${ptr}: ${JSON.stringify(ref)} does not resolve`, '$ref', ptr);
    }
  }
  const info = isObj(node) ? ctx.nodes.get(node) : undefined;
  return { target: node, key: `${docUri}#${frag}`, at: info?.ptr ?? frag };
}

function compileRef(ctx: Ctx, ref: string, ptr: string): Typed {
  const { target, key, at } = resolveRef(ctx, ref, ptr);
  const depth = ctx.refStack.get(key) ?? 0;
  if (depth >= ctx.maxRefDepth) return emptyTyped(); // recursion cut: deeper nesting is not generated
  ctx.refStack.set(key, depth + 1);
  try {
    return compileNode(ctx, target, at);
  } finally {
    ctx.refStack.set(key, depth);
  }
}

function num(schema: Record<string, unknown>, kw: string, ptr: string): number | undefined {
  const v = schema[kw];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(kw, ptr, 'must be a finite number');
  return v;
}
function count(schema: Record<string, unknown>, kw: string, ptr: string): number | undefined {
  const v = schema[kw];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(kw, ptr, 'must be a non-negative integer');
  return v;
}

const NUMERIC_KWS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'];
const STRING_KWS = ['minLength', 'maxLength', 'pattern', 'format'];
const ARRAY_KWS = ['items', 'prefixItems', 'additionalItems', 'minItems', 'maxItems', 'uniqueItems', 'contains', 'minContains', 'maxContains'];
const OBJECT_KWS = ['properties', 'required', 'additionalProperties', 'patternProperties', 'propertyNames', 'minProperties', 'maxProperties'];

/** The schema's `type` plus its type-specific keywords. */
function typeBase(ctx: Ctx, schema: Record<string, unknown>, ptr: string): Typed {
  let types: Set<string>;
  if ('type' in schema) {
    const list = Array.isArray(schema.type) ? schema.type : [schema.type];
    for (const x of list) if (typeof x !== 'string' || !TYPE_NAMES.includes(x)) throw invalid('type', ptr, `unknown type ${JSON.stringify(x)}`);
    types = new Set(list as string[]);
  } else {
    const has = (kws: string[]) => kws.some((k) => k in schema);
    if (!has(NUMERIC_KWS) && !has(STRING_KWS) && !has(ARRAY_KWS) && !has(OBJECT_KWS)) return anyTyped(ctx, ctx.anyDepth);
    types = new Set(TYPE_NAMES);
  }
  const t = emptyTyped();
  if (types.has('null')) t.null = ctx.defaults.null;
  if (types.has('boolean')) t.boolean = ctx.defaults.boolean;
  if (types.has('integer') || types.has('number')) t.int = NUMERIC_KWS.some((k) => k in schema) ? intLang(schema, ptr) : ctx.defaults.int;
  if (types.has('number')) t.frac = NUMERIC_KWS.some((k) => k in schema) ? fracLang(schema, ptr) : ctx.defaults.frac;
  if (types.has('string')) t.string = STRING_KWS.some((k) => k in schema) ? stringLang(schema, ptr) : ctx.defaults.string;
  if (types.has('array')) t.array.push({ struct: arrDesc(ctx, schema, ptr) });
  if (types.has('object')) t.object.push({ struct: objDesc(ctx, schema, ptr) });
  for (const k of SCALARS) if (t[k] && isEmptyLang(t[k]!)) t[k] = null;
  return t;
}

function intLang(schema: Record<string, unknown>, ptr: string): Lang | null {
  let lo = -MAX_SAFE;
  let hi = MAX_SAFE;
  const bound = (kw: string, f: (p: bigint, q: bigint) => void) => {
    const v = num(schema, kw, ptr);
    if (v === undefined) return;
    const r = toRational(v);
    if (!r) throw invalid(kw, ptr, 'not a finite number');
    f(r.p, r.q);
  };
  bound('minimum', (p, q) => { const c = ceilDiv(p, q); if (c > lo) lo = c; });
  bound('maximum', (p, q) => { const c = floorDiv(p, q); if (c < hi) hi = c; });
  bound('exclusiveMinimum', (p, q) => { const c = floorDiv(p, q) + 1n; if (c > lo) lo = c; });
  bound('exclusiveMaximum', (p, q) => { const c = ceilDiv(p, q) - 1n; if (c < hi) hi = c; });
  if (lo > hi) return null;
  let l = intRange(lo, hi);
  const m = num(schema, 'multipleOf', ptr);
  if (m !== undefined) {
    if (m <= 0) throw invalid('multipleOf', ptr, 'must be > 0');
    const r = toRational(m)!;
    // An integer x is a multiple of p/q (coprime) iff p divides x.
    const p = r.p;
    if (p > 10_000n) throw new UnsupportedKeywordError('multipleOf', ptrJoin(ptr, 'multipleOf'), `divisor ${p} is too large for a digit automaton (limit 10000)`);
    if (p > 1n) l = intersect(l, multipleOfInt(p));
  }
  return l;
}

function fracLang(schema: Record<string, unknown>, ptr: string): Lang | null {
  const parts: Lang[] = [fracAll()];
  const bounds: [string, 'min' | 'max', boolean][] = [
    ['minimum', 'min', false], ['exclusiveMinimum', 'min', true], ['maximum', 'max', false], ['exclusiveMaximum', 'max', true],
  ];
  for (const [kw, dir, strict] of bounds) {
    const v = num(schema, kw, ptr);
    if (v === undefined) continue;
    try {
      parts.push(fracBound(v, dir, strict));
    } catch (e) {
      if (e instanceof BoundNotExactError) throw new UnsupportedKeywordError(kw, ptrJoin(ptr, kw), `${e.message}: only bounds written without an exponent are compiled exactly for non-integers`);
      throw e;
    }
  }
  const m = num(schema, 'multipleOf', ptr);
  if (m !== undefined) {
    if (m <= 0) throw invalid('multipleOf', ptr, 'must be > 0');
    const r = toRational(m);
    if (!r) throw invalid('multipleOf', ptr, 'not a finite number');
    if (r.q === 1n) return null; // a multiple of an integer is an integer (huge exponent forms are left out)
    const l = decimalMultiple(r.p, r.q);
    if (!l) throw new UnsupportedKeywordError('multipleOf', ptrJoin(ptr, 'multipleOf'), `divisor ${m} has no exact decimal automaton (its denominator must divide a power of 10 and the modulus stay under 10000)`);
    parts.push(l);
  }
  const out = parts.length === 1 ? parts[0]! : intersect(...parts);
  return isEmptyLang(out) ? null : out;
}

function stringLang(schema: Record<string, unknown>, ptr: string): Lang | null {
  const parts: Lang[] = [];
  const minL = count(schema, 'minLength', ptr);
  const maxL = count(schema, 'maxLength', ptr);
  if (minL !== undefined || maxL !== undefined) {
    const lo = minL ?? 0;
    const hi = maxL ?? Infinity;
    if (lo > hi) return null;
    if (Math.max(lo, hi === Infinity ? 0 : hi) > 5000) throw new SchemaTooLargeError(ptr, 'string length bounds above 5000');
    parts.push(rep(stringChar(), lo, hi));
  }
  if ('pattern' in schema) {
    if (typeof schema.pattern !== 'string') throw invalid('pattern', ptr, 'must be a string');
    const prev = setWhere(ptrJoin(ptr, 'pattern'));
    try {
      parts.push(regexLang(schema.pattern, true));
    } finally {
      setWhere(prev);
    }
  }
  if ('format' in schema) {
    const f = schema.format;
    if (typeof f !== 'string') throw invalid('format', ptr, 'must be a string');
    if (!SUPPORTED_FORMATS.includes(f)) throw new UnsupportedKeywordError('format', ptrJoin(ptr, 'format'), `format "${f}" is not supported (supported: ${SUPPORTED_FORMATS.join(', ')})`);
    parts.push(formatLang(f));
  }
  if (parts.length === 1 && 'format' in schema) return encodedFormat(schema.format as string);
  const content = parts.length ? intersect(stringContentAll(), ...parts) : stringContentAll();
  if (isEmptyLang(content)) return null;
  return minimal(encodeContent(content));
}

function arrDesc(ctx: Ctx, schema: Record<string, unknown>, ptr: string): ArrDesc {
  const prefix: Typed[] = [];
  let items: Typed | null = null;
  const itemsKw = schema.items;
  if (ctx.draft === '2020-12') {
    if ('prefixItems' in schema) {
      const list = schema.prefixItems;
      if (!Array.isArray(list)) throw invalid('prefixItems', ptr, 'must be an array of schemas');
      list.forEach((s, i) => prefix.push(compileNode(ctx, s, ptrJoin(ptrJoin(ptr, 'prefixItems'), i))));
    }
    if (itemsKw !== undefined) {
      if (Array.isArray(itemsKw)) throw invalid('items', ptr, 'in Draft 2020-12 items must be a schema (use prefixItems for tuples)');
      items = compileNode(ctx, itemsKw, ptrJoin(ptr, 'items'));
    }
  } else {
    if (Array.isArray(itemsKw)) {
      itemsKw.forEach((s, i) => prefix.push(compileNode(ctx, s, ptrJoin(ptrJoin(ptr, 'items'), i))));
      if ('additionalItems' in schema) items = compileNode(ctx, schema.additionalItems, ptrJoin(ptr, 'additionalItems'));
    } else if (itemsKw !== undefined) {
      items = compileNode(ctx, itemsKw, ptrJoin(ptr, 'items'));
    }
  }
  const min = count(schema, 'minItems', ptr) ?? 0;
  const maxItems = count(schema, 'maxItems', ptr);
  const max = maxItems ?? Infinity;
  if (maxItems !== undefined && maxItems > 256) throw new SchemaTooLargeError(ptrJoin(ptr, 'maxItems'), 'maxItems above 256');
  if (min > 256) throw new SchemaTooLargeError(ptrJoin(ptr, 'minItems'), 'minItems above 256');
  const desc: ArrDesc = { prefix, items: items ?? anyTyped(ctx, ctx.anyDepth), min, max };
  if ('contains' in schema) {
    const cMin = ctx.draft === '2020-12' ? (count(schema, 'minContains', ptr) ?? 1) : 1;
    const cMax = ctx.draft === '2020-12' ? (count(schema, 'maxContains', ptr) ?? Infinity) : Infinity;
    desc.contains = { schema: compileNode(ctx, schema.contains, ptrJoin(ptr, 'contains')), min: cMin, max: cMax };
    if (cMin === 0 && cMax === Infinity) delete desc.contains;
  }
  return desc;
}

function objDesc(ctx: Ctx, schema: Record<string, unknown>, ptr: string): ObjDesc {
  const props = new Map<string, Typed>();
  if ('properties' in schema) {
    if (!isObj(schema.properties)) throw invalid('properties', ptr, 'must be an object');
    for (const [k, s] of Object.entries(schema.properties)) {
      props.set(k, compileNode(ctx, s, ptrJoin(ptrJoin(ptr, 'properties'), k)));
    }
  }
  const required = new Set<string>();
  if ('required' in schema) {
    const r = schema.required;
    if (!Array.isArray(r) || r.some((x) => typeof x !== 'string')) throw invalid('required', ptr, 'must be an array of strings');
    for (const k of r as string[]) required.add(k);
  }
  const ap: Typed = 'additionalProperties' in schema
    ? compileNode(ctx, schema.additionalProperties, ptrJoin(ptr, 'additionalProperties'))
    : anyTyped(ctx, ctx.anyDepth);
  if (required.size + props.size > 200) throw new SchemaTooLargeError(ptr, 'more than 200 properties');
  const desc: ObjDesc = { props, required, ap };
  if ('patternProperties' in schema) {
    const pp = schema.patternProperties;
    if (!isObj(pp)) throw invalid('patternProperties', ptr, 'must be an object');
    const entries = Object.entries(pp);
    if (entries.length > 4) throw new UnsupportedKeywordError('patternProperties', ptrJoin(ptr, 'patternProperties'), 'more than 4 patterns');
    desc.patterns = entries.map(([src, sub]) => {
      const at = ptrJoin(ptrJoin(ptr, 'patternProperties'), src);
      const prev = setWhere(at);
      let key: Lang;
      try {
        key = encodeContent(regexLang(src, true, 'patternProperties'));
      } finally {
        setWhere(prev);
      }
      return { src, key, schema: compileNode(ctx, sub, at) };
    });
  }
  if ('propertyNames' in schema) {
    const names = compileNode(ctx, schema.propertyNames, ptrJoin(ptr, 'propertyNames'));
    desc.names = names.any !== undefined ? null : (names.string ?? empty());
  }
  const minP = count(schema, 'minProperties', ptr);
  const maxP = count(schema, 'maxProperties', ptr);
  if (minP !== undefined) desc.minProps = minP;
  if (maxP !== undefined) desc.maxProps = maxP;
  return desc;
}

// ---------------------------------------------------------------- canonical form

/** Key order of the canonical form: property names in document order (properties, then required). */
export function schemaKeyOrder(schema: unknown): Map<string, number> {
  const rank = new Map<string, number>();
  const add = (k: string) => {
    if (!rank.has(k)) rank.set(k, rank.size);
  };
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (!isObj(node)) return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'enum' || k === 'const' || k === 'default' || k === 'examples') continue;
      if (k === 'properties' && isObj(v)) {
        for (const [pk, pv] of Object.entries(v)) {
          add(pk);
          walk(pv);
        }
        continue;
      }
      if (k === 'required' && Array.isArray(v)) {
        for (const x of v) if (typeof x === 'string') add(x);
        continue;
      }
      if ((k === 'dependentRequired' || k === 'dependencies') && isObj(v)) {
        for (const [dk, dv] of Object.entries(v)) {
          add(dk);
          if (Array.isArray(dv)) for (const x of dv) if (typeof x === 'string') add(x);
          else walk(dv);
        }
        continue;
      }
      walk(v);
    }
  };
  walk(schema);
  return rank;
}

/** JSON.stringify of `value` with object keys in the schema's order (then keys it never names, sorted). */
export function canonicalJson(value: unknown, keyRank: Map<string, number>): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, keyRank)).join(',')}]`;
  if (isObj(value)) {
    const keys = Object.keys(value);
    const known = keys.filter((k) => keyRank.has(k)).sort((a, b) => keyRank.get(a)! - keyRank.get(b)!);
    const unknown = keys.filter((k) => !keyRank.has(k)).sort();
    return `{${[...known, ...unknown].map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k], keyRank)}`).join(',')}}`;
  }
  const s = JSON.stringify(value);
  if (s === undefined) throw new TypeError('not a JSON value');
  return s;
}

const DRAFT_URIS: Record<string, Draft> = {
  'https://json-schema.org/draft/2020-12/schema': '2020-12',
  'http://json-schema.org/draft-07/schema': '7',
  'http://json-schema.org/draft-06/schema': '7',
};
function detectDraft(schema: unknown, fallback: Draft): Draft {
  if (isObj(schema) && '$schema' in schema) {
    const uri = String(schema.$schema).replace(/#$/, '');
    const d = DRAFT_URIS[uri];
    if (!d) throw new UnsupportedKeywordError('$schema', '/$schema', `unknown meta-schema ${JSON.stringify(schema.$schema)} (its vocabulary cannot be known)`);
    return d;
  }
  return fallback;
}


/** Default languages per type, built on first use and shared by all compiles. */
function lazy(build: () => Lang): () => Lang {
  let v: Lang | null = null;
  return () => (v ??= build());
}
const DEFAULT_BUILDERS = {
  null: lazy(() => lit('null')),
  boolean: lazy(() => minimal(alt(lit('true'), lit('false')))),
  int: lazy(() => minimal(intRange(-MAX_SAFE, MAX_SAFE))),
  frac: lazy(() => minimal(fracAll())),
  string: lazy(() => minimal(encodeContent(stringContentAll()))),
  // unconstrained values: any integer of up to 16 digits (smaller automaton than the exact safe range)
  looseInt: lazy(() => minimal(seq(rep(lit('-'), 0, 1), alt(lit('0'), seq(chars('1-9'), rep(chars('0-9'), 0, 15)))))),
};
function defaults(): Ctx['defaults'] {
  const d = {} as Ctx['defaults'];
  for (const k of Object.keys(DEFAULT_BUILDERS) as (keyof typeof DEFAULT_BUILDERS)[]) {
    Object.defineProperty(d, k, { get: DEFAULT_BUILDERS[k], enumerable: true });
  }
  return d;
}

export function compileJsonSchema(schema: unknown, options: JsonSchemaCompileOptions = {}): CompiledJsonSchema {
  const t0 = performance.now();
  const draft = detectDraft(schema, options.draft ?? '2020-12');
  const b: Budget = { maxStates: options.maxStates ?? 20_000, deadline: Date.now() + (options.timeLimitMs ?? 5000) };
  return withBudget(b, () => {
    const ctx: Ctx = {
      root: schema,
      draft,
      keyRank: schemaKeyOrder(schema),
      refStack: new Map(),
      maxRefDepth: options.maxRefDepth ?? 3,
      anyDepth: options.anyDepth ?? 3,
      used: new Set(),
      nodes: new Map(),
      resources: new Map(),
      anchors: new Map(),
      base: DEFAULT_BASE,
      loadRemote: options.loadRemote,
      anyCache: new Map(),
      matCache: new WeakMap(),
      defaults: defaults(),
    };
    setWhere('');
    whereNow = '';
    const rootUri = options.baseUri ?? DEFAULT_BASE;
    ctx.base = rootUri;
    indexDocument(ctx, schema, rootUri, '');
    let typed: Typed;
    try {
      typed = compileNode(ctx, schema, '');
    } catch (e) {
      if (e instanceof TooManyNodesError) throw new SchemaTooLargeError(whereNow, 'automaton too large');
      throw e;
    }
    setWhere('');
    const dfa = toDfa(materialize(ctx, typed));
    const keyRank = ctx.keyRank;
    const canonicalize = (v: unknown) => canonicalJson(v, keyRank);
    return {
      dfa,
      draft,
      keyRank,
      canonicalize,
      accepts: (v: unknown) => dfa.test(cp(canonicalize(v))),
      regexSource: () => JS.toLiteral(dfa.toRegex(), { flags: { unicode: true } }).source,
      keywords: [...ctx.used],
      states: dfa.countNodes(),
      compileMs: performance.now() - t0,
    };
  });
}
