import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileConstraintSet, canonicalRecord, type CompileModel } from '../../../src-main/constraints/compiler';
import { parseConstraintSet, type ConstraintSetInput } from '../../../src-main/constraints/set';
import { Tokenizer } from '../../../src-main/engine/tokenizer';

const vocabJson = JSON.parse(readFileSync(new URL('../../fixtures/tokenizer/vocab.json', import.meta.url), 'utf8'));
const e2eSchema = JSON.parse(readFileSync(new URL('../../fixtures/constraints/e2e-record.schema.json', import.meta.url), 'utf8'));
const tok = Tokenizer.fromJSON(vocabJson);
const model: CompileModel = {
  vocab: vocabJson.tokens,
  specials: vocabJson.specials,
  canvas: { length: 96, segments: [{ name: 'record', start: 0, length: 44, format: 'json' }, { name: 'sep', start: 44, length: 1 }, { name: 'text', start: 45, length: 51 }] },
};
const V = model.vocab.length;
const set = (constraints: ConstraintSetInput['constraints']) => parseConstraintSet({ version: 1, constraints });

function noisyScores(L: number, target: number[], seed: number): Float32Array {
  let s = seed;
  const r = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const out = new Float32Array(L * V);
  for (let i = 0; i < out.length; i++) out[i] = -6 * r();
  target.forEach((t, i) => { if (i < L) out[i * V + t] += 4; });
  return out;
}

function argmaxAt(s: Float32Array, i: number): number {
  let best = 0;
  for (let v = 1; v < V; v++) if (s[i * V + v]! > s[i * V + best]!) best = v;
  return best;
}

