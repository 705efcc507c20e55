/**
 * Choosing each output among `candidates` samples (sampler setting `candidates`, constraints/set.ts; the runtime,
 * runtime.ts, samples and selects).
 * - Consensus (minimum Bayes risk decoding, Kumar & Byrne 2004; the way DiffuSeq and Diffusion-LM report their text
 *   results): the candidate that agrees most with the others, agreement measured by smoothed sentence BLEU-4 over the
 *   tokens each sample generated. The expected-BLEU winner is the typical sample; a candidate that drops a field or
 *   repeats a phrase agrees less with its siblings and loses.
 * - Classifiers: in a classifier-guided run, the candidate the bundle's own guidance classifiers score highest on the
 *   guided constraints (their weighted log p on the finished canvas, what guidance pushed up). Consensus would pick
 *   the typical sample, and the typical guided sample is the one that drifted back to what the model writes unguided.
 *   The evaluators that report whether a constraint holds (constraints/evaluators) play no part in the choice, but for
 *   the length count below.
 * - Model: in a run that neither guides nor pins (unconditional, or hard constraints only), the candidate the
 *   denoiser itself reconstructs best from a lightly re-noised copy of it (continuous family, sampler.ts
 *   SelfScoreConfig). Independent unconditional samples share no content, so consensus has nothing to agree on; the
 *   model's own check catches the slips (a stray quote, a value cut short) that make a record invalid. In a masked
 *   data-to-text run (the record held, the text generated), the candidate from whose text the denoiser reads the
 *   held record back best (masked/sampler.ts readBackLogp): a text that leaves a field out or writes another value
 *   makes the record less likely, which consensus, rewarding the typical text, does not see.
 * - Length: a length is a count, not a judgment, so where a run asks for one the candidates that have it (counted as
 *   the constraint counts it, constraints/evaluators) are kept over those that do not, whatever else chooses among
 *   them, and with sampler.accept_at the first that has it ends the drawing (runtime.ts). A held length is held in the
 *   model's tokens, which are not always the constraint's ("£20-25" is four of the model's and two of wink-nlp's),
 *   so about one guided continuous text in ten missed it.
 */
import type { ConstraintSet } from '../constraints/set';
import { evaluateForEngine } from './constraints-adapter';

/** n-gram counts of a token sequence, keyed by the ids joined with commas. */
function ngrams(tokens: readonly number[], n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join(',');
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

const ORDER = 4;

/** Per sequence, its n-gram counts for n = 1..4 (computed once, compared pairwise). */
type Profile = { length: number; counts: Map<string, number>[] };

function profile(tokens: readonly number[]): Profile {
  return { length: tokens.length, counts: Array.from({ length: ORDER }, (_, n) => ngrams(tokens, n + 1)) };
}

/**
 * BLEU-4 of `hyp` against the single reference `ref`, in [0, 1], with add-one smoothing of the 2- to 4-gram
 * precisions (Lin & Och 2004) so that short sequences do not all score 0. Empty hyp: 0.
 */
function smoothedBleu(hyp: Profile, ref: Profile): number {
  if (hyp.length === 0) return 0;
  let logSum = 0;
  for (let n = 0; n < ORDER; n++) {
    let match = 0;
    let total = 0;
    for (const [k, c] of hyp.counts[n]!) {
      match += Math.min(c, ref.counts[n]!.get(k) ?? 0);
      total += c;
    }
    const smooth = n === 0 ? 0 : 1;
    if (match + smooth === 0) return 0;
    logSum += Math.log((match + smooth) / (total + smooth));
  }
  const bp = hyp.length >= ref.length ? 1 : Math.exp(1 - ref.length / hyp.length);
  return bp * Math.exp(logSum / ORDER);
}

export interface Selection {
  /** Index of the chosen candidate (the lowest on a tie). */
  chosen: number;
  /** Its mean smoothed BLEU against the other candidates, in [0, 1] (1 with a single candidate). */
  agreement: number;
  /** What chose it ('length': the only candidate with the length asked for). */
  by: 'consensus' | 'classifiers' | 'model' | 'read-back' | 'length';
}

/** Per candidate, its mean smoothed BLEU against the others (its expected BLEU under their distribution). */
export function agreements(candidates: readonly (readonly number[])[]): number[] {
  const k = candidates.length;
  if (k === 1) return [1];
  const profiles = candidates.map(profile);
  return profiles.map((p, a) => {
    let sum = 0;
    for (let b = 0; b < k; b++) if (b !== a) sum += smoothedBleu(p, profiles[b]!);
    return sum / (k - 1);
  });
}

/** Index of the largest value, the lowest on a tie. */
function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** The candidate with the highest mean smoothed BLEU against the others. */
export function selectConsensus(candidates: readonly (readonly number[])[]): Selection {
  if (candidates.length === 0) throw new Error('selectConsensus: no candidates');
  const agree = agreements(candidates);
  const chosen = argmax(agree);
  return { chosen, agreement: agree[chosen]!, by: 'consensus' };
}

/** What a run's candidate scores measure (FamilyRun.scoring). */
export type CandidateScoring = 'classifiers' | 'model' | 'read-back';

/**
 * The candidate to keep: the best score where every candidate has one, else the consensus. `scores[c]`: candidate c's
 * score, higher is better (BatchResult.scores), measured by `scoredBy`: the guidance classifiers' weighted log p of
 * the guided constraints, the model's own check of an unguided, unpinned canvas, or its read-back of a held record.
 * `lengthOk[c]` (a run with a length constraint): whether candidate c has the length asked for; where some do, the
 * choice is among those.
 */
export function selectCandidate(candidates: readonly (readonly number[])[], scores?: readonly (number | undefined)[], scoredBy: CandidateScoring = 'classifiers', lengthOk?: readonly boolean[]): Selection {
  if (candidates.length === 0) throw new Error('selectCandidate: no candidates');
  const all = candidates.map((_, c) => c);
  const pool = lengthOk && lengthOk.length === candidates.length && lengthOk.some(Boolean) ? all.filter((c) => lengthOk[c]) : all;
  const narrowed = pool.length < all.length;
  const scored = !!scores && scores.length === candidates.length && scores.every((s) => s !== undefined && Number.isFinite(s));
  // the length decided: it left one candidate, or the one drawn had it and no classifier also accepted it
  const byLength = pool.length === 1 && !!lengthOk?.[pool[0]!] && (narrowed || !(scored && scoredBy === 'classifiers'));
  if (!byLength && !narrowed && !scored) return selectConsensus(candidates);
  const agree = agreements(candidates);
  const chosen = byLength ? pool[0]!
    : scored ? pool[argmax(pool.map((c) => scores![c]!))]!
    : pool[argmax(agreements(pool.map((c) => candidates[c]!)))]!;
  return { chosen, agreement: agree[chosen]!, by: byLength ? 'length' : scored ? scoredBy : 'consensus' };
}

/**
 * A run's length test for its candidates, or null without an enabled length constraint: per text, whether it has
 * every length the set asks for, counted by the evaluator that reports the constraint.
 */
export function lengthCheck(set: ConstraintSet): ((texts: string[]) => Promise<boolean[]>) | null {
  const lengths = set.constraints.filter((c) => c.kind === 'length' && c.enabled !== false && (c.weight ?? 1) > 0);
  if (!lengths.length) return null;
  const only = { ...set, constraints: lengths };
  return async (texts) => (await evaluateForEngine(only, texts.map((text) => ({ text, record: null })))).map((scores) => scores.every((s) => s.satisfied));
}
