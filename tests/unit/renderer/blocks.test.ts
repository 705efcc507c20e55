/** Compose's block model (src-renderer/lib/blocks.ts): defaults, JSON source parsing, issue mapping, live-view diffs. */
import { describe, expect, it } from 'vitest';
import { parseConstraintSet, samplerSettings } from '../../../src-main/constraints/set';
import { DEFAULT_SCHEMA, EXAMPLES, recordPiecesOf, blockIndexOf, blockOf, bodyOf, changedPositions, defaultConstraint, KINDS, parseSchemaText, wordsOf } from '../../../src-renderer/lib/blocks';

const sampler = samplerSettings.parse({ steps: 10, samples: 2 });

describe('blocks', () => {
  it('gives every constraint kind a default that is a valid set on its own', () => {
    expect(KINDS).toHaveLength(11);
    for (const kind of KINDS) {
      const { body, parseErrors } = bodyOf([blockOf(defaultConstraint(kind))], { name: 'x', description: '', sampler });
      expect(parseErrors).toEqual([]);
      expect(() => parseConstraintSet(body), kind).not.toThrow();
    }
  });

  it('offers example sets that are valid', () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(4);
    for (const ex of EXAMPLES) expect(() => parseConstraintSet({ version: 1, ...ex.set }), ex.title).not.toThrow();
  });

  it('picks the attribute default from the model record schema', () => {
    expect(defaultConstraint('attribute', { food: ['Thai', 'French'] })).toMatchObject({ field: 'food', value: 'Thai' });
  });

  it('builds the body from the blocks, with the typed schema text and name/description only when given', () => {
    const schema = blockOf(defaultConstraint('json-schema'));
    schema.schemaText = '{"type": "object", "required": ["name"]}';
    const off = blockOf({ ...defaultConstraint('length'), enabled: false, weight: 2.5 });
    const { body } = bodyOf([schema, off], { name: '  pub  ', description: '', sampler });
    expect(body.name).toBe('pub');
    expect('description' in body).toBe(false);
    expect(body.constraints[0]).toMatchObject({ kind: 'json-schema', schema: { type: 'object', required: ['name'] } });
    expect(body.constraints[1]).toMatchObject({ kind: 'length', enabled: false, weight: 2.5 });
  });

  it('reports schema text that does not parse, with line and column, and does not send it', () => {
    const b = blockOf(defaultConstraint('json-schema'));
    b.schemaText = '{\n  "type": "object",\n  oops\n}';
    const { body, parseErrors } = bodyOf([blockOf(defaultConstraint('length')), b], { name: '', description: '', sampler });
    expect(parseErrors).toHaveLength(1);
    expect(parseErrors[0]!.index).toBe(1);
    expect(parseErrors[0]!.message).toMatch(/^Not valid JSON at line 3, column 3/);
    // the block keeps its last good schema until the text parses again
    expect(body.constraints[1]).toEqual({ kind: 'json-schema', schema: DEFAULT_SCHEMA, weight: 1, enabled: true });
    expect(parseSchemaText('[1, 2]')).toEqual({ ok: false, error: 'A JSON schema must be an object (or true / false).' });
    expect(parseSchemaText('true')).toEqual({ ok: true, schema: true });
  });

  it('maps issue paths to blocks', () => {
    expect(blockIndexOf('constraints[2].tags[0]')).toBe(2);
    expect(blockIndexOf('body.constraints[11].kind')).toBe(11);
    expect(blockIndexOf('sampler.steps')).toBeNull();
  });

  it('copies blocks deeply (editing a copy leaves the original alone)', () => {
    const a = blockOf(defaultConstraint('pos'));
    const b = blockOf(a.c);
    if (b.c.kind === 'pos') b.c.tags[0] = '*';
    expect(a.c.kind === 'pos' && a.c.tags[0]).toBe('DET');
    expect(b.uid).not.toBe(a.uid);
  });

  it('marks the live-view words that changed since the last step', () => {
    expect(wordsOf('  The  Eagle is\na pub ')).toEqual(['The', 'Eagle', 'is', 'a', 'pub']);
    expect(changedPositions(undefined, ['a', 'b'])).toEqual([false, false]);
    expect(changedPositions(['a', 'b'], ['a', 'c', 'd'])).toEqual([false, true, true]);
    const rec = '{"name":"The Eagle","area":"riverside"}';
    expect(recordPiecesOf(rec)).toEqual(['{', '"', 'name', '"', ':', '"', 'The', ' ', 'Eagle', '"', ',', '"', 'area', '"', ':', '"', 'riverside', '"', '}']);
    expect(recordPiecesOf(rec).join('')).toBe(rec);
  });
});
