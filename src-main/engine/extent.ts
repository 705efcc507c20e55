/**
 * Where the text ends, from the soft targets that say it, for a family that holds a length instead of guiding it
 * (engine only; docs/ARCHITECTURE.md, "Masked family"): every masked model, and a continuous model trained with the
 * text's <end> given clean (manifest denoiser.held_length). The model sees the end from the first step and writes
 * to fit.
 */
import type { SoftTarget } from './guidance';
import { END, PAD } from './tokenizer';
import { EngineInputError } from './types';

/** The part of a manifest the extent reads: where the text segment lies. */
interface CanvasOf {
  canvas: { segments: { name: string; start: number; length: number }[] };
}

/** The verdict's words for a held length (compiler softDetail). */
export const LENGTH_PIN_DETAIL = 'held: <end> is pinned at the target position of the text and <end>, <pad> and whitespace-only tokens are barred before it, so the model writes the text to that length';

/** Token ids that are whitespace only: the evaluator's word count does not see them, so a held length bars them. */
export function whitespaceTokens(tokens: readonly string[]): number[] {
  return tokens.flatMap((t, id) => (/^\s+$/.test(t) ? [id] : []));
}

export interface TextExtent {
  /** The held tokens with the pin (<end> at text position n, <pad> after it). */
  held: Int32Array;
  /** Per canvas position, tokens never committed there (null: none). */
  exclude: Map<number, number[]> | null;
  /** The soft targets left for classifier guidance (length targets are served here). */
  rest: SoftTarget[];
  /** Set when the length held is the bundle's typical one (a sentiment, attribute or spans target that did not say the length). */
  typicalHeld?: number;
}

const active = (t: SoftTarget) => (t.weight ?? 1) > 0;

/**
 * A length target n (or, without one, a part-of-speech template of n tags, one per text token with <pad> after):
 * <end> held at text position n, <pad> after it, and <end>, <pad> and `barred` tokens (whitespace-only ones, which
 * the evaluator's word count would not see) never committed before it. Phrase spans without a length: <end>, <pad> and
 * `barred` tokens barred up to one token past the last span's (a span past the text cannot hold, a space that is no
 * word would shift the words the spans count, and a text that stops on its span's last word ends mid-sentence: "...
 * Indian restaurant. Rated", perplexity 44,000, for a one-word verb phrase at word 9); with `typicalTokens` (the bundle's
 * text_length.typical_tokens), the length is held at it or 3 past the last span's token, whichever is further. A
 * sentiment or attribute target and nothing that says the length: `typicalTokens` held. Guidance toward a whole-text
 * label or a closed span otherwise takes the shortcut of ending the text early (neutral on e2e-default 2.2.3: "The
 * Punter is"; attribute with its record held: "There is a family friendly restaurant"; barring <end> without holding
 * it wrote filler instead). A held text is left as it is.
 */
export function textExtent(m: CanvasOf, soft: SoftTarget[], held: Int32Array, warnings: string[], barred: number[] = [], typicalTokens = 0): TextExtent {
  const rest = soft.filter((t) => t.kind !== 'length');
  const seg = m.canvas.segments.find((s) => s.name === 'text')!;
  const positions = Array.from({ length: seg.length }, (_, k) => seg.start + k);
  const textHeld = positions.some((p) => held[p]! >= 0);
  const name = (t: SoftTarget) => `constraints[${t.index ?? '?'}]`;
  let lengths = soft.filter((t): t is Extract<SoftTarget, { kind: 'length' }> => t.kind === 'length' && active(t));
  if (!lengths.length) {
    // the last tag that is not a wildcard or PAD ends the template
    const pos = soft.find((t): t is Extract<SoftTarget, { kind: 'pos' }> => t.kind === 'pos' && active(t));
    const last = pos ? pos.tags.reduce((a, t, i) => (t !== null && t !== 'PAD' ? i : a), -1) : -1;
    // (wildcards after it leave the length open)
    if (pos && last >= 0 && pos.tags.slice(last + 1).every((t) => t === 'PAD')) lengths = [{ kind: 'length', tokens: last + 1, weight: 1, ...(pos.index !== undefined ? { index: pos.index } : {}) }];
  }
  if (!lengths.length) {
    const spans = soft.filter((t): t is Extract<SoftTarget, { kind: 'spans' }> => t.kind === 'spans' && active(t));
    const reach = Math.max(-1, ...spans.flatMap((t) => t.spans.map(([, e]) => e)));
    const wholeText = soft.some((t) => (t.kind === 'sentiment' || t.kind === 'attribute') && active(t));
    if ((reach >= 0 || wholeText) && typicalTokens > 0 && !textHeld && reach + 1 < seg.length) {
      const tokens = Math.min(Math.max(typicalTokens, reach + 3), seg.length - 1);
      return { ...textExtent(m, [...soft, { kind: 'length', tokens, weight: 1 }], held, warnings, barred), typicalHeld: tokens };
    }
    if (reach < 0 || reach + 1 >= seg.length || textHeld) return { held, exclude: null, rest };
    // and one token past it, where the segment has room: the span's sentence gets at least its closing mark
    const upTo = Math.min(reach + 2, seg.length - 1);
    return { held, exclude: new Map(positions.slice(0, upTo).map((p) => [p, [END, PAD, ...barred]])), rest };
  }
  const n = lengths[0]!.tokens;
  const other = lengths.find((t) => t.tokens !== n);
  if (other) throw new EngineInputError(`${name(lengths[0]!)}, ${name(other)}: two lengths asked for (${n} and ${other.tokens} tokens); a text has one`);
  if (n >= seg.length) throw new EngineInputError(`${name(lengths[0]!)}: ${n} tokens do not fit the ${seg.length}-position text segment (at most ${seg.length - 1} and <end>)`);
  if (textHeld) {
    warnings.push(`${name(lengths[0]!)} (length): the text is held, so its length is not steered`);
    return { held, exclude: null, rest };
  }
  const out = held.slice();
  const exclude = new Map<number, number[]>();
  positions.forEach((p, k) => {
    if (k < n) exclude.set(p, [END, PAD, ...barred]);
    else out[p] = k === n ? END : PAD;
  });
  return { held: out, exclude, rest };
}

