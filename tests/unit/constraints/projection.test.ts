import { describe, expect, it } from 'vitest';
import { compileJsonSchema, liftToTokens, logPartition, sampleAccepted, viterbi } from '../../../src-main/constraints/compiler';
import { acceptsTokens, groupsOf } from '../../../src-main/constraints/compiler/token-automaton';
import { regexTextLang } from '../../../src-main/constraints/compiler/text';
import { toDfa } from '../../../src-main/constraints/compiler/lang';
import { Mulberry32 } from '../../../src-main/engine/prng';

const specials = { pad: 0, sep: 1, end: 2, unk: 3 };
// a tiny vocabulary with multi-character tokens that cross JSON structure
const vocab = ['<pad>', '<sep>', '<end>', '<unk>', '1', '2', '0', '12', '"', 'a', 'b', '"a', 'b"', '-'];
const V = vocab.length;

/** Seeded uniforms in (0, 1) from the engine's shared PRNG, so a failure can be reproduced. */
function rng(seed: number): () => number {
  const g = new Mulberry32(seed);
  return () => g.uniform();
}

function randomScores(L: number, r: () => number): Float32Array {
  const s = new Float32Array(L * V);
  for (let i = 0; i < s.length; i++) s[i] = -4 * r();
  return s;
}

/** All V^L sequences, with the automaton's verdict. */
function* allSequences(L: number): Generator<number[]> {
  const seq = new Array<number>(L).fill(0);
  for (;;) {
    yield seq.slice();
    let i = L - 1;
    while (i >= 0 && seq[i] === V - 1) seq[i--] = 0;
    if (i < 0) return;
    seq[i]!++;
  }
}

const score = (s: Float32Array, seq: number[]) => seq.reduce((acc, t, i) => acc + s[i * V + t]!, 0);
const decode = (seq: ArrayLike<number>) => Array.from(seq, (t) => (t < 4 ? '' : vocab[t])).join('');

describe('token lift', () => {
  it('spells exactly the accepted strings, then pads (record segment)', () => {
    const c = compileJsonSchema({ enum: [12, 'ab', 'a', -1] });
    const a = liftToTokens(c.dfa, vocab, specials, 'record');
    const accepted = new Set<string>();
    for (const seq of allSequences(4)) {
      if (!acceptsTokens(a, seq)) continue;
      // padding only at the end, and the string before it is accepted
      const firstPad = seq.indexOf(0);
      if (firstPad >= 0) expect(seq.slice(firstPad).every((t) => t === 0)).toBe(true);
      expect(seq.every((t) => t !== 1 && t !== 2 && t !== 3)).toBe(true);
      accepted.add(decode(seq));
    }
    expect([...accepted].sort()).toEqual(['"a"', '"ab"', '-1', '12'].sort());
    // grouped by next state: every token listed once per state
    for (let q = 0; q < a.numStates; q++) {
      const all = [...groupsOf(a, q).values()].flat();
      expect(new Set(all).size).toBe(all.length);
    }
  });

  it('text segment: accepted text, <end>, then pads', () => {
    const dfa = toDfa(regexTextLang('^a+b$'));
    const a = liftToTokens(dfa, vocab, specials, 'text');
    expect(acceptsTokens(a, [9, 10, 2, 0])).toBe(true);
    expect(acceptsTokens(a, [9, 9, 10, 2])).toBe(true);
    expect(acceptsTokens(a, [9, 10, 0, 0])).toBe(false);
    expect(acceptsTokens(a, [9, 10, 2, 9])).toBe(false);
  });
});

