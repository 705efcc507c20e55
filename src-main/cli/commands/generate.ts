/** `dlm-studio generate`: one run through the services (the same API the UI calls), outputs as JSON lines. */
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { CONTINUOUS_SAMPLERS, MASKED_CONFIDENCES, MAX_CANDIDATES, MAX_SPACING, continuousSpacing, continuousSteps, defaultAcceptAt, defaultCandidates, isGuidedRun, maskedRecordTemperature, maskedTemperature, parseConstraintSet, PRECISION_PREFERENCES, setPinsCanvas, type ConstraintSet } from '../../constraints/set';
import { DEFAULT_MODEL_ID } from '../../engine/bundle';
import { DEVICE_PREFERENCES, type GeneratedOutput, isMaskedModel, modelDefaultSteps, resolvePrecision } from '../../engine/types';
import { acceptAtOption, candidatesOption, choiceOption, CliError, intOption, type CliCommand } from '../framework';

const usage = `usage: dlm-studio generate [--model <id>] [--constraints <set.json>] [--samples N] [--steps S] [--seed K] [--candidates C] [--accept-at P]
                          [--device auto|cpu|cuda|dml|coreml|webgpu] [--precision auto|fp32|int8] [--out <file.jsonl>]
                          [--sampler ${CONTINUOUS_SAMPLERS.join('|')}] [--eta E] [--spacing P]
                          [--block-length L] [--confidence ${MASKED_CONFIDENCES.join('|')}] [--temperature T] [--top-p P]
                          [--record-temperature T]

  --model        model bundle id (default: ${DEFAULT_MODEL_ID}; see dlm-studio models)
  --constraints  constraint-set file ({"version": 1, "constraints": [...], "sampler": {...}}); none = unconstrained
  --samples, --steps, --seed   override the set's sampler settings; without --steps or set steps, the model's
                 default steps (its manifest's sampler_defaults.steps, or guided_steps for a classifier-guided run;
                 a continuous model without them: 200)
  --candidates   each output chosen among C samples: in a classifier-guided run the one the model's guidance
                 classifiers score highest; in a run that pins, the one that agrees most with the others (consensus
                 decoding; a masked model's data-to-text run: the one whose text it reads the record back from
                 best); in a run that does neither, the one a continuous model's denoiser reconstructs best
                 (its own check; masked models: consensus); with a length constraint, among the samples that
                 have the length asked for. 1 to ${MAX_CANDIDATES}, costs C times the sampling;
                 default: the set's sampler.candidates, else the model's sampler_defaults.pinned_candidates for a
                 run that pins a record, text or template, its guided_candidates for a classifier-guided run, the
                 larger where both apply, its free_candidates for a run that does neither, else 1
  --accept-at    with candidates in a classifier-guided run of a continuous model: stop drawing an output's
                 candidates at the first one the guidance classifiers give probability P or more (their
                 weighted log p >= log P) and, with a length constraint, that has the length asked for (with a
                 length alone, the first that has it), P in (0, 1], 1 = draw all; each output line's
                 consensus.drawn says how many were drawn (default: the set's sampler.accept_at, else for a
                 classifier-guided run the model's level: the largest among the run's guided kinds of its
                 sampler_defaults.accept_at_by_kind, else its accept_at; else draw all)
  --device       execution provider (default auto: the best that works here)
  --precision    denoiser weights (default: the set's sampler.precision, auto = int8 on cpu when the model has it)
  --out          write one JSON object per sample to this file (default: stdout)
  --sampler      continuous models: ancestral, ddim (DDIM on x0) or dpm2m (DPM-Solver++(2M)); each output line
                 records it (default: the set's sampler.method, else the model's sampler_defaults.method, else
                 ancestral)
  --eta          ddim only: 0 deterministic, up to 1 (the ancestral step's noise) (default: the set's, else the
                 model's sampler_defaults.eta when the method is the model's, else 0)
  --spacing      continuous models: where the steps sit, step k of S at t = (T - 1) (k / (S - 1))^P, P in
                 (0, ${MAX_SPACING}]: 1 evenly, below 1 more steps at high noise (default: the set's sampler.spacing, else the
                 model's sampler_defaults.spacing, else 1)
  --block-length, --confidence, --temperature, --top-p
                 masked-diffusion models: override the set's (else the model's sampler_defaults); without a
                 temperature, a run that pins nothing (no record, text or infill) takes
                 sampler_defaults.temperature_unconditional when the model has one
  --record-temperature
                 masked-diffusion models: the record segment's temperature (default: the set's
                 sampler.record_temperature, else the temperature when one is given, else for a run that neither
                 pins nor guides the model's sampler_defaults.record_temperature_unconditional, else the run's
                 temperature)
Progress goes to stderr.`;

