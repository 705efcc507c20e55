import { describe, expect, it } from 'vitest';
import { evaluateOutputs, expresses } from '../../../src-main/constraints/evaluators';
import { parseConstraintSet, type ConstraintSetInput } from '../../../src-main/constraints/set';
import { posTagsOf, winkTokenCount, chunksOf, sentimentOf } from '../../../src-main/constraints/nlp';

const evalOne = (constraints: ConstraintSetInput['constraints'], text: string, record: Record<string, unknown> | null = null) =>
  evaluateOutputs(parseConstraintSet({ version: 1, constraints }), [{ text, record }])[0]!;

describe('json-schema (Ajv)', () => {
  const schema = { type: 'object', properties: { name: { type: 'string' }, rating: { type: 'integer', maximum: 5 } }, required: ['name'], additionalProperties: false };
  it('validates the parsed record, Draft 2020-12 and Draft 7', () => {
    expect(evalOne([{ kind: 'json-schema', schema }], '', { name: 'x', rating: 5 })[0]!.satisfied).toBe(true);
    const bad = evalOne([{ kind: 'json-schema', schema }], '', { name: 'x', rating: 6 })[0]!;
    expect(bad.satisfied).toBe(false);
    expect(bad.detail).toContain('/rating');
    const d7 = { $schema: 'http://json-schema.org/draft-07/schema#', items: [{ type: 'integer' }], additionalItems: false };
    expect(evalOne([{ kind: 'json-schema', schema: d7 }], '', [1] as unknown as Record<string, unknown>)[0]!.satisfied).toBe(true);
    expect(evalOne([{ kind: 'json-schema', schema: d7 }], '', [1, 2] as unknown as Record<string, unknown>)[0]!.satisfied).toBe(false);
    expect(evalOne([{ kind: 'json-schema', schema }], '', null)[0]!.detail).toContain('does not parse');
  });
  it('asserts formats', () => {
    const s = { type: 'object', properties: { d: { type: 'string', format: 'date' } } };
    expect(evalOne([{ kind: 'json-schema', schema: s }], '', { d: '2021-02-29' })[0]!.satisfied).toBe(false);
    expect(evalOne([{ kind: 'json-schema', schema: s }], '', { d: '2020-02-29' })[0]!.satisfied).toBe(true);
  });
});

describe('pos (wink-nlp, word level)', () => {
  it('tags an example sentence and scores exact matches, "*" excluded', () => {
    const tags = posTagsOf('The Vaults is a cheap pub.');
    expect(tags).toEqual(['DET', 'PROPN', 'AUX', 'DET', 'ADJ', 'NOUN', 'PUNCT']);
    const r = evalOne([{ kind: 'pos', tags: ['DET', '*', 'AUX', 'DET', 'ADJ', 'NOUN', 'PUNCT'] }], 'The Mill is a cheap pub.')[0]!;
    expect(r.satisfied).toBe(true);
    expect(r.score).toBe(1);
    const partial = evalOne([{ kind: 'pos', tags: ['DET', 'PROPN', 'AUX', 'VERB'] }], 'The Mill is a cheap pub.')[0]!;
    expect(partial.satisfied).toBe(false);
    expect(partial.score).toBeCloseTo(3 / 4);
    // target longer than the text: missing words count as PAD (mismatch)
    expect(evalOne([{ kind: 'pos', tags: ['DET', 'NOUN', 'NOUN'] }], 'The pub')[0]!.score).toBeCloseTo(2 / 3);
  });
});

describe('attribute (E2E normalisation)', () => {
  it.each([
    ['priceRange', '£20-25', 'It has a price range of £20-25.', true],
    ['priceRange', '£20-25', 'Prices are £20 to £25.', true],
    ['priceRange', 'less than £20', 'Meals cost less than £20.', true],
    ['priceRange', 'more than £30', 'Meals cost less than £20.', false],
    ['customer rating', '5 out of 5', 'It is rated 5 out of 5 by customers.', true],
    ['customer rating', '5 out of 5', 'It has a five star rating.', true],
    ['customer rating', '3 out of 5', 'It is rated 5 out of 5.', false],
    ['customer rating', 'low', 'It has a low customer rating.', true],
    ['customer rating', 'high', 'It has a low customer rating.', false],
    ['familyFriendly', 'yes', 'The Mill is a family friendly pub.', true],
    ['familyFriendly', 'yes', 'The Mill is not family-friendly.', false],
    ['familyFriendly', 'no', 'The Mill is not family-friendly.', true],
    ['familyFriendly', 'no', 'It is kid friendly.', false],
    ['area', 'city centre', 'It is in the centre of the city.', true],
    ['area', 'riverside', 'It is by the river.', true],
    ['area', 'riverside', 'It is in the city centre.', false],
    ['food', 'Fast food', 'They serve fast food.', true],
    ['eatType', 'coffee shop', 'A coffee shop near Café Rouge.', true],
    ['name', 'The Vaults', 'the vaults is a pub', true],
    ['near', 'Café Rouge', 'It is near Cafe Rouge.', false],
  ])('%s = %s in %j -> %s', (field, value, text, ok) => {
    expect(expresses(field, value, text)).toBe(ok);
  });
});

