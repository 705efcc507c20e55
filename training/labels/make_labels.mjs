// Labels for the guidance classifiers (issue 4), computed once from the E2E texts with independent JS tools.
// Usage: node training/labels/make_labels.mjs [--data ../shared/data/e2e] [--out training/labels] [--limit N]
// Writes e2e-train.jsonl.gz and e2e-dev.jsonl.gz (train split for training, dev split for metrics only).
// One line per CSV row (0-based row index `i`, in file order), labels at CHARACTER level so they do not depend on a
// vocabulary; training/guidance/labels.py maps them to tokenizer pieces:
//   pos:    one character per text character: the UPOS of the wink-nlp token covering it (code table in `meta`),
//           '_' where no token covers it (whitespace).
//   chunks: [start, end) character spans labelled NP / VP / PP from compromise's chunker (see chunkSpans).
//   vader:  VADER compound score; sentiment: negative (< -0.05) / neutral / positive (> 0.05).
//   sha1:   first 12 hex digits of the text's SHA-1, so a mismatch with the corpus is caught.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import winkNLP from 'wink-nlp';
import model from 'wink-eng-lite-web-model';
import nlp from 'compromise';
import vader from 'vader-sentiment';

export const UPOS = ['ADJ', 'ADP', 'ADV', 'AUX', 'CCONJ', 'DET', 'INTJ', 'NOUN', 'NUM', 'PART', 'PRON', 'PROPN',
  'PUNCT', 'SCONJ', 'SYM', 'VERB', 'X'];
// wink also tags whitespace tokens (newlines, tabs) SPACE, as spaCy does
const TAGS = [...UPOS, 'SPACE'];
const CODE = Object.fromEntries(TAGS.map((t, i) => [t, String.fromCharCode(65 + i)])); // A..R
const SENT_THRESHOLD = 0.05;

/** RFC 4180 CSV (quoted fields may hold commas, quotes and newlines). */
export function parseCsv(src, file) {
  const rows = [];
  let row = [], cell = '', i = 0, quoted = false;
  if (src.charCodeAt(0) === 0xfeff) i = 1;
  for (; i < src.length; i++) {
    const c = src[i];
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') { cell += '"'; i++; } else quoted = false;
      } else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else cell += c;
  }
  if (quoted) throw new Error(`${file}: unterminated quoted field`);
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

const wink = winkNLP(model);
const its = wink.its;

/** Per-character UPOS codes from wink-nlp (token offsets rebuilt from preceding spaces + values). */
export function posCodes(text) {
  const doc = wink.readDoc(text);
  const vals = doc.tokens().out(its.value);
  const tags = doc.tokens().out(its.pos);
  const pre = doc.tokens().out(its.precedingSpaces);
  const codes = new Array(text.length).fill('_');
  let at = 0;
  for (let k = 0; k < vals.length; k++) {
    at += pre[k].length;
    const v = vals[k];
    if (text.slice(at, at + v.length) !== v) {
      // wink did not reproduce the text exactly: find the token from the current position.
      const j = text.indexOf(v, at);
      if (j < 0) throw new Error(`wink token ${JSON.stringify(v)} not found in ${JSON.stringify(text)}`);
      at = j;
    }
    const code = CODE[tags[k]];
    if (!code) throw new Error(`wink returned an unknown tag ${tags[k]}`);
    for (let c = at; c < at + v.length; c++) codes[c] = code;
    at += v.length;
  }
  return codes.join('');
}

/**
 * Chunk spans from compromise (a rule-based chunker; no full constituency parser exists in JS).
 * compromise marks each term's chunk as Noun / Verb / Adjective / Pivot. We merge runs of terms with the same
 * chunk (within a sentence) into NP / VP; a term tagged Preposition followed by a Noun chunk forms a PP spanning
 * the preposition and that noun chunk (constituent style); a lone preposition is a one-word PP; Adjective and
 * Pivot runs are left outside (O). Punctuation after a term ends its run (compromise would otherwise chunk
 * "the city centre, Alimentum, that" as one noun chunk). Spans cover term text only (punctuation is outside).
 */