/** The sampler settings a constraint-set file sets itself (for the others the zod defaults stand in). */
type Given = { steps: boolean; method: boolean; eta: boolean; spacing: boolean; candidates: boolean; accept_at: boolean };
const NOTHING_GIVEN: Given = { steps: false, method: false, eta: false, spacing: false, candidates: false, accept_at: false };
function fileGives(path: string): Given {
  try {
    const raw = JSON.parse(readFileSync(path, 'utf8')) as { sampler?: Partial<Record<keyof Given, unknown>> };
    const s = raw.sampler ?? {};
    return { steps: s.steps !== undefined, method: s.method !== undefined, eta: s.eta !== undefined, spacing: s.spacing !== undefined, candidates: s.candidates !== undefined, accept_at: s.accept_at !== undefined };
  } catch {
    return NOTHING_GIVEN;
  }
}

/** A finite number option. */
function numberOption(args: Parameters<typeof intOption>[0], name: string): number | undefined {
  const v = args.values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n < 0) throw new CliError('INVALID_INPUT', `--${name} must be a non-negative number (got ${JSON.stringify(v)})`);
  return n;
}

/** Read and validate a constraint-set file; errors name the file and the offending field. */
export function readConstraintFile(path: string): ConstraintSet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError('IO_ERROR', `cannot read constraints file ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CliError('INVALID_INPUT', `${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseConstraintSet(raw, path);
}

export const generateCommand: CliCommand = {
  name: 'generate',
  summary: 'generate samples under a constraint set (JSON lines out, progress on stderr)',
  usage,
  options: {
    model: { type: 'string' },
    constraints: { type: 'string' },
    samples: { type: 'string' },
    steps: { type: 'string' },
    seed: { type: 'string' },
    candidates: { type: 'string' },
    'accept-at': { type: 'string' },
    device: { type: 'string' },
    precision: { type: 'string' },
    out: { type: 'string' },
    sampler: { type: 'string' },
    eta: { type: 'string' },
    spacing: { type: 'string' },
    'block-length': { type: 'string' },
    confidence: { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    'record-temperature': { type: 'string' },
  },
  async run(ctx, args) {
    if (args.positionals.length) throw new CliError('USAGE', `unexpected argument ${JSON.stringify(args.positionals[0])}\n\n${usage}`);
    const device = choiceOption(args, 'device', DEVICE_PREFERENCES) ?? 'auto';
    const model = (args.values.model as string | undefined) ?? DEFAULT_MODEL_ID;
    const file = args.values.constraints as string | undefined;
    const set = file ? readConstraintFile(resolve(file)) : parseConstraintSet({ version: 1, constraints: [] });
    const setGives = file ? fileGives(resolve(file)) : NOTHING_GIVEN;
    const sampler = { ...set.sampler };
    const samples = intOption(args, 'samples');
    const steps = intOption(args, 'steps');
    const seed = intOption(args, 'seed');
    if (samples !== undefined) sampler.samples = samples;
    if (steps !== undefined) sampler.steps = steps;
    if (seed !== undefined) sampler.seed = seed;
    const candidates = candidatesOption(args);
    if (candidates !== undefined) sampler.candidates = candidates;
    const acceptAt = acceptAtOption(args);
    if (acceptAt !== undefined) sampler.accept_at = acceptAt;
    sampler.precision = choiceOption(args, 'precision', PRECISION_PREFERENCES) ?? sampler.precision;
    const method = choiceOption(args, 'sampler', CONTINUOUS_SAMPLERS);
    if (method !== undefined) sampler.method = method;
    const eta = numberOption(args, 'eta');
    if (eta !== undefined && eta > 1) throw new CliError('INVALID_INPUT', `--eta must be in [0, 1] (got ${eta})`);
    const spacing = numberOption(args, 'spacing');
    if (spacing !== undefined) {
      if (!(spacing > 0 && spacing <= MAX_SPACING)) throw new CliError('INVALID_INPUT', `--spacing must be above 0 and at most ${MAX_SPACING} (got ${spacing})`);
      sampler.spacing = spacing;
    }
    const blockLength = intOption(args, 'block-length');
    if (blockLength !== undefined) sampler.block_length = blockLength;
    sampler.confidence = choiceOption(args, 'confidence', MASKED_CONFIDENCES) ?? sampler.confidence;
    const temperature = numberOption(args, 'temperature');
    if (temperature !== undefined) sampler.temperature = temperature;
    const recordTemperature = numberOption(args, 'record-temperature');
    if (recordTemperature !== undefined) sampler.record_temperature = recordTemperature;
    const topP = numberOption(args, 'top-p');
    if (topP !== undefined) {
      if (!(topP > 0 && topP <= 1)) throw new CliError('INVALID_INPUT', `--top-p must be in (0, 1] (got ${topP})`);
      sampler.top_p = topP;
    }
    if (sampler.samples < 1) throw new CliError('INVALID_INPUT', '--samples must be at least 1');
    if (sampler.steps < 1) throw new CliError('INVALID_INPUT', '--steps must be at least 1');

    const client = ctx.client();
    const models = await client.call('models.list');
    const summary = models.find((m) => m.id === model && !m.error);
    if (!summary) {
      const bad = models.find((m) => m.id === model);
      if (bad?.error) throw new CliError('BUNDLE_INVALID', `model "${model}" cannot be loaded: ${bad.error}`);
      throw new CliError('NOT_FOUND', `unknown model "${model}" (available: ${models.filter((m) => !m.error).map((m) => m.id).join(', ') || 'none'}; add folders with --models)`);
    }
    if (sampler.steps > 2000) throw new CliError('INVALID_INPUT', `--steps must be at most the model's training T`);
    const isMasked = isMaskedModel(summary);
    if (isMasked && sampler.method !== 'ancestral') {
      throw new CliError('INVALID_INPUT', `${method !== undefined ? '--sampler' : `${file}: sampler.method`}: ${sampler.method} is a sampler for continuous models; ${summary.id} is a ${summary.kind} model (its sampler flags: --block-length, --confidence, --temperature, --top-p)`);
    }
    // the model's own default step count (a masked bundle's, or a continuous bundle's sampler_defaults: its
    // guided_steps for a classifier-guided run), unless --steps or the set chose one
    const cd = isMasked ? undefined : summary.continuousDefaults;
    const ownSteps = modelDefaultSteps(summary);
    if (ownSteps !== undefined && steps === undefined && !setGives.steps) sampler.steps = cd ? continuousSteps(cd, isGuidedRun(set.constraints, sampler.guidance)) : ownSteps;
    // a continuous bundle's default sampler, unless --sampler or the set chose one (an eta given stays)
    if (cd && method === undefined && !setGives.method) {
      sampler.method = cd.method;
      if (!setGives.eta) sampler.eta = cd.eta;
    }
    // and its step spacing, unless --spacing or the set chose one
    if (cd && spacing === undefined && !setGives.spacing) sampler.spacing = continuousSpacing(cd, isGuidedRun(set.constraints, sampler.guidance));
    // and its candidates for a run that pins a record, text or template or is guided, unless --candidates or the set
    // chose them
    if (candidates === undefined && !setGives.candidates) sampler.candidates = defaultCandidates(summary, set.constraints, sampler.guidance);
    // and its accept_at for a classifier-guided run, unless --accept-at or the set chose one
    if (acceptAt === undefined && !setGives.accept_at) {
      const bundleAccept = defaultAcceptAt(cd, set.constraints, sampler.guidance);
      if (bundleAccept !== undefined) sampler.accept_at = bundleAccept;
    }
    if (eta !== undefined) {
      if (sampler.method !== 'ddim') throw new CliError('INVALID_INPUT', `--eta applies to --sampler ddim only (the sampler is ${sampler.method})`);
      sampler.eta = eta;
    }
    // what each output line records as the masked settings that ran; the run itself gets only what was asked for
    // (no temperature given: the engine's rule, sampler_defaults.temperature_unconditional when nothing is pinned)
    const masked = isMasked && summary.samplerDefaults
      ? {
        block_length: sampler.block_length ?? summary.samplerDefaults.block_length,
        confidence: sampler.confidence ?? summary.samplerDefaults.confidence,
        temperature: maskedTemperature(summary.samplerDefaults, sampler.temperature, setPinsCanvas(set.constraints)),
        record_temperature: maskedRecordTemperature(summary.samplerDefaults, sampler, setPinsCanvas(set.constraints), isGuidedRun(set.constraints, sampler.guidance)),
        top_p: sampler.top_p ?? summary.samplerDefaults.top_p,
      }
      : null;

    const outPath = args.values.out ? resolve(args.values.out as string) : null;
    // the active device is known once probed (the engine caches the probe for the run that follows)
    const activeDevice = (await client.call('devices.probe', { preference: device })).active;
    let precision: string;
    try {
      precision = resolvePrecision(sampler.precision, activeDevice, !!summary.precisions?.includes('int8'), summary.id);
    } catch (e) {
      throw new CliError('INVALID_INPUT', (e as Error).message);
    }
    const stream: WriteStream | null = outPath ? createWriteStream(outPath, { flags: 'w' }) : null;
    const write = (line: string) => (stream ? stream.write(line + '\n') : process.stdout.write(line + '\n'));
    const t0 = Date.now();
    let runId = -1;
    let written = 0;
    const lineOf = (o: GeneratedOutput) => JSON.stringify({
      index: o.index, text: o.text, record: o.record, recordText: o.recordText, seed: o.seed,
      steps: sampler.steps, device: activeDevice, precision, model: summary.id, modelVersion: summary.version,
      constraints: o.constraints, fluency: o.fluency,
      ...(o.consensus ? { consensus: o.consensus } : {}),
      ...(masked ? { kind: summary.kind, sampler: masked } : { sampler: { method: sampler.method, ...(sampler.method === 'ddim' ? { eta: sampler.eta } : {}), ...(sampler.spacing !== 1 ? { spacing: sampler.spacing } : {}) } }),
    });
    const early: { runId: number; output: GeneratedOutput }[] = [];
    const offs: (() => void)[] = [];
    const finished = new Promise<{ status: string; error: string | null; device: string | null; warnings: string[]; notes: string[] }>((resolveDone) => {
      offs.push(
        client.on('run.progress', (p) => {
          if (p.runId !== runId) return;
          if (p.step === 1 || p.step === p.steps || p.step % Math.max(1, Math.round(p.steps / 10)) === 0) {
            const which = p.outputOf
              ? `outputs ${p.outputOf[0]! + 1}-${p.outputOf[p.outputOf.length - 1]! + 1}/${sampler.samples} (${p.candidates} candidates each)`
              : `samples ${p.batchStart + 1}-${p.batchStart + p.canvases.length}/${sampler.samples}`;
            ctx.err(`${which}: step ${p.step}/${p.steps} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
          }
        }),
        client.on('run.output', (e) => {
          if (runId < 0) early.push(e);
          else if (e.runId === runId) {
            write(lineOf(e.output));
            written++;
          }
        }),
        client.on('run.finished', (e) => {
          if (e.runId !== runId) return;
          resolveDone({ status: e.status, error: e.error, device: e.summary?.device.active ?? null, warnings: e.summary?.warnings ?? [], notes: e.summary?.notes ?? [] });
        }),
      );
    });
    const onSigint = () => {
      ctx.err('cancelling...');
      if (runId >= 0) void client.call('runs.cancel', { runId }).catch(() => undefined);
    };
    process.once('SIGINT', onSigint);
    try {
      runId = (await client.call('runs.start', { model, device: device, constraintSet: { ...set, sampler }, sampler })).runId;
      for (const e of early.splice(0)) {
        if (e.runId === runId) {
          write(lineOf(e.output));
          written++;
        }
      }
      const done = await finished;
      for (const w of done.warnings) ctx.err(`warning: ${w}`);
      for (const n of done.notes) ctx.err(`note: ${n}`);
      if (done.status !== 'completed') {
        throw new CliError(done.status === 'cancelled' ? 'CONFLICT' : 'INTERNAL', `run ${runId} ${done.status}${done.error ? `: ${done.error}` : ''}`);
      }
      ctx.err(`${written} samples on ${done.device ?? activeDevice} (${precision} denoiser) in ${((Date.now() - t0) / 1000).toFixed(1)} s${outPath ? ` -> ${outPath}` : ''} (run ${runId})`);
    } finally {
      for (const off of offs) off();
      process.removeListener('SIGINT', onSigint);
      if (stream) await new Promise<void>((r) => stream.end(r));
    }
  },
};
