import { describe, expect, it } from 'vitest';
import { selectConsensus } from '../../../src-main/engine/consensus';

describe('selectConsensus (minimum Bayes risk over smoothed sentence BLEU)', () => {
  it('chooses the candidate closest to the others, not the first', () => {
    const typical = [5, 6, 7, 8, 9, 10, 11];
    const near1 = [5, 6, 7, 8, 9, 10, 12];
    const near2 = [5, 6, 7, 8, 9, 13, 11];
    const outlier = [20, 21, 22, 23];
    expect(selectConsensus([outlier, near1, typical, near2]).chosen).toBe(2);
  });

  it('a candidate that drops part of the shared content loses to one that keeps it', () => {
    const full = [1, 2, 3, 4, 5, 6, 7, 8];
    const short = [1, 2, 3, 4];
    expect(selectConsensus([short, full, full.slice()]).chosen).toBe(1);
  });

  it('agreement is 1 among identical candidates and lower among different ones; ties go to the lowest index', () => {
    const a = [4, 5, 6, 7, 8];
    expect(selectConsensus([a, a.slice(), a.slice()])).toEqual({ chosen: 0, agreement: 1 });
    const r = selectConsensus([[1, 2, 3, 4], [5, 6, 7, 8]]);
    expect(r.chosen).toBe(0);
    expect(r.agreement).toBeGreaterThanOrEqual(0);
    expect(r.agreement).toBeLessThan(0.1);
  });

  it('one candidate is chosen as it is; none is refused', () => {
    expect(selectConsensus([[3, 4]])).toEqual({ chosen: 0, agreement: 1 });
    expect(() => selectConsensus([])).toThrow(/no candidates/);
  });

  it('an empty candidate scores 0 and is not chosen over a non-empty one', () => {
    expect(selectConsensus([[], [1, 2, 3], [1, 2, 3]]).chosen).toBe(1);
  });
});
