import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tokenizer, pretokenize } from '../../../src-main/engine/tokenizer';

const FIX = join(__dirname, '../../fixtures/tokenizer');

describe('pretokenize', () => {
  it('follows the documented examples', () => {
    expect(pretokenize('{"name":"The Vaults"}')).toEqual(['{"', 'name', '":"', 'The', ' Vaults', '"}']);
    expect(pretokenize('£20-25')).toEqual(['£', '20', '-', '25']);
  });
  it('handles lone spaces, other whitespace and astral characters', () => {
    expect(pretokenize('a  b\tc \n')).toEqual(['a', ' ', ' b', '\t', 'c', ' ', '\n']);
    expect(pretokenize('x 😀😀 é9')).toEqual(['x', ' 😀😀', ' é', '9']);
  });
});

describe('Tokenizer golden (Python fixture over the whole dev set)', () => {
  const tok = Tokenizer.fromJSON(JSON.parse(readFileSync(join(FIX, 'vocab.json'), 'utf8')));
  const rows = readFileSync(join(FIX, 'dev-golden.jsonl'), 'utf8').split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { row: number; record: string; record_pieces: string[]; record_ids: number[]; text: string; text_pieces: string[]; text_ids: number[] });

  it('covers the dev set', () => {
    expect(rows.length).toBeGreaterThan(4000);
  });

  it('matches pieces and ids for every record and text, and round-trips', () => {
    let mismatches = 0;
    const first: string[] = [];
    for (const r of rows) {
      for (const [s, pieces, ids] of [[r.record, r.record_pieces, r.record_ids], [r.text, r.text_pieces, r.text_ids]] as const) {
        const p = pretokenize(s);
        const e = tok.encode(s);
        if (JSON.stringify(p) !== JSON.stringify(pieces) || JSON.stringify(e) !== JSON.stringify(ids)) {
          mismatches++;
          if (first.length < 3) first.push(`row ${r.row}: ${JSON.stringify(s)}`);
        }
        if (!e.includes(3) && tok.decode(e) !== s) {
          mismatches++;
          if (first.length < 3) first.push(`row ${r.row} round trip: ${JSON.stringify(s)}`);
        }
      }
    }
    expect(first).toEqual([]);
    expect(mismatches).toBe(0);
  });

  it('refuses a vocabulary with wrong specials, naming the field', () => {
    expect(() => Tokenizer.fromJSON({ tokens: ['<pad>', '<sep>', '<end>', '<unk>'], specials: { pad: 1 } })).toThrow(/specials/);
    expect(() => Tokenizer.fromJSON({ tokens: ['a'], specials: { pad: 0, sep: 1, end: 2, unk: 3 } })).toThrow(/tokens\[0\]/);
  });
});
