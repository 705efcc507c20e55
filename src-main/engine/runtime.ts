/**
 * What the engine worker does: owns the bundles and ONNX Runtime sessions, probes devices, and runs generation.
 * Lives in the worker thread (worker.ts); nothing here touches the main thread.
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { type ClassifierEntry, type LoadedBundle, loadBundle, type Manifest } from './bundle';
import { compileForEngine, evaluateForEngine, type EngineModelInfo } from './constraints-adapter';
import { cpus } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { AuxGuideRequest, AuxReply, AuxRequest } from './aux-worker';
import { auxSessionOptions, chooseProvider, laneSessionOptions, laneThreads, type Provider, rounderSessionOptions, sessionOptions } from './devices';
import { processClockMs } from './clock';
import { type Feeds, type Outputs, runRows } from './session-run';
import { startWorker } from './spawn';
import { buildTargets, chooseJointGraph, type ClassifierRunner, DEFAULT_LAMBDA, type JointRunner, type JointTargets, jointTargets, jointTermFromTargets, makeTerm } from './guidance';
import { sampleSeeds } from './prng';
import { nearestGraph, scoresGraph } from './onnx-graph';
import { type Embeddings, type GuidanceConfig, type GuidanceTerm, guideStep, makeEmbeddings, type Rounder, sampleBatch } from './sampler';
import { buildSchedule } from './schedule';
import { perplexities } from './scorer';
import { END } from './tokenizer';
import { type DevicePreference, type DeviceReport, type GeneratedOutput, type GenerateRequest, resolvePrecision, type RunSummary, type StepProgress } from './types';

export interface GenerateJob {
  dir: string;
  request: GenerateRequest;
  batchSize: number;
}

export interface RunSink {
  progress(p: StepProgress): void;
  output(o: GeneratedOutput): void;
  cancelled(): boolean;
}

interface Loaded {
  bundle: LoadedBundle;
  emb: Embeddings;
  model: EngineModelInfo;
  rounder: Rounder;
}

/** Nearest-embedding search as ONNX graphs on the cpu provider (rows are independent: any thread count gives the same ids). */
async function ortRounder(emb: Embeddings): Promise<Rounder> {
  const opts = rounderSessionOptions();
  const near = await ort.InferenceSession.create(nearestGraph(emb.E, emb.V, emb.d), opts);
  const scores = await ort.InferenceSession.create(scoresGraph(emb.E, emb.V, emb.d), opts);
  return {
    async nearest(x, count) {
      const out = await near.run({ X: new ort.Tensor('float32', x.subarray(0, count * emb.d), [count, emb.d]) });
      const idx = out.IDX!.data as BigInt64Array;
      const r = new Int32Array(count);
      for (let i = 0; i < count; i++) r[i] = Number(idx[i]);
      return r;
    },
    async scores(x, count) {
      const out = await scores.run({ X: new ort.Tensor('float32', x.subarray(0, count * emb.d), [count, emb.d]) });
      return out.S!.data as Float32Array;
    },
  };
}

export function decodeCanvas(tokens: ArrayLike<number>, off: number, bundle: LoadedBundle): { recordText: string; text: string; textIds: number[] } {
  const segs = bundle.manifest.canvas.segments;
  const rec = segs.find((s) => s.name === 'record');
  const txt = segs.find((s) => s.name === 'text')!;
  let recordText = '';
  if (rec) for (let i = 0; i < rec.length; i++) recordText += bundle.tokenizer.surface(tokens[off + rec.start + i]!);
  const textIds: number[] = [];
  for (let i = 0; i < txt.length; i++) {
    const id = tokens[off + txt.start + i]!;
    if (id === END) break;
    textIds.push(id);
  }
  return { recordText, text: bundle.tokenizer.decode(textIds), textIds };
}

