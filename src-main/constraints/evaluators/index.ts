/**
 * Evaluators: whether each output meets each constraint, independently of the model (Ajv, wink-nlp, compromise,
 * VADER, plain regular expressions). Used by the engine, the UI and the evaluation harness.
 */
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { ValidateFunction } from 'ajv';
import type { Constraint, ConstraintSet } from '../set';
import { chunksOf, SENTIMENT_THRESHOLD, sentimentOf, winkTokens } from '../nlp';
import { testInfill, testRegex, testWords } from '../compiler/text';
import { expresses } from './e2e';
import { pretokenize } from '../../engine/tokenizer';

export { expresses } from './e2e';

export interface EvaluatedOutput {
  text: string;
  /** The parsed record (null when the record segment did not parse). */
  record: Record<string, unknown> | null;
}

export interface ConstraintEvaluation {
  index: number;
  kind: string;
  satisfied: boolean;
  score: number;
  detail?: string;
}

export interface EvaluateOptions {
  /**
   * Surface pieces of a text's tokens, to map span positions (text-segment token indices) to characters.
   * Default: the tokenizer's pre-tokenization pieces (one token per piece when the vocabulary has the piece).
   */
  pieces?: (text: string) => string[];
}

// ---------------------------------------------------------------- json-schema (Ajv)

let ajv2020: Ajv2020 | null = null;
let ajv7: Ajv | null = null;
const validators = new Map<string, ValidateFunction | Error>();

function validatorFor(schema: unknown): ValidateFunction {
  const key = JSON.stringify(schema);
  let v = validators.get(key);
  if (!v) {
    const draft7 = typeof schema === 'object' && schema !== null && /draft-0[67]/.test(String((schema as { $schema?: unknown }).$schema ?? ''));
    try {
      if (draft7) {
        ajv7 ??= addFormats(new Ajv({ strict: false, allErrors: false }));
        v = ajv7.compile(schema as object);
      } else {
        ajv2020 ??= addFormats(new Ajv2020({ strict: false, allErrors: false }));
        v = ajv2020.compile(schema as object);
      }
    } catch (e) {
      v = e as Error;
    }
    validators.set(key, v);
  }
  if (v instanceof Error) throw v;
  return v;
}

// ---------------------------------------------------------------- helpers

function defaultPieces(text: string): string[] {
  return pretokenize(text);
}

/** Character range [start, end) of tokens s..e (inclusive), without a leading space. */
function tokenSpanChars(pieces: string[], s: number, e: number): [number, number] | null {
  if (e >= pieces.length) return null;
  let at = 0;
  let start = -1;
  for (let i = 0; i <= e; i++) {
    const p = pieces[i]!;
    if (i === s) start = at + (p.length > 1 && p[0] === ' ' ? 1 : 0);
    at += p.length;
  }
  return [start, at];
}

