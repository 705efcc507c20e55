import { describe, expect, it } from 'vitest';
import { closestRefLength, corpusBleu, tokenize13a } from '../../../src-main/eval/bleu';

describe('tokenize13a', () => {
  it('splits punctuation like mteval-v13a and keeps number punctuation', () => {
    expect(tokenize13a("The Vaults' prices are £20-25, near Café Rouge.")).toEqual([
      'the', "vaults'", 'prices', 'are', '£20', '-', '25', ',', 'near', 'café', 'rouge', '.',
    ]);
    expect(tokenize13a('Rated 3.5 (of 5): "good"!', false)).toEqual([
      'Rated', '3.5', '(', 'of', '5', ')', ':', '"', 'good', '"', '!',
    ]);
    expect(tokenize13a('1,000 a,b')).toEqual(['1,000', 'a', ',', 'b']);
  });
});

describe('corpusBleu (hand-computed cases)', () => {
  it('is 100 for an exact match', () => {
    const r = corpusBleu(['The cat sat on the mat.'], [['the cat sat on the mat .']]);
    expect(r.bleu).toBeCloseTo(100, 10);
    expect(r.brevityPenalty).toBe(1);
  });

  it('clips unigram counts by the best single reference and is 0 without bigram matches', () => {
    const r = corpusBleu(['the the the the the the the'], [['the cat is on the mat', 'there is a cat on the mat']]);
    expect(r.matches[0]).toBe(2);
    expect(r.totals[0]).toBe(7);
    expect(r.precisions[0]).toBeCloseTo(2 / 7, 12);
    expect(r.bleu).toBe(0);
  });

  it('combines n-gram matches from different references', () => {
    // hyp a b c d e f; refs "a b c d x y z w" (8) and "e f a b c d" (6)
    // 1-grams 6/6, 2-grams 4/5 (de missing), 3-grams 2/4, 4-grams 1/3; closest ref length 6 -> BP 1
    const r = corpusBleu(['a b c d e f'], [['a b c d x y z w', 'e f a b c d']]);
    expect(r.matches).toEqual([6, 4, 2, 1]);
    expect(r.totals).toEqual([6, 5, 4, 3]);
    expect(r.referenceLength).toBe(6);
    expect(r.bleu).toBeCloseTo(100 * Math.pow(1 * 0.8 * 0.5 * (1 / 3), 0.25), 10);
  });

  it('applies the brevity penalty on corpus totals with the closest reference length', () => {
    // item 1: hyp 4 tokens, refs 6 and 8 -> 6; item 2: hyp 5, ref 5 -> c = 9, r = 11, all precisions 1
    const r = corpusBleu(['a b c d', 'x y z w v'], [['a b c d e f', 'a b c d e f g h'], ['x y z w v']]);
    expect(r.hypothesisLength).toBe(9);
    expect(r.referenceLength).toBe(11);
    expect(r.precisions).toEqual([1, 1, 1, 1]);
    expect(r.brevityPenalty).toBeCloseTo(Math.exp(1 - 11 / 9), 12);
    expect(r.bleu).toBeCloseTo(100 * Math.exp(-2 / 9), 10);
  });

  it('breaks closest-length ties toward the shorter reference', () => {
    expect(closestRefLength(5, [6, 4])).toBe(4);
    expect(closestRefLength(5, [7, 6, 2])).toBe(6);
  });

  it('is case-insensitive by default and case-sensitive on request', () => {
    expect(corpusBleu(['A B C D'], [['a b c d']]).bleu).toBeCloseTo(100, 10);
    expect(corpusBleu(['A B C D'], [['a b c d']], { lowercase: false }).bleu).toBe(0);
  });

  it('refuses mismatched inputs by name', () => {
    expect(() => corpusBleu(['a'], [])).toThrow(/1 hypotheses but 0 reference groups/);
    expect(() => corpusBleu(['a'], [[]])).toThrow(/item 0 has no references/);
  });
});