export function parseRecord(s: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(s) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export class Runtime {
  private loaded = new Map<string, Loaded>();
  private aux: Worker | null | undefined;
  private auxNext = 1;
  private auxPending = new Map<number, { resolve(v: Outputs): void; reject(e: Error): void }>();
  private sessions = new Map<string, ort.InferenceSession>();
  private reports = new Map<string, DeviceReport>();

  async load(dir: string): Promise<Loaded> {
    // re-verify every time (hashes are cached by size + mtime), so a bundle changed on disk is noticed
    const bundle = await loadBundle(dir);
    const hit = this.loaded.get(dir);
    if (hit && hit.bundle.hash === bundle.hash) return hit;
    if (hit) this.dropSessions(dir);
    const m = bundle.manifest;
    const emb = makeEmbeddings(bundle.embeddings, bundle.vocabSize, bundle.dim);
    const l: Loaded = {
      bundle,
      emb,
      rounder: await ortRounder(emb),
      model: {
        vocab: bundle.tokenizer.tokens,
        specials: { pad: 0, sep: 1, end: 2, unk: 3 },
        canvas: m.canvas,
        recordFields: m.record_schema?.fields ?? {},
        tokenizer: bundle.tokenizer,
      },
    };
    this.loaded.set(dir, l);
    return l;
  }

  private dropSessions(dir: string): void {
    for (const [k, s] of this.sessions) {
      if (k.startsWith(`${dir}|`)) {
        void s.release();
        this.sessions.delete(k);
      }
    }
    for (const k of this.reports.keys()) if (k.startsWith(`${dir}|`)) this.reports.delete(k);
  }

  /** small: one intra-op thread (classifier graphs); lane: half the cores (the denoiser on one of two cpu lanes). */
  async session(dir: string, file: string, provider: Provider, mode: 'main' | 'small' | 'lane' = 'main'): Promise<ort.InferenceSession> {
    const key = `${dir}|${provider}|${mode}|${file}`;
    let s = this.sessions.get(key);
    if (!s) {
      const opts = mode === 'small' ? auxSessionOptions(provider) : mode === 'lane' ? laneSessionOptions(provider) : sessionOptions(provider);
      s = await ort.InferenceSession.create(join(dir, file), opts);
      this.sessions.set(key, s);
    }
    return s;
  }

  /** The helper thread: the second cpu lane (started on the first cpu run when there are 2+ cores; DLM_GUIDANCE_PARALLEL=0 keeps one lane). */
  private auxWorker(): Worker | null {
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

  private auxCall(file: string, provider: Provider, feeds: Feeds, perSample = false, threads = 1): Promise<Outputs> {
    return this.auxSend({ file, provider, feeds, perSample, threads });
  }

  private auxSend(message: Omit<AuxRequest, 'id'> | Omit<AuxGuideRequest, 'id'>): Promise<Outputs> {
    const w = this.auxWorker();
    if (!w) return Promise.reject(new Error('no helper thread'));
    const id = this.auxNext++;
    return new Promise((resolve, reject) => {
      this.auxPending.set(id, { resolve, reject });
      w.ref();
      w.postMessage({ ...message, id });
    });
  }

  /**
   * A guidance step split over the two cpu lanes: the helper thread runs the whole K-iteration step on the first half
   * of the batch while this thread runs it on the second (one hand-over per denoising step, not per iteration).
   */
  private laneGuideStep(cfg: GuidanceConfig, files: Record<string, string>, targets: JointTargets): NonNullable<GuidanceConfig['run']> {
    const local: GuidanceConfig = { ...cfg, run: undefined };
    return async (x, mu, sigma, tTrain, B, N, d, heldPos) => {
      const half = B > 1 ? Math.ceil(B / 2) : 0;
      const size = half * N * d;
      const remote = half ? this.auxSend({
        kind: 'guide', files, targets, x: x.slice(0, size), mu: mu.slice(0, size), sigma, tTrain, B: half, N, d, heldPos,
        iterations: cfg.iterations, stepSize: cfg.stepSize, lambda: cfg.lambda,
      }) : null;
      const mine = guideStep(x.subarray(size), mu.subarray(size), sigma, tTrain, B - half, N, d, heldPos, local);
      const [r] = await Promise.all([remote, mine]);
      if (r) x.set(r.x!.data, 0);
    };
  }

  async probe(dir: string, pref: DevicePreference): Promise<DeviceReport> {
    const l = await this.load(dir);
    const key = `${dir}|${pref}`;
    const hit = this.reports.get(key);
    if (hit) return hit;
    const m = l.bundle.manifest;
    const report = await chooseProvider(pref, async (p) => {
      const s = await this.session(dir, m.denoiser.file, p).catch((e: unknown) => {
        throw e;
      });
      try {
        const N = m.canvas.length;
        const d = m.embedding.dim;
        const out = await s.run({ x_t: new ort.Tensor('float32', new Float32Array(N * d), [1, N, d]), t: new ort.Tensor('float32', new Float32Array([1]), [1]) });
        const x0 = out.x0 ?? out[s.outputNames[0]!]!;
        if (!(x0.data as Float32Array).every(Number.isFinite)) throw new Error(`${p}: the denoiser produced non-finite values`);
      } catch (e) {
        this.sessions.delete(`${dir}|${p}|main|${m.denoiser.file}`);
        void s.release();
        throw e;
      }
    });
    this.reports.set(key, report);
    return report;
  }

  /** A session for a secondary graph (classifier, scorer) on the active provider, else on cpu. */
  private async auxSession(dir: string, file: string, provider: Provider, small = false): Promise<ort.InferenceSession> {
    const mode = small ? 'small' : 'main';
    if (provider === 'cpu') return this.session(dir, file, 'cpu', mode);
    try {
      return await this.session(dir, file, provider, mode);
    } catch {
      return this.session(dir, file, 'cpu', mode);
    }
  }

  private async classifierRunner(dir: string, entry: ClassifierEntry, provider: Provider, remote: boolean): Promise<ClassifierRunner> {
    const sessions = new Map<number, ort.InferenceSession>();
    for (const b of entry.batch_sizes) sessions.set(b, await this.auxSession(dir, entry.files[String(b)]!, provider, true));
    const runner: ClassifierRunner = { entry, sessions };
    // the helper thread runs on cpu (accelerated providers run one graph at a time anyway)
    if (remote && provider === 'cpu' && this.auxWorker()) {
      runner.remote = (bs, feeds) => this.auxCall(join(dir, entry.files[String(bs)]!), 'cpu', feeds);
    }
    return runner;
  }

  private async jointRunner(dir: string, m: Manifest, files: Record<string, string>, provider: Provider): Promise<JointRunner> {
    const j = m.joint_guidance!;
    const sessions = new Map<number, ort.InferenceSession>();
    for (const b of j.batch_sizes) sessions.set(b, await this.auxSession(dir, files[String(b)]!, provider, true));
    const entries = new Map(m.classifiers.filter((c) => j.controls.includes(c.control)).map((c) => [c.control as string, c]));
    return { controls: j.controls, entries, sessions };
  }

  async generate(job: GenerateJob, sink: RunSink): Promise<RunSummary & { warnings: string[] }> {
    const t0 = performance.now();
    const { request } = job;
    const l = await this.load(job.dir);
    const { bundle, emb } = l;
    const m = bundle.manifest;
    const device = await this.probe(job.dir, request.device);
    const provider = device.active;
    const set = request.constraints;
    const sampler = set.sampler;
    const precision = resolvePrecision(sampler.precision, provider, !!m.denoiser.int8, m.id);
    const denoiserFile = precision === 'int8' ? m.denoiser.int8!.file : m.denoiser.file;
    // two lanes on cpu: this thread and the helper thread each denoise half of the batch with one intra-op thread
    const lanes = provider === 'cpu' && this.auxWorker() !== null;
    const denoiser = await this.session(job.dir, denoiserFile, provider, lanes ? 'lane' : 'main');
    // dynamic int8 quantizes activations with one range per call: one sample per call keeps samples batch-independent
    // (static int8, calibrated ranges, and fp32 are row-independent already)
    const perSample = precision === 'int8' && m.denoiser.int8?.activations === 'dynamic';
    const tLoaded = performance.now();

    const N = m.canvas.length;
    const d = m.embedding.dim;
    const schedule = buildSchedule(m.schedule.T, m.schedule.s, sampler.steps);
    const compiled = await compileForEngine(set, l.model);
    const held = new Int32Array(N).fill(-1);
    for (const h of compiled.held) held[h.position] = h.token;
    const warnings: string[] = [];

    // guidance terms from the soft targets the bundle has classifiers for
    const gs = sampler.guidance;
    let guidance: GuidanceConfig | null = null;
    if (gs.enabled && gs.iterations > 0 && gs.strength > 0 && compiled.soft.length) {
      const terms: GuidanceTerm[] = [];
      const lambdas: number[] = [];
      let laneGuide: { files: Record<string, string>; targets: JointTargets } | null = null;
      const guided = compiled.soft.filter((soft) => {
        if (m.classifiers.some((c) => c.control === soft.kind)) return true;
        warnings.push(`no ${soft.kind} classifier in bundle ${m.id}: constraint ${soft.index ?? ''} is evaluated but not guided`.replace('  ', ' '));
        return false;
      });
      for (const soft of guided) {
        const entry = m.classifiers.find((c) => c.control === soft.kind)!;
        lambdas.push(entry.lambda ?? DEFAULT_LAMBDA[soft.kind] ?? 0.01);
      }
      const joint = m.joint_guidance;
      if (joint && process.env.DLM_GUIDANCE_JOINT !== '0' && guided.length && guided.every((soft) => joint.controls.includes(soft.kind))) {
        // one trunk pass for all controls
        const weighted = guided.map((soft) => ({ soft, weight: (soft.weight ?? 1) * gs.strength }));
        const { files } = chooseJointGraph(joint, weighted);
        const runner = await this.jointRunner(job.dir, m, files, provider);
        const seg = m.canvas.segments.find((s) => s.name === joint.segment)!;
        const targets = jointTargets(runner, weighted, seg.length);
        terms.push(jointTermFromTargets(runner.sessions, targets, N, d, guided.map((soft) => soft.kind).join('+')));
        if (lanes) laneGuide = { files: Object.fromEntries(Object.entries(files).map(([bs, f]) => [bs, join(job.dir, f)])), targets };
      } else {
        for (const [i, soft] of guided.entries()) {
          const entry = m.classifiers.find((c) => c.control === soft.kind)!;
          // with several classifiers, every other one runs on the helper thread, in parallel
          const runner = await this.classifierRunner(job.dir, entry, provider, guided.length > 1 && i % 2 === 0);
          const seg = m.canvas.segments.find((s) => s.name === entry.segment)!;
          buildTargets(entry, soft, seg.length, runner.sessions.values().next().value);
          terms.push(makeTerm(runner, soft, (soft.weight ?? 1) * gs.strength, seg.length, N, d));
        }
      }
      if (terms.length) {
        guidance = {
          terms,
          iterations: gs.iterations,
          stepSize: gs.stepSize,
          // the strongest anchor among the active controls (Diffusion-LM's composition used 0.01)
          lambda: gs.fluencyWeight ?? Math.max(...lambdas),
          offLastSteps: gs.offLastSteps,
        };
        if (laneGuide) guidance.run = this.laneGuideStep(guidance, laneGuide.files, laneGuide.targets);
      }
    }
    const scorer = m.scorer ? await this.auxSession(job.dir, m.scorer.file, provider) : null;
    const textSeg = m.canvas.segments.find((s) => s.name === 'text')!;
    const tCompiled = performance.now();

    const total = sampler.samples;
    const seeds = sampleSeeds(sampler.seed, total);
    const stepTimes: number[] = [];
    let cancelled = false;
    const tSample = performance.now();
    for (let start = 0; start < total && !cancelled; start += job.batchSize) {
      const batchSeeds = seeds.slice(start, start + job.batchSize);
      const B = batchSeeds.length;
      const res = await sampleBatch({
        seeds: batchSeeds,
        length: N,
        emb,
        schedule,
        clamp: sampler.clamp,
        rounder: l.rounder,
        held,
        projectors: compiled.hard,
        guidance,
        denoise: async (x, t, b) => {
          const rows = (from: number, to: number): Feeds => ({
            x_t: { type: 'float32', data: x.subarray(from * N * d, to * N * d), dims: [to - from, N, d] },
            t: { type: 'float32', data: t.subarray(from, to), dims: [to - from] },
          });
          const x0Of = (o: Outputs) => (o.x0 ?? Object.values(o)[0]!).data;
          if (!lanes || b < 2) return x0Of(await runRows(denoiser, rows(0, b), perSample));
          const half = Math.ceil(b / 2);
          const [first, second] = await Promise.all([
            this.auxCall(join(job.dir, denoiserFile), 'cpu', rows(0, half), perSample, laneThreads()),
            runRows(denoiser, rows(half, b), perSample),
          ]);
          const out = new Float32Array(b * N * d);
          out.set(x0Of(first), 0);
          out.set(x0Of(second), half * N * d);
          return out;
        },
        onStep(step, tokens) {
          const canvases: { record: string; text: string }[] = [];
          for (let b = 0; b < B; b++) {
            const c = decodeCanvas(tokens, b * N, bundle);
            canvases.push({ record: c.recordText, text: c.text });
          }
          sink.progress({ step, steps: sampler.steps, elapsedMs: performance.now() - tSample, at: processClockMs(), batchStart: start, canvases });
        },
        cancelled: () => sink.cancelled(),
      });
      stepTimes.push(...res.stepMs);
      if (!res.tokens) {
        cancelled = true;
        break;
      }
      const decoded = batchSeeds.map((_, b) => decodeCanvas(res.tokens!, b * N, bundle));
      const fluency = scorer ? await perplexities(scorer, decoded.map((c) => c.textIds), textSeg.length + 1, m.scorer!.bos, m.scorer!.eos) : null;
      const outputs = decoded.map((c) => ({ text: c.text, record: parseRecord(c.recordText), textPieces: c.textIds.map((id) => bundle.tokenizer.surface(id)) }));
      const scores = await evaluateForEngine(set, outputs);
      decoded.forEach((c, b) => {
        sink.output({
          index: start + b,
          seed: batchSeeds[b]!,
          text: c.text,
          record: outputs[b]!.record,
          recordText: c.recordText,
          tokens: Array.from(res.tokens!.subarray(b * N, (b + 1) * N)),
          constraints: scores[b] ?? [],
          fluency: fluency ? fluency[b]! : null,
        });
      });
    }
    const tEnd = performance.now();
    return {
      status: cancelled ? 'cancelled' : 'completed',
      model: { id: m.id, version: m.version, hash: bundle.hash },
      device: { ...device, precision },
      timings: {
        loadMs: tLoaded - t0,
        compileMs: tCompiled - tLoaded,
        sampleMs: tEnd - tSample,
        perStepMs: stepTimes.length ? stepTimes.reduce((a, b) => a + b, 0) / stepTimes.length : 0,
        totalMs: tEnd - t0,
      },
      warnings,
    };
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
    const w = this.aux;
    this.aux = null;
    if (w) await w.terminate();
  }
}