describe('projection (DINGO dynamic programming) against brute force', () => {
  const c = compileJsonSchema({ type: 'integer', minimum: -12, maximum: 120 });
  const a = liftToTokens(c.dfa, vocab, specials, 'record');
  const L = 4;

  it('viterbi returns the best accepted sequence (exact and top-k with fallback)', () => {
    const r = rng(3);
    for (let trial = 0; trial < 15; trial++) {
      const s = randomScores(L, r);
      let best = -Infinity;
      for (const seq of allSequences(L)) if (acceptsTokens(a, seq)) best = Math.max(best, score(s, seq));
      const exact = viterbi(a, s, L, undefined, { topK: 0 })!;
      expect(acceptsTokens(a, exact.tokens)).toBe(true);
      expect(exact.score).toBeCloseTo(best, 4);
      const k2 = viterbi(a, s, L, undefined, { topK: 2, always: [0] })!;
      expect(acceptsTokens(a, k2.tokens)).toBe(true);
      expect(score(s, [...k2.tokens])).toBeLessThanOrEqual(best + 1e-4);
      expect(Number(decode(k2.tokens))).toBeLessThanOrEqual(120);
    }
  });

  it('a settled segment (its best tokens already accepted) gives them, the brute-force best, with or without fixed tokens', () => {
    const r = rng(7);
    const target = [5, 6, 0, 0]; // "20", then padding
    expect(acceptsTokens(a, target)).toBe(true);
    for (let trial = 0; trial < 10; trial++) {
      const s = randomScores(L, r);
      target.forEach((t, i) => (s[i * V + t]! += 10)); // the target wins every position
      let best = -Infinity;
      for (const seq of allSequences(L)) if (acceptsTokens(a, seq)) best = Math.max(best, score(s, seq));
      for (const topK of [0, 2]) {
        const v = viterbi(a, s, L, undefined, { topK, always: [0] })!;
        expect([...v.tokens]).toEqual(target);
        expect(v.score).toBeCloseTo(best, 4);
        expect(v.fellBack).toBe(false);
      }
      // a fixed token that breaks the settled sequence: the pass runs, and its best keeps the fixed token
      const fixed = Int32Array.from([13, -1, -1, -1]);
      let bestFixed = -Infinity;
      for (const seq of allSequences(L)) if (seq[0] === 13 && acceptsTokens(a, seq)) bestFixed = Math.max(bestFixed, score(s, seq));
      const f = viterbi(a, s, L, fixed, { topK: 0 })!;
      expect(f.tokens[0]).toBe(13);
      expect(f.score).toBeCloseTo(bestFixed, 4);
    }
  });

  it('fixed positions are respected', () => {
    const s = randomScores(L, rng(5));
    const fixed = Int32Array.from([13, -1, -1, -1]); // "-" first
    const r = viterbi(a, s, L, fixed, { topK: 0 })!;
    expect(r.tokens[0]).toBe(13);
    let best = -Infinity;
    for (const seq of allSequences(L)) if (seq[0] === 13 && acceptsTokens(a, seq)) best = Math.max(best, score(s, seq));
    expect(r.score).toBeCloseTo(best, 4);
  });

  it('logPartition equals the brute-force log-sum-exp; logProbValid is a log-probability', () => {
    const s = randomScores(L, rng(11));
    let z = 0;
    for (const seq of allSequences(L)) if (acceptsTokens(a, seq)) z += Math.exp(score(s, seq));
    const p = logPartition(a, s, L);
    expect(p.logZ).toBeCloseTo(Math.log(z), 6);
    let norm = 0;
    for (let i = 0; i < L; i++) {
      let row = 0;
      for (let t = 0; t < V; t++) row += Math.exp(s[i * V + t]!);
      norm += Math.log(row);
    }
    expect(p.logProbValid).toBeCloseTo(Math.log(z) - norm, 6);
    expect(p.logProbValid).toBeLessThan(0);
  });

  it('sampling follows the constrained distribution', () => {
    const s = randomScores(3, rng(17));
    const L3 = 3;
    const probs = new Map<string, number>();
    let z = 0;
    for (const seq of allSequences(L3)) {
      if (!acceptsTokens(a, seq)) continue;
      const w = Math.exp(score(s, seq));
      probs.set(seq.join(','), w);
      z += w;
    }
    const counts = new Map<string, number>();
    const r = rng(23);
    const N = 6000;
    for (let n = 0; n < N; n++) {
      const seq = sampleAccepted(a, s, L3, r)!;
      expect(acceptsTokens(a, seq)).toBe(true);
      const k = Array.from(seq).join(',');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    // every frequent outcome within 5 standard errors of its probability
    for (const [k, w] of probs) {
      const p = w / z;
      if (p < 0.02) continue;
      const f = (counts.get(k) ?? 0) / N;
      expect(Math.abs(f - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N));
    }
  });

  it('returns null when nothing fits the segment', () => {
    const long = compileJsonSchema({ const: 'abababababab' });
    const la = liftToTokens(long.dfa, vocab, specials, 'record');
    expect(viterbi(la, randomScores(3, rng(1)), 3)).toBeNull();
    expect(logPartition(la, randomScores(3, rng(1)), 3).logZ).toBe(-Infinity);
  });
});
