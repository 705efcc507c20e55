/**
 * Newer continuous bundles may list two optional denoiser inputs (manifest denoiser.inputs): x_self_cond (the previous
 * step's raw x0 estimate, zeros first) and clean (1 at held positions). The engine feeds them when listed, refuses a
 * graph that does not match the list, and runs older bundles exactly as before.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConstraintSetInput } from '../../../src-main/constraints/set';
import { createEngine } from '../../../src-main/engine/index';
import { END, PAD } from '../../../src-main/engine/tokenizer';
import type { Engine, GeneratedOutput, GenerateRequest } from '../../../src-main/engine/types';
import { MICRO, writeMicroBundle } from './micro-bundle';

let root: string;
let engine: Engine;

async function tokens(model: string, set: ConstraintSetInput): Promise<number[][]> {
  const outs: GeneratedOutput[] = [];
  const summary = await engine.generate({ model, device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outs.push(o) });
  expect(summary.status).toBe('completed');
  return outs.map((o) => o.tokens);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'dlm-cont-inputs-'));
  writeMicroBundle(join(root, 'plain'), { id: 'plain' });
  writeMicroBundle(join(root, 'sc'), { id: 'sc', extraInputs: true });
  // lists the inputs, but its graph takes only x_t and t
  writeMicroBundle(join(root, 'liar'), { id: 'liar' });
  const m = JSON.parse(readFileSync(join(root, 'liar', 'manifest.json'), 'utf8'));
  m.denoiser.inputs = { ...m.denoiser.inputs, x_self_cond: 'float32[B,N,d]', clean: 'float32[B,N]' };
  writeFileSync(join(root, 'liar', 'manifest.json'), JSON.stringify(m));
  // its graph takes the extra inputs, but the manifest does not list them
  writeMicroBundle(join(root, 'mute'), { id: 'mute', extraInputs: true });
  const m2 = JSON.parse(readFileSync(join(root, 'mute', 'manifest.json'), 'utf8'));
  m2.denoiser.inputs = { x_t: 'float32[B,N,d]', t: 'float32[B]' };
  writeFileSync(join(root, 'mute', 'manifest.json'), JSON.stringify(m2));
  // trained (as far as the manifest says) with <end> given clean: a length is held
  writeMicroBundle(join(root, 'held'), { id: 'held', extraInputs: true });
  const m3 = JSON.parse(readFileSync(join(root, 'held', 'manifest.json'), 'utf8'));
  m3.denoiser.held_length = true;
  writeFileSync(join(root, 'held', 'manifest.json'), JSON.stringify(m3));
  // and predicts a record's text length: 1 + 0.5 x record tokens
  writeMicroBundle(join(root, 'heldlen'), { id: 'heldlen', extraInputs: true });
  writeFileSync(join(root, 'heldlen', 'manifest.json'), JSON.stringify({ ...m3, id: 'heldlen', text_length: { intercept: 1, per_record_token: 0.5 } }));
  // a text length rule without a held length
  writeMicroBundle(join(root, 'lenonly'), { id: 'lenonly', extraInputs: true });
  const m5 = JSON.parse(readFileSync(join(root, 'lenonly', 'manifest.json'), 'utf8'));
  writeFileSync(join(root, 'lenonly', 'manifest.json'), JSON.stringify({ ...m5, text_length: { intercept: 1, per_record_token: 0.5 } }));
  // says so without the clean input
  writeMicroBundle(join(root, 'noclean'), { id: 'noclean' });
  const m4 = JSON.parse(readFileSync(join(root, 'noclean', 'manifest.json'), 'utf8'));
  m4.denoiser.held_length = true;
  writeFileSync(join(root, 'noclean', 'manifest.json'), JSON.stringify(m4));
  engine = createEngine({ modelDirs: [root], batchSize: 4 });
});
afterAll(async () => {
  await engine.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** The tokens of a run whose samples go through the denoiser one at a time (batch 1). */
