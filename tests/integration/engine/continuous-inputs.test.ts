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
});
