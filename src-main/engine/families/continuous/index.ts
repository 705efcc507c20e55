/**
 * The continuous Diffusion-LM family (kind "continuous-embedding-diffusion") behind the ModelFamily seam: its
 * denoiser sessions (int8 or fp32, split over the two cpu lanes), classifier guidance, and the step loop of
 * sampler.ts with clamping and projection; progress shows the rounded canvas after every step.
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeCanvas } from '../../decode';
import { runExtent, type TextExtent, whitespaceTokens } from '../../extent';
import { denoiserRows, laneThreads } from '../../devices';
import { buildGuidance } from '../../guidance-setup';
import { checkGraphIo } from '../../host';
import { buildSchedule, trainingAbar } from '../../schedule';
import { coveredPositions, type GlueRule, glueRule, type Projector, type RepeatRule, repeatRule, scoredProjector } from '../../projection';
import { lexiconTerm } from '../../lexicon';
import { type Feeds, type Outputs, runRows } from '../../session-run';
import { EngineInputError, resolvePrecision } from '../../types';
import { guidanceAtSteps, type SamplerSettings } from '../../../constraints/set';
import type { ModelFamily } from '../family';
import { type ContinuousManifest, continuousManifest, denoiserInputs, loadEmbeddings } from './manifest';
import { type Embeddings, makeEmbeddings, ortRounder, type Rounder } from './rounding';
import { type DenoiseExtras, sampleBatch, type SelfScoreConfig } from './sampler';

/**
 * Where the denoiser checks its own finished canvas (SelfScoreConfig): re-noised to 15% of the training schedule.
 * On 256 unconditional dev-seed samples of e2e-default its record score told valid from invalid records with an
 * AUC of about 0.9 there, better than at 2.5% or 30% (docs/engine.md, "Choosing among candidates").
 */
const SELF_SCORE_T_FRACTION = 0.15;

/**
 * The positions a self-score reads: the structured segments (format json), where one wrong token breaks the output,
 * else the whole canvas; less what is held or decided by a hard constraint. Null when nothing is left.
 */
function selfScorePositions(m: ContinuousManifest, held: Int32Array, projectors: Projector[]): number[] | null {
  const covered = coveredPositions(projectors, m.canvas.length);
  const free = (i: number) => held[i]! < 0 && !covered[i];
  const structured = m.canvas.segments.filter((s) => s.format === 'json').flatMap((s) => Array.from({ length: s.length }, (_, j) => s.start + j)).filter(free);
  if (structured.length) return structured;
  const all = Array.from({ length: m.canvas.length }, (_, i) => i).filter(free);
  return all.length ? all : null;
}

interface ContinuousState {
  emb: Embeddings;
  rounder: Rounder;
  /** Graph files whose inputs were checked against the manifest. */
  checked: Set<string>;
  /** Whitespace-only token ids (barred before a held <end>). */
  spaces: number[];
  /** Pieces that glue onto the one before them (guided runs round the text without such joins). */
  glue: GlueRule;
  /** Tokens that write the same word (guided runs round the text without a word twice in a row). */
  repeats: RepeatRule;
}

/** A continuous run's feeds for rows [from, to) of the batch. */
function feedsFor(inputs: Record<string, string>, x: Float32Array, t: Float32Array, extras: DenoiseExtras, N: number, d: number, from: number, to: number): Feeds {
  const rows = to - from;
  const f: Feeds = {
    x_t: { type: 'float32', data: x.subarray(from * N * d, to * N * d), dims: [rows, N, d] },
    t: { type: 'float32', data: t.subarray(from, to), dims: [rows] },
  };
  if ('x_self_cond' in inputs) {
    const sc = extras.selfCond ?? new Float32Array(x.length);
    f.x_self_cond = { type: 'float32', data: sc.subarray(from * N * d, to * N * d), dims: [rows, N, d] };
  }
  if ('clean' in inputs) {
    const c = extras.clean ?? new Float32Array(t.length * N);
    f.clean = { type: 'float32', data: c.subarray(from * N, to * N), dims: [rows, N] };
  }
  return f;
}

/**
 * What the rounding adds to -||x0 - e_v||^2 over a stretch of the text when guidance is on: a held length's barred
 * tokens (-Infinity before the held <end>) and the token label lexicons' term for POS templates and spans
 * (lexicon.ts). Null when neither applies. `lengthAsked`: the set has a length constraint, which the run holds rather
 * than guides; its text is rounded as a guided one's (no glued pieces), since a glued non-word ("isstyle") is what
 * makes such a text miss its word count.
 */