describe('compileConstraintSet', () => {
  it("reports the soft kinds a model's family cannot steer in their verdicts (unserved), not silently dropped", () => {
    const constraints: ConstraintSetInput['constraints'] = [{ kind: 'sentiment', label: 'positive' }, { kind: 'regex', pattern: 'pub' }, { kind: 'pos', tags: ['DET'] }];
    const unservedSoft = { kinds: ['pos', 'spans', 'attribute', 'length', 'sentiment'], detail: 'not served by the masked family yet' };
    const masked = compileConstraintSet(set(constraints), { ...model, unservedSoft });
    expect(masked.verdicts.map((v) => [v.status, v.unserved ?? false, v.detail])).toEqual([
      ['soft', true, 'not served by the masked family yet'], ['hard', false, undefined], ['soft', true, 'not served by the masked family yet'],
    ]);
    expect(masked.soft).toEqual([]);
    const continuous = compileConstraintSet(set(constraints), model);
    expect(continuous.verdicts.map((v) => v.unserved)).toEqual([undefined, undefined, undefined]);
    expect(continuous.soft.map((x) => x.kind)).toEqual(['sentiment', 'pos']);
  });

  it('compiles an E2E record schema into a record projector whose outputs parse and validate', () => {
    const c = compileConstraintSet(set([{ kind: 'json-schema', schema: e2eSchema }]), model);
    expect(c.verdicts[0]!.status).toBe('hard');
    expect(c.hard).toHaveLength(1);
    const p = c.hard[0]!;
    expect([p.segment, p.start, p.length]).toEqual(['record', 0, 44]);
    const want = tok.encode('{"name":"The Vaults","eatType":"pub","food":"Italian","area":"riverside"}');
    for (let seed = 1; seed <= 5; seed++) {
      // a corrupted record: some positions pushed towards wrong tokens
      const scores = noisyScores(44, want.map((t, i) => (i % 5 === 3 ? 4 + ((t * 7) % (V - 4)) : t)), seed);
      const out = p.project(scores);
      expect(out).toHaveLength(44);
      expect(p.accepts(out)).toBe(true);
      const text = tok.decode(out);
      const rec = JSON.parse(text);
      expect(e2eSchema.properties.eatType.enum.includes(rec.eatType ?? 'pub')).toBe(true);
      expect(Object.keys(rec).every((k) => k in e2eSchema.properties)).toBe(true);
      const firstPad = Array.from(out).indexOf(0);
      if (firstPad >= 0) expect(Array.from(out).slice(firstPad).every((t) => t === 0)).toBe(true);
      const sample = p.sample(scores, () => 0.5);
      expect(p.accepts(sample)).toBe(true);
      expect(p.logPartition(scores).logProbValid).toBeLessThan(0);
    }
  });

  it('a settled segment (its best tokens already accepted) projects to them without Viterbi, and to what Viterbi gives', () => {
    const p = compileConstraintSet(set([{ kind: 'json-schema', schema: e2eSchema }]), model).hard[0]!;
    const want = tok.encode('{"name":"The Vaults","eatType":"pub","food":"Italian","area":"riverside"}');
    const padded = [...want, ...Array(44 - want.length).fill(model.specials.pad)];
    for (let seed = 1; seed <= 6; seed++) {
      const settled = noisyScores(44, padded, seed);
      padded.forEach((t, i) => (settled[i * V + t]! += 20)); // the target wins every position: accepted as it is
      expect(Array.from(p.project(settled))).toEqual(padded);
      expect(Array.from(p.project(settled))).toEqual(Array.from(p.projectDetailed(settled)!.tokens));
      // corrupted: the per-position best is not a record, and the projection is Viterbi's
      const bad = noisyScores(44, padded.map((t, i) => (i % 4 === 2 ? 5 + ((t * 11) % (V - 5)) : t)), seed);
      expect(p.accepts(Array.from({ length: 44 }, (_, i) => argmaxAt(bad, i)))).toBe(false);
      expect(Array.from(p.project(bad))).toEqual(Array.from(p.projectDetailed(bad)!.tokens));
      // held tokens are kept either way
      const fixed = new Int32Array(44).fill(-1);
      fixed[0] = padded[0]!;
      expect(Array.from(p.project(settled, fixed))).toEqual(padded);
    }
  });

  it('is cached by set and vocabulary', () => {
    const s = set([{ kind: 'json-schema', schema: e2eSchema }, { kind: 'sentiment', label: 'positive' }]);
    const a = compileConstraintSet(s, model);
    const b = compileConstraintSet(s, model);
    expect(b.cached).toBe(true);
    expect(b.hard[0]!.automaton).toBe(a.hard[0]!.automaton);
  });

  it('reports a bad block in its verdict and compiles the rest', () => {
    const c = compileConstraintSet(set([
      { kind: 'json-schema', schema: { type: 'object', properties: { name: { oneOf: [{ type: 'object' }], unevaluatedProperties: false } } } },
      { kind: 'regex', pattern: '(' },
      { kind: 'words', include: ['pub'], exclude: ['cheap'] },
      { kind: 'pos', tags: ['DET', '*', 'VERB'] },
      { kind: 'length', tokens: 12, enabled: false },
      { kind: 'attribute', field: 'area', value: 'riverside', weight: 2 },
    ]), model);
    const v = c.verdicts;
    expect(v[0]!.status).toBe('error');
    expect(v[0]!.error).toMatchObject({ code: 'UNSUPPORTED_KEYWORD', keyword: 'unevaluatedProperties', pointer: '/properties/name/unevaluatedProperties' });
    expect(v[1]!.status).toBe('error');
    expect(v[1]!.error!.code).toBe('INVALID_PATTERN');
    expect(v[2]!.status).toBe('hard');
    expect(v[3]!.status).toBe('soft');
    expect(v[4]!.status).toBe('disabled');
    expect(c.soft).toEqual([
      { kind: 'pos', index: 3, weight: 1, tags: ['DET', null, 'VERB'] },
      { kind: 'attribute', index: 5, weight: 2, field: 'area', value: 'riverside' },
    ]);
    const text = c.hard.find((h) => h.segment === 'text')!;
    const out = text.project(noisyScores(51, tok.encode('The Mill is a cheap pub.'), 3));
    const s = tok.decode(out);
    expect(/(^|\W)pub(\W|$)/i.test(s)).toBe(true);
    expect(/(^|\W)cheap(\W|$)/i.test(s)).toBe(false);
    expect(Array.from(out)).toContain(2); // <end>
  });

  it('holds the record tokens (data-to-text) and the text tokens (text-to-record)', () => {
    const value = { area: 'riverside', name: 'The Mill', eatType: 'pub' };
    const c = compileConstraintSet(set([{ kind: 'record', value }, { kind: 'text', value: 'The Mill is a pub.' }]), model);
    const rec = c.held.filter((h) => h.position < 44);
    expect(rec).toHaveLength(44);
    const ids = tok.encode(canonicalRecord(value));
    expect(canonicalRecord(value)).toBe('{"name":"The Mill","eatType":"pub","area":"riverside"}');
    expect(rec.slice(0, ids.length).map((h) => h.token)).toEqual(ids);
    expect(rec.slice(ids.length).every((h) => h.token === 0)).toBe(true);
    const txt = c.held.filter((h) => h.position >= 45);
    const tids = tok.encode('The Mill is a pub.');
    expect(txt.map((h) => h.token).slice(0, tids.length + 1)).toEqual([...tids, 2]);
    expect(txt[0]!.position).toBe(45);
  });

  it('refuses a schema whose shortest record does not fit the segment', () => {
    const c = compileConstraintSet(set([{ kind: 'json-schema', schema: { type: 'string', pattern: '^(?:x\\.){40}$' } }]), model);
    expect(c.verdicts[0]!.status).toBe('error');
    expect(c.verdicts[0]!.error!.code).toBe('UNSATISFIABLE');
  });
});

