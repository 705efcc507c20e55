/**
 * The masked (absorbing-state) family (kind "masked-diffusion") behind the ModelFamily seam: its denoiser session
 * (ids -> logits), the step loop of sampler.ts under the run's settings (request fields, else the bundle's
 * sampler_defaults), hard constraints as reachability over the partly masked canvas, and progress snapshots that
 * show which positions are still masked.
 */
import * as ort from 'onnxruntime-node';
import { decodeCanvas } from '../../decode';
import { checkGraphIo } from '../../host';
import { EngineInputError, MASK_GLYPH, runPrecision } from '../../types';
import type { ModelFamily } from '../family';
import { type MaskedManifest, maskedInputs, maskedManifest, MASKED_OUTPUTS } from './manifest';
import { runExtent, whitespaceTokens } from '../../extent';
import { buildMaskedGuidance } from './guidance';
import { MaskedConstraintError, type MaskedSettings, readBackLogp, sampleMasked } from './sampler';
import { type EndRule, endRule, type GlueRule, glueRule, type RepeatRule, repeatRule } from '../../projection';
import { maskedRecordTemperature, maskedTemperature, parseConstraintSet, type SamplerSettings } from '../../../constraints/set';
import { compileForEngine, type CompiledForEngine } from '../../constraints-adapter';
import type { SegmentAutomaton } from '../../projection';
import { SPECIALS } from '../../tokenizer';
import type { LoadedBundle } from '../family';

/** Denoiser calls (groups of interleaved record positions) of a data-to-text candidate's read-back score. */
const READ_BACK_GROUPS = 4;

interface MaskedState {
  /** Graph files whose inputs and outputs were checked against the manifest. */
  checked: Set<string>;
  /** Whitespace-only tokens: barred inside a pinned length, where they would count as a token but not as a word. */
  spaces: number[];
  /** Pieces that glue onto their neighbours: kept out of the guided text (sampler.ts). */
  glue: GlueRule;
  /** Words a guided position may not repeat from its neighbours (sampler.ts). */
  repeats: RepeatRule;
  /** Where a guided text may end (the manifest's text_end; absent: anywhere). */
  ends?: EndRule;
}

/** The bundle's record schema as a JSON Schema: known fields, each one of its known values, at least one field. */
export function recordSchemaOf(fields: Record<string, string[]>): Record<string, unknown> {
  return {
    type: 'object',
    properties: Object.fromEntries(Object.entries(fields).map(([k, values]) => [k, { enum: values }])),
    additionalProperties: false,
    minProperties: 1,
  };
}

/** Whether the bundle holds a free record to its record schema (sampler_defaults.record_schema_hold). */
function holdsFreeRecord(m: MaskedManifest): boolean {
  return !!m.sampler_defaults.record_schema_hold && Object.keys(m.record_schema?.fields ?? {}).length > 0 && m.canvas.segments.some((x) => x.name === 'record');
}

/** The record segment held to the bundle's record schema: compiled on a free run's first need, then from the compiler's cache. */
async function recordHold(bundle: LoadedBundle<MaskedManifest>): Promise<SegmentAutomaton> {
  const m = bundle.manifest;
  const set = parseConstraintSet({ version: 1, constraints: [{ kind: 'json-schema', schema: recordSchemaOf(m.record_schema!.fields) }] });
  const c = await compileForEngine(set, { vocab: bundle.tokenizer.tokens, specials: SPECIALS, canvas: m.canvas, recordFields: m.record_schema!.fields, tokenizer: bundle.tokenizer });
  const p = c.hard.find((h) => h.segment === 'record');
  if (!p) throw new EngineInputError(`${m.id}: sampler_defaults.record_schema_hold: its record_schema compiled to no hold on the record segment`);
  return { start: p.start, length: p.length, automaton: p.automaton };
}

/**
 * The run's masked settings: what the request gives, else the bundle's defaults (steps always from the request).
 * The temperature follows maskedTemperature: with nothing pinned, the bundle's temperature_unconditional if it has one;
 * the record segment's follows maskedRecordTemperature.
 */
export function maskedSettings(m: MaskedManifest, sampler: SamplerSettings, pinned: boolean, guided: boolean): MaskedSettings {
  const d = m.sampler_defaults;
  const temperature = maskedTemperature(d, sampler.temperature, pinned);
  const recordTemperature = maskedRecordTemperature(d, sampler, pinned, guided);
  const record = m.canvas.segments.find((x) => x.name === 'record');
  return {
    steps: sampler.steps,
    blockLength: sampler.block_length ?? d.block_length,
    confidence: sampler.confidence ?? d.confidence,
    temperature,
    topP: sampler.top_p ?? d.top_p,
    ...(record && recordTemperature !== temperature ? { segmentTemperature: { start: record.start, length: record.length, temperature: recordTemperature } } : {}),
  };
}

/** Whether a run pins canvas positions: a held one (record or text, held[i] >= 0) or an infill template. */
export function pinned(compiled: CompiledForEngine, held: Int32Array): boolean {
  return held.some((t) => t >= 0) || compiled.verdicts.some((v) => v.kind === 'infill' && v.status === 'hard');
}

