/**
 * A small in-test Engine for the service unit tests only (the integration and e2e tests use the real engine).
 * It emits progress per step and one output per sample, yielding to the event loop between steps, honours
 * the abort signal, and can be told to fail.
 */
import type { DeviceReport, Engine, GenerateHooks, GenerateRequest, ModelSummary, RunSummary } from '../../../src-main/engine/types';

export class FakeEngine implements Engine {
  calls: GenerateRequest[] = [];
  active = 0;
  maxActive = 0;
  failWith: string | null = null;
  stepDelayMs = 0;
  disposed = false;

  readonly model: ModelSummary = {
    id: 'fake-model',
    name: 'Fake',
    version: '0.1.0',
    kind: 'continuous-embedding-diffusion',
    path: '/models/fake',
    hash: 'f'.repeat(64),
    source: 'bundled',
    canvas: { length: 8, segments: [{ name: 'text', start: 0, length: 8 }] },
    recordFields: {},
    controls: [],
    hasScorer: false,
  };

  async listModels(): Promise<ModelSummary[]> {
    return [this.model, { ...this.model, id: 'broken-model', error: 'manifest.json: missing field "canvas"' }];
  }

  async probeDevices(preference: DeviceReport['requested']): Promise<DeviceReport> {
    return { requested: preference, active: 'cpu', probes: [{ provider: 'cpu', bundled: true, usable: true }] };
  }

  async generate(request: GenerateRequest, hooks: GenerateHooks): Promise<RunSummary> {
    this.calls.push(request);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    const t0 = Date.now();
    const { steps, samples, seed } = request.constraints.sampler;
    const summary = (status: RunSummary['status'], error?: string): RunSummary => ({
      status,
      model: { id: this.model.id, version: this.model.version, hash: this.model.hash },
      device: { requested: request.device, active: 'cpu', probes: [] },
      timings: { loadMs: 1, compileMs: 1, sampleMs: Date.now() - t0, perStepMs: (Date.now() - t0) / steps, totalMs: Date.now() - t0 + 2 },
      ...(error ? { error } : {}),
    });
    try {
      for (let s = 0; s < samples; s++) {
        for (let k = 1; k <= steps; k++) {
          if (hooks.signal?.aborted) return summary('cancelled');
          await new Promise((r) => setTimeout(r, this.stepDelayMs));
          hooks.onProgress?.({ step: k, steps, elapsedMs: Date.now() - t0, batchStart: s, canvases: [{ record: '', text: `step ${k}` }] });
        }
        if (this.failWith && s === 1) throw new Error(this.failWith);
        hooks.onOutput?.({
          index: s,
          seed: seed + s,
          text: `sample ${s} of ${samples}`,
          record: null,
          recordText: '',
          tokens: [s],
          constraints: request.constraints.constraints.map((c, i) => ({ index: i, kind: c.kind, satisfied: s % 2 === 0, score: s % 2 === 0 ? 1 : 0 })),
          fluency: 20 + s,
        });
      }
      return summary('completed');
    } finally {
      this.active--;
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}