async function oneAtATime(model: string, set: ConstraintSetInput): Promise<number[][]> {
  const single = createEngine({ modelDirs: [root], batchSize: 1 });
  try {
    const outs: GeneratedOutput[] = [];
    await single.generate({ model, device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outs.push(o) });
    return outs.map((o) => o.tokens);
  } finally {
    await single.dispose();
  }
}

describe('optional continuous denoiser inputs (x_self_cond, clean)', () => {
  it('a bundle listing them runs, deterministically, holding the given record; batching does not matter', async () => {
    const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'record', value: { name: 'Alimentum' } }], sampler: { steps: 8, samples: 5, seed: 2 } };
    const a = await tokens('sc', set);
    expect(a).toHaveLength(5);
    expect(await tokens('sc', set)).toEqual(a);
    expect(await oneAtATime('sc', set)).toEqual(a);
    const held = a[0]!.slice(0, MICRO.record + 1);
    for (const row of a) expect(row.slice(0, MICRO.record + 1)).toEqual(held);
  });

  it('ddim and dpm2m feed them too: deterministic, the record held, batch-independent, and not the ancestral tokens', async () => {
    const anc = await tokens('sc', { version: 1, constraints: [{ kind: 'record', value: { name: 'Alimentum' } }], sampler: { steps: 6, samples: 3, seed: 5 } });
    for (const [method, eta] of [['ddim', 0], ['ddim', 0.5], ['dpm2m', 0]] as const) {
      const set: ConstraintSetInput = { version: 1, constraints: [{ kind: 'record', value: { name: 'Alimentum' } }], sampler: { steps: 6, samples: 3, seed: 5, method, eta } };
      const a = await tokens('sc', set);
      expect(await tokens('sc', set)).toEqual(a);
      for (const row of a) expect(row.slice(0, MICRO.record + 1)).toEqual(anc[0]!.slice(0, MICRO.record + 1));
      expect(a, `${method} eta ${eta}`).not.toEqual(anc);
      expect(await oneAtATime('sc', set)).toEqual(a);
    }
  });

  it('the inputs change the samples (they reach the graph)', async () => {
    // same weights apart from the extra ones: the plain bundle, seed for seed, gives other tokens
    const set: ConstraintSetInput = { version: 1, constraints: [], sampler: { steps: 8, samples: 3, seed: 2 } };
    expect(await tokens('sc', set)).not.toEqual(await tokens('plain', set));
  });

  it('a graph that does not take what the manifest lists is refused by name, and so is one that takes more', async () => {
    const set = { version: 1, constraints: [], sampler: { steps: 2, samples: 1 } } as ConstraintSetInput as GenerateRequest['constraints'];
    await expect(engine.generate({ model: 'liar', device: 'cpu', constraints: set }, {})).rejects.toMatchObject({
      code: 'BUNDLE_INVALID', message: expect.stringMatching(/denoiser\.onnx: input 'x_self_cond' must be float32\[B,N,d\]/),
    });
    await expect(engine.generate({ model: 'mute', device: 'cpu', constraints: set }, {})).rejects.toMatchObject({
      code: 'BUNDLE_INVALID', message: expect.stringMatching(/denoiser\.onnx: input 'x_self_cond' is not one the manifest lists/),
    });
  });

  it('denoiser.held_length: a length target holds <end> at that text position when guidance is on, and only then', async () => {
    const text = MICRO.record + 1;
    for (const n of [4, 9]) {
      const rows = await tokens('held', { version: 1, constraints: [{ kind: 'length', tokens: n }], sampler: { steps: 6, samples: 4, seed: 3 } });
      for (const row of rows) {
        const t = row.slice(text);
        expect(t[n], `<end> at text position ${n}`).toBe(END);
        expect(t.slice(n + 1).every((v) => v === PAD)).toBe(true);
        expect(t.slice(0, n).some((v) => v === END || v === PAD), 'no <end> or <pad> before it').toBe(false);
      }
    }
    // guidance off: nothing held, so the random micro denoiser does not end there (it is not trained to)
    const free = await tokens('held', { version: 1, constraints: [{ kind: 'length', tokens: 4 }], sampler: { steps: 6, samples: 4, seed: 3, guidance: { enabled: false } } });
    expect(free.every((row) => row[text + 4] === END && row.slice(text, text + 4).every((v) => v !== END && v !== PAD))).toBe(false);
  });

  it('manifest text_length: data-to-text holds <end> where the record says, guided or not, and notes it; a guided length asks for another', async () => {
    const text = MICRO.record + 1;
    const record = { kind: 'record' as const, value: { name: 'Alimentum', area: 'riverside' } };
    for (const guidance of [{}, { enabled: false }]) {
      const outs: GeneratedOutput[] = [];
      const set = { version: 1, constraints: [record], sampler: { steps: 6, samples: 3, seed: 4, guidance } } as ConstraintSetInput as GenerateRequest['constraints'];
      const summary = await engine.generate({ model: 'heldlen', device: 'cpu', constraints: set }, { onOutput: (o) => outs.push(o) });
      const recordTokens = outs[0]!.tokens.slice(0, MICRO.record).filter((t) => t !== PAD).length;
      const n = Math.floor(1 + 0.5 * recordTokens + 0.5);
      for (const o of outs) {
        const t = o.tokens.slice(text);
        expect(t[n], `<end> at text position ${n}`).toBe(END);
        expect(t.slice(0, n).some((v) => v === END || v === PAD)).toBe(false);
      }
      expect(summary.notes).toEqual([`the text's length is held at ${n} tokens, the bundle's text_length for a record of ${recordTokens} tokens (a length constraint asks for another)`]);
    }
    const asked = await tokens('heldlen', { version: 1, constraints: [record, { kind: 'length', tokens: 9 }], sampler: { steps: 6, samples: 2, seed: 4 } });
    for (const row of asked) expect(row[text + 9]).toBe(END);
    // text-to-record: the text is held, nothing is predicted
    const t2r = await engine.generate({ model: 'heldlen', device: 'cpu', constraints: { version: 1, constraints: [{ kind: 'text', value: 'Alimentum is by the river.' }], sampler: { steps: 2, samples: 1 } } as ConstraintSetInput as GenerateRequest['constraints'] }, {});
    expect(t2r.notes).toBeUndefined();
    await expect(engine.generate({ model: 'lenonly', device: 'cpu', constraints: { version: 1, constraints: [], sampler: { steps: 2, samples: 1 } } as ConstraintSetInput as GenerateRequest['constraints'] }, {})).rejects.toMatchObject({
      code: 'BUNDLE_INVALID', message: expect.stringMatching(/text_length: a text length rule needs a denoiser that holds a length/),
    });
  });

  it('a held length needs no length classifier (none is warned about, as it is without held_length); held_length without the clean input is refused by name', async () => {
    const set = { version: 1, constraints: [{ kind: 'length', tokens: 5 }], sampler: { steps: 2, samples: 1 } } as ConstraintSetInput as GenerateRequest['constraints'];
    const held = await engine.generate({ model: 'held', device: 'cpu', constraints: set }, {});
    expect((held.warnings ?? []).filter((w) => /length/.test(w))).toEqual([]);
    const guided = await engine.generate({ model: 'sc', device: 'cpu', constraints: set }, {});
    expect(guided.warnings).toContainEqual(expect.stringMatching(/no length classifier in bundle sc/));
    const none = { version: 1, constraints: [], sampler: { steps: 2, samples: 1 } } as ConstraintSetInput as GenerateRequest['constraints'];
    await expect(engine.generate({ model: 'noclean', device: 'cpu', constraints: none }, {})).rejects.toMatchObject({
      code: 'BUNDLE_INVALID', message: expect.stringMatching(/denoiser\.held_length: a held length needs the clean input/),
    });
  });
});