function feeds(m: MaskedManifest, ids: Int32Array, B: number, N: number): Record<string, ort.Tensor> {
  const data = new BigInt64Array(B * N);
  for (let i = 0; i < data.length; i++) data[i] = BigInt(ids[i]!);
  const f: Record<string, ort.Tensor> = { ids: new ort.Tensor('int64', data, [B, N]) };
  if ('t' in m.denoiser.inputs) {
    // the masked share of each row
    const t = new Float32Array(B);
    for (let b = 0; b < B; b++) {
      let n = 0;
      for (let i = 0; i < N; i++) if (ids[b * N + i] === m.mask.id) n++;
      t[b] = n / N;
    }
    f.t = new ort.Tensor('float32', t, [B]);
  }
  return f;
}

/** The denoiser's logits for ids [B, N] (exported for the tests that check a score against the graph). */
export async function logitsOf(s: ort.InferenceSession, m: MaskedManifest, ids: Int32Array, B: number, N: number): Promise<{ logits: Float32Array; V: number }> {
  const out = await s.run(feeds(m, ids, B, N));
  const t = out.logits!;
  const V = t.dims[2]!;
  if (t.dims.length !== 3 || t.dims[0] !== B || t.dims[1] !== N) {
    throw new EngineInputError(`${m.denoiser.file}: output 'logits' has shape [${t.dims.join(', ')}], expected [${B}, ${N}, V]`);
  }
  return { logits: t.data as Float32Array, V };
}

/** The denoiser graph's inputs and output against the manifest; `file` (the fp32 or the int8 graph) is named in errors. */
function checkGraph(s: ort.InferenceSession, m: MaskedManifest, file = m.denoiser.file): void {
  checkGraphIo(s, file, maskedInputs(m), { logits: MASKED_OUTPUTS.logits! });
}

