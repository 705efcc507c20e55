import { describe, expect, it } from 'vitest';
import { compileJsonSchema, canonicalJson, ConstraintCompileError, UnsupportedKeywordError } from '../../../src-main/constraints/compiler';
import { cp } from '../../../src-main/constraints/compiler/lang';
import { intRange } from '../../../src-main/constraints/compiler/numbers';
import { toDfa } from '../../../src-main/constraints/compiler/lang';

const acceptsText = (c: ReturnType<typeof compileJsonSchema>, s: string) => c.dfa.test(cp(s));

describe('integer ranges (exact digit-range automata)', () => {
  it('maximum 120 accepts 0..120 and rejects 121..129 and 1200', () => {
    const c = compileJsonSchema({ type: 'integer', minimum: 0, maximum: 120 });
    for (let n = 0; n <= 120; n++) expect(c.accepts(n)).toBe(true);
    for (let n = 121; n <= 129; n++) expect(c.accepts(n)).toBe(false);
    for (const n of [-1, 130, 199, 1200, 1000]) expect(c.accepts(n)).toBe(false);
  });

  it('matches brute force on random ranges, including negatives and exclusive bounds', () => {
    let seed = 7;
    const rnd = (k: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % k;
    };
    for (let trial = 0; trial < 12; trial++) {
      const a = rnd(2000) - 1000;
      const b = a + rnd(1500);
      const l = toDfa(intRange(BigInt(a), BigInt(b)));
      for (let n = a - 40; n <= b + 40; n += 1 + rnd(3)) {
        expect(l.test(cp(String(n))), `${n} in [${a}, ${b}]`).toBe(n >= a && n <= b);
      }
    }
    const ex = compileJsonSchema({ type: 'integer', exclusiveMinimum: -3.5, exclusiveMaximum: 10 });
    expect([-4, -3, 9, 10].map((n) => ex.accepts(n))).toEqual([false, true, true, false]);
  });

  it('never accepts non-canonical integers', () => {
    const c = compileJsonSchema({ type: 'integer', minimum: -50, maximum: 50 });
    for (const s of ['-0', '007', '+5', '5.0', '1e1', ' 5']) expect(acceptsText(c, s), s).toBe(false);
  });

  it('multipleOf on integers and decimals', () => {
    const c = compileJsonSchema({ type: 'integer', multipleOf: 7, maximum: 100, minimum: -100 });
    for (let n = -100; n <= 100; n++) expect(c.accepts(n)).toBe(n % 7 === 0);
    const d = compileJsonSchema({ type: 'number', multipleOf: 0.25, minimum: 0, maximum: 2 });
    for (let k = 0; k <= 200; k++) {
      const x = k / 100;
      expect(d.accepts(x), String(x)).toBe(k % 25 === 0);
    }
  });
});

describe('number bounds on non-integers', () => {
  it('minimum / exclusiveMaximum with decimals', () => {
    const c = compileJsonSchema({ type: 'number', minimum: 1.1, exclusiveMaximum: 3 });
    const cases: [number, boolean][] = [[1.1, true], [1.09, false], [1.11, true], [1, false], [2.999, true], [3, false], [3.0001, false], [-2, false], [1e-8, false]];
    for (const [x, ok] of cases) expect(c.accepts(x), String(x)).toBe(ok);
    const neg = compileJsonSchema({ type: 'number', maximum: -0.5 });
    for (const [x, ok] of [[-0.5, true], [-0.49, false], [-0.51, true], [-1e-8, false], [-1e30, true], [0, false]] as [number, boolean][]) {
      expect(neg.accepts(x), String(x)).toBe(ok);
    }
  });
});

