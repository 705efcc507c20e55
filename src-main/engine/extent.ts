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
}

const active = (t: SoftTarget) => (t.weight ?? 1) > 0;

/**
 * A length target n (or, without one, a part-of-speech template of n tags, one per text token with <pad> after):
 * <end> held at text position n, <pad> after it, and <end>, <pad> and `barred` tokens (whitespace-only ones, which
 * the evaluator's word count would not see) never committed before it. Phrase spans without a length: <end> and
 * <pad> barred up to the last span's token (a span past the text cannot hold). A held text is left as it is.
 */
export function textExtent(m: CanvasOf, soft: SoftTarget[], held: Int32Array, warnings: string[], barred: number[] = []): TextExtent {
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
    if (reach < 0 || reach + 1 >= seg.length || textHeld) return { held, exclude: null, rest };
    return { held, exclude: new Map(positions.slice(0, reach + 1).map((p) => [p, [END, PAD]])), rest };
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
 * The extent a run holds: textExtent when guidance is on, nothing held otherwise (an unguided run leaves the length
 * to the model, so guided and unguided runs can be compared).
 */
export function runExtent(guidance: { enabled: boolean; strength: number }, m: CanvasOf, soft: SoftTarget[], held: Int32Array, warnings: string[], barred: number[] = []): TextExtent {
  if (!guidance.enabled || !(guidance.strength > 0)) return { held, exclude: null, rest: soft };
  return textExtent(m, soft, held, warnings, barred);
}