/**
 * A bundle's rule for the text length a record asks for (manifest text_length, training/dlm_train/text_length.py):
 * round(intercept + per_record_token x the record's tokens).
 */
export interface TextLengthRule {
  intercept: number;
  per_record_token: number;
  /** The length a sentiment-, attribute- or spans-guided run holds when nothing in it says the length (textExtent). */
  typical_tokens?: number;
}

/**
 * Data-to-text's text length by the bundle's rule: when the whole record segment is held and no text position is,
 * the rule's length for the record's tokens (its held tokens other than <pad>), within the text segment; else null.
 */
export function recordTextLength(rule: TextLengthRule, m: CanvasOf, held: Int32Array): { tokens: number; recordTokens: number } | null {
  const rec = m.canvas.segments.find((s) => s.name === 'record');
  const text = m.canvas.segments.find((s) => s.name === 'text');
  if (!rec || !text) return null;
  const recordHeld = Array.from(held.subarray(rec.start, rec.start + rec.length));
  if (recordHeld.some((t) => t < 0) || held.subarray(text.start, text.start + text.length).some((t) => t >= 0)) return null;
  const recordTokens = recordHeld.filter((t) => t !== PAD).length;
  const tokens = Math.max(1, Math.min(text.length - 1, Math.floor(rule.intercept + rule.per_record_token * recordTokens + 0.5)));
  return { tokens, recordTokens };
}

/** How a run's note on a length held by the bundle's text length rule begins (the eval counts them). */
export const RECORD_LENGTH_NOTE = 'the text\'s length is held at';

/** Soft targets that say where a text ends (a length, a POS template, phrase spans): they decide, not the rule. */
const saysLength = (t: SoftTarget) => active(t) && (t.kind === 'length' || t.kind === 'pos' || t.kind === 'spans');

/**
 * The extent a run holds: textExtent when guidance is on, nothing held otherwise (an unguided run leaves the length
 * to the model, so guided and unguided runs can be compared). Data-to-text with a bundle's text length rule holds
 * the rule's length, guided or not, unless a guided target says the length itself; `notes` says what it held.
 */
export function runExtent(
  guidance: { enabled: boolean; strength: number }, m: CanvasOf, soft: SoftTarget[], held: Int32Array, warnings: string[],
  barred: number[] = [], rule?: TextLengthRule | null, notes?: string[],
): TextExtent {
  const guided = guidance.enabled && guidance.strength > 0;
  const predicted = rule && !(guided && soft.some(saysLength)) ? recordTextLength(rule, m, held) : null;
  if (predicted) {
    notes?.push(`${RECORD_LENGTH_NOTE} ${predicted.tokens} tokens, the bundle's text_length for a record of ${predicted.recordTokens} tokens (a length constraint asks for another)`);
    return { ...textExtent(m, [{ kind: 'length', tokens: predicted.tokens, weight: 1 }], held, warnings, barred), rest: soft };
  }
  if (!guided) return { held, exclude: null, rest: soft };
  const ext = textExtent(m, soft, held, warnings, barred, rule?.typical_tokens ?? 0);
  if (ext.typicalHeld !== undefined) notes?.push(`${RECORD_LENGTH_NOTE} ${ext.typicalHeld} tokens, the bundle's typical text length (or 3 past the last phrase span), as nothing in the run says the length (a length constraint asks for another)`);
  return ext;
}