function roundingTerm(
  m: ContinuousManifest, dir: string, pin: Pick<TextExtent, 'exclude' | 'rest'>, g: SamplerSettings['guidance'], V: number, lengthAsked: boolean,
): { start: number; length: number; add: Float32Array; lexicon: boolean; guided: boolean } | null {
  const text = m.canvas.segments.find((x) => x.name === 'text')!;
  const guided = g.enabled && g.strength > 0 && (lengthAsked || pin.rest.some((t) => (t.weight ?? 1) > 0));
  const local = g.enabled && g.strength > 0 ? lexiconTerm(dir, m.lexicons, pin.rest, g.strength, text.length) : null;
  const add = local?.values ?? new Float32Array(text.length * V);
  for (const [p, barred] of pin.exclude ?? []) for (const v of barred) add[(p - text.start) * V + v] = -Infinity;
  // a guided run rounds its whole text through the projector, so that no piece glues onto the one before it
  if (guided) return { start: text.start, length: text.length, add, lexicon: !!local, guided };
  // the stretch: from the first to the last text position with anything to add
  let first = -1;
  let last = -1;
  for (let i = 0; i < text.length; i++) {
    if (add.subarray(i * V, (i + 1) * V).some((a) => a !== 0)) {
      if (first < 0) first = i;
      last = i;
    }
  }
  if (first < 0) return null;
  return { start: text.start + first, length: last - first + 1, add: add.subarray(first * V, (last + 1) * V), lexicon: !!local, guided };
}

const x0Of = (o: Outputs) => (o.x0 ?? Object.values(o)[0]!).data;

