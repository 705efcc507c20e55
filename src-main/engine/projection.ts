/**
 * Hard constraints on canvas segments, as the samplers use them: the compiler's SegmentProjector narrowed to what a
 * sampler calls, and the per-sample projection of every hard segment given per-position log-scores (continuous
 * family); the reachability of a partly masked segment (masked family).
 */
import { nextState, type TokenAutomaton } from '../constraints/compiler/token-automaton';

/** Hard constraint on one canvas segment (the compiler's SegmentProjector, narrowed to what the samplers need). */
export interface Projector {
  start: number;
  length: number;
  project(logScores: Float32Array, fixed?: Int32Array): Int32Array;
}

/**
 * Which pieces glue onto the one before them: a piece that starts with a letter and no space (`continues`) after one
 * that ends in a letter or digit (`endsWord`) writes one word of two ("theKnown"). Classifier guidance pulls the
 * continuous model's x0 toward such pieces (23% of guided e2e-default 2.2.3 texts had one, unguided ones none).
 */
export interface GlueRule {
  continues: Uint8Array;
  endsWord: Uint8Array;
}

export function glueRule(tokens: readonly string[]): GlueRule {
  return {
    continues: Uint8Array.from(tokens, (t) => (/^\p{L}/u.test(t) ? 1 : 0)),
    endsWord: Uint8Array.from(tokens, (t) => (/[\p{L}\p{N}]$/u.test(t) ? 1 : 0)),
  };
}

/**
 * Which tokens write the same word: a token of letters or digits, with or without the space before it, maps to its
 * lowercased word (an id per word), a sentence or clause mark (. , ! ? ; :) to that mark; every other token to -1.
 * Masked classifier guidance steers each position toward the tokens a template or span favours, and two neighbours
 * committed from logits that did not see each other can take the same one ("Loch Loch is ...", "Holiday.. Expect");
 * E2E's training texts repeat a word in 200 of 944,000 places and a mark in 20 of 964,000 tokens, all typos.
 */
export interface RepeatRule {
  word: Int32Array;
}

export function repeatRule(tokens: readonly string[]): RepeatRule {
  const ids = new Map<string, number>();
  return {
    word: Int32Array.from(tokens, (t) => {
      const m = /^ ?([\p{L}\p{N}]+|[.,!?;:])$/u.exec(t);
      if (!m) return -1;
      const key = m[1]!.toLowerCase();
      if (!ids.has(key)) ids.set(key, ids.size);
      return ids.get(key)!;
    }),
  };
}

/**
 * Where a text may end: `stop` marks <end> and <pad> (what follows a text's last token), `ender` the tokens that may
 * stand last (the bundle's text_end, fitted on its training texts). Guidance pulls a template's or span's words into
 * place and the text can stop right after one that never ends a text ("... Indian restaurant. Rated": perplexity
 * 44,000; none of E2E's 42,061 training texts ends on "Rated" or "It").
 */
export interface EndRule {
  ender: Uint8Array;
  stop: Uint8Array;
}

export function endRule(tokens: readonly string[], enders: readonly number[]): EndRule {
  const ender = new Uint8Array(tokens.length);
  for (const t of enders) if (t < tokens.length) ender[t] = 1;
  return { ender, stop: Uint8Array.from(tokens, (t) => (t === '<end>' || t === '<pad>' ? 1 : 0)) };
}

/**
 * Whether token v at a position ends the text too early next to its committed neighbours (-1: masked or outside the
 * segment): a stop right after a token that may not stand last, or such a token right before a stop.
 */
export function endsEarly(rule: EndRule, v: number, before: number, after: number): boolean {
  if (rule.stop[v] === 1) return before >= 0 && rule.stop[before] !== 1 && rule.ender[before] !== 1;
  return after >= 0 && rule.stop[after] === 1 && rule.ender[v] !== 1;
}

/**
 * Positions [start, start + length) round to their best token by the rounding score plus `add` ([length, V]; -Infinity
 * bars a token there): a held length's barred tokens, a token label lexicon's weighted log-probabilities
 * (lexicon.ts). Held tokens are kept. Left to right, a token the rules rule out after the one chosen before it is
 * passed over (a held token is kept even so): with `glue`, a piece that would glue onto it; with `repeats`, a token
 * writing its word again ("a restaurant restaurant", "Café Café Rouge": 13% of guided e2e-default 2.2.11 texts).
 * Where the rules leave no token, they give way.
 */