describe('attributes on a joint record + text model (attributeRecord)', () => {
  const fields = { name: ['The Mill', 'Aromi'], eatType: ['pub', 'coffee shop', 'restaurant'], area: ['riverside', 'city centre'] };
  const joint: CompileModel = { ...model, recordFields: fields, attributeRecord: true };
  const coffee = { kind: 'attribute' as const, field: 'eatType', value: 'coffee shop' };

  it('holds the record segment to a valid record with the attributed field at its value, and keeps the guidance', () => {
    const c = compileConstraintSet(set([coffee, { kind: 'sentiment', label: 'positive' }]), joint);
    expect(c.soft.map((t) => t.kind)).toEqual(['attribute', 'sentiment']);
    expect(c.hard).toHaveLength(1);
    const p = c.hard[0]!;
    expect([p.segment, p.start, p.length, p.constraints]).toEqual(['record', 0, 44, [0]]);
    expect(c.verdicts[0]!.status).toBe('soft');
    expect(c.verdicts[0]!.detail).toMatch(/record segment is held to eatType = "coffee shop"/);
    const pad = (ids: number[]) => [...ids, ...Array(44 - ids.length).fill(model.specials.pad)];
    expect(p.accepts(pad(tok.encode('{"name":"Aromi","eatType":"coffee shop","area":"riverside"}')))).toBe(true);
    expect(p.accepts(pad(tok.encode('{"name":"Aromi","eatType":"pub","area":"riverside"}')))).toBe(false);
    expect(p.accepts(pad(tok.encode('{"name":"Aromi","area":"riverside"}')))).toBe(false);
    expect(p.accepts(pad(tok.encode('{"eatType":"coffee shop","food":"Italian"}')))).toBe(false); // not a field of this schema
    // a record pushed toward another value comes out with the attributed one
    const other = pad(tok.encode('{"name":"The Mill","eatType":"pub","area":"city centre"}'));
    const rec = JSON.parse(tok.decode(p.project(noisyScores(44, other, 3))));
    expect(rec.eatType).toBe('coffee shop');
  });

  it('two attributes make one projector; the record is left alone when something else decides it or the value is unknown', () => {
    const two = compileConstraintSet(set([coffee, { kind: 'attribute', field: 'area', value: 'riverside' }]), joint);
    expect(two.hard.map((p) => p.constraints)).toEqual([[0, 1]]);
    const none = (constraints: ConstraintSetInput['constraints']) => compileConstraintSet(set(constraints), joint);
    expect(none([coffee, { kind: 'json-schema', schema: { type: 'object' } }]).hard.map((p) => p.constraints)).toEqual([[1]]);
    expect(none([coffee, { kind: 'record', value: { name: 'Aromi', eatType: 'pub' } }]).hard).toEqual([]);
    expect(none([{ kind: 'attribute', field: 'eatType', value: 'food truck' }]).hard).toEqual([]);
    expect(none([coffee, { kind: 'attribute', field: 'eatType', value: 'pub' }]).hard).toEqual([]);
    expect(none([{ ...coffee, weight: 0 }]).hard).toEqual([]);
    // a family that does not write its text from the record: guidance alone
    expect(compileConstraintSet(set([coffee]), { ...joint, attributeRecord: false }).hard).toEqual([]);
    // guidance off (or at strength 0): the attribute is only scored, the record not held (and not cached as held)
    const unsteered = (guidance: { enabled?: boolean; strength?: number }) => compileConstraintSet(parseConstraintSet({ version: 1, constraints: [coffee], sampler: { guidance } }), joint);
    expect(unsteered({ enabled: false }).hard).toEqual([]);
    expect(unsteered({ strength: 0 }).hard).toEqual([]);
    expect(unsteered({ enabled: true }).hard).toHaveLength(1);
    // a record segment too short for any record: guidance alone, and the verdict says why
    const short = { ...joint, canvas: { length: 56, segments: [{ name: 'record', start: 0, length: 4 }, { name: 'sep', start: 4, length: 1 }, { name: 'text', start: 5, length: 51 }] } };
    const c = compileConstraintSet(set([coffee]), short);
    expect(c.hard).toEqual([]);
    expect(c.verdicts[0]!.status).toBe('soft');
    expect(c.verdicts[0]!.detail).toMatch(/record segment is not held \(the shortest record .* needs more than the segment's 4 tokens\)/);
  });
});

describe('recordSchemaOf', () => {
  it('builds the record schema from a bundle field list, in the E2E field order', async () => {
    const { recordSchemaOf, compileJsonSchema } = await import('../../../src-main/constraints/compiler');
    const s = recordSchemaOf({ area: ['riverside', 'city centre'], name: ['The Mill', 'Aromi'] }, ['name']);
    expect(Object.keys(s.properties as object)).toEqual(['name', 'area']);
    const c = compileJsonSchema(s);
    expect(c.accepts({ area: 'riverside', name: 'Aromi' })).toBe(true);
    expect(c.canonicalize({ area: 'riverside', name: 'Aromi' })).toBe('{"name":"Aromi","area":"riverside"}');
    expect(c.accepts({ name: 'Aromi', area: 'downtown' })).toBe(false);
    expect(c.accepts({ area: 'riverside' })).toBe(false);
  });
});

describe('text-segment projection (dense automata, top-k with fallback)', () => {
  it('infill and regex constraints: the projection fills the template exactly', () => {
    const c = compileConstraintSet(set([{ kind: 'infill', template: 'The ___ is a pub.' }, { kind: 'regex', pattern: 'Mill|Vaults' }]), model);
    expect(c.verdicts.map((v) => v.status)).toEqual(['hard', 'hard']);
    const p = c.hard[0]!;
    expect(p.constraints).toEqual([0, 1]);
    for (let seed = 1; seed <= 3; seed++) {
      const scores = noisyScores(51, tok.encode('The Golden Palace is a restaurant in the city.'), seed);
      const r = p.projectDetailed(scores)!;
      const ids = Array.from(r.tokens);
      const end = ids.indexOf(2);
      expect(end).toBeGreaterThan(0);
      const text = tok.decode(ids.slice(0, end));
      expect(text).toMatch(/^The \S+(?: \S+)* is a pub\.$/u);
      expect(text).toMatch(/Mill|Vaults/);
      expect(ids.slice(end + 1).every((t) => t === 0)).toBe(true);
      // the scores favour other words: top-32 alone cannot spell the template, so the exact fallback ran
      expect(r.fellBack).toBe(true);
    }
  });

  it('fixed tokens are kept when they fit', () => {
    const c = compileConstraintSet(set([{ kind: 'words', include: ['pub'] }]), model);
    const p = c.hard[0]!;
    const fixed = new Int32Array(51).fill(-1);
    const the = tok.encode('The')[0]!;
    fixed[0] = the;
    const out = p.project(noisyScores(51, tok.encode('A nice pub by the river.'), 4), fixed);
    expect(out[0]).toBe(the);
    expect(tok.decode(Array.from(out))).toMatch(/\bpub\b/i);
  });
});
