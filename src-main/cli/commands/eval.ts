/** `dlm-studio eval`: control success and fluency (guided vs unguided), data-to-text BLEU and text-to-record accuracy. */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DEVICE_PREFERENCES } from '../../engine/types';
import { CONTINUOUS_SAMPLERS, guidanceSettings, MASKED_CONFIDENCES, MAX_CANDIDATES, MAX_SPACING, PRECISION_PREFERENCES } from '../../constraints/set';
import { evaluateOutputs } from '../../constraints/evaluators';
import { renderMarkdown } from '../../eval/report';
import { runEvaluation, type EvalResults, type EvalSettings, type ScoredSample } from '../../eval/run';
import { renderSeedsMarkdown, summarizeSeeds } from '../../eval/seeds';
import { acceptAtOption, candidatesOption, choiceOption, CliError, intOption, type CliCommand } from '../framework';
import { e2eDataDir, repoRoot } from '../../data-paths';


export const EVAL_PRESETS = {
  quick: { steps: 10, samplesPerTarget: 2, targetsPerControl: 1, unguidedPool: 4, dataToTextItems: 3, textToRecordItems: 3 },
  full: { steps: 200, samplesPerTarget: 8, targetsPerControl: 20, unguidedPool: 64, dataToTextItems: 630, textToRecordItems: 100 },
} as const;

const usage = `usage: dlm-studio eval [--quick] [options]

Generates guided and unguided samples for control targets built from the E2E dev set
(tests/fixtures/eval/targets.json, rebuilt by npm run eval:targets), scores them with the independent
evaluators and the bundle's fluency scorer, and runs data-to-text (BLEU) and text-to-record on the E2E test set.
Writes a JSON results file and a Markdown table beside it.

  --quick                      few targets, samples and steps (CI); default is the full evaluation
  --model <id>                 bundle id (default e2e-default); a masked-diffusion model runs json-schema and the controls
                               its bundle has classifiers on masked canvases for, unless --controls says otherwise
  --device <pref>              ${DEVICE_PREFERENCES.join('|')} (default auto)
  --precision <p>              auto|fp32|int8 denoiser weights (default auto: int8 on cpu when the model has it)
  --steps <n>                  denoising steps (quick ${EVAL_PRESETS.quick.steps}, full ${EVAL_PRESETS.full.steps}; a model whose manifest has
                               sampler_defaults, every masked one: its sampler_defaults.steps, and its
                               guided_steps for the guided runs; --quick on a continuous model: the fewer)
  --samples-per-target <n>     guided samples per target (quick ${EVAL_PRESETS.quick.samplesPerTarget}, full ${EVAL_PRESETS.full.samplesPerTarget})
  --targets-per-control <n>    targets per control (quick ${EVAL_PRESETS.quick.targetsPerControl}, full ${EVAL_PRESETS.full.targetsPerControl})
  --unguided-pool <n>          unguided samples, shared by all targets (quick ${EVAL_PRESETS.quick.unguidedPool}, full ${EVAL_PRESETS.full.unguidedPool})
  --data-to-text <n>           test MRs for BLEU, 0 to skip (quick ${EVAL_PRESETS.quick.dataToTextItems}, full all ${EVAL_PRESETS.full.dataToTextItems})
  --text-to-record <n>         test texts for record accuracy, 0 to skip (quick ${EVAL_PRESETS.quick.textToRecordItems}, full ${EVAL_PRESETS.full.textToRecordItems})
  --controls <a,b,...>         only these controls (pos, spans, attribute, length, sentiment, json-schema,
                               attribute+length, pos+sentiment, attribute+pos)
  --override <c:T:S,...>       per-control targets T and samples per target S, e.g. json-schema:2:4
  --max-minutes <n>            time budget: data-to-text / text-to-record stop early (reported) when it runs out
  --seed <n>                   base seed (default 0)
  --seeds <a,b,...>            the whole evaluation at each of these base seeds (2 to 10): each run to
                               <out>.seed<N>.json and .md, and <out> (and .md) the mean and range over them
  --sampler <s>                continuous models: ${CONTINUOUS_SAMPLERS.join('|')} for every run (default: the bundle's
                               sampler_defaults.method and eta, else ancestral)
  --eta <x>                    with --sampler ddim: eta in [0, 1] (default 0, deterministic)
  --spacing <p>                continuous models: step k of S at t = (T - 1) (k / (S - 1))^p, p in (0, ${MAX_SPACING}]
                               (default: the bundle's sampler_defaults.spacing, else 1, evenly spaced)
  --temperature <t>, --top-p <p>, --block-length <n>, --confidence <c>
                               masked-diffusion models: sampler settings for every run (default: the bundle's;
                               without --temperature, runs that pin nothing take its temperature_unconditional)
  --record-temperature <t>     masked-diffusion models: the record segment's temperature in every run (default: the
                               temperature when given, else in runs that pin nothing the bundle's
                               record_temperature_unconditional)
  --candidates <n>             each output of every run chosen among n samples: by the guidance classifiers in
                               guided runs, by consensus in runs that pin (a masked model's data-to-text: by how
                               well it reads the record back from each text), by the model's own check (continuous
                               models) in the unguided pool, among those with the length asked for where a
                               length constraint is (sampler.candidates, 1 to ${MAX_CANDIDATES}; default:
                               the bundle's sampler_defaults.pinned_candidates for data-to-text and text-to-record,
                               which pin the record or the text, its guided_candidates for the guided runs of the
                               controls, its free_candidates for the unguided pool and json-schema, else 1)
  --accept-at <p>              guided runs with candidates: stop drawing an output's candidates at the first one
                               the guidance classifiers give probability p or more and that has the length a
                               length constraint asks for (sampler.accept_at; 1 = draw
                               all; default: the bundle's level for each run, the largest among its guided kinds
                               of sampler_defaults.accept_at_by_kind, else its accept_at; else draw all)
  --strength <x>               guidance strength of the guided runs (default 1: the bundle's measured weights)
  --guidance <k=v,...>         other guidance settings of the guided runs, e.g. iterations=3,stepSize=0.2,offLastSteps=3
                               (continuous), exactTopK=true (masked)
                               (the names of a recipe's sampler.guidance; strength as --strength)
  --targets <file>             targets file (default tests/fixtures/eval/targets.json)
  --test-set <file>            E2E testset_w_refs.csv (default $E2E_DATA, else ../shared/data/e2e beside the checkout)
  --split test|dev             data-to-text and text-to-record on the test set (default) or on devset.csv from the
                               same folder (the dev set is where models are tuned; the test set is for reporting)
  --out <file.json>            results file (default eval-results/<date>-<model>-<mode>.json); the .md goes beside it
  --samples-out <file.jsonl>   also write every scored control sample (guided and unguided: target, text, record,
                               success, score, fluency perplexity) and every data-to-text text (control
                               "data-to-text": its record, success = no slot error), one JSON object per line`;

