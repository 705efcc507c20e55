import { describe, expect, it } from 'vitest';
import type { EvalResults } from '../../../src-main/eval/run';
import { renderSeedsMarkdown, summarizeSeeds } from '../../../src-main/eval/seeds';

/** A results file with what the summary reads. */
function run(spans: number, sentiment: number | null, bleu: number | null): EvalResults {
  const side = (success: number, ppl: number) => ({ samples: 160, success, meanScore: success, fluencyMean: ppl, fluencyMedian: ppl, secondsPerSample: 0.1 });
  return {
    model: { id: 'm', version: '1', hash: 'h', path: '/m', controls: [], hasScorer: true },
    controls: [
      { control: 'spans', targets: 40, guided: side(spans, 8), unguided: side(0.05, 3), published: null, warnings: [] },
      ...(sentiment === null ? [] : [{ control: 'sentiment', targets: 40, guided: side(sentiment, 4), unguided: side(0.3, 3), published: null, warnings: [] }]),
    ],
    dataToText: bleu === null ? null : { bleu },
    textToRecord: null,
    unconditional: null,
  } as unknown as EvalResults;
}

describe('eval over several seeds (summarizeSeeds)', () => {
  it('per control: each seed, the mean and the range; a control one run lacks is averaged over the others', () => {
    const s = summarizeSeeds([0, 1, 2], [run(0.862, 0.894, 63), run(0.825, 0.944, 61), run(0.794, null, 65)], ['a.json', 'b.json', 'c.json']);
    const spans = s.controls.find((c) => c.control === 'spans')!;
    expect(spans.guidedSuccess.values).toEqual([0.862, 0.825, 0.794]);
    expect(spans.guidedSuccess.mean).toBeCloseTo((0.862 + 0.825 + 0.794) / 3, 10);
    expect([spans.guidedSuccess.min, spans.guidedSuccess.max]).toEqual([0.794, 0.862]);
    const sentiment = s.controls.find((c) => c.control === 'sentiment')!;
    expect(sentiment.guidedSuccess.values).toEqual([0.894, 0.944, null]);
    expect(sentiment.guidedSuccess.mean).toBeCloseTo(0.919, 10);
    expect(s.dataToTextBleu?.mean).toBe(63);
    expect(s.textToRecordFields).toBeNull();
    const md = renderSeedsMarkdown(s);
    expect(md).toContain('| spans | 86.2 | 82.5 | 79.4 | **82.7** | 79.4-86.2 |');
    expect(md).toContain('| sentiment | 89.4 | 94.4 | - | **91.9** | 89.4-94.4 |');
    expect(md).toContain('| data-to-text BLEU | 63.00 | 61.00 | 65.00 | **63.00** | 61.00-65.00 |');
  });

  it('refuses runs that do not match the seeds', () => {
    expect(() => summarizeSeeds([0, 1], [run(0.8, 0.9, null)], ['a.json'])).toThrow(/1 runs for 2 seeds/);
  });
});