describe('strings', () => {
  it('encodes escapes exactly as JSON.stringify', () => {
    const c = compileJsonSchema({ type: 'string', maxLength: 3 });
    for (const s of ['', 'a"b', 'x\\', '\n\t\u0001', '\u001f', 'é€😀']) expect(c.accepts(s), JSON.stringify(s)).toBe(true);
    expect(c.accepts('abcd')).toBe(false);
    expect(acceptsText(c, '"\\u000a"')).toBe(false); // \n is written "\n", not \u000a
    expect(acceptsText(c, '"\\/"')).toBe(false);
  });

  it('pattern uses search semantics with anchors', () => {
    const c = compileJsonSchema({ type: 'string', pattern: '^[a-z]+\\d$' });
    expect(['ab1', 'z9'].every((s) => c.accepts(s))).toBe(true);
    expect(['ab', '1', 'Ab1', 'ab12'].some((s) => c.accepts(s))).toBe(false);
    const u = compileJsonSchema({ type: 'string', pattern: 'cat' });
    expect(u.accepts('concatenate')).toBe(true);
    expect(u.accepts('dog')).toBe(false);
  });

  it('formats', () => {
    const date = compileJsonSchema({ type: 'string', format: 'date' });
    expect(['2020-02-29', '2000-02-29', '2021-12-31'].every((s) => date.accepts(s))).toBe(true);
    expect(['2021-02-29', '1900-02-29', '2021-04-31', '2021-13-01', '21-01-01'].some((s) => date.accepts(s))).toBe(false);
    const ip = compileJsonSchema({ type: 'string', format: 'ipv4' });
    expect(ip.accepts('192.168.0.255')).toBe(true);
    expect(ip.accepts('256.1.1.1')).toBe(false);
    const uuid = compileJsonSchema({ type: 'string', format: 'uuid' });
    expect(uuid.accepts('2eb8aa08-aa98-11ea-b4aa-73b441d16380')).toBe(true);
    expect(uuid.accepts('2eb8aa08-aa98-11ea-b4aa-73b441d1638')).toBe(false);
  });
});

describe('objects and canonical form', () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string' }, rating: { type: 'integer', minimum: 1, maximum: 5 }, open: { type: 'boolean' } },
    required: ['name'],
    additionalProperties: false,
  };
  const c = compileJsonSchema(schema);

  it('orders keys by the schema and accepts exactly the valid instances', () => {
    expect(c.canonicalize({ open: true, name: 'x' })).toBe('{"name":"x","open":true}');
    expect(c.accepts({ rating: 5, name: 'A' })).toBe(true);
    expect(acceptsText(c, '{"rating":5,"name":"A"}')).toBe(false); // not canonical order
    expect(c.accepts({ rating: 6, name: 'A' })).toBe(false);
    expect(c.accepts({ rating: 2 })).toBe(false);
    expect(c.accepts({ name: 'A', extra: 1 })).toBe(false);
    expect(acceptsText(c, '{"name":"A",}')).toBe(false);
    expect(acceptsText(c, '{}')).toBe(false);
  });

  it('additionalProperties as a schema; extra keys sorted in the canonical form', () => {
    const s = compileJsonSchema({ properties: { a: { type: 'integer' } }, additionalProperties: { type: 'string' } });
    expect(s.accepts({ z: 'x', a: 1, b: 'y' })).toBe(true);
    expect(s.canonicalize({ z: 'x', a: 1, b: 'y' })).toBe('{"a":1,"b":"y","z":"x"}');
    expect(s.accepts({ a: 1, b: 2 })).toBe(false);
    expect(s.accepts({ a: 'no' })).toBe(false);
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }, new Map([['b', 0]]))).toBe('{"b":1,"a":[{"c":2,"d":1}]}');
  });

  it('allOf merges object schemas exactly', () => {
    const m = compileJsonSchema({
      allOf: [
        { properties: { a: { type: 'integer' } }, required: ['a'] },
        { properties: { b: { type: 'string' } }, required: ['b'], additionalProperties: false },
      ],
    });
    // the second branch forbids "a" as an additional property: unsatisfiable together with required a
    expect(m.accepts({ a: 1, b: 'x' })).toBe(false);
    const m2 = compileJsonSchema({
      allOf: [{ properties: { a: { type: 'integer', minimum: 0 } } }, { properties: { a: { maximum: 3 }, b: { type: 'string' } }, required: ['b'] }],
    });
    expect(m2.accepts({ a: 2, b: 'x' })).toBe(true);
    expect(m2.accepts({ a: 4, b: 'x' })).toBe(false);
    expect(m2.accepts({ a: 2 })).toBe(false);
  });
});

