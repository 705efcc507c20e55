/**
 * The masked (absorbing-state) family through the engine, with real onnxruntime sessions: the tiny random-weight
 * fixture (tests/fixtures/masked-tiny: output vocabulary larger than the tokenizer's, mask id inside the vocabulary,
 * shifted logits) against the PyTorch reference sampler's golden tokens; determinism, caching, progress with masks,
 * hard constraints, and refusals of bad bundles.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConstraintSetInput } from '../../../src-main/constraints/set';
import { createEngine } from '../../../src-main/engine/index';
import type { Engine, GeneratedOutput, GenerateRequest, RunSummary, StepProgress } from '../../../src-main/engine/types';

const FIXTURE = fileURLToPath(new URL('../../fixtures/masked-tiny/', import.meta.url));

interface GoldenCase {
  name: string;
  seed: number;
  samples: number;
  record?: Record<string, string>;
  text?: string;
  settings: { steps: number; block_length: number; confidence: string; temperature: number; top_p: number };
  ids: number[][];
  network_calls: number;
}
const golden = JSON.parse(readFileSync(join(FIXTURE, 'golden.json'), 'utf8')) as { mask_id: number; cases: GoldenCase[] };

let engine: Engine;

async function run(e: Engine, set: ConstraintSetInput, model = 'masked-tiny'): Promise<{ outputs: GeneratedOutput[]; progress: StepProgress[]; summary: RunSummary }> {
  const outputs: GeneratedOutput[] = [];
  const progress: StepProgress[] = [];
  const summary = await e.generate({ model, device: 'cpu', constraints: set as GenerateRequest['constraints'] }, { onOutput: (o) => outputs.push(o), onProgress: (p) => progress.push(p) });
  return { outputs, progress, summary };
}

function caseSet(c: GoldenCase): ConstraintSetInput {
  const constraints: ConstraintSetInput['constraints'] = [];
  if (c.record) constraints.push({ kind: 'record', value: c.record });
  if (c.text) constraints.push({ kind: 'text', value: c.text });
  return { version: 1, constraints, sampler: { samples: c.samples, seed: c.seed, ...c.settings } };
}

beforeAll(() => {
  engine = createEngine({ modelDirs: [FIXTURE], batchSize: 4 });
});
afterAll(() => engine.dispose());

describe('masked family: the tiny fixture against the PyTorch reference sampler', () => {
  for (const c of golden.cases) {
    it(`same tokens as training/dlm_train/masked_sample.py: ${c.name}`, async () => {
      const { outputs, summary } = await run(engine, caseSet(c));
      expect(summary.status).toBe('completed');
      expect(outputs.map((o) => o.tokens)).toEqual(c.ids);
      // the engine calls the network at most as often as the reference (which calls once more after the last commit)
      expect(summary.denoiserCalls).toBeLessThanOrEqual(c.network_calls * Math.ceil(c.samples / 4));
    });
  }
});
