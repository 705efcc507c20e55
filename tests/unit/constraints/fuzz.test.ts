/**
 * Fuzzing: random schemas from a small grammar, instances from json-schema-faker (and mutated ones). The compiler
 * must not crash (it may refuse with a named error), and on every instance the automaton must agree with Ajv.
 */
import { describe, expect, it } from 'vitest';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { JSONSchemaFaker } from 'json-schema-faker';
import { compileJsonSchema, ConstraintCompileError } from '../../../src-main/constraints/compiler';
import { Mulberry32 } from '../../../src-main/engine/prng';

/** Seeded uniforms in (0, 1) from the engine's shared PRNG, so a failure can be reproduced. */
function mulberry(seed: number): () => number {
  const g = new Mulberry32(seed);
  return () => g.uniform();
}

type Schema = Record<string, unknown>;

function randomSchema(r: () => number, depth: number): Schema {
  const pick = <T,>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (a: number, b: number) => a + Math.floor(r() * (b - a + 1));
  const kinds = depth > 0 ? ['string', 'integer', 'number', 'boolean', 'enum', 'array', 'object', 'nullable', 'anyOf'] : ['string', 'integer', 'number', 'boolean', 'enum', 'nullable'];
  switch (pick(kinds)) {
    case 'string': {
      const s: Schema = { type: 'string' };
      if (r() < 0.5) s.maxLength = int(0, 8);
      if (r() < 0.3) s.minLength = int(0, 3);
      if (r() < 0.3) s.pattern = pick(['^[a-c]+$', '^x', '\\d$', '^(ab|cd)*$']);
      if (r() < 0.15) s.format = pick(['date', 'ipv4', 'uuid']);
      return s;
    }
    case 'integer': {
      const s: Schema = { type: 'integer' };
      if (r() < 0.6) s.minimum = int(-500, 500);
      if (r() < 0.6) s.maximum = (s.minimum as number ?? -500) + int(0, 900);
      if (r() < 0.2) s.multipleOf = int(2, 9);
      return s;
    }
    case 'number': {
      const s: Schema = { type: 'number' };
      if (r() < 0.5) s.minimum = int(-50, 50) / pick([1, 2, 4, 10]);
      if (r() < 0.5) s.exclusiveMaximum = (s.minimum as number ?? -50) + int(1, 100) / pick([1, 4, 10]);
      return s;
    }
    case 'boolean':
      return { type: 'boolean' };
    case 'enum':
      return { enum: [pick(['a', 'b c', 'é']), int(-3, 3), pick([null, true, 1.5])] };
    case 'nullable':
      return { type: [pick(['string', 'integer', 'boolean']), 'null'] };
    case 'anyOf':
      return { anyOf: [randomSchema(r, depth - 1), randomSchema(r, depth - 1)] };
    case 'array': {
      const s: Schema = { type: 'array', items: randomSchema(r, depth - 1) };
      if (r() < 0.5) s.minItems = int(0, 2);
      s.maxItems = int((s.minItems as number) ?? 0, 4);
      return s;
    }
    default: {
      const n = int(1, 4);
      const props: Record<string, Schema> = {};
      for (let i = 0; i < n; i++) props[pick(['a', 'b', 'name', 'x y', 'é'])] = randomSchema(r, depth - 1);
      const keys = Object.keys(props);
      return {
        type: 'object',
        properties: props,
        required: keys.filter(() => r() < 0.5),
        additionalProperties: r() < 0.7 ? false : { type: 'integer' },
      };
    }
  }
}

function mutate(v: unknown, r: () => number): unknown {
  if (Array.isArray(v)) {
    if (v.length && r() < 0.7) {
      const i = Math.floor(r() * v.length);
      const c = v.slice();
      c[i] = mutate(c[i], r);
      return c;
    }
    return [...v, 'zz'];
  }
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length && r() < 0.7) {
      const k = keys[Math.floor(r() * keys.length)]!;
      return { ...(v as object), [k]: mutate((v as Record<string, unknown>)[k], r) };
    }
    return { ...(v as object), zz: 'q' };
  }
  if (typeof v === 'number') return r() < 0.5 ? v + 1000 : v + 0.5;
  if (typeof v === 'string') return r() < 0.5 ? `${v}Q9` : 7;
  return r() < 0.5 ? 'x' : null;
}

describe('fuzz: random schemas, json-schema-faker instances', () => {
  const ajv = addFormats(new Ajv2020({ strict: false }));
  it('never crashes and agrees with Ajv on generated and mutated instances', () => {
    const r = mulberry(Number(process.env.FUZZ_SEED ?? 20261128));
    JSONSchemaFaker.option({ random: r, alwaysFakeOptionals: false, failOnInvalidTypes: false, maxItems: 4 });
    let compiled = 0;
    let checkedValid = 0;
    let checkedInvalid = 0;
    for (let n = 0; n < 80; n++) {
      const schema = randomSchema(r, 2);
      let c;
      try {
        c = compileJsonSchema(schema, { timeLimitMs: 10_000 });
      } catch (e) {
        expect(e, JSON.stringify(schema)).toBeInstanceOf(ConstraintCompileError);
        continue;
      }
      compiled++;
      const validate = ajv.compile(schema);
      for (let k = 0; k < 6; k++) {
        let inst: unknown;
        try {
          inst = JSONSchemaFaker.generate(schema as never);
        } catch {
          continue;
        }
        for (const x of [inst, mutate(inst, r)]) {
          if (x === undefined) continue;
          const valid = validate(x) as boolean;
          expect(c.accepts(x), `${JSON.stringify(schema)}\n${c.canonicalize(x)}`).toBe(valid);
          if (valid) checkedValid++;
          else checkedInvalid++;
        }
      }
    }
    if (process.env.FUZZ_DEBUG) console.log({ compiled, checkedValid, checkedInvalid });
    expect(compiled).toBeGreaterThan(60);
    expect(checkedValid).toBeGreaterThan(100);
    expect(checkedInvalid).toBeGreaterThan(50);
  }, 300_000);
});
