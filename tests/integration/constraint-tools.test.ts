/**
 * constraints.compile and constraints.posTags through the real dispatcher: a real bundle's vocabulary (the
 * engine tests' micro bundle), the real compiler and the real POS tagger.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StudioClient } from '../../src-main/api/client';
import { scanModels } from '../../src-main/engine/bundle';
import type { Engine } from '../../src-main/engine/types';
import { createStudioServices, type StudioServices } from '../../src-main/services';
import { createInProcessClient } from '../../src-main/transports/inproc';
import { writeMicroBundle } from './engine/micro-bundle';

let dir: string;
let services: StudioServices;
let client: StudioClient;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dlm-ctools-'));
  writeMicroBundle(join(dir, 'models', 'micro'), { id: 'micro' });
  cpSync(fileURLToPath(new URL('../fixtures/masked-tiny/', import.meta.url)), join(dir, 'models', 'z-masked'), { recursive: true });
  const models = join(dir, 'models');
  // only model listing is needed here: a real scan of the bundle folder, no inference
  const engine = { listModels: () => scanModels([models]), dispose: async () => undefined } as unknown as Engine;
  services = createStudioServices({ dataDir: join(dir, 'data'), modelDirs: [models], engine });
  client = createInProcessClient(services);
});
afterAll(async () => {
  await services.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('constraints.compile', () => {
  it('gives a verdict per constraint against the model, naming an unsupported keyword and its pointer', async () => {
    const report = await client.call('constraints.compile', {
      body: {
        version: 1,
        constraints: [
          { kind: 'pos', tags: ['DET', '*', 'NOUN'] },
          { kind: 'json-schema', schema: { type: 'object', properties: { tags: { type: 'array', items: { type: 'string' }, uniqueItems: true } } } },
          { kind: 'length', tokens: 5, enabled: false },
          { kind: 'regex', pattern: '[a-z ]+' },
        ],
      },
    });
    expect(report.model).toBe('micro');
    expect(report.verdicts.map((v) => v.status)).toEqual(['soft', 'error', 'disabled', 'hard']);
    expect(report.verdicts[1]!.error).toMatchObject({ code: 'UNSUPPORTED_KEYWORD', keyword: 'uniqueItems', pointer: '/properties/tags/uniqueItems' });
  });

  it("against a masked model: soft constraints are marked unserved by its family, hard ones compile", async () => {
    const report = await client.call('constraints.compile', {
      body: { version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }, { kind: 'regex', pattern: '[a-z ]+' }] },
      model: 'masked-tiny',
    });
    expect(report.model).toBe('masked-tiny');
    expect(report.verdicts[0]).toMatchObject({ status: 'soft', unserved: true, detail: expect.stringMatching(/^not served by this masked bundle/) });
    expect(report.verdicts[1]).toMatchObject({ status: 'hard' });
    expect(report.verdicts[1]!.unserved).toBeUndefined();
  });

  it('refuses an invalid set with the offending field, and an unknown model by name', async () => {
    await expect(client.call('constraints.compile', { body: { version: 1, constraints: [{ kind: 'pos', tags: ['NOPE'] }] } as never })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      path: expect.stringContaining('constraints[0].tags[0]'),
    });
    await expect(client.call('constraints.compile', { body: { version: 1, constraints: [] }, model: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND', path: 'model' });
  });
});

describe('constraints.posTags', () => {
  it('tags each word of a sentence with UPOS', async () => {
    const { tokens } = await client.call('constraints.posTags', { sentence: 'The Eagle is a cheap pub.' });
    expect(tokens.map((t) => t.text)).toEqual(['The', 'Eagle', 'is', 'a', 'cheap', 'pub', '.']);
    expect(tokens[0]!.tag).toBe('DET');
    expect(tokens[5]!.tag).toBe('NOUN');
    expect(tokens[6]!.tag).toBe('PUNCT');
  });

  it('refuses an empty sentence', async () => {
    await expect(client.call('constraints.posTags', { sentence: '  ' })).rejects.toMatchObject({ code: 'INVALID_INPUT', path: 'sentence' });
  });
});
