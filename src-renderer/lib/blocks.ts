/**
 * Compose's building blocks: one block per constraint of the set, plus the editor-only state a block needs
 * (the JSON schema as typed, the POS example sentence). Pure functions, no Svelte: shared by Compose and tests.
 */
import { CONSTRAINT_KINDS, UPOS_TAGS, type Constraint, type ConstraintKind, type ConstraintSet } from '../../src-main/constraints/set';

export interface Block {
  uid: number;
  c: Constraint;
  /** The JSON schema exactly as typed (json-schema blocks); parse errors are shown live. */
  schemaText?: string;
  /** The example sentence a POS template was derived from, and its words (one per tag). */
  example?: string;
  words?: string[];
}

let nextUid = 1;
/** Deep copy of JSON data (also of Svelte state proxies, which structuredClone refuses). */
export const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));
export const newUid = (): number => nextUid++;

export const KIND_INFO: Record<ConstraintKind, { title: string; hint: string; segment: 'record' | 'text' }> = {
  'json-schema': { title: 'JSON schema', hint: 'The record must validate against this schema (enforced exactly, by projection).', segment: 'record' },
  pos: { title: 'Part-of-speech template', hint: 'Word-by-word UPOS tags the sentence should follow; * means any tag.', segment: 'text' },
  spans: { title: 'Phrase spans', hint: 'Token ranges that should be a noun, verb or prepositional phrase.', segment: 'text' },
  attribute: { title: 'Attribute', hint: 'The text should mention this field value of the record schema.', segment: 'text' },
  length: { title: 'Length', hint: 'The text should have this many tokens.', segment: 'text' },
  sentiment: { title: 'Sentiment', hint: 'The overall tone of the text.', segment: 'text' },
  infill: { title: 'Infill template', hint: 'Fixed text with blanks (___) the model fills in.', segment: 'text' },
  record: { title: 'Record to describe', hint: 'Data-to-text: hold this record, generate a sentence describing it.', segment: 'record' },
  text: { title: 'Text to structure', hint: 'Text-to-data: hold this sentence, generate its record.', segment: 'text' },
  regex: { title: 'Regular expression', hint: 'The whole text must match this pattern (enforced exactly).', segment: 'text' },
  words: { title: 'Words', hint: 'Words the text must include or must not contain (enforced exactly).', segment: 'text' },
};

export const KINDS: ConstraintKind[] = [...CONSTRAINT_KINDS];
/** Title and hint of a kind, also for kinds this studio does not know (typed into the JSON source). */
export function kindInfo(kind: string): { title: string; hint: string; segment: 'record' | 'text' | '?' } {
  return (KIND_INFO as Record<string, { title: string; hint: string; segment: 'record' | 'text' }>)[kind] ?? { title: `Unknown kind “${kind}”`, hint: 'not a constraint kind of this studio', segment: '?' };
}
export const POS_CHOICES = ['*', ...UPOS_TAGS] as const;

const common = { weight: 1, enabled: true };

/** A fresh constraint of a kind with sensible, valid defaults (E2E-flavoured). */
export function defaultConstraint(kind: ConstraintKind, recordFields: Record<string, string[]> = {}): Constraint {
  switch (kind) {
    case 'json-schema':
      return { kind, schema: DEFAULT_SCHEMA, ...common };
    case 'pos':
      return { kind, tags: ['DET', 'PROPN', 'AUX', 'DET', 'ADJ', 'NOUN'], ...common };
    case 'spans':
      return { kind, spans: [[0, 1, 'NP']], ...common };
    case 'attribute': {
      const field = Object.keys(recordFields)[0] ?? 'eatType';
      return { kind, field, value: recordFields[field]?.[0] ?? 'pub', ...common };
    }
    case 'length':
      return { kind, tokens: 20, ...common };
    case 'sentiment':
      return { kind, label: 'positive', ...common };
    case 'infill':
      return { kind, template: 'The ___ is a family friendly ___ near ___ .', ...common };
    case 'record':
      return { kind, value: { name: 'The Eagle', eatType: 'pub', food: 'Italian', area: 'riverside' }, ...common };
    case 'text':
      return { kind, value: 'The Eagle is a cheap Italian pub in the riverside area.', ...common };
    case 'regex':
      return { kind, pattern: '[A-Z][a-z ]+\\.', ...common };
    case 'words':
      return { kind, include: ['pub'], exclude: [], ...common };
  }
}

export const DEFAULT_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', enum: ['The Eagle', 'The Mill', 'Zizzi'] },
    eatType: { enum: ['pub', 'restaurant', 'coffee shop'] },
    priceRange: { enum: ['cheap', 'moderate', 'high'] },
  },
  required: ['name', 'eatType'],
  additionalProperties: false,
};

export function blockOf(c: Constraint): Block {
  const b: Block = { uid: newUid(), c: clone(c) };
  if (c && c.kind === 'json-schema') b.schemaText = JSON.stringify(c.schema ?? {}, null, 2);
  return b;
}

