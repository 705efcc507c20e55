/**
 * The TypeScript engine against the PyTorch reference sampler (training/dlm_train/sample.py) on the same weights:
 * same seed, same shared-PRNG noise, same loop -> the same tokens. Runs on the tiny bundle from the training smoke
 * test (npm run smoke:bundle) and on the committed default bundle; needs /usr/bin/python3 with torch. Each sampler
 * (ancestral, ddim with eta 0 and 0.5, dpm2m) is checked at a small step count, unconditional and with a held record;
 * nothing here depends on a bundle's weights beyond the agreement it is held to.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConstraintSetInput } from '../../../src-main/constraints/set';
import { createEngine } from '../../../src-main/engine/index';
import type { GeneratedOutput, GenerateRequest } from '../../../src-main/engine/types';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PY = process.env.PYTHON ?? '/usr/bin/python3';
const TINY = `${ROOT}tests/.generated/tiny-e2e`;
const DEFAULT = `${ROOT}models/e2e-default`;
const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;

function reference(bundle: string, args: string[]): number[][] {
  const r = spawnSync(PY, ['-m', 'training.dlm_train.sample', '--bundle', bundle, '--json', '--threads', '1', ...args], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`reference sampler failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { ids: number[] }).ids);
}

const engines: ReturnType<typeof createEngine>[] = [];
afterAll(async () => {
  for (const e of engines) await e.dispose();
});

async function engineTokens(dir: string, model: string, set: ConstraintSetInput): Promise<number[][]> {
  const e = createEngine({ modelDirs: [dir] });
  engines.push(e);
  const outs: GeneratedOutput[] = [];
  await e.generate({ model, device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outs.push(o) });
  return outs.map((o) => o.tokens);
}

function agreement(a: number[][], b: number[][]): number {
  let same = 0;
  let all = 0;
  a.forEach((row, i) => row.forEach((t, j) => {
    all++;
    if (b[i]?.[j] === t) same++;
  }));
  return same / all;
}

for (const [name, dir, id, steps, minAgreement] of [
  ['tiny bundle (smoke test)', TINY, 'tiny-e2e', 20, 1],
  // a real model: float differences between ONNX Runtime and PyTorch may flip a near-tie in rounding
  ['default bundle', DEFAULT, 'e2e-default', 50, 0.97],
] as const) {
  const present = existsSync(`${dir}/manifest.json`);
  const why = !present ? `${dir} is absent${id === 'tiny-e2e' ? ' (make it with npm run smoke:bundle)' : ''}` : !hasTorch ? `${PY} with torch is not available` : '';
  describe.skipIf(why !== '')(`engine == PyTorch reference sampler: ${name}${why ? ` [skipped: ${why}]` : ''}`, () => {
    it('unconditional samples: same seed, same tokens', async () => {
      const ref = reference(dir, ['--samples', '3', '--steps', String(steps), '--seed', '7']);
      const ts = await engineTokens(dir, id, { version: 1, constraints: [], sampler: { steps, samples: 3, seed: 7, precision: 'fp32' } });
      expect(ts).toHaveLength(3);
      if (minAgreement === 1) expect(ts).toEqual(ref);
      else expect(agreement(ts, ref)).toBeGreaterThanOrEqual(minAgreement);
    });

    it('data-to-text (held record): same seed, same tokens', async () => {
      const record = { name: 'The Vaults', eatType: 'pub', food: 'Italian' };
      const ref = reference(dir, ['--samples', '2', '--steps', String(steps), '--seed', '3', '--record', JSON.stringify(record)]);
      const ts = await engineTokens(dir, id, { version: 1, constraints: [{ kind: 'record', value: record }], sampler: { steps, samples: 2, seed: 3, precision: 'fp32' } });
      if (minAgreement === 1) expect(ts).toEqual(ref);
      else expect(agreement(ts, ref)).toBeGreaterThanOrEqual(minAgreement);
    });

    // the other samplers at few steps (where they are meant to run): same x_T, same noise draws (ddim eta > 0), same step
    // and steps spaced unevenly (sampler.spacing), where they sit on the training schedule differs
    for (const [method, eta, spacing] of [['ddim', 0, 1], ['ddim', 0.5, 1], ['dpm2m', 0, 1], ['ancestral', 0, 0.33], ['dpm2m', 0, 0.5]] as const) {
      const label = `${method}${method === 'ddim' ? ` eta ${eta}` : ''}${spacing !== 1 ? `, spacing ${spacing}` : ''}`;
      const few = 10;
      it(`${label}, ${few} steps: unconditional and data-to-text, same seed, same tokens`, async () => {
        const flags = ['--sampler', method, '--eta', String(eta), '--spacing', String(spacing), '--steps', String(few), '--samples', '2'];
        const record = { name: 'Blue Spice', eatType: 'coffee shop', area: 'riverside' };
        const ref = [...reference(dir, [...flags, '--seed', '11']), ...reference(dir, [...flags, '--seed', '5', '--record', JSON.stringify(record)])];
        const sampler = { steps: few, samples: 2, precision: 'fp32' as const, method, eta, spacing };
        const ts = [
          ...await engineTokens(dir, id, { version: 1, constraints: [], sampler: { ...sampler, seed: 11 } }),
          ...await engineTokens(dir, id, { version: 1, constraints: [{ kind: 'record', value: record }], sampler: { ...sampler, seed: 5 } }),
        ];
        expect(ts).toHaveLength(4);
        if (minAgreement === 1) expect(ts).toEqual(ref);
        else expect(agreement(ts, ref)).toBeGreaterThanOrEqual(minAgreement);
      });
    }
  });
}
