/**
 * Control targets for the evaluation, built from the E2E DEV set only (never the test files), deterministically
 * from a seed. Each target is a list of constraints (one control, or a composition of two taken from the same dev
 * text so that they can be satisfied together).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { constraintSchema, parseConstraintSet, type Constraint } from '../constraints/set';
import { Mulberry32 } from '../engine/prng';
import { readE2ECsv, type E2ERow } from './e2e';
import { evaluateOutputs, expresses } from '../constraints/evaluators';
import { aligned, pieceChunks, pieces, pieceTags, sentimentOf, type SentimentLabel } from './nlp';

export const CONTROLS = ['pos', 'spans', 'attribute', 'length', 'sentiment', 'json-schema'] as const;
export const COMPOSITIONS = ['attribute+length', 'pos+sentiment', 'attribute+pos'] as const;
export type ControlName = (typeof CONTROLS)[number] | (typeof COMPOSITIONS)[number];

export const evalTargetSchema = z.object({
  id: z.string(),
  control: z.string(),
  constraints: z.array(constraintSchema).min(1),
  /** Where the target came from: dev-set line and text (or a note for schema targets). */
  source: z.object({ line: z.number().int().optional(), text: z.string().optional(), note: z.string().optional() }),
}).strict();
export type EvalTarget = z.infer<typeof evalTargetSchema>;

export const targetsFileSchema = z.object({
  format: z.literal('dlm-eval-targets/1'),
  source: z.object({ file: z.string(), sha256: z.string() }),
  seed: z.number().int(),
  perControl: z.number().int(),
  /** How positions are counted: text-segment pieces of the surface-piece tokenizer. */
  units: z.string(),
  targets: z.array(evalTargetSchema),
}).strict();
export type TargetsFile = z.infer<typeof targetsFileSchema>;

export interface BuildTargetsOptions {
  devPath: string;
  seed?: number;
  perControl?: number;
  /** Longest text (in pieces) used for POS / spans / length targets: the default canvas holds 50 text tokens. */
  maxPieces?: number;
}

class Rng {
  private readonly g: Mulberry32;
  constructor(seed: number) {
    this.g = new Mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.g.uniform() * n);
  }
  /** k distinct items, in draw order (partial Fisher-Yates on a copy). */
  sample<T>(items: readonly T[], k: number): T[] {
    const a = items.slice();
    const n = Math.min(k, a.length);
    for (let i = 0; i < n; i++) {
      const j = i + this.int(a.length - i);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a.slice(0, n);
  }
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Values seen per field in the dev records (sorted), for the schema targets. */
export function devFieldValues(rows: E2ERow[]): Record<string, string[]> {
  const out: Record<string, Set<string>> = {};
  for (const r of rows) for (const [k, v] of Object.entries(r.record)) (out[k] ??= new Set()).add(v);
  return Object.fromEntries(Object.entries(out).map(([k, s]) => [k, [...s].sort()]));
}

/**
 * The E2E ontology's closed value sets (Novikova et al. 2017; the same in every split). The dev split alone uses
 * only some of them (e.g. eatType is always "coffee shop" there), so schema enums take the ontology, and the open
 * fields (name, near) take the dev values.
 */
export const E2E_ONTOLOGY: Record<string, string[]> = {
  eatType: ['coffee shop', 'pub', 'restaurant'],
  food: ['Chinese', 'English', 'Fast food', 'French', 'Indian', 'Italian', 'Japanese'],
  priceRange: ['cheap', 'high', 'less than £20', 'moderate', 'more than £30', '£20-25'],
  'customer rating': ['1 out of 5', '3 out of 5', '5 out of 5', 'average', 'high', 'low'],
  area: ['city centre', 'riverside'],
  familyFriendly: ['no', 'yes'],
};

/** A few E2E record schemas (JSON Schema 2020-12): ontology enums, dev names for the open fields. */
export function schemaTargets(devValues: Record<string, string[]>): { note: string; schema: Record<string, unknown> }[] {
  const en = (f: string) => ({ type: 'string', enum: E2E_ONTOLOGY[f] ?? devValues[f] ?? [] });
  return [
    {
      note: 'name required + eatType enum + food enum',
      schema: {
        type: 'object',
        properties: { name: { type: 'string', minLength: 1 }, eatType: en('eatType'), food: en('food') },
        required: ['name', 'eatType', 'food'],
      },
    },
    {
      note: 'name + area enum + priceRange enum, no other fields',
      schema: {
        type: 'object',
        properties: { name: { type: 'string', minLength: 1 }, area: en('area'), priceRange: en('priceRange') },
        required: ['name', 'area', 'priceRange'],
        additionalProperties: false,
      },
    },
    {
      note: 'family friendly coffee shop near a dev-set landmark',
      schema: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 1 },
          eatType: { const: 'coffee shop' },
          familyFriendly: { const: 'yes' },
          near: en('near'),
        },
        required: ['name', 'eatType', 'familyFriendly', 'near'],
      },
    },
    {
      note: 'pub with a customer rating',
      schema: {
        type: 'object',
        properties: { name: { type: 'string', minLength: 1 }, eatType: { const: 'pub' }, 'customer rating': en('customer rating') },
        required: ['name', 'eatType', 'customer rating'],
      },
    },
  ];
}

const c = (x: unknown): Constraint => constraintSchema.parse(x);

