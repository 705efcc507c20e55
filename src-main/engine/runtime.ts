/**
 * What the engine worker does, for every model family alike: load and verify bundles, probe devices, compile the
 * constraint set, run the samples in batches through the bundle's family (families/), and decode and score the
 * outputs. Lives in the worker thread (worker.ts); nothing here touches the main thread.
 */
import { loadBundle } from './bundle';
import { isGuidedRun } from '../constraints/set';
import { compileForEngine, evaluateForEngine, type EngineModelInfo } from './constraints-adapter';
import { decodeCanvas, parseRecord } from './decode';
import { chooseProvider } from './devices';
import { familyOf } from './families/index';
import { familyCompileHints } from './families/manifests';
import type { FamilyManifestBase, LoadedBundle, ModelFamily } from './families/family';
import { processClockMs } from './clock';
import { EngineHost } from './host';
import { sampleSeeds } from './prng';
import { lengthCheck, selectCandidate } from './candidates';
import { END, PAD, SPECIALS } from './tokenizer';
import { perplexities } from './scorer';
import type { DevicePreference, DeviceReport, GeneratedOutput, GenerateRequest, RunSummary, StepProgress } from './types';

export interface GenerateJob {
  dir: string;
  request: GenerateRequest;
  batchSize: number;
  /** EngineOptions.logitsCache; unset: on unless DLM_MASKED_CACHE=0 in the worker's environment. */
  logitsCache?: boolean;
}

export interface RunSink {
  progress(p: StepProgress): void;
  output(o: GeneratedOutput): void;
  cancelled(): boolean;
}

interface Loaded {
  bundle: LoadedBundle;
  family: ModelFamily<FamilyManifestBase, unknown>;
  /** What the family's open() keeps for this bundle. */
  state: unknown;
  model: EngineModelInfo;
}

/** The compiler's view of a bundle: its vocabulary, canvas and record fields, and what its family cannot steer. */
export function engineModelInfo(bundle: LoadedBundle): EngineModelInfo {
  const m = bundle.manifest;
  return {
    vocab: bundle.tokenizer.tokens,
    specials: SPECIALS,
    canvas: m.canvas,
    recordFields: m.record_schema?.fields ?? {},
    tokenizer: bundle.tokenizer,
    ...familyCompileHints(m),
  };
}

export class Runtime {
  private loaded = new Map<string, Loaded>();
  private reports = new Map<string, DeviceReport>();
  readonly host = new EngineHost();

  async load(dir: string): Promise<Loaded> {
    // re-verify every time (hashes are cached by size + mtime), so a bundle changed on disk is noticed
    const bundle = await loadBundle(dir);
    const hit = this.loaded.get(dir);
    if (hit && hit.bundle.hash === bundle.hash) return hit;
    if (hit) {
      this.host.dropBundle(dir);
      for (const k of this.reports.keys()) if (k.startsWith(`${dir}|`)) this.reports.delete(k);
    }
    const family = familyOf(bundle.manifest.kind);
    const l: Loaded = { bundle, family, state: await family.open(bundle), model: engineModelInfo(bundle) };
    this.loaded.set(dir, l);
    return l;
  }

  async probe(dir: string, pref: DevicePreference): Promise<DeviceReport> {
    const l = await this.load(dir);
    const key = `${dir}|${pref}`;
    const hit = this.reports.get(key);
    if (hit) return hit;
    const report = await chooseProvider(pref, (p) => l.family.probe(this.host, l.bundle, p));
    this.reports.set(key, report);
    return report;
  }

