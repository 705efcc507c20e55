import { describe, expect, it } from 'vitest';
import type { ClassifierEntry } from '../../../src-main/engine/bundle';
import { buildTargets, DEFAULT_LAMBDA } from '../../../src-main/engine/guidance';

const entry = (control: ClassifierEntry['control'], labels: string[], extra: Partial<ClassifierEntry> = {}): ClassifierEntry =>
  ({ control, files: { '1': 'c.onnx' }, batch_sizes: [1], segment: 'text', labels, ...extra }) as ClassifierEntry;

describe('guidance targets (docs/ARCHITECTURE.md tensor layouts)', () => {
  it('pos: one-hot per text position, "*" unmasked, PAD after the template', () => {
    const labels = ['DET', 'NOUN', 'PUNCT', 'SPACE', 'PAD'];
    const t = buildTargets(entry('pos', labels), { kind: 'pos', tags: ['DET', null, 'NOUN'] }, 5);
    expect(t.targetShape).toEqual([5, 5]);
    const row = (i: number) => Array.from(t.target.subarray(i * 5, i * 5 + 5));
    expect(row(0)).toEqual([1, 0, 0, 0, 0]);
    expect(row(1)).toEqual([0, 0, 0, 0, 0]);
    expect(row(2)).toEqual([0, 1, 0, 0, 0]);
    expect(row(3)).toEqual([0, 0, 0, 0, 1]);
    expect(Array.from(t.mask!)).toEqual([1, 0, 1, 1, 1]);
    expect(() => buildTargets(entry('pos', labels), { kind: 'pos', tags: ['VERB'] }, 5)).toThrow(/no label "VERB"/);
  });

  it('spans: B- at the start, I- inside, O elsewhere; mask on the span', () => {
    const labels = ['O', 'B-NP', 'I-NP', 'B-VP', 'I-VP', 'B-PP', 'I-PP'];
    const t = buildTargets(entry('spans', labels), { kind: 'spans', spans: [[1, 3, 'NP']] }, 5);
    const arg = (i: number) => Array.from(t.target.subarray(i * 7, i * 7 + 7)).indexOf(1);
    expect([0, 1, 2, 3, 4].map(arg)).toEqual([0, 1, 2, 2, 0]);
    expect(Array.from(t.mask!)).toEqual([0, 1, 1, 1, 0]);
  });

  it('closed spans: the position after each span is a target too, outside any chunk, unless another span or the end takes it', () => {
    const labels = ['O', 'B-NP', 'I-NP', 'B-VP', 'I-VP', 'B-PP', 'I-PP'];
    const t = buildTargets(entry('spans', labels), { kind: 'spans', spans: [[0, 1, 'PP'], [2, 2, 'NP'], [4, 5, 'VP']], closed: true }, 8);
    const arg = (i: number) => Array.from(t.target.subarray(i * 7, i * 7 + 7)).indexOf(1);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(arg)).toEqual([5, 6, 1, 0, 3, 4, 0, 0]);
    expect(Array.from(t.mask!)).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
    const atEnd = buildTargets(entry('spans', labels), { kind: 'spans', spans: [[3, 4, 'NP']], closed: true }, 5);
    expect(Array.from(atEnd.mask!)).toEqual([0, 0, 0, 1, 1]);
  });

  it('attribute: class 0 is "not mentioned", values from value_labels; mask the field', () => {
    const e = entry('attribute', ['not mentioned'], { fields: ['name', 'food'], value_labels: { name: ['A', 'B', 'C'], food: ['French', 'Italian'] } });
    const t = buildTargets(e, { kind: 'attribute', field: 'food', value: 'Italian' }, 5);
    expect(t.targetShape).toEqual([2, 4]);
    expect(Array.from(t.target)).toEqual([0, 0, 0, 0, 0, 0, 1, 0]);
    expect(Array.from(t.mask!)).toEqual([0, 1]);
    expect(() => buildTargets(e, { kind: 'attribute', field: 'area', value: 'x' }, 5)).toThrow(/no field "area"/);
    expect(() => buildTargets(e, { kind: 'attribute', field: 'food', value: 'Thai' }, 5)).toThrow(/no value "Thai"/);
  });

  it('length and sentiment: one-hot over classes', () => {
    const l = buildTargets(entry('length', []), { kind: 'length', tokens: 3 }, 6);
    expect(Array.from(l.target)).toEqual([0, 0, 0, 1, 0, 0]);
    expect(l.mask).toBeNull();
    expect(() => buildTargets(entry('length', []), { kind: 'length', tokens: 6 }, 6)).toThrow(/exceed/);
    const s = buildTargets(entry('sentiment', ['negative', 'neutral', 'positive']), { kind: 'sentiment', label: 'negative' }, 6);
    expect(Array.from(s.target)).toEqual([1, 0, 0]);
  });

  it('fluency-anchor defaults follow Diffusion-LM', () => {
    expect(DEFAULT_LAMBDA).toMatchObject({ attribute: 0.01, pos: 0.0001, spans: 0.1, length: 0.01 });
  });
});
