/**
 * Projection of per-position scores onto a token automaton (DINGO-style dynamic programming, log space).
 *
 * scores: Float32Array [L, V] row-major, log-scores of each token at each position of the segment (logits, or
 * -||x0_i - EMB(v)||^2 for continuous models). fixed: Int32Array [L], -1 = free, else the token held there.
 *  - `viterbi`: the most probable accepted sequence of exactly L tokens (max-product). Each position may be
 *    restricted to its top-k tokens; if no accepted sequence survives, the full vocabulary is used (exact). When the
 *    best token at each position already forms an accepted sequence, that is the answer, without the pass.
 *  - `logPartition`: log of the sum over accepted sequences of exp(sum of scores) (sum-product / forward), and the
 *    log-probability that independent per-position softmax draws form an accepted sequence.
 *  - `sampleAccepted`: an exact draw from the per-position distributions conditioned on acceptance
 *    (forward filtering, backward sampling).
 */
import type { TokenAutomaton } from './token-automaton';
import { acceptsTokens, nextState } from './token-automaton';

export interface ViterbiResult {
  tokens: Int32Array;
  /** Sum of the chosen tokens' scores. */
  score: number;
  /** Whether the top-k restriction had to fall back to the full vocabulary. */
  fellBack: boolean;
}

/** Per-position candidate token lists (null = the whole vocabulary). */
function candidates(
  scores: Float32Array,
  L: number,
  V: number,
  k: number,
  fixed: Int32Array | undefined,
  always: number[],
): (Int32Array | null)[] {
  const out: (Int32Array | null)[] = [];
  const heapV = new Float64Array(k);
  const heapI = new Int32Array(k);
  for (let i = 0; i < L; i++) {
    const f = fixed ? fixed[i]! : -1;
    if (f >= 0) {
      out.push(Int32Array.of(f));
      continue;
    }
    if (k <= 0 || k >= V) {
      out.push(null);
      continue;
    }
    // min-heap of the k best
    let size = 0;
    const row = i * V;
    for (let t = 0; t < V; t++) {
      const v = scores[row + t]!;
      if (size < k) {
        let j = size++;
        while (j > 0) {
          const p = (j - 1) >> 1;
          if (heapV[p]! <= v) break;
          heapV[j] = heapV[p]!;
          heapI[j] = heapI[p]!;
          j = p;
        }
        heapV[j] = v;
        heapI[j] = t;
      } else if (v > heapV[0]!) {
        let j = 0;
        for (;;) {
          const l = 2 * j + 1;
          if (l >= k) break;
          const r = l + 1;
          const c = r < k && heapV[r]! < heapV[l]! ? r : l;
          if (heapV[c]! >= v) break;
          heapV[j] = heapV[c]!;
          heapI[j] = heapI[c]!;
          j = c;
        }
        heapV[j] = v;
        heapI[j] = t;
      }
    }
    const set = new Set<number>(heapI.subarray(0, size));
    for (const a of always) set.add(a);
    out.push(Int32Array.from(set));
  }
  return out;
}

interface Buffers {
  W: Float64Array;
  W2: Float64Array;
  bpQ: Int32Array;
  bpT: Int32Array;
  active: Int32Array;
  next: Int32Array;
}
const buffers = new WeakMap<TokenAutomaton, Map<number, Buffers>>();
function buffersFor(a: TokenAutomaton, L: number): Buffers {
  let m = buffers.get(a);
  if (!m) buffers.set(a, (m = new Map()));
  let b = m.get(L);
  if (!b) {
    const S = a.numStates;
    b = { W: new Float64Array(S), W2: new Float64Array(S), bpQ: new Int32Array(L * S), bpT: new Int32Array(L * S), active: new Int32Array(S), next: new Int32Array(S) };
    m.set(L, b);
  }
  return b;
}