describe('arrays', () => {
  it('prefixItems, items, min/maxItems', () => {
    const c = compileJsonSchema({ type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: { type: 'boolean' }, minItems: 1, maxItems: 4 });
    expect(c.accepts(['a'])).toBe(true);
    expect(c.accepts(['a', 1, true, false])).toBe(true);
    expect(c.accepts(['a', 1, true, false, true])).toBe(false);
    expect(c.accepts([])).toBe(false);
    expect(c.accepts([1])).toBe(false);
    expect(c.accepts(['a', 1, 2])).toBe(false);
  });
  it('Draft 7 tuple items + additionalItems', () => {
    const c = compileJsonSchema({ $schema: 'http://json-schema.org/draft-07/schema#', items: [{ type: 'integer' }], additionalItems: false });
    expect(c.accepts([1])).toBe(true);
    expect(c.accepts([1, 2])).toBe(false);
  });
});

describe('combinators and references', () => {
  it('oneOf: disjoint branches are a union; overlapping ones exclude the overlap', () => {
    const d = compileJsonSchema({ oneOf: [{ type: 'integer' }, { type: 'string' }] });
    expect(d.accepts(1) && d.accepts('x')).toBe(true);
    expect(d.accepts(null)).toBe(false);
    const o = compileJsonSchema({ type: 'integer', oneOf: [{ minimum: 5 }, { maximum: 10 }] });
    expect([4, 5, 10, 11].map((n) => o.accepts(n))).toEqual([true, false, false, true]);
  });
  it('local $ref with bounded recursion', () => {
    const tree = {
      $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } }, additionalProperties: false } },
      $ref: '#/$defs/node',
    };
    const c = compileJsonSchema(tree, { maxRefDepth: 3 });
    expect(c.accepts({ v: 1, kids: [{ v: 2, kids: [{ v: 3 }] }] })).toBe(true);
    expect(c.accepts({ v: 1, kids: [{ v: 'x' }] })).toBe(false);
    // deeper than the recursion bound: not generated
    expect(c.accepts({ kids: [{ kids: [{ kids: [{ kids: [] }] }] }] })).toBe(false);
  });
  it('type unions express nullable', () => {
    const c = compileJsonSchema({ type: ['string', 'null'], maxLength: 2 });
    expect([null, 'ab'].every((v) => c.accepts(v))).toBe(true);
    expect(c.accepts('abc') || c.accepts(0)).toBe(false);
  });
});

describe('refusals name the keyword and its JSON pointer', () => {
  const refused = (schema: unknown): ConstraintCompileError => {
    try {
      compileJsonSchema(schema);
    } catch (e) {
      return e as ConstraintCompileError;
    }
    throw new Error('not refused');
  };
  it('unsupported keywords', () => {
    const e = refused({ properties: { a: { anyOf: [{ type: 'object' }], unevaluatedProperties: false } } });
    expect(e).toBeInstanceOf(UnsupportedKeywordError);
    expect(e.code).toBe('UNSUPPORTED_KEYWORD');
    expect(e.keyword).toBe('unevaluatedProperties');
    expect(e.pointer).toBe('/properties/a/unevaluatedProperties');
    expect(e.message).toContain('"unevaluatedProperties"');
    expect(e.message).toContain('#/properties/a/unevaluatedProperties');
    const p = refused({ items: { $dynamicRef: '#x' } });
    expect([p.keyword, p.pointer]).toEqual(['$dynamicRef', '/items/$dynamicRef']);
    expect(refused({ 'x-custom': 1 }).keyword).toBe('x-custom');
    expect(refused({ type: 'array', uniqueItems: true }).keyword).toBe('uniqueItems');
    expect(refused({ $ref: 'http://example.com/x.json' }).keyword).toBe('$ref');
    expect(refused({ type: 'string', format: 'hostname' }).message).toContain('hostname');
  });
  it('size limits name the schema part', () => {
    const e = refused({ properties: { a: { type: 'string', pattern: '^(a|b)*a(a|b){14}$' } } });
    expect(e.code).toBe('SCHEMA_TOO_LARGE');
    expect(e.message).toContain('#/properties/a');
  });
});