export const maskedFamily: ModelFamily<MaskedManifest, MaskedState> = {
  manifest: maskedManifest,

  async open(bundle) {
    const tokens = bundle.tokenizer.tokens;
    const enders = bundle.manifest.text_end?.tokens;
    return { checked: new Set(), spaces: whitespaceTokens(tokens), glue: glueRule(tokens), repeats: repeatRule(tokens), ...(enders ? { ends: endRule(tokens, enders) } : {}) };
  },

  async probe(host, bundle, provider) {
    const m = bundle.manifest;
    const s = await host.session(bundle.dir, m.denoiser.file, provider);
    try {
      checkGraph(s, m);
      const N = m.canvas.length;
      const { logits } = await logitsOf(s, m, new Int32Array(N).fill(m.mask.id), 1, N);
      if (!logits.every((v) => !Number.isNaN(v))) throw new Error(`${provider}: the denoiser produced NaN logits`);
    } catch (e) {
      host.dropSession(bundle.dir, m.denoiser.file, provider);
      throw e;
    }
  },

  async prepare({ host, bundle, state, provider, sampler, guided, logitsCache, warnings, notes }) {
    const m = bundle.manifest;
    // ddim and dpm2m are continuous-family samplers: a masked model unmasks by confidence, there is no x_t to move
    if (sampler.method && sampler.method !== 'ancestral') {
      throw new EngineInputError(`sampler.method: ${sampler.method} is a sampler for continuous models; ${m.id} is a masked-diffusion model, which takes only ancestral (its steps are set by sampler.confidence, temperature, top_p and block_length)`);
    }
    const precision = runPrecision(sampler.precision, provider, !!m.denoiser.int8, m.denoiser.int8?.guided_runs, guided, m.id);
    const denoiserFile = precision === 'int8' ? m.denoiser.int8!.file : m.denoiser.file;
    const session = await host.session(bundle.dir, denoiserFile, provider);
    if (!state.checked.has(denoiserFile)) {
      checkGraph(session, m, denoiserFile);
      state.checked.add(denoiserFile);
    }
    const N = m.canvas.length;
    return {
      precision,
      async plan(compiled, held) {
        const isPinned = pinned(compiled, held);
        const settings = maskedSettings(m, sampler, isPinned, guided);
        const hard = compiled.hard.map((p) => ({ start: p.start, length: p.length, automaton: p.automaton, constraints: p.constraints }));
        // a free record (nothing pinned, no hard constraint on it) is a valid one (DLM_MASKED_RECORD_HOLD=0: off)
        if (holdsFreeRecord(m) && !isPinned && !compiled.hard.some((p) => p.segment === 'record') && process.env.DLM_MASKED_RECORD_HOLD !== '0') {
          hard.push({ ...(await recordHold(bundle)), constraints: [] });
          notes.push(`${m.id}: the record is held to the model's record schema (sampler_defaults.record_schema_hold)`);
        }
        const pin = runExtent(sampler.guidance, m, compiled.soft, held, warnings, state.spaces);
        const guide = await buildMaskedGuidance({ host, dir: bundle.dir, manifest: m, soft: pin.rest, settings: sampler.guidance, provider, warnings, notes });
        const scoreCandidates = !!guide && sampler.candidates > 1;
        // what the ranking of guided candidates adds to the guidance terms (DLM_MASKED_SCORE_MODEL=0: nothing)
        const fluency = process.env.DLM_MASKED_SCORE_MODEL === '0' ? null : m.guidance_defaults.candidate_fluency;
        // candidates of a run that holds the record and writes the text (data-to-text): the one from whose text the
        // denoiser reads the record back best (DLM_MASKED_READ_BACK=0: consensus, as before)
        const record = m.canvas.segments.find((x) => x.name === 'record');
        const recordPos = record ? Array.from({ length: record.length }, (_, j) => record.start + j) : [];
        const readBack = !guide && sampler.candidates > 1 && recordPos.length > 0 && recordPos.every((i) => pin.held[i]! >= 0)
          && pin.held.some((h, i) => h < 0 && !recordPos.includes(i)) && process.env.DLM_MASKED_READ_BACK !== '0';
        // attributes that hold the record (the compiler's attribute-record projector): the record is written first and
        // the text follows it, as in data-to-text; guided first, the text lost to a record that said another value
        const recordFirst = !!record && compiled.hard.some((p) => p.start === record.start && p.constraints.some((i) => compiled.verdicts[i]?.kind === 'attribute'));
        const logits = (ids: Int32Array, B: number) => logitsOf(session, m, ids, B, N);
        const readOptions = { vocabSize: bundle.vocabSize, maskId: m.mask.id, shifted: m.mask.shifted_logits };
        // the guided text's positions, read back to rank a guided run's candidates
        const guidedPos = guide && fluency?.by === 'read-back' ? Array.from({ length: guide.length }, (_, j) => guide.start + j) : [];
        return {
          ...(readBack ? { scoring: { by: 'read-back' as const } } : {}),
          async sample(job) {
            try {
              const res = await sampleMasked({
                seeds: job.seeds,
                length: N,
                vocabSize: bundle.vocabSize,
                maskId: m.mask.id,
                shifted: m.mask.shifted_logits,
                settings,
                held: pin.held,
                ...(pin.exclude ? { exclude: pin.exclude } : {}),
                hard,
                logits,
                onStep(step, steps, tokens, masked) {
                  const canvases: { record: string; text: string }[] = [];
                  const still: number[][] = [];
                  for (let b = 0; b < job.seeds.length; b++) {
                    const off = b * N;
                    const c = decodeCanvas(tokens, off, bundle, (pos) => (masked[off + pos] ? MASK_GLYPH : null));
                    canvases.push({ record: c.recordText, text: c.text });
                    const list: number[] = [];
                    for (let i = 0; i < N; i++) if (masked[off + i]) list.push(i);
                    still.push(list);
                  }
                  job.progress({ step, steps, canvases, masked: still });
                },
                cancelled: job.cancelled,
                cache: logitsCache,
                scoreModel: scoreCandidates && fluency?.by === 'commit',
                // a guided text writes no piece glued onto its neighbour, no word twice in a row, and ends only on a
                // token that ends training texts (DLM_MASKED_GLUE=0, DLM_MASKED_REPEATS=0, DLM_MASKED_ENDS=0: without
                // them, for comparisons)
                ...(guide ? { guide: { ...guide, first: guide.first && !recordFirst, ...(process.env.DLM_MASKED_GLUE === '0' ? {} : { glue: state.glue }), ...(process.env.DLM_MASKED_REPEATS === '0' ? {} : { repeats: state.repeats }), ...(state.ends && process.env.DLM_MASKED_ENDS !== '0' ? { ends: state.ends } : {}) } } : {}),
              });
              // candidates of a guided run are ranked by the lexicon and classifier terms plus the denoiser's own log p
              // of the guided text (guidance_defaults.candidate_fluency)
              let scores: Float32Array | undefined;
              if (guide && res.tokens && scoreCandidates) {
                scores = await guide.score(res.tokens, job.seeds.length);
                const lp = fluency?.by === 'read-back'
                  ? await readBackLogp(logits, res.tokens, job.seeds.length, N, guidedPos, READ_BACK_GROUPS, readOptions)
                  : res.guidedLogp;
                if (lp && fluency!.weight > 0) scores = scores.map((v, b) => v + fluency!.weight * lp[b]!);
              }
              if (readBack && res.tokens) {
                scores = Float32Array.from(await readBackLogp(logits, res.tokens, job.seeds.length, N, recordPos, READ_BACK_GROUPS, readOptions));
              }
              return { tokens: res.tokens, stepMs: res.stepMs, calls: res.calls, denoiserMs: res.denoiserMs, guideMs: res.guideMs, ...(scores ? { scores } : {}) };
            } catch (e) {
              if (e instanceof MaskedConstraintError) {
                const which = hard[e.segment]!.constraints.map((i) => `constraints[${i}]`).join(', ') || 'sampler_defaults.record_schema_hold';
                throw new EngineInputError(`${which}: ${e.message}`);
              }
              throw e;
            }
          },
        };
      },
    };
  },
};
