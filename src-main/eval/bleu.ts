/**
 * Corpus BLEU-4 with multiple references per hypothesis, as the E2E challenge computes it (e2e-metrics follows
 * NIST mteval-v13a): mteval-v13a tokenization, case-insensitive by default, clipped n-gram precisions summed over
 * the corpus, and a brevity penalty against the reference length closest to each hypothesis (ties: the shorter).
 */

export interface BleuOptions {
  /** Highest n-gram order (default 4). */
  maxOrder?: number;
  /** Lowercase hypotheses and references first (default true, as e2e-metrics does). */
  lowercase?: boolean;
}

export interface BleuResult {
  /** BLEU in [0, 100]. */
  bleu: number;
  /** Clipped n-gram precision per order, in [0, 1]. */
  precisions: number[];
  brevityPenalty: number;
  hypothesisLength: number;
  referenceLength: number;
  /** Matched and total n-gram counts per order (for checking by hand). */
  matches: number[];
  totals: number[];
}

/** mteval-v13a's "international"-free normalization: split punctuation off words, keep decimal points and commas. */
export function tokenize13a(text: string, lowercase = true): string[] {
  let s = ` ${text} `;
  s = s.replace(/<skipped>/g, '').replace(/-\n/g, '').replace(/\n/g, ' ');
  s = s.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  if (lowercase) s = s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  // ASCII punctuation except ' - . , (those are handled below or kept inside words)
  s = s.replace(/([{-~[-` -&(-+:-@/])/g, ' $1 ');
  s = s.replace(/([^0-9])([.,])/g, '$1 $2 ');
  s = s.replace(/([.,])([^0-9])/g, ' $1 $2');
  s = s.replace(/([0-9])(-)/g, '$1 $2 ');
  return s.split(/\s+/).filter((w) => w.length > 0);
}

function ngramCounts(tokens: string[], n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0001');
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

/** Reference length closest to the hypothesis length; on a tie the shorter one (mteval-v13a). */
export function closestRefLength(hypLen: number, refLens: number[]): number {
  let best = refLens[0]!;
  for (const r of refLens) {
    const d = Math.abs(r - hypLen);
    const bd = Math.abs(best - hypLen);
    if (d < bd || (d === bd && r < best)) best = r;
  }
  return best;
}

/**
 * hypotheses[i] is scored against references[i] (one or more strings). Throws on mismatched lengths or an
 * item without references, naming the item.
 */
export function corpusBleu(hypotheses: string[], references: string[][], options: BleuOptions = {}): BleuResult {
  const maxOrder = options.maxOrder ?? 4;
  const lowercase = options.lowercase ?? true;
  if (hypotheses.length !== references.length) {
    throw new Error(`corpusBleu: ${hypotheses.length} hypotheses but ${references.length} reference groups`);
  }
  const matches = new Array<number>(maxOrder).fill(0);
  const totals = new Array<number>(maxOrder).fill(0);
  let hypLen = 0;
  let refLen = 0;
  for (let i = 0; i < hypotheses.length; i++) {
    const refs = references[i]!;
    if (refs.length === 0) throw new Error(`corpusBleu: item ${i} has no references`);
    const hyp = tokenize13a(hypotheses[i]!, lowercase);
    const refToks = refs.map((r) => tokenize13a(r, lowercase));
    hypLen += hyp.length;
    refLen += closestRefLength(hyp.length, refToks.map((r) => r.length));
    for (let n = 1; n <= maxOrder; n++) {
      const h = ngramCounts(hyp, n);
      // clip each hypothesis n-gram by its largest count in any single reference
      const maxRef = new Map<string, number>();
      for (const r of refToks) {
        for (const [k, c] of ngramCounts(r, n)) if (c > (maxRef.get(k) ?? 0)) maxRef.set(k, c);
      }
      for (const [k, c] of h) {
        matches[n - 1]! += Math.min(c, maxRef.get(k) ?? 0);
        totals[n - 1]! += c;
      }
    }
  }
  const precisions = matches.map((m, i) => (totals[i]! > 0 ? m / totals[i]! : 0));
  const brevityPenalty = hypLen === 0 ? 0 : hypLen >= refLen ? 1 : Math.exp(1 - refLen / hypLen);
  const logMean = precisions.some((p) => p === 0)
    ? -Infinity
    : precisions.reduce((a, p) => a + Math.log(p), 0) / maxOrder;
  const bleu = Number.isFinite(logMean) ? 100 * brevityPenalty * Math.exp(logMean) : 0;
  return { bleu, precisions, brevityPenalty, hypothesisLength: hypLen, referenceLength: refLen, matches, totals };
}