export function scoredProjector(start: number, length: number, add: Float32Array, V: number, glue?: GlueRule, repeats?: RepeatRule): Projector {
  return {
    start,
    length,
    project(logScores, fixed) {
      const out = new Int32Array(length);
      for (let i = 0; i < length; i++) {
        if ((fixed?.[i] ?? -1) >= 0) {
          out[i] = fixed![i]!;
          continue;
        }
        const prev = i > 0 ? out[i - 1]! : -1;
        const noGlue = glue && prev >= 0 && glue.endsWord[prev] === 1 ? glue.continues : null;
        const word = repeats && prev >= 0 ? (repeats.word[prev] ?? -1) : -1;
        const skip = noGlue || word >= 0 ? (v: number) => (!!noGlue && noGlue[v] === 1) || (word >= 0 && repeats!.word[v] === word) : null;
        out[i] = bestAt(logScores, add, i, V, skip) ?? bestAt(logScores, add, i, V, null) ?? -1;
      }
      return out;
    },
  };
}

/**
 * Positions [start, start + length) round to their best token outside `barred` (a held length keeps <end>, <pad>
 * and whitespace-only tokens out of the text before the held <end>). Held tokens are kept.
 */
export function barringProjector(start: number, length: number, barred: readonly number[], V: number): Projector {
  const add = new Float32Array(length * V);
  for (let i = 0; i < length; i++) for (const v of barred) add[i * V + v] = -Infinity;
  return scoredProjector(start, length, add, V);
}

/** The best-scoring token at position i (score + add, -Infinity barred), skipping `skip`ped ones; null if none is left. */
function bestAt(logScores: Float32Array, add: Float32Array, i: number, V: number, skip: ((v: number) => boolean) | null): number | null {
  const at = i * V;
  let best = -1;
  let bestScore = -Infinity;
  // the first of the highest finite scores; `skip` is asked only about a token that would take the lead
  for (let v = 0; v < V; v++) {
    const sc = logScores[at + v]! + add[at + v]!;
    if (sc > bestScore && !(skip && skip(v))) {
      best = v;
      bestScore = sc;
    }
  }
  return best < 0 ? null : best;
}

/** 1 at every canvas position some projector covers. */
export function coveredPositions(projectors: Projector[], N: number): Uint8Array {
  const covered = new Uint8Array(N);
  for (const p of projectors) for (let i = 0; i < p.length; i++) covered[p.start + i] = 1;
  return covered;
}

/** The held tokens inside a projector's segment (-1 = free), or undefined when it holds none. */
export function fixedOf(p: Projector, held: Int32Array | undefined): Int32Array | undefined {
  let fixed: Int32Array | undefined;
  for (let i = 0; i < p.length; i++) {
    const h = held?.[p.start + i] ?? -1;
    if (h >= 0) (fixed ??= new Int32Array(p.length).fill(-1))[i] = h;
  }
  return fixed;
}

/**
 * Project every hard segment of one sample: `scoresOf(p)` gives the segment's log-scores [length, V]; the chosen
 * tokens are written into `out` at `offset + p.start`.
 */
export async function projectSegments(
  projectors: Projector[], held: Int32Array | undefined, scoresOf: (p: Projector) => Promise<Float32Array>, out: Int32Array, offset: number,
): Promise<void> {
  for (const p of projectors) {
    const toks = p.project(await scoresOf(p), fixedOf(p, held));
    for (let i = 0; i < p.length; i++) out[offset + p.start + i] = toks[i]!;
  }
}

/** The token automaton of a hard segment (the compiler's, CSR by source state; see constraints/compiler/token-automaton.ts). */
export interface SegmentAutomaton {
  start: number;
  length: number;
  automaton: TokenAutomaton;
}

/**
 * Which tokens a partly masked segment may still take (DINGO-style reachability over positions): forward, the
 * automaton states reachable after each prefix (a masked position may be any token); backward, the states from
 * which the rest can still be completed to an accepted segment. A token v may go at masked position i when some
 * state reachable before i moves on v to a state that can still complete.
 */