/** "json-schema:2:4,pos:10:8" -> {json-schema: {targets: 2, samples: 4}, pos: {...}}; either number may be empty. */
export function parseOverrides(text: string): Record<string, { targets?: number; samples?: number }> {
  const out: Record<string, { targets?: number; samples?: number }> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z+-]+):(\d*):(\d*)$/.exec(part);
    if (!m || (m[2] === '' && m[3] === '') || m[2] === '0' || m[3] === '0') {
      throw new CliError('INVALID_INPUT', `--override ${JSON.stringify(part)}: expected control:targets:samples with positive numbers (e.g. json-schema:2:4)`);
    }
    out[m[1]!] = { ...(m[2] ? { targets: Number(m[2]) } : {}), ...(m[3] ? { samples: Number(m[3]) } : {}) };
  }
  return out;
}

/** --seeds a,b,...: 2 to 10 distinct non-negative integers. */
function seedsOption(raw: string): number[] {
  const parts = raw.split(',').map((x) => x.trim());
  const seeds = parts.map(Number);
  if (parts.some((x) => !/^\d+$/.test(x)) || seeds.some((n) => !Number.isSafeInteger(n) || n > 0xffffffff)) throw new CliError('INVALID_INPUT', `--seeds must be a comma-separated list of non-negative integers (got ${JSON.stringify(raw)})`);
  if (seeds.length < 2 || seeds.length > 10) throw new CliError('INVALID_INPUT', `--seeds takes 2 to 10 seeds (got ${seeds.length}; one seed is --seed)`);
  if (new Set(seeds).size !== seeds.length) throw new CliError('INVALID_INPUT', `--seeds: a seed is listed twice (${raw})`);
  return seeds;
}

