/**
 * Control targets from dev texts, addressed by text-segment position: the surface pieces of the tokenizer
 * (docs/ARCHITECTURE.md), which is what the guidance classifiers address and the length constraint counts. The
 * analysis itself (wink-nlp UPOS, compromise chunks, VADER) is the constraints module's, so targets and evaluators
 * agree on the tools and rules.
 */
import { UPOS_TAGS, type UposTag } from '../constraints/set';
import { chunksOf, sentimentOf as vaderSentiment, winkTokens } from '../constraints/nlp';
import { pretokenize } from '../engine/tokenizer';

export interface Piece {
  text: string;
  /** Code-unit offsets of the piece in the text, and of its first non-space character. */
  start: number;
  end: number;
  head: number;
}

export function pieces(text: string): Piece[] {
  const out: Piece[] = [];
  let at = 0;
  for (const p of pretokenize(text)) {
    const lead = p.length > 1 && p[0] === ' ' ? 1 : 0;
    out.push({ text: p, start: at, end: at + p.length, head: at + lead });
    at += p.length;
  }
  return out;
}

/** UPOS of the wink-nlp token covering each character (null where none does, e.g. spaces). */
export function charTags(text: string): (UposTag | null)[] {
  const out: (UposTag | null)[] = new Array(text.length).fill(null);
  for (const t of winkTokens(text)) {
    const tag = ((UPOS_TAGS as readonly string[]).includes(t.pos) ? t.pos : 'X') as UposTag;
    for (let c = t.start; c < t.start + t.value.length && c < text.length; c++) out[c] = tag;
  }
  return out;
}

/**
 * Whether wink-nlp's words and the tokenizer's pieces coincide one to one (same starts and lengths, no whitespace
 * pieces). Then a position means the same thing to the guidance classifiers (pieces) and the evaluators (wink words).
 */
export function aligned(text: string): boolean {
  const w = winkTokens(text);
  const p = pieces(text);
  return w.length === p.length && p.every((x, i) => x.head < x.end && w[i]!.start === x.head && w[i]!.value.length === x.end - x.head);
}

/** One UPOS per piece: the tag of the character at the piece's head ("*" where no token covers it). */
export function pieceTags(text: string): (UposTag | '*')[] {
  const ct = charTags(text);
  return pieces(text).map((p) => ct[p.head] ?? '*');
}

export type SpanLabel = 'NP' | 'VP' | 'PP';

/** Chunk spans as inclusive piece positions [first, last] (the pieces whose head lies in the character span). */
export function pieceChunks(text: string): [number, number, SpanLabel][] {
  const ps = pieces(text);
  const out: [number, number, SpanLabel][] = [];
  for (const ch of chunksOf(text)) {
    const inside = ps.map((p, i) => [p, i] as const).filter(([p]) => p.head >= ch.start && p.head < ch.end).map(([, i]) => i);
    if (inside.length > 0) out.push([inside[0]!, inside[inside.length - 1]!, ch.label]);
  }
  return out;
}

export type SentimentLabel = 'positive' | 'neutral' | 'negative';

/** VADER compound with the usual +-0.05 thresholds (the evaluators' rule). */
export function sentimentOf(text: string): { compound: number; label: SentimentLabel } {
  return vaderSentiment(text);
}