  async generate(job: GenerateJob, sink: RunSink): Promise<RunSummary & { warnings: string[] }> {
    const t0 = performance.now();
    const { request } = job;
    const l = await this.load(job.dir);
    const { bundle } = l;
    const m = bundle.manifest;
    const device = await this.probe(job.dir, request.device);
    const provider = device.active;
    const set = request.constraints;
    const sampler = set.sampler;
    const warnings: string[] = [];
    const notes: string[] = [];
    const logitsCache = job.logitsCache ?? process.env.DLM_MASKED_CACHE !== '0';
    const guided = isGuidedRun(set.constraints, sampler.guidance);
    const run = await l.family.prepare({ host: this.host, bundle, state: l.state, provider, sampler, guided, warnings, notes, logitsCache });
    const tLoaded = performance.now();

    const N = m.canvas.length;
    const compiled = await compileForEngine(set, l.model);
    const held = new Int32Array(N).fill(-1);
    for (const h of compiled.held) held[h.position] = h.token;
    for (const v of compiled.verdicts) if (v.unserved) warnings.push(`constraint ${v.index} (${v.kind}) is ${v.detail}`);
    const batches = await run.plan(compiled, held);
    const scorer = m.scorer ? await this.host.auxSession(job.dir, m.scorer.file, provider) : null;
    const textSeg = m.canvas.segments.find((s) => s.name === 'text')!;
    const tCompiled = performance.now();

    const total = sampler.samples;
    const K = sampler.candidates;
    // output-major work list: output j's candidate c draws seeds[j + c * total], so candidate 0 is the very sample a
    // run without candidates draws, and a batch holds whole outputs where it can
    const seeds = sampleSeeds(sampler.seed, total * K);
    const item = (output: number, candidate: number) => ({ output, candidate, seed: seeds[output + candidate * total]! });
    // sampler.accept_at: candidates are drawn round by round (each open output's next one), and an output closes at
    // its first candidate that passes every test the run has: the classifiers' p >= accept_at (at strength 1) where
    // they score the candidates, and the length asked for, counted as the constraint counts it (candidates.ts)
    const acceptStrength = batches.scoring?.acceptStrength;
    const stopEarly = K > 1 && sampler.accept_at !== undefined && sampler.accept_at < 1;
    const acceptAbove = stopEarly && acceptStrength !== undefined ? Math.log(sampler.accept_at!) * acceptStrength : null;
    const counted = lengthCheck(set);
    const roundByRound = stopEarly && (acceptAbove !== null || counted !== null);
    const work = !roundByRound
      ? Array.from({ length: total * K }, (_, w) => item(Math.floor(w / K), w % K))
      : Array.from({ length: total }, (_, j) => item(j, 0));
    /**
     * Per output not yet emitted: its candidates' tokens, scores and whether each has the length asked for, by
     * candidate index, and how many of them, in candidate order, have been looked at; closed at the first one that
     * passes the run's tests (round by round), or with all K in.
     */
    type Pending = { tokens: Int32Array[]; scores: (number | undefined)[]; lengthOk: boolean[]; considered: number; closed?: boolean };
    const pending = new Map<number, Pending>();
    const passes = (p: Pending, c: number) => {
      const score = p.scores[c];
      return roundByRound && (acceptAbove === null || (score !== undefined && score >= acceptAbove)) && p.lengthOk[c]!;
    };
    /** Look at output j's candidates in order, up to the first not yet drawn: close it, or (round by round) draw its next. */
    const settle = (j: number) => {
      const p = pending.get(j)!;
      for (; !p.closed && p.considered < K && p.tokens[p.considered]; p.considered++) {
        if (passes(p, p.considered) || p.considered === K - 1) p.closed = true;
      }
      if (!p.closed && roundByRound) work.push(item(j, p.considered));
    };
    let emitted = 0;
    const stepTimes: number[] = [];
    let calls: number | undefined;
    let denoiserMs: number | undefined;
    let guideMs: number | undefined;
    let cancelled = false;
    const tSample = performance.now();
    while (work.length && !cancelled) {
      const batch = work.splice(0, job.batchSize);
      const outputOf = K > 1 ? { candidates: K, outputOf: batch.map((w) => w.output), candidateOf: batch.map((w) => w.candidate) } : {};
      const res = await batches.sample({
        seeds: batch.map((w) => w.seed),
        progress: (p) => sink.progress({ ...p, elapsedMs: performance.now() - tSample, at: processClockMs(), batchStart: batch[0]!.output, ...outputOf }),
        cancelled: () => sink.cancelled(),
      });
      stepTimes.push(...res.stepMs);
      if (res.calls !== undefined) calls = (calls ?? 0) + res.calls;
      if (res.denoiserMs !== undefined) denoiserMs = (denoiserMs ?? 0) + res.denoiserMs;
      if (res.guideMs) guideMs = (guideMs ?? 0) + res.guideMs;
      if (!res.tokens) {
        cancelled = true;
        break;
      }
      const lengthOk = counted && K > 1 ? await counted(batch.map((_, b) => decodeCanvas(res.tokens!, b * N, bundle).text)) : null;
      batch.forEach((w, b) => {
        const p = pending.get(w.output) ?? { tokens: [], scores: [], lengthOk: [], considered: 0 };
        p.tokens[w.candidate] = res.tokens!.slice(b * N, (b + 1) * N);
        p.scores[w.candidate] = res.scores?.[b];
        p.lengthOk[w.candidate] = lengthOk?.[b] ?? true;
        pending.set(w.output, p);
      });
      for (const j of new Set(batch.map((w) => w.output))) settle(j);
      // the outputs whose candidates are all in (or accepted), in order
      const ready: { index: number; tokens: Int32Array; seed: number; consensus?: GeneratedOutput['consensus'] }[] = [];
      for (; emitted < total && pending.get(emitted)?.closed; emitted++) {
        const p = pending.get(emitted)!;
        pending.delete(emitted);
        const n = p.considered;
        const scores = p.scores.slice(0, n);
        const pick = K > 1 ? selectCandidate(p.tokens.slice(0, n).map((t) => generatedTokens(t, held, textSeg)), scores, batches.scoring?.by, counted ? p.lengthOk.slice(0, n) : undefined) : null;
        const drawn = n < K ? { drawn: n } : {};
        ready.push({
          index: emitted,
          tokens: p.tokens[pick?.chosen ?? 0]!,
          seed: seeds[emitted + (pick?.chosen ?? 0) * total]!,
          ...(pick ? { consensus: { candidates: K, ...drawn, chosen: pick.chosen, agreement: pick.agreement, by: pick.by, ...(pick.by === 'classifiers' || pick.by === 'model' || pick.by === 'read-back' ? { scores: scores as number[] } : {}) } } : {}),
        });
      }
      if (!ready.length) continue;
      const decoded = ready.map((r) => decodeCanvas(r.tokens, 0, bundle));
      const fluency = scorer ? await perplexities(scorer, decoded.map((c) => c.textIds), textSeg.length + 1, m.scorer!.bos, m.scorer!.eos) : null;
      const outputs = decoded.map((c) => ({ text: c.text, record: parseRecord(c.recordText), textPieces: c.pieces }));
      const scores = await evaluateForEngine(set, outputs);
      decoded.forEach((c, b) => {
        const r = ready[b]!;
        sink.output({
          index: r.index,
          seed: r.seed,
          text: c.text,
          record: outputs[b]!.record,
          recordText: c.recordText,
          tokens: Array.from(r.tokens),
          constraints: scores[b] ?? [],
          fluency: fluency ? fluency[b]! : null,
          ...(r.consensus ? { consensus: r.consensus } : {}),
        });
      });
    }
    const tEnd = performance.now();
    return {
      status: cancelled ? 'cancelled' : 'completed',
      model: { id: m.id, version: m.version, hash: bundle.hash },
      device: { ...device, precision: run.precision },
      timings: {
        loadMs: tLoaded - t0,
        compileMs: tCompiled - tLoaded,
        sampleMs: tEnd - tSample,
        perStepMs: stepTimes.length ? stepTimes.reduce((a, b) => a + b, 0) / stepTimes.length : 0,
        totalMs: tEnd - t0,
      },
      warnings,
      ...(notes.length ? { notes } : {}),
      ...(calls !== undefined ? { denoiserCalls: calls } : {}),
      ...(denoiserMs !== undefined ? { denoiserMs } : {}),
      ...(guideMs !== undefined ? { guideMs } : {}),
    };
  }

  async dispose(): Promise<void> {
    await this.host.dispose();
  }
}

/**
 * The tokens a sample generated, what consensus compares: the positions nothing held, padding left out, and the text
 * segment only up to its <end> (what the output shows).
 */
function generatedTokens(tokens: Int32Array, held: Int32Array, text: { start: number; length: number }): number[] {
  const out: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const inText = i >= text.start && i < text.start + text.length;
    if (inText && t === END) {
      i = text.start + text.length - 1;
      continue;
    }
    if (held[i]! < 0 && t !== PAD) out.push(t);
  }
  return out;
}
