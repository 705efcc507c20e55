/**
 * createEngine: the main-thread face of the engine. Bundles are listed here (file hashing is async I/O); all
 * inference runs in one worker thread that owns the ONNX Runtime sessions. Runs are serialized.
 */
import type { Worker } from 'node:worker_threads';
import { ApiError, isErrorCode } from '../api/errors';
import { parseConstraintSet } from '../constraints/set';
import { DEFAULT_MODEL_ID, resolveModel, scanModels } from './bundle';
import { CANCEL_ALL, type FromWorker, type ToWorker } from './protocol';
import { startWorker } from './spawn';
import type { DevicePreference, DeviceReport, Engine, EngineOptions, GenerateHooks, GenerateRequest, ModelSummary, RunSummary } from './types';

export { DEFAULT_MODEL_ID } from './bundle';
export type * from './types';

const DEFAULT_BATCH = 8;
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

function toError(e: { code: string; message: string; path?: string }): ApiError {
  return new ApiError(isErrorCode(e.code) ? e.code : 'INTERNAL', e.message, e.path);
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onMessage?(m: FromWorker): void;
}

class WorkerEngine implements Engine {
  private worker: Worker | null = null;
  private readonly cancel = new Int32Array(new SharedArrayBuffer(4));
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(private readonly options: EngineOptions) {}

  private ensureWorker(): Worker {
    if (this.disposed) throw new ApiError('ENGINE_UNAVAILABLE', 'the engine was disposed');
    if (this.worker) return this.worker;
    const w = startWorker({ cancel: this.cancel.buffer });
    w.on('message', (m: FromWorker) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.type === 'result') {
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.value);
        else p.reject(toError(m.error));
      } else {
        p.onMessage?.(m);
      }
    });
    const fail = (err: Error) => {
      if (this.worker !== w) return;
      this.worker = null;
      const pending = [...this.pending.values()];
      this.pending.clear();
      for (const p of pending) p.reject(new ApiError('ENGINE_UNAVAILABLE', `engine worker stopped: ${err.message}`));
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    w.unref();
    this.worker = w;
    return w;
  }

  private call<T>(msg: WithoutId<ToWorker>, onMessage?: (m: FromWorker) => void): { id: number; done: Promise<T> } {
    const id = this.nextId++;
    const done = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onMessage });
      const w = this.ensureWorker();
      w.ref();
      w.postMessage({ ...msg, id } as ToWorker);
    }).finally(() => {
      if (this.pending.size === 0) this.worker?.unref();
    });
    return { id, done };
  }

  /** Serialize: one job in the worker at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  listModels(): Promise<ModelSummary[]> {
    return scanModels(this.options.modelDirs);
  }

  private async defaultModel(): Promise<ModelSummary> {
    const all = (await this.listModels()).filter((m) => !m.error);
    const m = all.find((x) => x.id === DEFAULT_MODEL_ID) ?? all[0];
    if (!m) throw new ApiError('NOT_FOUND', `no valid model bundle in ${this.options.modelDirs.join(', ')}`);
    return m;
  }

  /** Device reports per (bundle, preference): a probe does not change while the process lives, and a cached one
   * answers at once instead of queueing behind a run in the worker. */
  private probes = new Map<string, DeviceReport>();

  async probeDevices(preference: DevicePreference, model?: string): Promise<DeviceReport> {
    const m = model ? await this.resolve(model) : await this.defaultModel();
    const key = `${m.path}|${m.hash}|${preference}`;
    const hit = this.probes.get(key);
    if (hit) return hit;
    const report = await this.serial(() => this.call<DeviceReport>({ type: 'probe', dir: m.path, pref: preference }).done);
    this.probes.set(key, report);
    return report;
  }

  private async resolve(id: string): Promise<ModelSummary> {
    try {
      return await resolveModel(this.options.modelDirs, id);
    } catch (e) {
      const err = e as { code?: string; message: string };
      throw new ApiError(err.code === 'BUNDLE_INVALID' ? 'BUNDLE_INVALID' : 'NOT_FOUND', err.message, 'model');
    }
  }

  async generate(request: GenerateRequest, hooks: GenerateHooks = {}): Promise<RunSummary> {
    const constraints = parseConstraintSet(request.constraints);
    const model = await this.resolve(request.model || DEFAULT_MODEL_ID);
    return this.serial(async () => {
      if (hooks.signal?.aborted) {
        return {
          status: 'cancelled', model: { id: model.id, version: model.version, hash: model.hash },
          device: { requested: request.device, active: 'cpu', probes: [] },
          timings: { loadMs: 0, compileMs: 0, sampleMs: 0, perStepMs: 0, totalMs: 0 },
        } satisfies RunSummary;
      }
      const job = {
        dir: model.path, request: { ...request, constraints }, batchSize: this.options.batchSize ?? DEFAULT_BATCH,
        ...(this.options.logitsCache !== undefined ? { logitsCache: this.options.logitsCache } : {}),
      };
      const { id, done } = this.call<RunSummary>({ type: 'generate', job }, (m) => {
        if (m.type === 'progress') hooks.onProgress?.(m.progress);
        else if (m.type === 'output') hooks.onOutput?.(m.output);
      });
      const onAbort = () => Atomics.store(this.cancel, 0, id);
      hooks.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const summary = await done;
        if (summary.device.probes.length) this.probes.set(`${model.path}|${model.hash}|${request.device}`, summary.device);
        return summary;
      } finally {
        hooks.signal?.removeEventListener('abort', onAbort);
      }
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    const w = this.worker;
    this.disposed = true;
    if (!w) return;
    this.worker = null;
    // the calls in flight are answered once the worker is gone (their own results, if any, are ignored)
    const pending = [...this.pending.values()];
    this.pending.clear();
    // a run stops at its next step and the worker releases its sessions and its helper thread before the thread
    // goes: terminating it inside an onnxruntime call can take the whole process down
    Atomics.store(this.cancel, 0, CANCEL_ALL);
    const id = this.nextId++;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, DISPOSE_GRACE_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      w.on('message', (m: FromWorker) => {
        if (m.id === id && m.type === 'result') done();
      });
      w.on('exit', done);
      w.ref();
      w.postMessage({ type: 'dispose', id } as ToWorker);
    });
    await w.terminate();
    for (const p of pending) p.reject(new ApiError('ENGINE_UNAVAILABLE', 'the engine was disposed during the call'));
  }
}

/** How long dispose waits for a run to stop and the worker to release its sessions before terminating it. */
const DISPOSE_GRACE_MS = 10_000;

export function createEngine(options: EngineOptions): Engine {
  return new WorkerEngine(options);
}
