/** The Node labeller behind training/labels/*.jsonl.gz (wink-nlp UPOS, compromise chunks, VADER sentiment). */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script without type declarations
import { chunkSpans, labelText, parseCsv, posCodes, sentiment } from '../../../training/labels/make_labels.mjs';

const ROOT = resolve(__dirname, '../../..');

describe('guidance labeller', () => {
  it('parses RFC 4180 CSV with quotes, commas and newlines', () => {
    const rows = parseCsv('mr,ref\r\n"a[b], c[d]","He said ""hi"",\nthen left"\nx,y', 'test.csv');
    expect(rows).toEqual([['mr', 'ref'], ['a[b], c[d]', 'He said "hi",\nthen left'], ['x', 'y']]);
    expect(() => parseCsv('a,"b', 'bad.csv')).toThrow(/bad\.csv: unterminated/);
  });

  it('gives one UPOS code per character, spaces unlabelled', () => {
    const text = 'The pub is  cheap.';
    const codes: string = posCodes(text);
    expect(codes.length).toBe(text.length);
    // ADJ=A ... DET=F NOUN=H AUX=D PUNCT=M
    expect(codes.slice(0, 3)).toBe('FFF');
    expect(codes[3]).toBe('_');
    expect(codes.slice(4, 7)).toBe('HHH');
    expect(codes.slice(8, 10)).toBe('DD');
    expect(codes.slice(10, 12)).toBe('__');
    expect(codes.slice(12, 17)).toBe('AAAAA');
    expect(codes[17]).toBe('M');
  });

  it('chunks NP / VP / PP, ending a chunk at punctuation', () => {
    const text = 'There is a place in the city centre, Alimentum, that is not family-friendly.';
    const got = chunkSpans(text).map(([a, b, l]: [number, number, string]) => `${l}:${text.slice(a, b)}`);
    expect(got).toEqual(['NP:There', 'VP:is', 'NP:a place', 'PP:in the city centre', 'NP:Alimentum', 'NP:that',
      'VP:is not', 'NP:family-friendly']);
  });

  it('maps VADER compound to three classes at +-0.05', () => {
    expect(sentiment('The food is great and the staff are lovely.').sentiment).toBe('positive');
    expect(sentiment('The food is terrible and the staff are rude.').sentiment).toBe('negative');
    expect(sentiment('The Vaults is a pub near Café Adriatic.').sentiment).toBe('neutral');
  });

  it('reproduces the committed dev labels', () => {
    const lines = gunzipSync(readFileSync(resolve(ROOT, 'training/labels/e2e-dev.jsonl.gz'))).toString('utf8').trim().split('\n');
    const meta = JSON.parse(lines[0]!);
    expect(meta.meta).toBe(true);
    expect(meta.split).toBe('dev');
    const csv = parseCsv(readFileSync(resolve(ROOT, 'training/fixtures/e2e-dev-slice.csv'), 'utf8'), 'dev slice');
    const col = csv[0]!.indexOf('ref');
    for (const i of [0, 1, 57, 199]) {
      expect(labelText(csv[i + 1]![col], i)).toEqual(JSON.parse(lines[i + 1]!));
    }
  });
});
