/**
 * Session management for the engine worker, whatever the model family: ONNX Runtime sessions per (bundle, provider,
 * mode, file), the helper thread (the second cpu lane) and the calls that run graphs on it, and the check that a
 * graph has the inputs and outputs its manifest promises. Family samplers (families/<family>/) call these.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { AuxGuideRequest, AuxReply, AuxRequest } from './aux-worker';
import { BundleError, parseTensorSpec } from './bundle-schema';
import { auxSessionOptions, laneSessionOptions, type Provider, sessionOptions } from './devices';
import type { Feeds, Outputs } from './session-run';
import { startWorker } from './spawn';

/** main: the provider's default threads; small: one intra-op thread (classifier graphs); lane: half the cores (one of two cpu lanes). */
export type SessionMode = 'main' | 'small' | 'lane';

export class EngineHost {
  private sessions = new Map<string, ort.InferenceSession>();
  private aux: Worker | null | undefined;
  private auxNext = 1;
  private auxPending = new Map<number, { resolve(v: Outputs): void; reject(e: Error): void }>();

  async session(dir: string, file: string, provider: Provider, mode: SessionMode = 'main'): Promise<ort.InferenceSession> {
    const key = `${dir}|${provider}|${mode}|${file}`;
    let s = this.sessions.get(key);
    if (!s) {
      const opts = mode === 'small' ? auxSessionOptions(provider) : mode === 'lane' ? laneSessionOptions(provider) : sessionOptions(provider);
      s = await ort.InferenceSession.create(join(dir, file), opts);
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Forget (and release) one session, e.g. after a failed device probe. */
  dropSession(dir: string, file: string, provider: Provider, mode: SessionMode = 'main'): void {
    const key = `${dir}|${provider}|${mode}|${file}`;
    const s = this.sessions.get(key);
    if (!s) return;
    this.sessions.delete(key);
    void s.release();
  }

  /** Release every session of a bundle folder (its files changed on disk). */
  dropBundle(dir: string): void {
    for (const [k, s] of this.sessions) {
      if (k.startsWith(`${dir}|`)) {
        void s.release();
        this.sessions.delete(k);
      }
    }
  }

  /** A session for a secondary graph (classifier, scorer) on the active provider, else on cpu. */
  async auxSession(dir: string, file: string, provider: Provider, small = false): Promise<ort.InferenceSession> {
    const mode = small ? 'small' : 'main';
    if (provider === 'cpu') return this.session(dir, file, 'cpu', mode);
    try {
      return await this.session(dir, file, provider, mode);
    } catch {
      return this.session(dir, file, 'cpu', mode);
    }
  }

  /** Whether runs on this provider get two cpu lanes (this thread and the helper thread). */
  lanes(provider: Provider): boolean {
    return provider === 'cpu' && this.auxWorker() !== null;
  }

  /** The helper thread: the second cpu lane (started on the first cpu run when there are 2+ cores; DLM_GUIDANCE_PARALLEL=0 keeps one lane). */
  auxWorker(): Worker | null {
    if (this.aux !== undefined) return this.aux;
    if (cpus().length < 2 || process.env.DLM_GUIDANCE_PARALLEL === '0') return (this.aux = null);
    const w = startWorker({ role: 'aux' });
    w.on('message', (m: AuxReply) => {
      const p = this.auxPending.get(m.id);
      if (!p) return;
      this.auxPending.delete(m.id);
      if (this.auxPending.size === 0) w.unref();
      if (m.ok) p.resolve(m.outputs);
      else p.reject(new Error(`helper thread: ${m.message}`));
    });
    const fail = (e: Error) => {
      this.aux = undefined;
      for (const p of this.auxPending.values()) p.reject(e);
      this.auxPending.clear();
    };
    w.on('error', fail);
    w.on('exit', () => fail(new Error('helper thread stopped')));
    w.unref();
    return (this.aux = w);
  }

  /** Run a graph (absolute path) on the helper thread. */
  auxCall(file: string, provider: Provider, feeds: Feeds, rows = 0, threads = 1): Promise<Outputs> {
    return this.auxSend({ file, provider, feeds, rows, threads });
  }

  auxSend(message: Omit<AuxRequest, 'id'> | Omit<AuxGuideRequest, 'id'>): Promise<Outputs> {
    const w = this.auxWorker();
    if (!w) return Promise.reject(new Error('no helper thread'));
    const id = this.auxNext++;
    return new Promise((resolve, reject) => {
      this.auxPending.set(id, { resolve, reject });
      w.ref();
      w.postMessage({ ...message, id });
    });
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
    const w = this.aux;
    this.aux = null;
    if (w) await w.terminate();
  }
}

/** ONNX tensor element types as manifests write them. */
const ORT_TYPES: Record<string, string> = { float32: 'float32', int64: 'int64', int32: 'int32', float16: 'float16' };

/**
 * Check a graph's inputs (and named outputs) against what the manifest lists: each listed input must exist with the
 * listed element type and rank, and the graph may have no input the engine would not feed. `outputs` are checked
 * only when given. A mismatch is a BundleError naming the file and the input: `denoiser.onnx: input 'ids' must be
 * int64[B,N] (the graph has ...)`.
 */
export function checkGraphIo(session: ort.InferenceSession, file: string, inputs: Record<string, string>, outputs?: Record<string, string>): void {
  const describe = (meta: readonly ort.InferenceSession.ValueMetadata[]) =>
    meta.map((m) => (m.isTensor ? `${m.name} ${m.type}[${m.shape.join(',')}]` : `${m.name} (not a tensor)`)).join(', ') || 'none';
  const check = (kind: 'input' | 'output', meta: readonly ort.InferenceSession.ValueMetadata[], want: Record<string, string>) => {
    for (const [name, spec] of Object.entries(want)) {
      const parsed = parseTensorSpec(spec);
      const m = meta.find((x) => x.name === name);
      const ok = !!m && m.isTensor && !!parsed && (ORT_TYPES[parsed.type] ?? parsed.type) === m.type && m.shape.length === parsed.dims.length;
      if (!ok) throw new BundleError(`${file}: ${kind} '${name}' must be ${spec} (the graph's ${kind}s: ${describe(meta)})`, file, `${kind}s.${name}`);
    }
  };
  check('input', session.inputMetadata, inputs);
  const extra = session.inputMetadata.find((m) => !(m.name in inputs));
  if (extra) {
    throw new BundleError(`${file}: input '${extra.name}' is not one the manifest lists (${Object.keys(inputs).join(', ')}), so the engine cannot feed it`, file, `inputs.${extra.name}`);
  }
  if (outputs) check('output', session.outputMetadata, outputs);
}
