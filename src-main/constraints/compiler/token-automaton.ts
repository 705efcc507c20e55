/**
 * Lift a character DFA to a token automaton over a vocabulary of surface strings, for one canvas segment.
 *
 * For each live state q and token t, the token's exact surface is run through the DFA (over a trie of the
 * vocabulary, so shared prefixes are walked once); (q, t) -> q' is kept when q' can still reach acceptance.
 * The segment's padding is built in: a record segment is "accepted text, then <pad>*"; a text segment is
 * "accepted text, <end>, then <pad>*". States that cannot be reached or cannot reach a final state are pruned.
 */
import type { DFA } from 'refa';

export interface Specials {
  pad: number;
  sep: number;
  end: number;
  unk: number;
}

export type SegmentMode = 'record' | 'text';

export interface TokenAutomaton {
  numStates: number;
  start: number;
  /** 1 where a state may end the segment. */
  accept: Uint8Array;
  vocabSize: number;
  /** CSR by source state, token ids ascending: tokens[offsets[q] .. offsets[q+1]) with their next states. */
  offsets: Int32Array;
  tokens: Int32Array;
  next: Int32Array;
  /** next state per (state, token), -1 when not allowed; present when numStates * vocabSize is small enough. */
  dense: Int32Array | null;
  /** Number of allowed (state, token) pairs. */
  edges: number;
}

/** A character DFA in flat arrays: per state, sorted disjoint code point ranges and their targets. */
interface FlatDfa {
  n: number;
  start: number;
  accept: Uint8Array;
  live: Uint8Array;
  rangeStart: Int32Array;
  lo: Int32Array;
  hi: Int32Array;
  to: Int32Array;
}

export function flattenDfa(dfa: DFA): FlatDfa {
  const ids = new Map<DFA.ReadonlyNode, number>();
  const order: DFA.ReadonlyNode[] = [];
  for (const n of dfa.nodes()) {
    ids.set(n, order.length);
    order.push(n);
  }
  const n = order.length;
  const accept = new Uint8Array(n);
  const rangeStart = new Int32Array(n + 1);
  const lo: number[] = [];
  const hi: number[] = [];
  const to: number[] = [];
  const preds: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    const node = order[i]!;
    if (dfa.finals.has(node as DFA.Node)) accept[i] = 1;
    rangeStart[i] = lo.length;
    const entries = [...node.out].sort((a, b) => a[0].min - b[0].min);
    for (const [r, target] of entries) {
      const j = ids.get(target)!;
      lo.push(r.min);
      hi.push(r.max);
      to.push(j);
      preds[j]!.push(i);
    }
  }
  rangeStart[n] = lo.length;
  const live = new Uint8Array(n);
  const stack: number[] = [];
  for (let i = 0; i < n; i++) if (accept[i]) {
    live[i] = 1;
    stack.push(i);
  }
  while (stack.length) {
    const j = stack.pop()!;
    for (const i of preds[j]!) if (!live[i]) {
      live[i] = 1;
      stack.push(i);
    }
  }
  return {
    n, start: ids.get(dfa.initial)!, accept, live, rangeStart,
    lo: Int32Array.from(lo), hi: Int32Array.from(hi), to: Int32Array.from(to),
  };
}

function step(d: FlatDfa, q: number, c: number): number {
  let a = d.rangeStart[q]!;
  let b = d.rangeStart[q + 1]! - 1;
  while (a <= b) {
    const m = (a + b) >> 1;
    if (c < d.lo[m]!) b = m - 1;
    else if (c > d.hi[m]!) a = m + 1;
    else return d.to[m]!;
  }
  return -1;
}

interface TrieNode {
  children: Map<number, TrieNode>;
  tokens: number[];
}