function runViterbi(a: TokenAutomaton, scores: Float32Array, L: number, V: number, cand: (Int32Array | null)[]): { tokens: Int32Array; score: number } | null {
  const S = a.numStates;
  if (a.start < 0) return null;
  const buf = buffersFor(a, L);
  let W = buf.W;
  let W2 = buf.W2;
  const { bpQ, bpT } = buf;
  let active = buf.active;
  let nextActive = buf.next;
  W.fill(-Infinity);
  W2.fill(-Infinity);
  W[a.start] = 0;
  active[0] = a.start;
  let nActive = 1;
  const { offsets, tokens, next } = a;
  for (let i = 0; i < L; i++) {
    const row = i * V;
    const c = cand[i]!;
    const base = i * S;
    let nNext = 0;
    for (let j = 0; j < nActive; j++) {
      const q = active[j]!;
      const w = W[q]!;
      if (c === null) {
        const end = offsets[q + 1]!;
        for (let e = offsets[q]!; e < end; e++) {
          const t = tokens[e]!;
          const nq = next[e]!;
          const v = w + scores[row + t]!;
          const old = W2[nq]!;
          if (v > old) {
            if (old === -Infinity) nextActive[nNext++] = nq;
            W2[nq] = v;
            bpQ[base + nq] = q;
            bpT[base + nq] = t;
          }
        }
      } else {
        for (let k = 0; k < c.length; k++) {
          const t = c[k]!;
          const nq = nextState(a, q, t);
          if (nq < 0) continue;
          const v = w + scores[row + t]!;
          const old = W2[nq]!;
          if (v > old) {
            if (old === -Infinity) nextActive[nNext++] = nq;
            W2[nq] = v;
            bpQ[base + nq] = q;
            bpT[base + nq] = t;
          }
        }
      }
    }
    // reset the old row for reuse, then swap
    for (let j = 0; j < nActive; j++) W[active[j]!] = -Infinity;
    const tw = W;
    W = W2;
    W2 = tw;
    const ta = active;
    active = nextActive;
    nextActive = ta;
    nActive = nNext;
    if (nActive === 0) return null;
  }
  let best = -1;
  let bestV = -Infinity;
  for (let j = 0; j < nActive; j++) {
    const q = active[j]!;
    if (a.accept[q] && W[q]! > bestV) {
      bestV = W[q]!;
      best = q;
    }
  }
  if (best < 0) return null;
  const out = new Int32Array(L);
  let q = best;
  for (let i = L - 1; i >= 0; i--) {
    out[i] = bpT[i * S + q]!;
    q = bpQ[i * S + q]!;
  }
  return { tokens: out, score: bestV };
}

export interface ViterbiOptions {
  /** Candidates per position (default 32); 0 = always the whole vocabulary. */
  topK?: number;
  /** Tokens always kept among the candidates (the segment's padding specials). */
  always?: number[];
}

/**
 * The best token at each position (a fixed one kept) when together they already form an accepted sequence: then no
 * accepted sequence scores higher. Late in sampling a segment has settled and this is the common case (a guided
 * continuous run projects its record at every step).
 */
function settled(a: TokenAutomaton, scores: Float32Array, L: number, V: number, fixed?: Int32Array): { tokens: Int32Array; score: number } | null {
  const tokens = new Int32Array(L);
  let score = 0;
  for (let i = 0; i < L; i++) {
    const f = fixed?.[i] ?? -1;
    let best = f;
    if (f < 0) {
      best = 0;
      for (let v = 1; v < V; v++) if (scores[i * V + v]! > scores[i * V + best]!) best = v;
    }
    const s = scores[i * V + best]!;
    if (!(s > -Infinity)) return null;
    tokens[i] = best;
    score += s;
  }
  return acceptsTokens(a, tokens) ? { tokens, score } : null;
}

export function viterbi(
  a: TokenAutomaton,
  scores: Float32Array,
  L: number,
  fixed?: Int32Array,
  options: ViterbiOptions = {},
): ViterbiResult | null {
  const V = a.vocabSize;
  if (scores.length < L * V) throw new RangeError(`scores has ${scores.length} entries, expected ${L} x ${V}`);
  const done = settled(a, scores, L, V, fixed);
  if (done) return { ...done, fellBack: false };
  const k = options.topK ?? 32;
  // Top-k only pays off when states allow many tokens (free text); sparse automata run exactly over their edges.
  const sparse = a.edges <= a.numStates * k;
  if (k > 0 && k < V && !sparse) {
    const r = runViterbi(a, scores, L, V, candidates(scores, L, V, k, fixed, options.always ?? []));
    if (r) return { ...r, fellBack: false };
  }
  const r = runViterbi(a, scores, L, V, candidates(scores, L, V, 0, fixed, []));
  return r ? { ...r, fellBack: k > 0 && k < V && !sparse } : null;
}

interface Forward {
  /** Scaled forward messages [L+1, S]. */
  alpha: Float64Array;
  /** exp(score - rowMax) [L, V] (0 for tokens excluded by `fixed`). */
  e: Float64Array;
  logZ: number;
  logRowNorm: number;
}

const usedTokensCache = new WeakMap<TokenAutomaton, Int32Array>();
/** The tokens that label at least one edge (only their weights matter to the forward pass). */
function usedTokens(a: TokenAutomaton): Int32Array {
  let u = usedTokensCache.get(a);
  if (!u) {
    u = Int32Array.from(new Set(a.tokens)).sort();
    usedTokensCache.set(a, u);
  }
  return u;
}