/** Per state, its distinct successor states (CSR), cached per automaton: a masked position moves along these. */
const successorCache = new WeakMap<TokenAutomaton, { offsets: Int32Array; next: Int32Array }>();
function successors(a: TokenAutomaton): { offsets: Int32Array; next: Int32Array } {
  let hit = successorCache.get(a);
  if (hit) return hit;
  const offsets = new Int32Array(a.numStates + 1);
  const next: number[] = [];
  for (let q = 0; q < a.numStates; q++) {
    offsets[q] = next.length;
    const seen = new Set<number>();
    for (let e = a.offsets[q]!; e < a.offsets[q + 1]!; e++) seen.add(a.next[e]!);
    next.push(...seen);
  }
  offsets[a.numStates] = next.length;
  hit = { offsets, next: Int32Array.from(next) };
  successorCache.set(a, hit);
  return hit;
}

export class SegmentReachability {
  readonly start: number;
  readonly length: number;
  private readonly a: TokenAutomaton;
  /** [length + 1, states]: reachable after positions 0..i-1. */
  private readonly fwd: Uint8Array;
  /** [length + 1, states]: can complete positions i..length-1. */
  private readonly bwd: Uint8Array;
  private readonly tokens: Int32Array;
  private readonly masked: Uint8Array;

  constructor(seg: SegmentAutomaton) {
    this.start = seg.start;
    this.length = seg.length;
    this.a = seg.automaton;
    const S = this.a.numStates;
    this.fwd = new Uint8Array((seg.length + 1) * S);
    this.bwd = new Uint8Array((seg.length + 1) * S);
    this.tokens = new Int32Array(seg.length);
    this.masked = new Uint8Array(seg.length);
  }

  /** Read the segment from a canvas row (masked[pos] = 1 where still masked) and recompute; false when no completion is left. */
  update(row: ArrayLike<number>, masked: ArrayLike<number>, offset = 0): boolean {
    const { a, length: L, fwd, bwd } = this;
    const S = a.numStates;
    for (let i = 0; i < L; i++) {
      this.tokens[i] = row[offset + this.start + i]!;
      this.masked[i] = masked[offset + this.start + i] ? 1 : 0;
    }
    fwd.fill(0);
    bwd.fill(0);
    if (a.start < 0) return false;
    fwd[a.start] = 1;
    const { offsets, next } = successors(a);
    for (let i = 0; i < L; i++) {
      const cur = i * S;
      const nxt = (i + 1) * S;
      const free = this.masked[i] === 1;
      const t = this.tokens[i]!;
      for (let q = 0; q < S; q++) {
        if (!fwd[cur + q]) continue;
        if (free) for (let e = offsets[q]!; e < offsets[q + 1]!; e++) fwd[nxt + next[e]!] = 1;
        else {
          const q2 = nextState(a, q, t);
          if (q2 >= 0) fwd[nxt + q2] = 1;
        }
      }
    }
    for (let q = 0; q < S; q++) if (a.accept[q]) bwd[L * S + q] = 1;
    for (let i = L - 1; i >= 0; i--) {
      const cur = i * S;
      const nxt = (i + 1) * S;
      const free = this.masked[i] === 1;
      const t = this.tokens[i]!;
      for (let q = 0; q < S; q++) {
        if (free) {
          for (let e = offsets[q]!; e < offsets[q + 1]!; e++) {
            if (bwd[nxt + next[e]!]) {
              bwd[cur + q] = 1;
              break;
            }
          }
        } else {
          const q2 = nextState(a, q, t);
          if (q2 >= 0 && bwd[nxt + q2]) bwd[cur + q] = 1;
        }
      }
    }
    return bwd[a.start] === 1;
  }

  /** Tokens allowed at segment position i (a masked one), as 1s in `out` [vocabulary]. */
  allowed(i: number, out: Uint8Array): Uint8Array {
    const { a, fwd, bwd } = this;
    const S = a.numStates;
    out.fill(0);
    const { offsets, tokens: toks, next } = a;
    for (let q = 0; q < S; q++) {
      if (!fwd[i * S + q] || !bwd[i * S + q]) continue;
      for (let e = offsets[q]!; e < offsets[q + 1]!; e++) if (bwd[(i + 1) * S + next[e]!]) out[toks[e]!] = 1;
    }
    return out;
  }

  /** Whether token t may go at segment position i. */
  allows(i: number, t: number): boolean {
    const { a, fwd, bwd } = this;
    const S = a.numStates;
    for (let q = 0; q < S; q++) {
      if (!fwd[i * S + q]) continue;
      const q2 = nextState(a, q, t);
      if (q2 >= 0 && bwd[(i + 1) * S + q2]) return true;
    }
    return false;
  }
}