describe('length, sentiment, spans, record, text, regex, infill, words', () => {
  it('length counts wink-nlp tokens exactly and reports ±2', () => {
    expect(winkTokenCount('The Mill is a pub.')).toBe(6);
    const r = evalOne([{ kind: 'length', tokens: 6 }, { kind: 'length', tokens: 8 }], 'The Mill is a pub.');
    expect(r[0]!.satisfied).toBe(true);
    expect(r[1]!.satisfied).toBe(false);
    expect(r[1]!.detail).toContain('within ±2');
  });
  it('sentiment uses the VADER compound with a 0.05 threshold', () => {
    expect(sentimentOf('The food is great and the staff are lovely.').label).toBe('positive');
    expect(sentimentOf('The food is terrible.').label).toBe('negative');
    expect(sentimentOf('The Mill is a pub.').label).toBe('neutral');
    const r = evalOne([{ kind: 'sentiment', label: 'negative' }], 'The food is terrible.')[0]!;
    expect(r.satisfied).toBe(true);
    expect(r.score).toBeLessThan(-0.05);
  });
  it('spans: the token span must be a compromise chunk of that label', () => {
    const text = 'The Mill is a pub near the river.';
    const chunks = chunksOf(text);
    expect(chunks.some((c) => c.label === 'NP' && text.slice(c.start, c.end) === 'The Mill')).toBe(true);
    // pieces: The| Mill| is| a| pub| near| the| river|.
    const ok = evalOne([{ kind: 'spans', spans: [[0, 1, 'NP']] }], text)[0]!;
    expect(ok.satisfied).toBe(true);
    const bad = evalOne([{ kind: 'spans', spans: [[0, 1, 'VP']] }], text)[0]!;
    expect(bad.satisfied).toBe(false);
    expect(bad.detail).toContain('"The Mill"');
  });
  it('record (data-to-text) and text (text-to-record)', () => {
    const text = 'The Vaults is a cheap pub in the city centre.';
    const rec = { name: 'The Vaults', eatType: 'pub', priceRange: 'cheap', area: 'city centre' };
    expect(evalOne([{ kind: 'record', value: rec }], text)[0]!.satisfied).toBe(true);
    const miss = evalOne([{ kind: 'record', value: { ...rec, food: 'Italian' } }], text)[0]!;
    expect(miss.satisfied).toBe(false);
    expect(miss.score).toBeCloseTo(4 / 5);
    expect(evalOne([{ kind: 'text', value: text }], '', rec)[0]!.satisfied).toBe(true);
    expect(evalOne([{ kind: 'text', value: text }], '', { ...rec, area: 'riverside' })[0]!.satisfied).toBe(false);
  });
  it('regex, infill and words', () => {
    const r = evalOne([
      { kind: 'regex', pattern: '^The .* pub\\.$' },
      { kind: 'infill', template: 'The ___ is a ___.' },
      { kind: 'words', include: ['pub', 'mill'], exclude: ['cheap'] },
      { kind: 'words', include: ['pu'] },
    ], 'The Mill is a family pub.');
    expect(r.map((x) => x.satisfied)).toEqual([true, true, true, false]);
    expect(evalOne([{ kind: 'infill', template: 'The ___ is a ___.' }], 'The Mill is a .')[0]!.satisfied).toBe(false);
    expect(evalOne([{ kind: 'words', exclude: ['cheap'] }], 'A cheap pub.')[0]!.detail).toContain('present: cheap');
  });
  it('disabled constraints are skipped', () => {
    const r = evalOne([{ kind: 'length', tokens: 3, enabled: false }, { kind: 'regex', pattern: 'x' }], 'x');
    expect(r.map((x) => x.index)).toEqual([1]);
  });
});
