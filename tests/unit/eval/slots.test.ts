/**
 * Slot errors of data-to-text outputs (src-main/eval/slots.ts): missing, wrong and added fields, on texts the masked
 * bundle wrote for dev records (docs/evaluation/2026-12-06-e2e-masked-1.0.2-dev-intel.json) and their fixes.
 */
import { describe, expect, it } from 'vitest';
import { slotCounts, slotErrorRate, slotErrors } from '../../../src-main/eval/slots';

const values: Record<string, string[]> = {
  name: ['Alimentum', 'The Bakers', 'Browns Cambridge', 'The Rice Boat'],
  eatType: ['coffee shop', 'pub', 'restaurant'],
  food: ['Chinese', 'English', 'Italian'],
  priceRange: ['cheap', 'high', 'less than £20', 'moderate'],
  'customer rating': ['1 out of 5', 'average', 'high'],
  area: ['city centre', 'riverside'],
  familyFriendly: ['no', 'yes'],
  near: ['Burger King', 'Café Rouge', 'The Bakers', 'The Rice Boat'],
};

describe('slot errors', () => {
  it('a text that omits the area and adds a price', () => {
    const rec = { name: 'Alimentum', area: 'city centre', familyFriendly: 'no' };
    expect(slotErrors(rec, 'Alimentum is not family-friendly, but serves cheap food.', values)).toEqual({ fields: 3, missing: 1, wrong: 0, added: 1 });
    expect(slotErrors(rec, 'Alimentum is not family-friendly and is in the city centre.', values)).toEqual({ fields: 3, missing: 0, wrong: 0, added: 0 });
  });

  it('a text that says the opposite of familyFriendly and names the wrong landmark', () => {
    const rec = { name: 'Alimentum', area: 'riverside', familyFriendly: 'no', near: 'Burger King' };
    expect(slotErrors(rec, 'Alimentum is a family-friendly riverside restaurant near The Bakers.', values)).toEqual({ fields: 4, missing: 0, wrong: 2, added: 0 });
    // a price and a rating written as their partner values are the record's
    const priced = { name: 'The Rice Boat', priceRange: 'less than £20', 'customer rating': '1 out of 5' };
    expect(slotErrors(priced, 'The Rice Boat is cheap and has a low customer rating.', values)).toEqual({ fields: 3, missing: 0, wrong: 0, added: 0 });
    expect(slotErrors(priced, 'The Rice Boat is expensive and has an average customer rating.', values)).toEqual({ fields: 3, missing: 0, wrong: 2, added: 0 });
  });

  it('eatType is not added by a generic "restaurant"; a name the record has is not another name', () => {
    const rec = { name: 'Browns Cambridge', near: 'The Rice Boat' };
    expect(slotErrors(rec, 'Browns Cambridge is a restaurant near The Rice Boat.', values)).toEqual({ fields: 2, missing: 0, wrong: 0, added: 0 });
    // another name where the record has no near is an added near
    expect(slotErrors({ name: 'Alimentum' }, 'Alimentum is near Café Rouge.', values)).toEqual({ fields: 1, missing: 0, wrong: 0, added: 1 });
  });

  it('sums over texts and gives the rate', () => {
    const c = slotCounts([
      { record: { name: 'Alimentum', area: 'city centre', familyFriendly: 'no' }, text: 'Alimentum is not family-friendly, but serves cheap food.' },
      { record: { name: 'Alimentum', food: 'Italian' }, text: 'Alimentum serves Italian food.' },
    ], values);
    expect(c).toEqual({ fields: 5, missing: 1, wrong: 0, added: 1, exact: 1, texts: 2 });
    expect(slotErrorRate(c)).toBeCloseTo(2 / 5);
  });
});