/** A results file and its Markdown table beside it; the table's path. */
function writeWithTable(file: string, json: unknown, md: string): string {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  const mdPath = file.replace(/\.json$/, '.md');
  writeFileSync(mdPath, md);
  return mdPath;
}

/** --strength: the guidance strength of the guided runs (a number >= 0; default the sampler's, 1). */
function strengthOption(raw: unknown): Pick<EvalSettings, 'guidance'> {
  if (typeof raw !== 'string') return {};
  const n = Number(raw);
  if (!raw.trim() || !Number.isFinite(n) || n < 0 || n > 100) throw new CliError('INVALID_INPUT', `--strength must be a number from 0 to 100 (got ${JSON.stringify(raw)})`);
  return { guidance: { strength: n } };
}

/** --guidance k=v,...: guidance settings of the guided runs, each checked as a recipe's sampler.guidance field. */
export function guidanceOption(raw: unknown): Pick<EvalSettings, 'guidance'> {
  if (typeof raw !== 'string') return {};
  const keys = Object.keys(guidanceSettings.shape).filter((k) => k !== 'enabled');
  const out: Record<string, number | boolean | null> = {};
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(part);
    if (!m) throw new CliError('INVALID_INPUT', `--guidance ${JSON.stringify(part)}: expected name=value (names: ${keys.join(', ')})`);
    const [, key, value] = m as unknown as [string, string, string];
    if (!keys.includes(key)) throw new CliError('INVALID_INPUT', `--guidance ${key}: not a guidance setting (names: ${keys.join(', ')})`);
    const n = value === 'null' ? null : value === 'true' || value === 'false' ? value === 'true' : Number(value);
    const field = guidanceSettings.shape[key as keyof typeof guidanceSettings.shape];
    const parsed = value.trim() !== '' && (typeof n !== 'number' || Number.isFinite(n)) ? field.safeParse(n) : null;
    if (!parsed?.success) throw new CliError('INVALID_INPUT', `--guidance ${key}=${value}: ${parsed?.error?.issues[0]?.message ?? 'not a number or true/false'}`);
    out[key] = n;
  }
  return { guidance: out };
}

/** --sampler, --eta, --spacing and --accept-at: the continuous-family sampler of every run (absent: the bundle's sampler_defaults, else ancestral, evenly spaced, every candidate drawn). */
function continuousOptions(args: Parameters<typeof intOption>[0]): Pick<EvalSettings, 'sampler'> {
  const method = choiceOption(args, 'sampler', CONTINUOUS_SAMPLERS);
  const sampler: NonNullable<EvalSettings['sampler']> = method ? { method } : {};
  const raw = args.values.eta;
  if (raw !== undefined) {
    const eta = Number(raw);
    if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(eta) || eta < 0 || eta > 1) throw new CliError('INVALID_INPUT', `--eta must be a number from 0 to 1 (got ${JSON.stringify(raw)})`);
    if (method !== 'ddim') throw new CliError('INVALID_INPUT', `--eta applies to --sampler ddim only (${method ? `the sampler is ${method}` : 'give --sampler ddim with it'})`);
    sampler.eta = eta;
  }
  const rawSpacing = args.values.spacing;
  if (rawSpacing !== undefined) {
    const spacing = Number(rawSpacing);
    if (typeof rawSpacing !== 'string' || rawSpacing.trim() === '' || !Number.isFinite(spacing) || spacing <= 0 || spacing > MAX_SPACING) throw new CliError('INVALID_INPUT', `--spacing must be a number above 0 and at most ${MAX_SPACING} (got ${JSON.stringify(rawSpacing)})`);
    sampler.spacing = spacing;
  }
  const acceptAt = acceptAtOption(args);
  if (acceptAt !== undefined) sampler.accept_at = acceptAt;
  return Object.keys(sampler).length ? { sampler } : {};
}