describe('not, if/then/else, dependencies, patternProperties, propertyNames, min/maxProperties', () => {
  it('not and if/then/else relative to the rest of the schema', () => {
    const n = compileJsonSchema({ type: 'integer', not: { enum: [3, 4] }, minimum: 0, maximum: 6 });
    expect([0, 2, 3, 4, 5, 6].map((x) => n.accepts(x))).toEqual([true, true, false, false, true, true]);
    const c = compileJsonSchema({ type: 'string', if: { maxLength: 2 }, then: { pattern: '^a' }, else: { pattern: 'z$' } }, { timeLimitMs: 30_000 });
    expect(['ab', 'bb', 'xyz', 'xya'].map((x) => c.accepts(x))).toEqual([true, false, true, false]);
  });
  it('dependentRequired and dependentSchemas', () => {
    const d = compileJsonSchema(
      { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, additionalProperties: false, dependentRequired: { a: ['b'] }, dependentSchemas: { b: { properties: { a: { maximum: 5 } } } } },
      { timeLimitMs: 30_000 },
    );
    expect(d.accepts({ b: 1 })).toBe(true);
    expect(d.accepts({ a: 1 })).toBe(false);
    expect(d.accepts({ a: 1, b: 2 })).toBe(true);
    expect(d.accepts({ a: 9, b: 2 })).toBe(false);
  });
  it('patternProperties, propertyNames and property counts', () => {
    const p = compileJsonSchema({ type: 'object', patternProperties: { '^x-': { type: 'integer' } }, propertyNames: { maxLength: 4 }, additionalProperties: { type: 'string' }, maxProperties: 2 }, { timeLimitMs: 30_000 });
    expect(p.accepts({ 'x-a': 1, b: 's' })).toBe(true);
    expect(p.accepts({ 'x-a': 's' })).toBe(false);
    expect(p.accepts({ b: 1 })).toBe(false);
    expect(p.accepts({ toolong: 's' })).toBe(false);
    expect(p.accepts({ a: 's', b: 't', c: 'u' })).toBe(false);
    const m = compileJsonSchema({ type: 'object', properties: { a: {}, b: {} }, additionalProperties: false, minProperties: 2 });
    expect([{}, { a: 1 }, { a: 1, b: 2 }].map((x) => m.accepts(x))).toEqual([false, false, true]);
  });
});

describe('regex form', () => {
  it('exports the language as a JavaScript regex that agrees with the automaton', () => {
    const c = compileJsonSchema({ type: 'object', properties: { a: { enum: ['x', 'y'] }, n: { type: 'integer', minimum: 0, maximum: 120 } }, required: ['a'], additionalProperties: false });
    const re = new RegExp(`^(?:${c.regexSource()})$`, 'u');
    for (const v of [{ a: 'x' }, { a: 'y', n: 0 }, { a: 'x', n: 120 }, { a: 'x', n: 121 }, { a: 'z' }, { n: 3 }]) {
      expect(re.test(c.canonicalize(v)), JSON.stringify(v)).toBe(c.accepts(v));
    }
  });
});

describe('unevaluatedProperties / unevaluatedItems (static cases)', () => {
  it('acts as additionalProperties over what the schema and its allOf declare', () => {
    const c = compileJsonSchema({ type: 'object', properties: { a: { type: 'integer' } }, allOf: [{ properties: { b: { type: 'string' } } }], unevaluatedProperties: false }, { timeLimitMs: 30_000 });
    expect(c.accepts({ a: 1, b: 'x' })).toBe(true);
    expect(c.accepts({ a: 1, c: 2 })).toBe(false);
    const i = compileJsonSchema({ type: 'array', prefixItems: [{ type: 'integer' }], unevaluatedItems: { type: 'string' } });
    expect(i.accepts([1, 'a', 'b'])).toBe(true);
    expect(i.accepts([1, 2])).toBe(false);
  });
});