function evaluateOne(c: Constraint, index: number, out: EvaluatedOutput, options: EvaluateOptions): ConstraintEvaluation {
  const r = (satisfied: boolean, score: number, detail?: string): ConstraintEvaluation => ({ index, kind: c.kind, satisfied, score, detail });
  const text = out.text;
  switch (c.kind) {
    case 'json-schema': {
      if (!out.record) return r(false, 0, 'the record segment does not parse as JSON');
      let validate: ValidateFunction;
      try {
        validate = validatorFor(c.schema);
      } catch (e) {
        return r(false, 0, `schema rejected by Ajv: ${(e as Error).message}`);
      }
      const ok = validate(out.record) as boolean;
      const err = validate.errors?.[0];
      return r(ok, ok ? 1 : 0, ok ? 'valid (Ajv)' : `invalid (Ajv): ${err ? `${err.instancePath || '/'} ${err.message}` : ''}`);
    }
    case 'pos': {
      const tags = winkTokens(text).map((t) => t.pos);
      let counted = 0;
      let hits = 0;
      c.tags.forEach((want, i) => {
        if (want === '*') return;
        counted++;
        if ((tags[i] ?? 'PAD') === want) hits++;
      });
      const score = counted ? hits / counted : 1;
      return r(counted === hits, score, `${hits}/${counted} word tags match (wink-nlp, ${tags.length} words)`);
    }
    case 'spans': {
      const pieces = (options.pieces ?? defaultPieces)(text);
      const chunks = chunksOf(text);
      let ok = 0;
      const misses: string[] = [];
      for (const [s, e, label] of c.spans) {
        const range = tokenSpanChars(pieces, s, e);
        const hit = range && chunks.some((k) => k.label === label && k.start === range[0] && k.end === range[1]);
        if (hit) ok++;
        else misses.push(`[${s}, ${e}] ${label}${range ? ` = ${JSON.stringify(text.slice(range[0], range[1]))}` : ' (past the text)'}`);
      }
      return r(ok === c.spans.length, ok / c.spans.length, misses.length ? `not a compromise chunk: ${misses.join('; ')}` : 'every span is a chunk of its label (compromise)');
    }
    case 'attribute': {
      const ok = expresses(c.field, c.value, text);
      return r(ok, ok ? 1 : 0, `${c.field} = ${JSON.stringify(c.value)} ${ok ? 'expressed' : 'not expressed'}`);
    }
    case 'length': {
      const n = winkTokens(text).length;
      const diff = Math.abs(n - c.tokens);
      return r(diff === 0, Math.max(0, 1 - diff / c.tokens), `${n} tokens (wink-nlp), target ${c.tokens}${diff <= 2 ? ', within ±2' : ''}`);
    }
    case 'sentiment': {
      const s = sentimentOf(text);
      return r(s.label === c.label, s.compound, `VADER compound ${s.compound.toFixed(3)} -> ${s.label} (positive > ${SENTIMENT_THRESHOLD}, negative < -${SENTIMENT_THRESHOLD})`);
    }
    case 'record': {
      const fields = Object.entries(c.value);
      const missing = fields.filter(([f, v]) => !expresses(f, v, text)).map(([f]) => f);
      const score = fields.length ? (fields.length - missing.length) / fields.length : 1;
      return r(missing.length === 0, score, missing.length ? `not expressed: ${missing.join(', ')}` : 'every field value expressed');
    }
    case 'text': {
      if (!out.record) return r(false, 0, 'the record segment does not parse as JSON');
      const fields = Object.entries(out.record);
      if (fields.length === 0) return r(false, 0, 'empty record');
      const wrong = fields.filter(([f, v]) => typeof v !== 'string' || !expresses(f, v, c.value)).map(([f]) => f);
      return r(wrong.length === 0, (fields.length - wrong.length) / fields.length, wrong.length ? `not in the text: ${wrong.join(', ')}` : 'every record value appears in the text');
    }
    case 'regex': {
      const ok = testRegex(c.pattern, text);
      return r(ok, ok ? 1 : 0, ok ? 'matches' : `does not match /${c.pattern}/u`);
    }
    case 'infill': {
      const ok = testInfill(c.template, text);
      return r(ok, ok ? 1 : 0, ok ? 'fills the template' : 'does not fit the template');
    }
    case 'words': {
      const { missing, present } = testWords(c.include, c.exclude, text);
      const total = c.include.length + c.exclude.length;
      const bad = missing.length + present.length;
      const detail = [missing.length ? `missing: ${missing.join(', ')}` : '', present.length ? `present: ${present.join(', ')}` : ''].filter(Boolean).join('; ');
      return r(bad === 0, total ? (total - bad) / total : 1, detail || 'all included words present, no excluded word');
    }
  }
}

/** Per output, one evaluation per enabled constraint of the set (in set order). */
export function evaluateOutputs(set: ConstraintSet, outputs: EvaluatedOutput[], options: EvaluateOptions = {}): ConstraintEvaluation[][] {
  return outputs.map((out) => {
    const res: ConstraintEvaluation[] = [];
    set.constraints.forEach((c, index) => {
      if (c.enabled) res.push(evaluateOne(c, index, out, options));
    });
    return res;
  });
}
