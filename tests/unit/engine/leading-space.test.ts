/**
 * A guided text does not begin with a space (extent.ts barLeadingSpace): the tokens that begin with whitespace are
 * barred at the first text position, added to what a held length already bars there, unless that position is held.
 */
import { describe, expect, it } from 'vitest';
import { barLeadingSpace, leadingSpaceTokens, runExtent } from '../../../src-main/engine/extent';
import { END, PAD } from '../../../src-main/engine/tokenizer';

// record positions 0..3, text positions 4..11
const m = { canvas: { segments: [{ name: 'record', start: 0, length: 4 }, { name: 'text', start: 4, length: 8 }] } };
const free = () => new Int32Array(12).fill(-1);
const on = { enabled: true, strength: 1 };

describe('no space before a guided text', () => {
  it('leadingSpaceTokens: pieces that begin with a space, tab or newline, whitespace-only ones included', () => {
    expect(leadingSpaceTokens(['<pad>', 'The', ' Less', ' ', 'is', '\n', '\tx', 'a '])).toEqual([2, 3, 5, 6]);
  });

  it('bars them at the first text position only, beside what a held length bars there', () => {
    const ext = runExtent(on, m, [{ kind: 'length', tokens: 3 }], free(), [], [9]);
    const out = barLeadingSpace(ext, m, [7, 8, 9]);
    expect(out.exclude!.get(4)!.sort((a, b) => a - b)).toEqual([END, PAD, 7, 8, 9].sort((a, b) => a - b));
    expect(out.exclude!.get(5)).toEqual(ext.exclude!.get(5));
    expect(out.exclude!.has(3)).toBe(false);
    expect(out.held).toBe(ext.held);
    // the extent it came from is left as it was
    expect(ext.exclude!.get(4)).toEqual([END, PAD, 9]);
  });

  it('an extent without exclusions gets one; a held first text position is left alone', () => {
    const ext = runExtent(on, m, [{ kind: 'attribute', field: 'food', value: 'Thai' }], free(), []);
    expect(ext.exclude).toBeNull();
    expect([...barLeadingSpace(ext, m, [7]).exclude!.entries()]).toEqual([[4, [7]]]);
    const held = free();
    held[4] = 30;
    const pinned = { held, exclude: null, rest: [] };
    expect(barLeadingSpace(pinned, m, [7])).toBe(pinned);
  });
});