export function chunkSpans(text) {
  const doc = nlp(text);
  const json = doc.json({ offset: true, terms: { offset: true } });
  const spans = [];
  for (const s of json) {
    // contractions expand to implicit terms of length 0 ("who's" -> who + is): skip those
    const terms = s.terms.filter((t) => t.offset.length > 0).map((t) => ({
      start: t.offset.start, end: t.offset.start + t.offset.length,
      chunk: t.chunk, prep: t.tags.includes('Preposition'), punctAfter: /[^\s'’-]/.test(t.post ?? ''),
    }));
    // runs of equal chunk label; a preposition always starts a run of its own, punctuation after a term ends one
    const runs = [];
    let prev = null;
    for (const t of terms) {
      const kind = t.prep ? 'Prep' : t.chunk;
      const last = runs[runs.length - 1];
      if (last && kind === last.kind && kind !== 'Prep' && !prev.punctAfter) last.end = t.end;
      else runs.push({ kind, start: t.start, end: t.end });
      prev = t;
    }
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r];
      if (run.kind === 'Prep') {
        const next = runs[r + 1];
        if (next && next.kind === 'Noun') { spans.push([run.start, next.end, 'PP']); r++; }
        else spans.push([run.start, run.end, 'PP']);
      } else if (run.kind === 'Noun') spans.push([run.start, run.end, 'NP']);
      else if (run.kind === 'Verb') spans.push([run.start, run.end, 'VP']);
    }
  }
  for (const [a, b] of spans) {
    if (!(a >= 0 && b > a && b <= text.length)) throw new Error(`bad chunk span [${a}, ${b}) in ${JSON.stringify(text)}`);
  }
  return spans;
}

export function sentiment(text) {
  const c = vader.SentimentIntensityAnalyzer.polarity_scores(text).compound;
  return { vader: Math.round(c * 1e4) / 1e4, sentiment: c > SENT_THRESHOLD ? 'positive' : c < -SENT_THRESHOLD ? 'negative' : 'neutral' };
}

export function labelText(text, i) {
  return {
    i, sha1: createHash('sha1').update(text, 'utf8').digest('hex').slice(0, 12),
    pos: posCodes(text), chunks: chunkSpans(text), ...sentiment(text),
  };
}

function main() {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => { const k = args.indexOf(name); return k >= 0 ? args[k + 1] : dflt; };
  const data = opt('--data', process.env.E2E_DATA ?? new URL('../../../shared/data/e2e', import.meta.url).pathname);
  const out = opt('--out', 'training/labels');
  const limit = Number(opt('--limit', '0'));
  mkdirSync(out, { recursive: true });
  for (const [split, file] of [['train', 'trainset.csv'], ['dev', 'devset.csv']]) {
    const path = join(data, file);
    const rows = parseCsv(readFileSync(path, 'utf8'), path);
    const header = rows.shift();
    const col = header.indexOf('ref') >= 0 ? header.indexOf('ref') : header.indexOf('text');
    if (col < 0) throw new Error(`${path}: needs a column 'ref' or 'text' (columns: ${header.join(', ')})`);
    const n = limit ? Math.min(limit, rows.length) : rows.length;
    const lines = [];
    const counts = { positive: 0, neutral: 0, negative: 0 };
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      const lab = labelText(rows[i][col], i);
      counts[lab.sentiment]++;
      lines.push(JSON.stringify(lab));
    }
    const meta = {
      meta: true, split, source: file, rows: n, upos_codes: CODE, unlabelled: '_',
      tools: Object.fromEntries(['wink-nlp', 'wink-eng-lite-web-model', 'compromise', 'vader-sentiment']
        .map((p) => [p, JSON.parse(readFileSync(join('node_modules', p, 'package.json'), 'utf8')).version])),
      sentiment_thresholds: [-SENT_THRESHOLD, SENT_THRESHOLD], sentiment_counts: counts,
    };
    const body = [JSON.stringify(meta), ...lines].join('\n') + '\n';
    const target = join(out, `e2e-${split}.jsonl.gz`);
    writeFileSync(target, gzipSync(Buffer.from(body, 'utf8'), { level: 9 }));
    console.log(`${target}: ${n} rows in ${((Date.now() - t0) / 1000).toFixed(1)} s, sentiment ${JSON.stringify(counts)}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