function buildTrie(vocab: readonly string[], skip: Set<number>): TrieNode {
  const root: TrieNode = { children: new Map(), tokens: [] };
  for (let id = 0; id < vocab.length; id++) {
    if (skip.has(id)) continue;
    const s = vocab[id]!;
    if (!s) continue;
    let node = root;
    for (const ch of s) {
      const c = ch.codePointAt(0)!;
      let next = node.children.get(c);
      if (!next) node.children.set(c, (next = { children: new Map(), tokens: [] }));
      node = next;
    }
    node.tokens.push(id);
  }
  return root;
}

export interface LiftOptions {
  /** Build the dense [states x vocab] table when it has at most this many entries (default 8M). */
  maxDense?: number;
}

/** Token automaton of a character DFA for one segment of the canvas. */
export function liftToTokens(
  dfa: DFA,
  vocab: readonly string[],
  specials: Specials,
  mode: SegmentMode,
  options: LiftOptions = {},
): TokenAutomaton {
  const d = flattenDfa(dfa);
  const V = vocab.length;
  const skip = new Set([specials.pad, specials.sep, specials.end, specials.unk]);
  const trie = buildTrie(vocab, skip);

  // Token-level transitions from every live char state reachable at token boundaries.
  const trans = new Map<number, [number, number][]>();
  const queue = d.live[d.start] ? [d.start] : [];
  const seen = new Set(queue);
  while (queue.length) {
    const q = queue.pop()!;
    const out: [number, number][] = [];
    const stack: [TrieNode, number][] = [[trie, q]];
    while (stack.length) {
      const [node, s] = stack.pop()!;
      if (node !== trie) for (const t of node.tokens) out.push([t, s]);
      for (const [c, child] of node.children) {
        const s2 = step(d, s, c);
        if (s2 >= 0 && d.live[s2]) stack.push([child, s2]);
      }
    }
    out.sort((a, b) => a[0] - b[0]);
    trans.set(q, out);
    for (const [, s] of out) if (!seen.has(s)) {
      seen.add(s);
      queue.push(s);
    }
  }

  // Add the segment tail: record -> <pad>*, text -> <end> <pad>*.
  const charStates = [...trans.keys()];
  const localId = new Map<number, number>();
  charStates.forEach((q, i) => localId.set(q, i));
  const base = charStates.length;
  const PAD = base;
  const END = base + 1;
  const total = mode === 'text' ? base + 2 : base + 1;
  const edges: [number, number][][] = Array.from({ length: total }, () => []);
  const accept = new Uint8Array(total);
  charStates.forEach((q, i) => {
    for (const [t, s] of trans.get(q)!) edges[i]!.push([t, localId.get(s)!]);
    if (d.accept[q]) {
      if (mode === 'record') edges[i]!.push([specials.pad, PAD]);
      else edges[i]!.push([specials.end, END]);
    }
  });
  edges[PAD]!.push([specials.pad, PAD]);
  accept[PAD] = 1;
  if (mode === 'text') {
    edges[END]!.push([specials.pad, PAD]);
    accept[END] = 1;
  } else {
    charStates.forEach((q, i) => { if (d.accept[q]) accept[i] = 1; });
  }
  return prune(edges, accept, localId.get(d.start) ?? -1, V, options.maxDense ?? 8_000_000);
}

