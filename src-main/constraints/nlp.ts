/**
 * The independent NLP tools shared by the soft-target builders and the evaluators: wink-nlp (tokens, UPOS tags),
 * compromise (phrase chunks), VADER (sentiment). Loaded lazily: the model takes a moment to load.
 */
import winkNLP from 'wink-nlp';
import model from 'wink-eng-lite-web-model';
import nlp from 'compromise';
import { createRequire } from 'node:module';
import { UPOS_TAGS, type UposTag } from './set';

// vader-sentiment ships no types: load it untyped and describe the one call used.
const vader = createRequire(import.meta.url)('vader-sentiment') as {
  SentimentIntensityAnalyzer: { polarity_scores(text: string): { compound: number } };
};

type Wink = ReturnType<typeof winkNLP>;
let wink: Wink | null = null;
function getWink(): Wink {
  wink ??= winkNLP(model);
  return wink;
}

export interface WinkToken {
  value: string;
  pos: string;
  /** Character offset of the token in the text. */
  start: number;
}

/** wink-nlp tokens with UPOS tags and offsets (whitespace tokens, tagged SPACE, are dropped). */
export function winkTokens(text: string): WinkToken[] {
  const w = getWink();
  const doc = w.readDoc(text);
  const its = w.its;
  const vals = doc.tokens().out(its.value) as string[];
  const tags = doc.tokens().out(its.pos) as string[];
  const pre = doc.tokens().out(its.precedingSpaces) as string[];
  const out: WinkToken[] = [];
  let at = 0;
  for (let k = 0; k < vals.length; k++) {
    at += pre[k]!.length;
    const v = vals[k]!;
    if (text.slice(at, at + v.length) !== v) {
      const j = text.indexOf(v, at);
      if (j >= 0) at = j;
    }
    if (tags[k] !== 'SPACE') out.push({ value: v, pos: tags[k]!, start: at });
    at += v.length;
  }
  return out;
}

/** UPOS tags of a sentence, one per wink-nlp word (what a POS template is derived from). */
export function posTagsOf(sentence: string): UposTag[] {
  return winkTokens(sentence).map((t) => ((UPOS_TAGS as readonly string[]).includes(t.pos) ? (t.pos as UposTag) : 'X'));
}

/** Token count as wink-nlp tokenizes (whitespace excluded). */
export const winkTokenCount = (text: string): number => winkTokens(text).length;

export const SENTIMENT_THRESHOLD = 0.05;
export function vaderCompound(text: string): number {
  return vader.SentimentIntensityAnalyzer.polarity_scores(text).compound;
}
export function sentimentOf(text: string): { label: 'positive' | 'neutral' | 'negative'; compound: number } {
  const c = vaderCompound(text);
  return { label: c > SENTIMENT_THRESHOLD ? 'positive' : c < -SENTIMENT_THRESHOLD ? 'negative' : 'neutral', compound: c };
}

export type ChunkLabel = 'NP' | 'VP' | 'PP';
/** Character span [start, end) of a phrase chunk. */
export interface Chunk {
  start: number;
  end: number;
  label: ChunkLabel;
}

interface CompromiseTerm {
  offset: { start: number; length: number };
  chunk?: string;
  tags: string[];
  post?: string;
}

/**
 * Phrase chunks from compromise: runs of terms with the same chunk label (Noun -> NP, Verb -> VP) within a sentence;
 * a preposition followed by a noun chunk forms a PP over both (a lone preposition is a one-word PP). Punctuation
 * after a term ends its run. The same rule the guidance labels use (training/labels), re-stated here.
 */
export function chunksOf(text: string): Chunk[] {
  const json = nlp(text).json({ offset: true, terms: { offset: true } }) as { terms: CompromiseTerm[] }[];
  const out: Chunk[] = [];
  for (const s of json) {
    const terms = s.terms.filter((t) => t.offset.length > 0).map((t) => ({
      start: t.offset.start,
      end: t.offset.start + t.offset.length,
      kind: t.tags.includes('Preposition') ? 'Prep' : (t.chunk ?? ''),
      punctAfter: /[^\s'’-]/.test(t.post ?? ''),
    }));
    const runs: { kind: string; start: number; end: number }[] = [];
    let prevPunct = false;
    for (const t of terms) {
      const last = runs[runs.length - 1];
      if (last && t.kind === last.kind && t.kind !== 'Prep' && !prevPunct) last.end = t.end;
      else runs.push({ kind: t.kind, start: t.start, end: t.end });
      prevPunct = t.punctAfter;
    }
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r]!;
      if (run.kind === 'Prep') {
        const next = runs[r + 1];
        if (next && next.kind === 'Noun') {
          out.push({ start: run.start, end: next.end, label: 'PP' });
          r++;
        } else out.push({ start: run.start, end: run.end, label: 'PP' });
      } else if (run.kind === 'Noun') out.push({ start: run.start, end: run.end, label: 'NP' });
      else if (run.kind === 'Verb') out.push({ start: run.start, end: run.end, label: 'VP' });
    }
  }
  return out;
}