/** The masked-family sampler flags, each only when given. */
function maskedOptions(args: Parameters<typeof intOption>[0]): Pick<EvalSettings, 'masked'> {
  const masked: NonNullable<EvalSettings['masked']> = {};
  const num = (name: string, ok: (n: number) => boolean, what: string) => {
    const v = args.values[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new CliError('INVALID_INPUT', `--${name} must be ${what} (got ${JSON.stringify(v)})`);
    return n;
  };
  const temperature = num('temperature', (n) => n >= 0, 'a non-negative number');
  if (temperature !== undefined) masked.temperature = temperature;
  const topP = num('top-p', (n) => n > 0 && n <= 1, 'in (0, 1]');
  if (topP !== undefined) masked.top_p = topP;
  const recordTemperature = num('record-temperature', (n) => n >= 0, 'a non-negative number');
  if (recordTemperature !== undefined) masked.record_temperature = recordTemperature;
  const blockLength = intOption(args, 'block-length');
  if (blockLength !== undefined) masked.block_length = blockLength;
  const confidence = choiceOption(args, 'confidence', MASKED_CONFIDENCES);
  if (confidence !== undefined) masked.confidence = confidence;
  return Object.keys(masked).length ? { masked } : {};
}

export const evalCommand: CliCommand = {
  name: 'eval',
  summary: 'evaluate control success, fluency, BLEU and record accuracy (guided vs unguided)',
  usage,
  options: {
    quick: { type: 'boolean' },
    model: { type: 'string' },
    device: { type: 'string' },
    precision: { type: 'string' },
    steps: { type: 'string' },
    'samples-per-target': { type: 'string' },
    'targets-per-control': { type: 'string' },
    'unguided-pool': { type: 'string' },
    'data-to-text': { type: 'string' },
    'text-to-record': { type: 'string' },
    controls: { type: 'string' },
    override: { type: 'string' },
    'max-minutes': { type: 'string' },
    seed: { type: 'string' },
    targets: { type: 'string' },
    'test-set': { type: 'string' },
    split: { type: 'string' },
    out: { type: 'string' },
    'samples-out': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    'record-temperature': { type: 'string' },
    'block-length': { type: 'string' },
    confidence: { type: 'string' },
    sampler: { type: 'string' },
    eta: { type: 'string' },
    spacing: { type: 'string' },
    strength: { type: 'string' },
    guidance: { type: 'string' },
    candidates: { type: 'string' },
    'accept-at': { type: 'string' },
    seeds: { type: 'string' },
  },
  async run(ctx, args) {
    const v = args.values;
    const mode = v.quick === true ? 'quick' : 'full';
    const preset = EVAL_PRESETS[mode];
    const device = choiceOption(args, 'device', DEVICE_PREFERENCES) ?? 'auto';
    const precision = choiceOption(args, 'precision', PRECISION_PREFERENCES);
    const positive = (name: string, dflt: number, min = 1) => {
      const n = intOption(args, name) ?? dflt;
      if (n < min) throw new CliError('INVALID_INPUT', `--${name} must be at least ${min} (got ${n})`);
      return n;
    };
    const dataDir = e2eDataDir();
    const split = choiceSplit(v.split);
    const model = typeof v.model === 'string' ? v.model : 'e2e-default';
    const settings: EvalSettings = {
      mode,
      model,
      device,
      ...(precision ? { precision } : {}),
      steps: positive('steps', preset.steps),
      samplesPerTarget: positive('samples-per-target', preset.samplesPerTarget),
      targetsPerControl: positive('targets-per-control', preset.targetsPerControl),
      unguidedPool: positive('unguided-pool', preset.unguidedPool),
      dataToTextItems: positive('data-to-text', preset.dataToTextItems, 0),
      textToRecordItems: positive('text-to-record', preset.textToRecordItems, 0),
      seed: positive('seed', 0, 0),
      ...(v.candidates !== undefined ? { candidates: candidatesOption(args)! } : {}),
      ...(v.steps === undefined ? { stepsFromModel: true } : {}),
      ...maskedOptions(args),
      ...continuousOptions(args),
      ...(typeof v['max-minutes'] === 'string' ? { maxMinutes: positive('max-minutes', 0) } : {}),
      ...(typeof v.override === 'string' ? { overrides: parseOverrides(v.override) } : {}),
      ...(typeof v.controls === 'string' ? { controls: v.controls.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
      ...(() => {
        const g = { ...guidanceOption(v.guidance).guidance, ...strengthOption(v.strength).guidance };
        return Object.keys(g).length ? { guidance: g } : {};
      })(),
      targetsPath: resolve(typeof v.targets === 'string' ? v.targets : join(repoRoot(), 'tests/fixtures/eval/targets.json')),
      testPath: resolve(typeof v['test-set'] === 'string' ? v['test-set'] : join(dataDir, split === 'dev' ? 'devset.csv' : 'testset_w_refs.csv')),
      split,
    };
    const seeds = typeof v.seeds === 'string' ? seedsOption(v.seeds) : null;
    if (seeds && v.seed !== undefined) throw new CliError('INVALID_INPUT', '--seeds runs the evaluation at each of its seeds; --seed names one, so give one or the other');
    if (split === 'dev' && typeof v['test-set'] === 'string') {
      throw new CliError('INVALID_INPUT', '--split dev reads devset.csv from the E2E data folder; --test-set names a test-set file, so give one or the other');
    }
    if (split === 'test' && /dev|train/i.test(settings.testPath.split('/').pop() ?? '')) {
      throw new CliError('INVALID_INPUT', `--test-set ${settings.testPath}: data-to-text is evaluated on the E2E test set (testset_w_refs.csv)`);
    }
    const factory = ctx.engine.engine;
    if (!factory) throw new CliError('ENGINE_UNAVAILABLE', ctx.engine.reason ?? 'no inference engine in this build');
    const engine = await factory(ctx.modelDirs);
    const stamp = new Date().toISOString().slice(0, 10);
    const out = resolve(typeof v.out === 'string' ? v.out : join('eval-results', `${stamp}-${model}-${mode}.json`));
    if (!out.endsWith('.json')) throw new CliError('INVALID_INPUT', `--out ${out}: the results file must end in .json`);
    try {
      const samplesOut = typeof v['samples-out'] === 'string' ? resolve(v['samples-out']) : null;
      if (samplesOut) {
        mkdirSync(dirname(samplesOut), { recursive: true });
        writeFileSync(samplesOut, '');
      }
      /** One evaluation into `file` (and its table); samples appended to --samples-out, tagged with `tag`. */
      const evaluateInto = async (file: string, runSettings: EvalSettings, logPrefix: string, tag: { seed?: number } = {}) => {
        const onSample = samplesOut ? (x: ScoredSample) => appendFileSync(samplesOut, JSON.stringify({ ...x, ...tag }) + '\n') : undefined;
        const results = await runEvaluation(runSettings, { engine, evaluate: evaluateOutputs, log: (l) => ctx.err(`${logPrefix}${l}`), ...(onSample ? { onSample } : {}) });
        const md = renderMarkdown(results);
        return { results, md, mdPath: writeWithTable(file, results, md) };
      };
      if (seeds) {
        // each seed's run in its own files, then the summary over them in --out
        const runs: EvalResults[] = [];
        const files: string[] = [];
        for (const seed of seeds) {
          const file = out.replace(/\.json$/, `.seed${seed}.json`);
          ctx.err(`[eval] seed ${seed} (${runs.length + 1} of ${seeds.length})`);
          runs.push((await evaluateInto(file, { ...settings, seed }, `[eval] seed ${seed}: `, { seed })).results);
          files.push(file);
        }
        const summary = summarizeSeeds(seeds, runs, files);
        const md = renderSeedsMarkdown(summary);
        const mdPath = writeWithTable(out, summary, md);
        ctx.out(ctx.json ? JSON.stringify({ results: out, markdown: mdPath, runs: files }) : `${md}\nresults: ${out}\ntable: ${mdPath}`);
        return runs.every((r) => r.controls.length && r.controls.every((c) => c.error)) ? 1 : 0;
      }
      const { results, md, mdPath } = await evaluateInto(out, settings, '[eval] ');
      ctx.out(ctx.json ? JSON.stringify({ results: out, markdown: mdPath }) : `${md}\nresults: ${out}\ntable: ${mdPath}`);
      const failed = results.controls.filter((c) => c.error);
      if (failed.length === results.controls.length) {
        ctx.err(`every control failed: ${failed[0]?.error}`);
        return 1;
      }
    } finally {
      await engine.dispose();
    }
  },
};

function choiceSplit(v: unknown): 'test' | 'dev' {
  if (v === undefined) return 'test';
  if (v === 'test' || v === 'dev') return v;
  throw new CliError('INVALID_INPUT', `--split: unknown value ${JSON.stringify(v)} (known: test, dev)`);
}