/** Keep states reachable from start and co-reachable to a final state; renumber; build CSR (+ dense table). */
function prune(edges: [number, number][][], accept: Uint8Array, start: number, V: number, maxDense: number): TokenAutomaton {
  const n = edges.length;
  const reach = new Uint8Array(n);
  if (start >= 0) {
    const st = [start];
    reach[start] = 1;
    while (st.length) {
      const q = st.pop()!;
      for (const [, s] of edges[q]!) if (!reach[s]) {
        reach[s] = 1;
        st.push(s);
      }
    }
  }
  const preds: number[][] = Array.from({ length: n }, () => []);
  for (let q = 0; q < n; q++) for (const [, s] of edges[q]!) preds[s]!.push(q);
  const co = new Uint8Array(n);
  const st: number[] = [];
  for (let q = 0; q < n; q++) if (accept[q] && reach[q]) {
    co[q] = 1;
    st.push(q);
  }
  while (st.length) {
    const s = st.pop()!;
    for (const q of preds[s]!) if (!co[q]) {
      co[q] = 1;
      st.push(q);
    }
  }
  const keep: number[] = [];
  const id = new Int32Array(n).fill(-1);
  for (let q = 0; q < n; q++) if (reach[q] && co[q]) {
    id[q] = keep.length;
    keep.push(q);
  }
  const S = keep.length;
  const offsets = new Int32Array(S + 1);
  const toks: number[] = [];
  const nexts: number[] = [];
  const acc = new Uint8Array(S);
  keep.forEach((q, i) => {
    offsets[i] = toks.length;
    acc[i] = accept[q]!;
    const list = edges[q]!.filter(([, s]) => id[s]! >= 0).sort((a, b) => a[0] - b[0]);
    for (const [t, s] of list) {
      toks.push(t);
      nexts.push(id[s]!);
    }
  });
  offsets[S] = toks.length;
  let dense: Int32Array | null = null;
  if (S * V <= maxDense) {
    dense = new Int32Array(S * V).fill(-1);
    for (let q = 0; q < S; q++) for (let e = offsets[q]!; e < offsets[q + 1]!; e++) dense[q * V + toks[e]!] = nexts[e]!;
  }
  return {
    numStates: S,
    start: start >= 0 && id[start]! >= 0 ? id[start]! : -1,
    accept: acc,
    vocabSize: V,
    offsets,
    tokens: Int32Array.from(toks),
    next: Int32Array.from(nexts),
    dense,
    edges: toks.length,
  };
}

/** Next state after token t from state q, or -1. */
export function nextState(a: TokenAutomaton, q: number, t: number): number {
  if (a.dense) return a.dense[q * a.vocabSize + t]!;
  let lo = a.offsets[q]!;
  let hi = a.offsets[q + 1]! - 1;
  while (lo <= hi) {
    const m = (lo + hi) >> 1;
    const x = a.tokens[m]!;
    if (x === t) return a.next[m]!;
    if (x < t) lo = m + 1;
    else hi = m - 1;
  }
  return -1;
}

/** The allowed tokens of state q grouped by next state. */
export function groupsOf(a: TokenAutomaton, q: number): Map<number, number[]> {
  const g = new Map<number, number[]>();
  for (let e = a.offsets[q]!; e < a.offsets[q + 1]!; e++) {
    const s = a.next[e]!;
    const list = g.get(s);
    if (list) list.push(a.tokens[e]!);
    else g.set(s, [a.tokens[e]!]);
  }
  return g;
}

/** Whether a token sequence (the whole segment) is accepted. */
export function acceptsTokens(a: TokenAutomaton, seq: ArrayLike<number>): boolean {
  let q = a.start;
  for (let i = 0; i < seq.length && q >= 0; i++) q = nextState(a, q, seq[i]!);
  return q >= 0 && a.accept[q] === 1;
}

/** Lengths L (up to maxLen) for which some accepted sequence has exactly L tokens. */
export function feasibleLengths(a: TokenAutomaton, maxLen: number): boolean[] {
  const out: boolean[] = [];
  let cur = new Uint8Array(a.numStates);
  if (a.start >= 0) cur[a.start] = 1;
  for (let L = 0; L <= maxLen; L++) {
    let ok = false;
    for (let q = 0; q < a.numStates; q++) if (cur[q] && a.accept[q]) ok = true;
    out.push(ok);
    const nxt = new Uint8Array(a.numStates);
    for (let q = 0; q < a.numStates; q++) if (cur[q]) for (let e = a.offsets[q]!; e < a.offsets[q + 1]!; e++) nxt[a.next[e]!] = 1;
    cur = nxt;
  }
  return out;
}