/** Parse a block's schema text; the error message says where JSON parsing failed. */
export function parseSchemaText(text: string): { ok: true; schema: Record<string, unknown> | boolean } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    if (pos) {
      const at = Number(pos[1]);
      const before = text.slice(0, at);
      const line = before.split('\n').length;
      const col = at - before.lastIndexOf('\n');
      return { ok: false, error: `Not valid JSON at line ${line}, column ${col}: ${msg.replace(/ in JSON at position \d+.*$/, '')}` };
    }
    return { ok: false, error: `Not valid JSON: ${msg}` };
  }
  if (typeof value === 'boolean' || (value !== null && typeof value === 'object' && !Array.isArray(value))) {
    return { ok: true, schema: value as Record<string, unknown> | boolean };
  }
  return { ok: false, error: 'A JSON schema must be an object (or true / false).' };
}

/** The constraint-set body for the blocks (schema text that does not parse is reported, not sent). */
export function bodyOf(
  blocks: Block[],
  meta: { name: string; description: string; sampler: ConstraintSet['sampler'] },
): { body: ConstraintSet; parseErrors: { index: number; message: string }[] } {
  const parseErrors: { index: number; message: string }[] = [];
  const constraints = blocks.map((b, index) => {
    if (b.c.kind === 'json-schema' && b.schemaText !== undefined) {
      const parsed = parseSchemaText(b.schemaText);
      if (parsed.ok) return { ...b.c, schema: parsed.schema };
      parseErrors.push({ index, message: parsed.error });
    }
    return b.c;
  });
  const body: ConstraintSet = { version: 1, constraints: clone(constraints), sampler: clone(meta.sampler) };
  if (meta.name.trim()) body.name = meta.name.trim();
  if (meta.description.trim()) body.description = meta.description.trim();
  return { body, parseErrors };
}

/** Index of the block an issue path such as `constraints[2].tags[0]` (or `body.constraints[2]...`) refers to. */
export function blockIndexOf(path: string): number | null {
  const m = /constraints\[(\d+)\]/.exec(path);
  return m ? Number(m[1]) : null;
}

/** Words of a canvas text for the live view (whitespace kept as separators). */
export function wordsOf(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

/** Pieces of a record canvas (words, runs of spaces, JSON punctuation) for the live view; they join back to the text. */
export function recordPiecesOf(text: string): string[] {
  return text.match(/\s+|[^\s",:{}[\]]+|[",:{}[\]]/g) ?? [];
}

/** Which positions changed between two word lists (a position beyond the shorter list counts as changed). */
export function changedPositions(prev: string[] | undefined, next: string[]): boolean[] {
  if (!prev) return next.map(() => false);
  return next.map((w, i) => prev[i] !== w);
}

/** Starting points offered by an empty Compose (each is a valid set; tests check them). */
export const EXAMPLES: { title: string; hint: string; set: { name: string; description: string; constraints: Constraint[] } }[] = [
  {
    title: 'Describe a restaurant',
    hint: 'data-to-text: hold a record, write the sentence',
    set: {
      name: 'describe a restaurant',
      description: 'Data-to-text: the record is held, the model writes a sentence about it.',
      constraints: [
        { kind: 'record', value: { name: 'The Punter', eatType: 'coffee shop', food: 'Italian', priceRange: 'cheap', area: 'riverside', familyFriendly: 'yes' }, ...common },
        { kind: 'length', tokens: 24, ...common },
      ],
    },
  },
  {
    title: 'Structured record + sentence shape',
    hint: 'a JSON schema for the record, a POS template for the text',
    set: {
      name: 'schema and shape',
      description: 'The record must validate against the schema; the sentence should follow the tags.',
      constraints: [
        {
          kind: 'json-schema',
          schema: { type: 'object', properties: { name: { type: 'string' }, eatType: { enum: ['pub', 'restaurant'] }, area: { const: 'city centre' } }, required: ['name', 'eatType', 'area'], additionalProperties: false },
          ...common,
        },
        { kind: 'pos', tags: ['PROPN', '*', 'AUX', 'DET', 'NOUN', 'ADP', 'DET', 'NOUN', 'NOUN', 'PUNCT'], ...common },
      ],
    },
  },
  {
    title: 'Structure a sentence',
    hint: 'text-to-data: hold the sentence, write its record',
    set: {
      name: 'structure a sentence',
      description: 'Text-to-data: the sentence is held, the model writes the record; the schema keeps the record well formed.',
      constraints: [
        { kind: 'text', value: 'The Eagle is a cheap Italian pub near the river, and it is not family friendly.', ...common },
        {
          kind: 'json-schema',
          schema: { type: 'object', properties: { name: { type: 'string' }, eatType: { enum: ['pub', 'restaurant', 'coffee shop'] }, food: { type: 'string' }, priceRange: { type: 'string' }, familyFriendly: { enum: ['yes', 'no'] } }, required: ['name'], additionalProperties: false },
          ...common,
        },
      ],
    },
  },
  {
    title: 'Short, positive, mentions the price',
    hint: 'guidance only: sentiment, length and an attribute',
    set: {
      name: 'short and positive',
      description: 'Soft controls steered by the classifiers.',
      constraints: [
        { kind: 'sentiment', label: 'positive', ...common },
        { kind: 'length', tokens: 14, ...common },
        { kind: 'attribute', field: 'priceRange', value: 'cheap', ...common },
      ],
    },
  },
];