export function buildTargets(options: BuildTargetsOptions): TargetsFile {
  const seed = options.seed ?? 20221;
  const perControl = options.perControl ?? 40;
  const maxPieces = options.maxPieces ?? 40;
  const rows = readE2ECsv(options.devPath);
  const rng = new Rng(seed);
  const targets: EvalTarget[] = [];
  const src = (r: E2ERow) => ({ line: r.line, text: r.text });
  const add = (control: string, constraints: Constraint[], source: EvalTarget['source'], row?: E2ERow) => {
    if (row) {
      // a target must be met by the dev text it came from, by the same evaluators that score the outputs
      const set = parseConstraintSet({ version: 1, constraints });
      const verdicts = evaluateOutputs(set, [{ text: row.text, record: row.record }])[0]!;
      const bad = verdicts.find((v) => !v.satisfied);
      if (bad) throw new Error(`${options.devPath}:${row.line}: ${control} target not met by its own text: ${bad.detail ?? bad.kind}`);
    }
    const n = targets.filter((t) => t.control === control).length;
    targets.push({ id: `${control}-${n}`, control, constraints, source });
  };
  // POS, spans and length targets use texts whose wink-nlp words and tokenizer pieces coincide (about 90% of dev)
  const fits = (r: E2ERow) => {
    const n = pieces(r.text).length;
    return n >= 1 && n <= maxPieces && aligned(r.text);
  };

  // Draw one ordered pool of dev rows; each control takes rows from it in turn so targets are spread over the set.
  const pool = rng.sample(rows, rows.length);
  const take = (k: number, ok: (r: E2ERow) => boolean, offset: number): E2ERow[] => {
    const out: E2ERow[] = [];
    for (let i = 0; i < pool.length && out.length < k; i++) {
      const r = pool[(i + offset) % pool.length]!;
      if (ok(r)) out.push(r);
    }
    if (out.length < k) throw new Error(`${options.devPath}: only ${out.length} dev rows fit (wanted ${k})`);
    return out;
  };
  const stride = Math.floor(pool.length / 8);

  for (const r of take(perControl, fits, 0)) add('pos', [c({ kind: 'pos', tags: pieceTags(r.text) })], src(r), r);

  let k = 0;
  for (const r of take(perControl * 4, fits, stride)) {
    if (k >= perControl) break;
    const spans = pieceChunks(r.text);
    if (spans.length === 0) continue;
    add('spans', [c({ kind: 'spans', spans: [spans[rng.int(spans.length)]!] })], src(r), r);
    k++;
  }

  const attr = (r: E2ERow) => {
    const fields = Object.keys(r.record);
    // fields the text actually states (E2E texts sometimes drop one); the draw stays seeded
    const stated = fields.filter((f) => expresses(f, r.record[f]!, r.text));
    const f = stated[rng.int(stated.length)]!;
    return c({ kind: 'attribute', field: f, value: r.record[f]! });
  };
  const hasStated = (r: E2ERow) => Object.keys(r.record).some((f) => expresses(f, r.record[f]!, r.text));
  for (const r of take(perControl, hasStated, 2 * stride)) add('attribute', [attr(r)], src(r), r);

  const lengthOk = (r: E2ERow) => {
    const n = pieces(r.text).length;
    return n >= 10 && n <= 40 && aligned(r.text);
  };
  for (const r of take(perControl, lengthOk, 3 * stride)) add('length', [c({ kind: 'length', tokens: pieces(r.text).length })], src(r), r);

  // Sentiment: dev texts are mostly positive or neutral; take a balanced draw where the set allows.
  const byLabel: Record<SentimentLabel, E2ERow[]> = { positive: [], neutral: [], negative: [] };
  for (let i = 0; i < pool.length; i++) {
    const r = pool[(i + 4 * stride) % pool.length]!;
    byLabel[sentimentOf(r.text).label].push(r);
  }
  const labels: SentimentLabel[] = ['positive', 'neutral', 'negative'];
  for (let i = 0; i < perControl; i++) {
    const label = labels[i % 3]!;
    const list = byLabel[label].length > 0 ? byLabel[label] : byLabel.positive;
    const r = list.shift()!;
    add('sentiment', [c({ kind: 'sentiment', label: sentimentOf(r.text).label })], src(r), r);
  }

  const schemas = schemaTargets(devFieldValues(rows));
  for (let i = 0; i < Math.min(perControl, schemas.length); i++) {
    const s = schemas[i % schemas.length]!;
    add('json-schema', [c({ kind: 'json-schema', schema: s.schema })], { note: s.note });
  }

  // Compositions take both controls from the same dev text, so the pair can be satisfied together.
  for (const r of take(perControl, (r) => lengthOk(r) && hasStated(r), 5 * stride)) {
    add('attribute+length', [attr(r), c({ kind: 'length', tokens: pieces(r.text).length })], src(r), r);
  }
  for (const r of take(perControl, fits, 6 * stride)) {
    add('pos+sentiment', [c({ kind: 'pos', tags: pieceTags(r.text) }), c({ kind: 'sentiment', label: sentimentOf(r.text).label })], src(r), r);
  }
  for (const r of take(perControl, (r) => fits(r) && hasStated(r), 7 * stride)) {
    add('attribute+pos', [attr(r), c({ kind: 'pos', tags: pieceTags(r.text) })], src(r), r);
  }

  return {
    format: 'dlm-eval-targets/1',
    source: { file: basename(options.devPath), sha256: sha256File(options.devPath) },
    seed,
    perControl,
    units: 'text-segment pieces (surface-piece pre-tokenizer); spans are inclusive [first, last] piece positions',
    targets,
  };
}

export function loadTargets(path: string): TargetsFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read targets: ${(e as Error).message}`);
  }
  const r = targetsFileSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`${path}: invalid targets file at ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  if (/test/i.test(r.data.source.file)) throw new Error(`${path}: targets were built from ${r.data.source.file}; only the dev set is allowed`);
  return r.data;
}
