import { describe, expect, it } from 'vitest';
import type { Engine, GenerateHooks, GenerateRequest, RunSummary } from '../../../src-main/engine/types';
import { formatBenchExtras, runBenchExtras } from '../../../src-main/eval/bench-extra';
import type { EvaluateFn } from '../../../src-main/eval/run';

/** Fake engine whose reported sampling time is a known function of the request, so the ratios can be checked. */
function fake(batchSize: number, disposed: number[]): Engine {
  return {
    listModels: async () => [],
    probeDevices: async () => ({ requested: 'auto', active: 'cpu', probes: [
      { provider: 'cpu', bundled: true, usable: true },
      { provider: 'webgpu', bundled: true, usable: false, reason: 'no adapter' },
    ] }),
    dispose: async () => void disposed.push(batchSize),
    async generate(req: GenerateRequest, hooks: GenerateHooks): Promise<RunSummary> {
      const { steps, samples, guidance } = req.constraints.sampler;
      const projected = req.constraints.constraints.some((c) => c.kind === 'json-schema');
      const batches = Math.ceil(samples / batchSize);
      const perStep = (projected ? 5 : 1) * (guidance.enabled ? 2 : 1) * (1 + batchSize / 8);
      for (let i = 0; i < samples; i++) {
        hooks.onOutput?.({ index: i, seed: i, text: steps >= 200 ? 'italian' : 'x', record: projected ? { ok: 1 } : null, recordText: '', tokens: [], constraints: [], fluency: steps >= 200 ? 3 : 6 });
      }
      return {
        status: 'completed', model: { id: 'm', version: '0', hash: 'h' }, device: { requested: req.device, active: 'cpu', probes: [] },
        timings: { loadMs: 0, compileMs: projected ? 7 : 0, sampleMs: perStep * steps * batches, perStepMs: perStep, totalMs: 0 },
      };
    },
  };
}

const evaluate: EvaluateFn = (set, outputs) => outputs.map((o) => set.constraints.map((c, index) => ({
  index, kind: c.kind, satisfied: c.kind === 'json-schema' ? o.record !== null : o.text === 'italian', score: 0,
})));

describe('bench extras (fake engine with known timings)', () => {
  it('computes the ratios from the engine timings and disposes every engine it made', async () => {
    const disposed: number[] = [];
    const r = await runBenchExtras({ model: 'm', device: 'cpu', steps: 10, samples: 8, engineFor: (b) => fake(b, disposed), evaluate });
    if ('error' in r.projection) throw new Error(r.projection.error);
    expect(r.projection.timeRatio).toBeCloseTo(5, 10);
    expect([r.projection.projected.valid, r.projection.unprojected.valid]).toEqual([1, 0]);
    expect(r.projection.projected.compileMs).toBe(7);
    if ('error' in r.steps) throw new Error(r.steps.error);
    expect(r.steps.runs.map((x) => [x.steps, x.success, x.fluency])).toEqual([[50, 0, 6], [200, 1, 3]]);
    expect(r.steps.timeRatio).toBeCloseTo(4, 10);
    if ('error' in r.batch) throw new Error(r.batch.error);
    // per-sample ms = (1 + b/8) * 10 steps / b (one batch of b samples)
    const perSample = (b: number) => ((1 + b / 8) * 10) / b;
    expect(r.batch.runs.map((x) => x.batchSize)).toEqual([1, 8, 32, 64]);
    for (const x of r.batch.runs) expect(x.throughputVs1).toBeCloseTo(perSample(1) / perSample(x.batchSize), 10);
    expect(r.providers).toEqual([
      { provider: 'cpu', usable: true, perStepMs: 2, vsCpu: 1 },
      { provider: 'webgpu', usable: false, reason: 'no adapter' },
    ]);
    expect(r.peakMemoryMiB).toBeGreaterThan(0);
    expect(disposed.sort((a, b) => a - b)).toEqual([1, 8, 32, 64]);
    const text = formatBenchExtras(r);
    expect(text).toContain('JSON-projected vs unprojected: sampling time x5.00');
    expect(text).toContain('steps vs quality: 200 vs 50 steps: sampling time x4.00; attribute success 100.0% vs 0.0%');
    expect(text).toContain('webgpu: not usable here (no adapter)');
  });
});
