/**
 * Text analysis for building control targets from dev texts (wink-nlp UPOS, compromise chunks, VADER), with the
 * results addressed by text-segment position: the surface pieces of the tokenizer (docs/ARCHITECTURE.md), which is
 * what the guidance classifiers address and the length constraint counts.
 */
import winkNLP from 'wink-nlp';
import model from 'wink-eng-lite-web-model';
import nlp from 'compromise';
import { createRequire } from 'node:module';
import { pretokenize } from '../engine/tokenizer';
import { UPOS_TAGS, type UposTag } from '../constraints/set';

// vader-sentiment ships no types; load it untyped and describe the one call used.
const vader = createRequire(import.meta.url)('vader-sentiment') as {
  SentimentIntensityAnalyzer: { polarity_scores(text: string): { compound: number } };
};

const wink = winkNLP(model);
const its = wink.its;

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
  const doc = wink.readDoc(text);
  const vals = doc.tokens().out(its.value) as string[];
  const tags = doc.tokens().out(its.pos) as string[];
  const pre = doc.tokens().out(its.precedingSpaces) as string[];
  const out: (UposTag | null)[] = new Array(text.length).fill(null);
  let at = 0;
  for (let k = 0; k < vals.length; k++) {
    at += pre[k]!.length;
    const v = vals[k]!;
    if (text.slice(at, at + v.length) !== v) {
      const j = text.indexOf(v, at);
      if (j < 0) throw new Error(`wink-nlp token ${JSON.stringify(v)} not found in ${JSON.stringify(text)}`);
      at = j;
    }
    const tag = tags[k] as UposTag;
    if (!(UPOS_TAGS as readonly string[]).includes(tag)) throw new Error(`wink-nlp returned an unknown tag ${tag}`);
    for (let c = at; c < at + v.length; c++) out[c] = tag;
    at += v.length;
  }
  return out;
}

/** wink-nlp word-level UPOS tags (one per wink token). */
export function wordTags(text: string): UposTag[] {
  return wink.readDoc(text).tokens().out(its.pos) as UposTag[];
}

/** One UPOS per piece: the tag of the character at the piece's head ("*" where no token covers it). */
export function pieceTags(text: string): (UposTag | '*')[] {
  const ct = charTags(text);
  return pieces(text).map((p) => ct[p.head] ?? '*');
}

export type SpanLabel = 'NP' | 'VP' | 'PP';

/**
 * Chunk spans [start, end) in characters from compromise: runs of terms with the same chunk become NP / VP; a
 * preposition with the noun chunk after it is a PP (a lone preposition is a one-word PP).
 */
export function charChunks(text: string): [number, number, SpanLabel][] {
  type Term = { offset: { start: number; length: number }; chunk?: string; tags: string[] };
  const json = nlp(text).json({ offset: true, terms: { offset: true } }) as { terms: Term[] }[];
  const spans: [number, number, SpanLabel][] = [];
  for (const s of json) {
    const runs: { kind: string; start: number; end: number }[] = [];
    for (const t of s.terms) {
      if (t.offset.length <= 0) continue;
      const kind = t.tags.includes('Preposition') ? 'Prep' : (t.chunk ?? '');
      const end = t.offset.start + t.offset.length;
      const last = runs[runs.length - 1];
      if (last && kind === last.kind && kind !== 'Prep') last.end = end;
      else runs.push({ kind, start: t.offset.start, end });
    }
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r]!;
      if (run.kind === 'Prep') {
        const next = runs[r + 1];
        if (next && next.kind === 'Noun') {
          spans.push([run.start, next.end, 'PP']);
          r++;
        } else spans.push([run.start, run.end, 'PP']);
      } else if (run.kind === 'Noun') spans.push([run.start, run.end, 'NP']);
      else if (run.kind === 'Verb') spans.push([run.start, run.end, 'VP']);
    }
  }
  return spans;
}

/** Chunk spans as inclusive piece positions [first, last] (the pieces whose head lies in the character span). */
export function pieceChunks(text: string): [number, number, SpanLabel][] {
  const ps = pieces(text);
  const out: [number, number, SpanLabel][] = [];
  for (const [a, b, label] of charChunks(text)) {
    const inside = ps.map((p, i) => [p, i] as const).filter(([p]) => p.head >= a && p.head < b).map(([, i]) => i);
    if (inside.length > 0) out.push([inside[0]!, inside[inside.length - 1]!, label]);
  }
  return out;
}

export type SentimentLabel = 'positive' | 'neutral' | 'negative';

/** VADER compound with the usual +-0.05 thresholds. */
export function sentimentOf(text: string): { compound: number; label: SentimentLabel } {
  const compound = vader.SentimentIntensityAnalyzer.polarity_scores(text).compound;
  return { compound, label: compound > 0.05 ? 'positive' : compound < -0.05 ? 'negative' : 'neutral' };
}
