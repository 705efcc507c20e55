/**
 * Data-to-text's text length from the record (extent.ts recordTextLength / runExtent with a bundle's text_length
 * rule): the rule's arithmetic, when it applies (the record held, the text free), and that a guided length, POS
 * template or span target decides instead.
 */
import { describe, expect, it } from 'vitest';
import { recordTextLength, runExtent } from '../../../src-main/engine/extent';
import { END, PAD } from '../../../src-main/engine/tokenizer';

// record positions 0..3, text positions 4..11
const m = { canvas: { segments: [{ name: 'record', start: 0, length: 4 }, { name: 'text', start: 4, length: 8 }] } };
const rule = { intercept: 0.6, per_record_token: 1.5 };
/** A canvas with a record of `n` tokens (padded) held and the text free. */
const recordOf = (n: number) => Int32Array.from({ length: 12 }, (_, i) => (i < 4 ? (i < n ? 20 + i : PAD) : -1));
const on = { enabled: true, strength: 1 };
const off = { enabled: false, strength: 1 };

describe('the text length a record asks for', () => {
  it('round(intercept + per_record_token x record tokens), the padding not counted, within the text segment', () => {
    expect(recordTextLength(rule, m, recordOf(2))).toEqual({ tokens: 4, recordTokens: 2 }); // 3.6
    expect(recordTextLength(rule, m, recordOf(3))).toEqual({ tokens: 5, recordTokens: 3 }); // 5.1
    expect(recordTextLength({ intercept: 0.5, per_record_token: 1 }, m, recordOf(3))!.tokens).toBe(4); // 3.5 rounds up
    expect(recordTextLength({ intercept: 40, per_record_token: 1 }, m, recordOf(1))!.tokens).toBe(7); // <end> needs a place
    expect(recordTextLength({ intercept: -9, per_record_token: 1 }, m, recordOf(1))!.tokens).toBe(1);
  });

  it('applies only to data-to-text: the whole record held and no text position held', () => {
    const partial = recordOf(4);
    partial[3] = -1;
    expect(recordTextLength(rule, m, partial)).toBeNull();
    const textToo = recordOf(2);
    textToo[6] = 30;
    expect(recordTextLength(rule, m, textToo)).toBeNull();
    expect(recordTextLength(rule, m, new Int32Array(12).fill(-1))).toBeNull();
    expect(recordTextLength(rule, { canvas: { segments: [{ name: 'text', start: 0, length: 12 }] } }, new Int32Array(12).fill(-1))).toBeNull();
  });

  it('a run holds <end> there, guided or not, bars <end>, <pad> and the given tokens before it, and says so in a note', () => {
    for (const g of [on, off]) {
      const notes: string[] = [];
      const sentiment = { kind: 'sentiment' as const, label: 'positive', index: 1 };
      const r = runExtent(g, m, [sentiment], recordOf(2), [], [9], rule, notes);
      expect([...r.held].slice(4)).toEqual([-1, -1, -1, -1, END, PAD, PAD, PAD]);
      expect(r.exclude!.get(4)).toEqual([END, PAD, 9]);
      expect(r.exclude!.has(8)).toBe(false);
      expect(r.rest).toEqual([sentiment]); // other targets are still guided
      expect(notes).toEqual(['the text\'s length is held at 4 tokens, the bundle\'s text_length for a record of 2 tokens (a length constraint asks for another)']);
    }
  });

  it('a guided length, POS template or spans decide instead; unguided, the rule stands; no rule, nothing held', () => {
    const length = { kind: 'length' as const, tokens: 6, index: 0 };
    expect([...runExtent(on, m, [length], recordOf(2), [], [], rule).held].slice(4)).toEqual([-1, -1, -1, -1, -1, -1, END, PAD]);
    expect([...runExtent(on, m, [{ kind: 'pos', tags: ['PROPN', 'VERB'] }], recordOf(2), [], [], rule).held].slice(4, 7)).toEqual([-1, -1, END]);
    const spans = runExtent(on, m, [{ kind: 'spans', spans: [[0, 1, 'NP']] }], recordOf(2), [], [], rule);
    expect([...spans.held].slice(4).every((t) => t === -1)).toBe(true);
    // guidance off: the targets are not steered, so the rule holds its own length
    expect([...runExtent(off, m, [length], recordOf(2), [], [], rule).held].slice(4)).toEqual([-1, -1, -1, -1, END, PAD, PAD, PAD]);
    expect([...runExtent(off, m, [], recordOf(2), [], [], null).held].slice(4).every((t) => t === -1)).toBe(true);
    // a disabled (weight 0) length says nothing
    expect([...runExtent(on, m, [{ ...length, weight: 0 }], recordOf(2), [], [], rule).held].slice(8)).toEqual([END, PAD, PAD, PAD]);
  });

  it('a sentiment-, attribute- or spans-guided run that says nothing of the length holds the rule\'s typical_tokens; others stay free', () => {
    const free = () => new Int32Array(12).fill(-1);
    const neutral = { kind: 'sentiment' as const, label: 'neutral', index: 0 };
    const typical = { ...rule, typical_tokens: 3 };
    const notes: string[] = [];
    const r = runExtent(on, m, [neutral], free(), [], [9], typical, notes);
    expect([...r.held].slice(4)).toEqual([-1, -1, -1, END, PAD, PAD, PAD, PAD]);
    expect(notes).toEqual(['the text\'s length is held at 3 tokens, the bundle\'s typical text length (or 3 past the last phrase span), as nothing in the run says the length (a length constraint asks for another)']);
    expect([...r.exclude!.entries()]).toEqual([[4, [END, PAD, 9]], [5, [END, PAD, 9]], [6, [END, PAD, 9]]]);
    expect(r.rest).toEqual([neutral]);
    expect([...runExtent(on, m, [neutral], free(), [], [], { ...rule, typical_tokens: 40 }).held].slice(4)).toEqual([-1, -1, -1, -1, -1, -1, -1, END]);
    // spans: the typical length or 3 past the last span's token, whichever is further, within the segment
    expect([...runExtent(on, m, [{ kind: 'spans', spans: [[0, 1, 'NP']] }], free(), [], [], typical).held].slice(4)).toEqual([-1, -1, -1, -1, END, PAD, PAD, PAD]);
    expect([...runExtent(on, m, [neutral, { kind: 'spans', spans: [[0, 4, 'NP']] }], free(), [], [], typical).held].slice(4)).toEqual([-1, -1, -1, -1, -1, -1, -1, END]);
    expect(runExtent(on, m, [{ kind: 'spans', spans: [[0, 7, 'NP']] }], free(), [], [], typical).held).toEqual(free());
    // an attribute too (with its record held, one text in 64 stopped after six words)
    const thai = { kind: 'attribute' as const, field: 'food', value: 'Thai' };
    expect([...runExtent(on, m, [thai], free(), [], [], typical).held].slice(4)).toEqual([-1, -1, -1, END, PAD, PAD, PAD, PAD]);
    expect(runExtent(on, m, [{ ...thai, weight: 0 }], free(), [], [], typical).exclude).toBeNull();
    // a length says it itself; no rule, unguided or a held text: free
    expect([...runExtent(on, m, [neutral, { kind: 'length', tokens: 5 }], free(), [], [], typical).held].slice(4, 10)).toEqual([-1, -1, -1, -1, -1, END]);
    expect([...runExtent(on, m, [thai, { kind: 'length', tokens: 5 }], free(), [], [], typical).held].slice(4, 10)).toEqual([-1, -1, -1, -1, -1, END]);
    expect(runExtent(on, m, [neutral], free(), [], [], rule).exclude).toBeNull();
    expect(runExtent(off, m, [neutral], free(), [], [], typical).exclude).toBeNull();
    const held = free();
    held[5] = 30;
    expect(runExtent(on, m, [neutral], held, [], [], typical).held).toEqual(held);
  });
});