function forward(a: TokenAutomaton, scores: Float32Array, L: number, fixed?: Int32Array, withNorm = false): Forward | null {
  const V = a.vocabSize;
  const S = a.numStates;
  if (a.start < 0) return null;
  const e = new Float64Array(L * V);
  let logZ = 0;
  let logRowNorm = 0;
  const rowMax = new Float64Array(L);
  const used = usedTokens(a);
  for (let i = 0; i < L; i++) {
    const row = i * V;
    const f = fixed ? fixed[i]! : -1;
    // shift by the row's max over the tokens that can occur (numerically safe; the shift cancels in the messages)
    let m = -Infinity;
    if (f >= 0) m = scores[row + f]!;
    else for (let k = 0; k < used.length; k++) m = Math.max(m, scores[row + used[k]!]!);
    if (m === -Infinity) m = 0;
    rowMax[i] = m;
    if (f >= 0) e[row + f] = Math.exp(scores[row + f]! - m);
    else for (let k = 0; k < used.length; k++) e[row + used[k]!] = Math.exp(scores[row + used[k]!]! - m);
    if (withNorm) {
      let mm = -Infinity;
      for (let t = 0; t < V; t++) mm = Math.max(mm, scores[row + t]!);
      let sum = 0;
      for (let t = 0; t < V; t++) sum += Math.exp(scores[row + t]! - mm);
      logRowNorm += mm + Math.log(sum);
    }
  }
  const alpha = new Float64Array((L + 1) * S);
  alpha[a.start] = 1;
  const { offsets, tokens, next } = a;
  for (let i = 0; i < L; i++) {
    const cur = i * S;
    const nxt = (i + 1) * S;
    for (let q = 0; q < S; q++) {
      const w = alpha[cur + q]!;
      if (w === 0) continue;
      for (let k = offsets[q]!; k < offsets[q + 1]!; k++) {
        const x = e[i * V + tokens[k]!]!;
        if (x !== 0) alpha[nxt + next[k]!] += w * x;
      }
    }
    let c = 0;
    for (let q = 0; q < S; q++) c += alpha[nxt + q]!;
    if (c === 0) return null;
    for (let q = 0; q < S; q++) alpha[nxt + q] /= c;
    logZ += rowMax[i]! + Math.log(c);
  }
  let fin = 0;
  for (let q = 0; q < S; q++) if (a.accept[q]) fin += alpha[L * S + q]!;
  if (fin === 0) return null;
  logZ += Math.log(fin);
  return { alpha, e, logZ, logRowNorm };
}

export interface PartitionResult {
  /** log sum over accepted sequences of exp(sum of scores); -Infinity when none fits. */
  logZ: number;
  /** log P(accepted) when each position draws independently from softmax(scores[i]) (fixed positions held). */
  logProbValid: number;
}

export function logPartition(a: TokenAutomaton, scores: Float32Array, L: number, fixed?: Int32Array): PartitionResult {
  const f = forward(a, scores, L, fixed, true);
  if (!f) return { logZ: -Infinity, logProbValid: -Infinity };
  return { logZ: f.logZ, logProbValid: f.logZ - f.logRowNorm };
}

/** Reverse CSR (incoming edges per state), cached per automaton. */
const reverseCache = new WeakMap<TokenAutomaton, { offsets: Int32Array; from: Int32Array; tokens: Int32Array }>();
function reverse(a: TokenAutomaton) {
  const hit = reverseCache.get(a);
  if (hit) return hit;
  const S = a.numStates;
  const cnt = new Int32Array(S + 1);
  for (let k = 0; k < a.edges; k++) cnt[a.next[k]! + 1]++;
  for (let q = 0; q < S; q++) cnt[q + 1] += cnt[q]!;
  const pos = cnt.slice(0, S);
  const from = new Int32Array(a.edges);
  const tokens = new Int32Array(a.edges);
  for (let q = 0; q < S; q++) {
    for (let k = a.offsets[q]!; k < a.offsets[q + 1]!; k++) {
      const s = a.next[k]!;
      const p = pos[s]!++;
      from[p] = q;
      tokens[p] = a.tokens[k]!;
    }
  }
  const r = { offsets: cnt, from, tokens };
  reverseCache.set(a, r);
  return r;
}

/** Exact sample from the distribution prod_i softmax(scores[i])[t_i] restricted to accepted sequences. */
export function sampleAccepted(
  a: TokenAutomaton,
  scores: Float32Array,
  L: number,
  rng: () => number,
  fixed?: Int32Array,
): Int32Array | null {
  const f = forward(a, scores, L, fixed);
  if (!f) return null;
  const S = a.numStates;
  const V = a.vocabSize;
  const rev = reverse(a);
  let total = 0;
  for (let q = 0; q < S; q++) if (a.accept[q]) total += f.alpha[L * S + q]!;
  let u = rng() * total;
  let q = -1;
  for (let s = 0; s < S; s++) {
    if (!a.accept[s]) continue;
    q = s;
    u -= f.alpha[L * S + s]!;
    if (u <= 0) break;
  }
  const out = new Int32Array(L);
  for (let i = L - 1; i >= 0; i--) {
    let sum = 0;
    for (let k = rev.offsets[q]!; k < rev.offsets[q + 1]!; k++) sum += f.alpha[i * S + rev.from[k]!]! * f.e[i * V + rev.tokens[k]!]!;
    let r = rng() * sum;
    let pick = -1;
    for (let k = rev.offsets[q]!; k < rev.offsets[q + 1]!; k++) {
      const w = f.alpha[i * S + rev.from[k]!]! * f.e[i * V + rev.tokens[k]!]!;
      if (w === 0) continue;
      pick = k;
      r -= w;
      if (r <= 0) break;
    }
    out[i] = rev.tokens[pick]!;
    q = rev.from[pick]!;
  }
  return out;
}
