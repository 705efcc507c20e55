/**
 * From canvas ids to an output's text (engine/decode.ts): the text stops at <end>, and it does not begin with
 * whitespace (a guided text's first token can be a word's space-prefixed piece); its pieces stay in step with it,
 * so the span evaluator's character offsets still land on the words.
 */
import { describe, expect, it } from 'vitest';
import { decodeCanvas } from '../../../src-main/engine/decode';
import { END, PAD, SPECIAL_NAMES, Tokenizer } from '../../../src-main/engine/tokenizer';
import { evaluateOutputs } from '../../../src-main/constraints/evaluators';

const tokenizer = new Tokenizer([...SPECIAL_NAMES, ' Less', ' than', ' £', '20', '.', ' ', 'Less', '{}']);
const id = (t: string) => tokenizer.tokens.indexOf(t);
// record positions 0..1, text positions 2..9
const bundle = { manifest: { canvas: { length: 10, segments: [{ name: 'record', start: 0, length: 2 }, { name: 'text', start: 2, length: 8 }] } }, tokenizer } as unknown as Parameters<typeof decodeCanvas>[2];
const canvas = (text: string[]) => [id('{}'), PAD, ...text.map(id), END, ...Array(7 - text.length).fill(PAD)];

describe('decodeCanvas', () => {
  it('a text that begins with a space-prefixed piece shows without the space; its pieces join to it', () => {
    const d = decodeCanvas(canvas([' Less', ' than', ' £', '20', '.']), 0, bundle);
    expect(d.text).toBe('Less than £20.');
    expect(d.pieces.join('')).toBe(d.text);
    expect(d.textIds).toEqual([' Less', ' than', ' £', '20', '.'].map(id));
    expect(d.recordText).toBe('{}');
  });

  it('whitespace-only pieces before the first word go too; a text that begins with a word is left as it was', () => {
    const spaced = decodeCanvas(canvas([' ', ' Less', ' than']), 0, bundle);
    expect(spaced.text).toBe('Less than');
    expect(spaced.pieces).toEqual(['', 'Less', ' than']);
    expect(decodeCanvas(canvas(['Less', ' than', ' ']), 0, bundle).text).toBe('Less than ');
  });

  it('phrase spans are read at the same words as in the text the model wrote', () => {
    const d = decodeCanvas(canvas([' Less', ' than', ' £', '20', '.']), 0, bundle);
    const set = { version: 1 as const, constraints: [{ kind: 'spans' as const, spans: [[0, 0, 'NP']] as [number, number, 'NP'][], enabled: true, weight: 1 }], sampler: {} as never };
    const [evaluation] = evaluateOutputs(set, [{ text: d.text, record: null }], { pieces: () => d.pieces })[0]!;
    // a miss quotes the words the span covers: "Less", not a slice shifted by the space that is gone
    expect(evaluation!.satisfied || evaluation!.detail!.includes('= "Less"')).toBe(true);
    const shifted = evaluateOutputs(set, [{ text: d.text, record: null }], { pieces: () => [' Less', ...d.pieces.slice(1)] })[0]![0]!;
    expect(shifted.satisfied || shifted.detail!.includes('= "Less"')).toBe(false);
  });
});
