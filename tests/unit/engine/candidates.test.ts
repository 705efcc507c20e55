import { describe, expect, it } from 'vitest';
import { agreements, selectCandidate, selectConsensus } from '../../../src-main/engine/candidates';

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
    expect(selectConsensus([a, a.slice(), a.slice()])).toEqual({ chosen: 0, agreement: 1, by: 'consensus' });
    const r = selectConsensus([[1, 2, 3, 4], [5, 6, 7, 8]]);
    expect(r.chosen).toBe(0);
    expect(r.agreement).toBeGreaterThanOrEqual(0);
    expect(r.agreement).toBeLessThan(0.1);
  });

  it('one candidate is chosen as it is; none is refused', () => {
    expect(selectConsensus([[3, 4]])).toEqual({ chosen: 0, agreement: 1, by: 'consensus' });
    expect(() => selectConsensus([])).toThrow(/no candidates/);
  });

  it('an empty candidate scores 0 and is not chosen over a non-empty one', () => {
    expect(selectConsensus([[], [1, 2, 3], [1, 2, 3]]).chosen).toBe(1);
  });
});

describe('selectCandidate: the classifiers\' best in a guided run, else the consensus', () => {
  const typical = [5, 6, 7, 8, 9, 10, 11];
  const near = [5, 6, 7, 8, 9, 10, 12];
  const outlier = [20, 21, 22, 23];

  it('with a score for every candidate, the highest score wins even against the consensus', () => {
    const r = selectCandidate([typical, near, outlier], [-3.5, -2.0, -0.4]);
    expect(r.chosen).toBe(2);
    expect(r.by).toBe('classifiers');
    // agreement is the chosen candidate's own, not the consensus winner's
    expect(r.agreement).toBeCloseTo(agreements([typical, near, outlier])[2]!, 12);
    expect(r.agreement).toBeLessThan(selectConsensus([typical, near, outlier]).agreement);
  });

  it('a score from the model\'s own check chooses the same way and says so', () => {
    const r = selectCandidate([typical, near, outlier], [-9, -1.5, -4], 'model');
    expect(r.chosen).toBe(1);
    expect(r.by).toBe('model');
    expect(selectCandidate([typical, near, outlier], [-9, undefined, -4], 'model').by).toBe('consensus');
  });

  it('ties go to the lowest index', () => {
    expect(selectCandidate([outlier, typical, near], [-1, -1, -2]).chosen).toBe(0);
  });

  it('missing, partial or non-finite scores fall back to the consensus', () => {
    for (const scores of [undefined, [-1, undefined, -2], [-1, Number.NaN, -2], [-1, -2]]) {
      const r = selectCandidate([outlier, typical, near], scores);
      expect(r).toEqual(selectConsensus([outlier, typical, near]));
      expect(r.by).toBe('consensus');
    }
  });
});

describe('selectCandidate with a length asked for (lengthOk)', () => {
  const typical = [5, 6, 7, 8, 9, 10, 11];
  const near = [5, 6, 7, 8, 9, 10, 12];
  const outlier = [20, 21, 22, 23];

  it('the one candidate with the length wins over scores and consensus, and says the length chose it', () => {
    expect(selectCandidate([typical, near, outlier], [-0.1, -0.2, -5], 'classifiers', [false, false, true])).toMatchObject({ chosen: 2, by: 'length' });
    expect(selectCandidate([typical, near, outlier], undefined, 'classifiers', [false, false, true])).toMatchObject({ chosen: 2, by: 'length' });
  });

  it('among several with the length, the scores (or the consensus among them) choose', () => {
    expect(selectCandidate([typical, near, outlier], [-3, -2, -0.1], 'classifiers', [true, true, false])).toMatchObject({ chosen: 1, by: 'classifiers' });
    expect(selectCandidate([outlier, typical, near, typical.slice()], undefined, 'classifiers', [true, false, true, true]).chosen).toBe(2);
  });

  it('none with the length, or all: as without the test', () => {
    for (const ok of [[false, false, false], [true, true, true]]) {
      expect(selectCandidate([typical, near, outlier], [-3, -2, -0.1], 'classifiers', ok)).toEqual(selectCandidate([typical, near, outlier], [-3, -2, -0.1]));
      expect(selectCandidate([outlier, typical, near], undefined, 'classifiers', ok)).toEqual(selectConsensus([outlier, typical, near]));
    }
  });

  it('a single candidate drawn: the length chose it unless the classifiers accepted it too', () => {
    expect(selectCandidate([typical], [-0.01], 'model', [true]).by).toBe('length');
    expect(selectCandidate([typical], undefined, 'classifiers', [true]).by).toBe('length');
    expect(selectCandidate([typical], [-0.01], 'classifiers', [true]).by).toBe('classifiers');
  });
});