export const continuousFamily: ModelFamily<ContinuousManifest, ContinuousState> = {
  manifest: continuousManifest,

  async open(bundle) {
    const emb = makeEmbeddings(await loadEmbeddings(bundle.dir, bundle.manifest, bundle.vocabSize), bundle.vocabSize, bundle.manifest.embedding.dim);
    return { emb, rounder: await ortRounder(emb), checked: new Set(), spaces: whitespaceTokens(bundle.tokenizer.tokens), glue: glueRule(bundle.tokenizer.tokens), repeats: repeatRule(bundle.tokenizer.tokens) };
  },

  async probe(host, bundle, provider) {
    const m = bundle.manifest;
    const s = await host.session(bundle.dir, m.denoiser.file, provider);
    try {
      checkGraphIo(s, m.denoiser.file, denoiserInputs(m));
      const N = m.canvas.length;
      const d = m.embedding.dim;
      const inputs = denoiserInputs(m);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(feedsFor(inputs, new Float32Array(N * d), new Float32Array([1]), {}, N, d, 0, 1))) feeds[k] = new ort.Tensor(v.type, v.data, v.dims);
      const out = await s.run(feeds);
      const x0 = out.x0 ?? out[s.outputNames[0]!]!;
      if (!(x0.data as Float32Array).every(Number.isFinite)) throw new Error(`${provider}: the denoiser produced non-finite values`);
    } catch (e) {
      host.dropSession(bundle.dir, m.denoiser.file, provider);
      throw e;
    }
  },

  async prepare({ host, bundle, state, provider, sampler, warnings, notes }) {
    const m = bundle.manifest;
    const dir = bundle.dir;
    // a continuous model moves x_t along the classifiers' gradient: it has no candidate tokens to score
    if (sampler.guidance.exactTopK) throw new EngineInputError(`sampler.guidance.exactTopK: exact top-k re-scoring is for masked models; ${m.id} is a continuous model, whose guidance moves x_t by the classifiers' gradient`);
    const precision = resolvePrecision(sampler.precision, provider, !!m.denoiser.int8, m.id);
    const denoiserFile = precision === 'int8' ? m.denoiser.int8!.file : m.denoiser.file;
    // two lanes on cpu: this thread and the helper thread each denoise half of the batch with one intra-op thread
    const lanes = host.lanes(provider);
    const denoiser = await host.session(dir, denoiserFile, provider, lanes ? 'lane' : 'main');
    const inputs = denoiserInputs(m);
    if (!state.checked.has(denoiserFile)) {
      checkGraphIo(denoiser, denoiserFile, inputs);
      state.checked.add(denoiserFile);
    }
    // dynamic int8 quantizes activations with one range per call: one sample per call keeps samples batch-independent
    // (static int8, calibrated ranges, and fp32 are row-independent already)
    // otherwise at most denoiserRows() rows per call (activations stay in cache; rows are independent either way)
    const rowsPerCall = precision === 'int8' && m.denoiser.int8?.activations === 'dynamic' ? 1 : denoiserRows();
    const N = m.canvas.length;
    const d = m.embedding.dim;
    const schedule = buildSchedule(m.schedule.T, m.schedule.s, sampler.steps, sampler.spacing);
    return {
      precision,
      async plan(compiled, held) {
        // a denoiser trained with <end> given clean holds a length (as a masked model does) when guidance is on, and
        // for data-to-text where the bundle has a text length rule
        const extent = m.denoiser.held_length ? runExtent(sampler.guidance, m, compiled.soft, held, warnings, state.spaces, m.text_length, notes) : { held, exclude: null, rest: compiled.soft };
        // phrase spans are guided closed (the position after each is outside any chunk): without it the chunk ran on
        // past the span's end (docs/engine.md, "Phrase spans")
        const pin = { ...extent, rest: extent.rest.map((t) => (t.kind === 'spans' ? { ...t, closed: true } : t)) };
        const projectors: Projector[] = [...compiled.hard];
        const lengthAsked = compiled.soft.some((t) => t.kind === 'length' && (t.weight ?? 1) > 0);
        const rounding = roundingTerm(m, dir, pin, sampler.guidance, bundle.vocabSize, lengthAsked);
        if (rounding) {
          const covered = coveredPositions(projectors, N);
          // a hard text constraint already decides these positions' tokens; the held <end> still stands
          if (!covered.subarray(rounding.start, rounding.start + rounding.length).some((c) => c)) projectors.push(scoredProjector(rounding.start, rounding.length, rounding.add, bundle.vocabSize, rounding.guided ? state.glue : undefined, rounding.guided ? state.repeats : undefined));
          else if (rounding.lexicon) warnings.push('a hard constraint decides the text\'s tokens: the POS / span lexicon is not applied');
        }
        const guidance = await buildGuidance({ host, dir, manifest: m, soft: pin.rest, settings: guidanceAtSteps(sampler.guidance, sampler.steps), provider, lanes, N, d, warnings, weights: m.guidance_defaults?.weights });
        // candidates of a run that neither guides nor pins: the denoiser's own check of each finished canvas
        let selfScore: SelfScoreConfig | undefined;
        const pins = pin.held.some((h) => h >= 0);
        if (sampler.candidates > 1 && !guidance && !pins) {
          const positions = selfScorePositions(m, pin.held, projectors);
          const tTrain = Math.round(SELF_SCORE_T_FRACTION * m.schedule.T);
          if (positions) selfScore = { tTrain, abar: trainingAbar(m.schedule.T, m.schedule.s)[tTrain]!, positions };
        }
        return {
          ...(guidance ? { scoring: { by: 'classifiers' as const, acceptStrength: sampler.guidance.strength } } : selfScore ? { scoring: { by: 'model' as const } } : {}),
          async sample(job) {
            const B = job.seeds.length;
            const res = await sampleBatch({
              seeds: job.seeds,
              length: N,
              emb: state.emb,
              schedule,
              method: sampler.method,
              eta: sampler.eta,
              clamp: sampler.clamp,
              rounder: state.rounder,
              held: pin.held,
              selfCondition: 'x_self_cond' in inputs,
              cleanFlags: 'clean' in inputs,
              projectors,
              guidance,
              denoise: async (x, t, b, extras) => {
                const rows = (from: number, to: number) => feedsFor(inputs, x, t, extras, N, d, from, to);
                if (!lanes || b < 2) return x0Of(await runRows(denoiser, rows(0, b), rowsPerCall));
                const half = Math.ceil(b / 2);
                const [first, second] = await Promise.all([
                  host.auxCall(join(dir, denoiserFile), 'cpu', rows(0, half), rowsPerCall, laneThreads()),
                  runRows(denoiser, rows(half, b), rowsPerCall),
                ]);
                const out = new Float32Array(b * N * d);
                out.set(x0Of(first), 0);
                out.set(x0Of(second), half * N * d);
                return out;
              },
              onStep(step, tokens) {
                const canvases: { record: string; text: string }[] = [];
                for (let i = 0; i < B; i++) {
                  const c = decodeCanvas(tokens, i * N, bundle);
                  canvases.push({ record: c.recordText, text: c.text });
                }
                job.progress({ step, steps: sampler.steps, canvases });
              },
              cancelled: job.cancelled,
              scoreFinal: sampler.candidates > 1,
              ...(selfScore ? { selfScore } : {}),
            });
            return { tokens: res.tokens, stepMs: res.stepMs, ...(res.scores ? { scores: res.scores } : {}) };
          },
        };
      },
    };
  },
};
