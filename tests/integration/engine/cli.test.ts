import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../cli-harness';
import { defaultEngine } from '../../../src-main/services/engine-loader';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../../../src-main/engine/tokenizer';
import { writeMicroBundle } from './micro-bundle';
import type { MaskedBenchFigures, MaskedBenchResult } from '../../../src-main/cli/commands/bench-masked';

const MASKED = fileURLToPath(new URL('../../fixtures/masked-tiny/', import.meta.url));

let root: string;
let models: string;

const cli = (...argv: string[]) => runCliCaptured(argv, { dir: root, bundledModelDirs: [join(root, 'no-bundled-models')], engine: defaultEngine(), extraArgs: ['--models', models] });

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'dlm-cli-'));
  models = join(root, 'models');
  writeMicroBundle(join(models, 'micro'));
  // the same micro bundle with continuous sampler_defaults (the manifest is not among the hashed files)
  writeMicroBundle(join(models, 'micro-sd'), { id: 'micro-sd' });
  const sd = JSON.parse(readFileSync(join(models, 'micro-sd', 'manifest.json'), 'utf8'));
  sd.sampler_defaults = { steps: 7, method: 'ddim', eta: 0.5, measured: { note: 'test bundle' } };
  writeFileSync(join(models, 'micro-sd', 'manifest.json'), JSON.stringify(sd));
  // and with steps spaced unevenly by default (evenly for guided runs)
  writeMicroBundle(join(models, 'micro-sp'), { id: 'micro-sp' });
  const sp = JSON.parse(readFileSync(join(models, 'micro-sp', 'manifest.json'), 'utf8'));
  sp.sampler_defaults = { steps: 5, spacing: 0.5, guided_spacing: 1, guided_steps: 4, pinned_candidates: 3, guided_candidates: 2 };
  writeFileSync(join(models, 'micro-sp', 'manifest.json'), JSON.stringify(sp));
  // and with free_candidates (runs that neither guide nor pin)
  writeMicroBundle(join(models, 'micro-fc'), { id: 'micro-fc' });
  const fc = JSON.parse(readFileSync(join(models, 'micro-fc', 'manifest.json'), 'utf8'));
  fc.sampler_defaults = { steps: 5, pinned_candidates: 3, guided_candidates: 2, free_candidates: 4 };
  writeFileSync(join(models, 'micro-fc', 'manifest.json'), JSON.stringify(fc));
  // and with accept_at (guided runs stop drawing candidates early); a level every candidate meets
  writeMicroBundle(join(models, 'micro-ac'), { id: 'micro-ac' });
  const ac = JSON.parse(readFileSync(join(models, 'micro-ac', 'manifest.json'), 'utf8'));
  ac.sampler_defaults = { steps: 5, pinned_candidates: 2, guided_candidates: 3, accept_at: 1e-30 };
  writeFileSync(join(models, 'micro-ac', 'manifest.json'), JSON.stringify(ac));
  cpSync(MASKED, join(models, 'masked-tiny'), { recursive: true });
  // the same bundle with sampler_defaults.temperature_unconditional (the manifest is not among the hashed files)
  const unc = join(models, 'masked-unc');
  cpSync(MASKED, unc, { recursive: true });
  const m = JSON.parse(readFileSync(join(unc, 'manifest.json'), 'utf8'));
  m.id = 'masked-unc';
  m.sampler_defaults.temperature_unconditional = 0.8;
  writeFileSync(join(unc, 'manifest.json'), JSON.stringify(m));
  // and with an "int8" denoiser (the fp32 graph under another name: the bench's int8 vs fp32 rows need two files)
  const q = join(models, 'masked-int8');
  cpSync(MASKED, q, { recursive: true });
  cpSync(join(q, 'denoiser.onnx'), join(q, 'denoiser.int8.onnx'));
  const mq = JSON.parse(readFileSync(join(q, 'manifest.json'), 'utf8'));
  mq.id = 'masked-int8';
  mq.denoiser.int8 = { file: 'denoiser.int8.onnx', activations: 'static' };
  mq.files.push({ ...mq.files.find((f: { path: string }) => f.path === 'denoiser.onnx'), path: 'denoiser.int8.onnx' });
  writeFileSync(join(q, 'manifest.json'), JSON.stringify(mq));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('dlm-studio generate / models', () => {
  it('writes one JSON object per sample with the documented fields; progress on stderr', async () => {
    const set = join(root, 'set.json');
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [{ kind: 'record', value: { name: 'Alimentum' } }, { kind: 'sentiment', label: 'positive' }], sampler: { steps: 50, samples: 2 } }));
    const out = join(root, 'out.jsonl');
    const r = await cli('generate', '--model', 'micro', '--constraints', set, '--samples', '3', '--steps', '6', '--seed', '9', '--device', 'auto', '--out', out);
    expect(r.err).toMatch(/step 6\/6/);
    expect(r.code).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    for (const [i, l] of lines.entries()) {
      expect(l).toMatchObject({ index: i, steps: 6, device: 'cpu', model: 'micro', record: { name: 'Alimentum' } });
      expect(typeof l.text).toBe('string');
      expect(typeof l.seed).toBe('number');
      expect(l.constraints).toHaveLength(2);
      expect((l.constraints as { kind: string; satisfied: boolean }[]).map((c) => c.kind)).toEqual(['record', 'sentiment']);
      expect(typeof l.fluency).toBe('number');
    }
    // same seed, same output
    const out2 = join(root, 'out2.jsonl');
    await cli('generate', '--model', 'micro', '--constraints', set, '--samples', '3', '--steps', '6', '--seed', '9', '--out', out2);
    expect(readFileSync(out2, 'utf8')).toBe(readFileSync(out, 'utf8'));
  });

  it('exits non-zero with a named error on bad input', async () => {
    const write = (name: string, text: string) => {
      const f = join(root, name);
      writeFileSync(f, text);
      return f;
    };
    const cases: [string[], RegExp][] = [
      [['--constraints', join(root, 'missing.json')], /error \[IO_ERROR\]: cannot read constraints file .*missing\.json/],
      [['--constraints', write('bad.json', '{"version": 1,')], /error \[INVALID_INPUT\]: .*bad\.json: not valid JSON/],
      [['--constraints', write('kind.json', '{"version":1,"constraints":[{"kind":"colour"}]}')], /constraints\[0\]\.kind: unknown constraint kind "colour"/],
      [['--constraints', write('field.json', '{"version":1,"constraints":[{"kind":"length","tokens":"ten"}]}')], /constraints\[0\]\.tokens/],
      [['--device', 'tpu'], /--device must be one of/],
      [['--precision', 'fp16'], /--precision must be one of auto, fp32, int8 \(got "fp16"\)/],
    ];
    for (const [args, re] of cases) {
      const r = await cli('generate', '--model', 'micro', ...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.err).toMatch(re);
    }
    const unknown = await cli('generate', '--model', 'nope');
    expect(unknown.code).not.toBe(0);
    expect(unknown.err).toMatch(/error \[NOT_FOUND\]: unknown model "nope"/);
  });

  it('--sampler and --eta pick the continuous sampler; each line records it; bad values are refused by flag', async () => {
    const read = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { tokens?: number[]; text: string; sampler: unknown });
    const outs: Record<string, string> = {};
    for (const [name, flags] of [['anc', []], ['ddim0', ['--sampler', 'ddim']], ['ddim5', ['--sampler', 'ddim', '--eta', '0.5']], ['dpm', ['--sampler', 'dpm2m']], ['spaced', ['--spacing', '0.5']]] as const) {
      outs[name] = join(root, `sampler-${name}.jsonl`);
      const r = await cli('generate', '--model', 'micro', '--samples', '2', '--steps', '5', '--seed', '4', '--out', outs[name]!, ...flags);
      expect(r.code, r.err).toBe(0);
    }
    expect(read(outs.anc!)[0]!.sampler).toEqual({ method: 'ancestral' });
    expect(read(outs.ddim0!)[0]!.sampler).toEqual({ method: 'ddim', eta: 0 });
    expect(read(outs.ddim5!)[0]!.sampler).toEqual({ method: 'ddim', eta: 0.5 });
    expect(read(outs.dpm!)[0]!.sampler).toEqual({ method: 'dpm2m' });
    expect(read(outs.spaced!)[0]!.sampler).toEqual({ method: 'ancestral', spacing: 0.5 });
    // other timesteps, other noise levels: the same seed lands elsewhere
    expect(read(outs.spaced!).map((o) => o.text)).not.toEqual(read(outs.anc!).map((o) => o.text));
    // a set file's sampler.method is the default; the flag overrides it
    const set = join(root, 'set-ddim.json');
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [], sampler: { method: 'ddim', eta: 0.5 } }));
    const fromSet = join(root, 'sampler-set.jsonl');
    expect((await cli('generate', '--model', 'micro', '--constraints', set, '--samples', '2', '--steps', '5', '--seed', '4', '--out', fromSet)).code).toBe(0);
    expect(readFileSync(fromSet, 'utf8')).toBe(readFileSync(outs.ddim5!, 'utf8'));
    const cases: [string[], RegExp][] = [
      [['--sampler', 'euler'], /--sampler must be one of ancestral, ddim, dpm2m \(got "euler"\)/],
      [['--sampler', 'ddim', '--eta', '1.5'], /--eta must be in \[0, 1\]/],
      [['--sampler', 'ddim', '--eta', 'x'], /--eta must be a non-negative number/],
      [['--sampler', 'dpm2m', '--eta', '0.5'], /--eta applies to --sampler ddim only/],
      [['--eta', '0.5'], /--eta applies to --sampler ddim only \(the sampler is ancestral\)/],
      [['--spacing', '0'], /--spacing must be above 0 and at most 4 \(got 0\)/],
      [['--spacing', '5'], /--spacing must be above 0 and at most 4 \(got 5\)/],
    ];
    for (const [args, re] of cases) {
      const r = await cli('generate', '--model', 'micro', '--steps', '2', '--samples', '1', ...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.err).toMatch(re);
    }
    const masked = await cli('generate', '--model', 'masked-tiny', '--samples', '1', '--sampler', 'ddim');
    expect(masked.code).not.toBe(0);
    expect(masked.err).toMatch(/--sampler: ddim is a sampler for continuous models; masked-tiny is a masked-diffusion model/);
  });

  it('a continuous bundle with sampler_defaults: its steps and sampler unless --steps/--sampler or the set choose; without them 200 ancestral', async () => {
    const gen = async (name: string, ...args: string[]) => {
      const out = join(root, `sd-${name}.jsonl`);
      const r = await cli('generate', '--samples', '2', '--seed', '3', '--out', out, ...args);
      expect(r.code, r.err).toBe(0);
      return { err: r.err, text: readFileSync(out, 'utf8'), lines: readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { steps: number; sampler: unknown }) };
    };
    // nothing chosen: the bundle's 7 ddim (eta 0.5) steps, the same run as asking for them
    const own = await gen('own', '--model', 'micro-sd');
    expect(own.err).toMatch(/step 7\/7/);
    expect(own.lines[0]).toMatchObject({ steps: 7, sampler: { method: 'ddim', eta: 0.5 } });
    const explicit = await gen('explicit', '--model', 'micro-sd', '--steps', '7', '--sampler', 'ddim', '--eta', '0.5');
    expect(explicit.text).toBe(own.text);
    // --steps, --sampler and --eta each win over the bundle's
    const steps = await gen('steps', '--model', 'micro-sd', '--steps', '3');
    expect(steps.err).toMatch(/step 3\/3/);
    expect(steps.lines[0]).toMatchObject({ steps: 3, sampler: { method: 'ddim', eta: 0.5 } });
    expect((await gen('anc', '--model', 'micro-sd', '--sampler', 'ancestral')).lines[0]).toMatchObject({ steps: 7, sampler: { method: 'ancestral' } });
    expect((await gen('eta', '--model', 'micro-sd', '--eta', '0.2')).lines[0]).toMatchObject({ steps: 7, sampler: { method: 'ddim', eta: 0.2 } });
    // a set's steps and method win too (its eta with its method)
    const set = join(root, 'sd-set.json');
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [], sampler: { steps: 4, method: 'dpm2m' } }));
    const fromSet = await gen('set', '--model', 'micro-sd', '--constraints', set);
    expect(fromSet.lines[0]).toMatchObject({ steps: 4, sampler: { method: 'dpm2m' } });
    // a set without sampler settings: the bundle's
    const bare = join(root, 'sd-bare.json');
    writeFileSync(bare, JSON.stringify({ version: 1, constraints: [] }));
    expect((await gen('bare', '--model', 'micro-sd', '--constraints', bare)).text).toBe(own.text);
    // a bundle without sampler_defaults: as before, 200 ancestral steps
    const plain = await gen('plain', '--model', 'micro');
    expect(plain.err).toMatch(/step 200\/200/);
    expect(plain.lines[0]).toMatchObject({ steps: 200, sampler: { method: 'ancestral' } });
    // listed with the defaults
    const listed = JSON.parse((await cli('models', '--json')).out) as { models: { id: string; continuousDefaults?: unknown; samplerDefaults?: unknown }[] };
    expect(listed.models.find((m) => m.id === 'micro-sd')).toMatchObject({ continuousDefaults: { steps: 7, method: 'ddim', eta: 0.5, spacing: 1, measured: { note: 'test bundle' } } });
    // a bundle's step spacing: taken unless --spacing or the set give one
    const spaced = await gen('sp-own', '--model', 'micro-sp');
    expect(spaced.lines[0]).toMatchObject({ steps: 5, sampler: { method: 'ancestral', spacing: 0.5 } });
    expect((await gen('sp-asked', '--model', 'micro', '--steps', '5', '--spacing', '0.5')).text).toBe(spaced.text.replaceAll('"micro-sp"', '"micro"'));
    expect((await gen('sp-even', '--model', 'micro-sp', '--spacing', '1')).lines[0]!.sampler).toEqual({ method: 'ancestral' });
    const evenSet = join(root, 'sp-set.json');
    writeFileSync(evenSet, JSON.stringify({ version: 1, constraints: [], sampler: { spacing: 1 } }));
    expect((await gen('sp-set', '--model', 'micro-sp', '--constraints', evenSet)).lines[0]!.sampler).toEqual({ method: 'ancestral' });
    // a guided run takes the bundle's guided_spacing (here even) and guided_steps; --spacing and --steps still decide
    const guidedSet = join(root, 'sp-guided.json');
    writeFileSync(guidedSet, JSON.stringify({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }] }));
    const guidedOwn = await gen('sp-guided', '--model', 'micro-sp', '--constraints', guidedSet);
    expect(guidedOwn.lines[0]).toMatchObject({ steps: 4, sampler: { method: 'ancestral' } });
    expect(guidedOwn.lines[0]!.sampler).not.toHaveProperty('spacing');
    expect((await gen('sp-guided-asked', '--model', 'micro-sp', '--constraints', guidedSet, '--spacing', '0.5', '--steps', '5')).lines[0]).toMatchObject({ steps: 5, sampler: { method: 'ancestral', spacing: 0.5 } });
    expect(listed.models.find((m) => m.id === 'micro-sp')).toMatchObject({ continuousDefaults: { steps: 5, spacing: 0.5, guidedSpacing: 1, guidedSteps: 4 } });
    expect(listed.models.find((m) => m.id === 'micro-sd')).not.toHaveProperty('samplerDefaults');
    expect(listed.models.find((m) => m.id === 'micro')).not.toHaveProperty('continuousDefaults');
    // ten CLI processes, one of 200 steps: a minute when the suite's files share two cores
  }, 180_000);

  it('a bundle\'s pinned_candidates: a pinned run takes them unless --candidates or the set choose; nothing pinned, one per output', async () => {
    const gen = async (name: string, ...args: string[]) => {
      const out = join(root, `pc-${name}.jsonl`);
      const r = await cli('generate', '--samples', '2', '--seed', '3', '--out', out, ...args);
      expect(r.code, r.err).toBe(0);
      return { err: r.err, lines: readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { consensus?: { candidates: number } }) };
    };
    // a run that pins a record takes the bundle's pinned_candidates; --candidates or the set's decide over it
    const recordSet = join(root, 'sp-record.json');
    writeFileSync(recordSet, JSON.stringify({ version: 1, constraints: [{ kind: 'record', value: { name: 'The Vaults', eatType: 'pub' } }] }));
    const pinnedRun = await gen('sp-record', '--model', 'micro-sp', '--constraints', recordSet);
    expect(pinnedRun.err).toMatch(/outputs 1-2\/2 \(3 candidates each\)/);
    expect(pinnedRun.lines.map((l) => l.consensus?.candidates)).toEqual([3, 3]);
    expect((await gen('sp-record-1', '--model', 'micro-sp', '--constraints', recordSet, '--candidates', '1')).lines.every((l) => !('consensus' in l))).toBe(true);
    writeFileSync(recordSet, JSON.stringify({ version: 1, constraints: [{ kind: 'record', value: { name: 'The Vaults', eatType: 'pub' } }], sampler: { candidates: 2 } }));
    expect((await gen('sp-record-set', '--model', 'micro-sp', '--constraints', recordSet)).lines.map((l) => l.consensus?.candidates)).toEqual([2, 2]);
    // nothing pinned: one sample per output
    expect((await gen('sp-open', '--model', 'micro-sp')).lines.every((l) => !('consensus' in l))).toBe(true);
    for (const bad of ['0', '17']) {
      const r = await cli('generate', '--model', 'micro-sp', '--samples', '1', '--candidates', bad);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(new RegExp(`--candidates must be from 1 to 16 \\(got ${bad}\\)`));
    }
    const listed = JSON.parse((await cli('models', '--json')).out) as { models: { id: string; pinnedCandidates?: number }[] };
    expect(listed.models.find((m) => m.id === 'micro-sp')).toMatchObject({ pinnedCandidates: 3, guidedCandidates: 2 });
  });

  it('a bundle\'s guided_candidates: a guided run takes them, each output the classifier\'s pick; pinned and guided, the larger', async () => {
    const gen = async (name: string, ...args: string[]) => {
      const out = join(root, `gc-${name}.jsonl`);
      const r = await cli('generate', '--samples', '2', '--seed', '3', '--out', out, ...args);
      expect(r.code, r.err).toBe(0);
      return { lines: readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { consensus?: { candidates: number; by: string; scores?: number[] } }) };
    };
    const guidedSet = join(root, 'sp-guided-c.json');
    writeFileSync(guidedSet, JSON.stringify({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }] }));
    const guided = (await gen('sp-guided-c', '--model', 'micro-sp', '--constraints', guidedSet)).lines;
    expect(guided.map((l) => [l.consensus?.candidates, l.consensus?.by, l.consensus?.scores?.length])).toEqual([[2, 'classifiers', 2], [2, 'classifiers', 2]]);
    writeFileSync(guidedSet, JSON.stringify({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }, { kind: 'record', value: { name: 'The Vaults' } }] }));
    expect((await gen('sp-guided-rec', '--model', 'micro-sp', '--constraints', guidedSet)).lines.map((l) => [l.consensus?.candidates, l.consensus?.by])).toEqual([[3, 'classifiers'], [3, 'classifiers']]);
    // --accept-at: a threshold every candidate meets stops each output at its first
    writeFileSync(guidedSet, JSON.stringify({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }] }));
    const accepted = (await gen('sp-guided-accept', '--model', 'micro-sp', '--constraints', guidedSet, '--candidates', '3', '--accept-at', '1e-30')).lines as { consensus?: { candidates: number; drawn?: number; chosen: number } }[];
    expect(accepted.map((l) => [l.consensus?.candidates, l.consensus?.drawn, l.consensus?.chosen])).toEqual([[3, 1, 0], [3, 1, 0]]);
    for (const bad of ['0', '1.5', 'x']) {
      const r = await cli('generate', '--model', 'micro-sp', '--samples', '1', '--constraints', guidedSet, '--accept-at', bad);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/--accept-at must be/);
    }
    // guidance off: one per output
    writeFileSync(guidedSet, JSON.stringify({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { guidance: { enabled: false } } }));
    expect((await gen('sp-guided-off', '--model', 'micro-sp', '--constraints', guidedSet)).lines.every((l) => !('consensus' in l))).toBe(true);
  });

  it('a bundle\'s free_candidates: a run that neither guides nor pins takes them, each output the model\'s own pick', async () => {
    const gen = async (name: string, ...args: string[]) => {
      const out = join(root, `fc-${name}.jsonl`);
      const r = await cli('generate', '--model', 'micro-fc', '--samples', '2', '--seed', '3', '--out', out, ...args);
      expect(r.code, r.err).toBe(0);
      return readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { consensus?: { candidates: number; by: string; scores?: number[] } });
    };
    const what = (lines: Awaited<ReturnType<typeof gen>>) => lines.map((l) => [l.consensus?.candidates, l.consensus?.by, l.consensus?.scores?.length]);
    expect(what(await gen('open'))).toEqual([[4, 'model', 4], [4, 'model', 4]]);
    // guidance off makes a guided set a free one
    const set = join(root, 'fc-set.json');
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { guidance: { enabled: false } } }));
    expect(what(await gen('off', '--constraints', set))).toEqual([[4, 'model', 4], [4, 'model', 4]]);
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }] }));
    expect(what(await gen('guided', '--constraints', set))).toEqual([[2, 'classifiers', 2], [2, 'classifiers', 2]]);
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [{ kind: 'record', value: { name: 'The Vaults' } }] }));
    expect(what(await gen('pinned', '--constraints', set))).toEqual([[3, 'consensus', undefined], [3, 'consensus', undefined]]);
    expect((await gen('one', '--candidates', '1')).every((l) => !('consensus' in l))).toBe(true);
    const listed = JSON.parse((await cli('models', '--json')).out) as { models: { id: string }[] };
    expect(listed.models.find((m) => m.id === 'micro-fc')).toMatchObject({ freeCandidates: 4 });
  });

  it('a bundle\'s accept_at: a guided run that names none stops at its first accepted candidate; --accept-at 1 or the set\'s draw all', async () => {
    const gen = async (name: string, ...args: string[]) => {
      const out = join(root, `ac-${name}.jsonl`);
      const r = await cli('generate', '--model', 'micro-ac', '--samples', '2', '--seed', '3', '--out', out, ...args);
      expect(r.code, r.err).toBe(0);
      return readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { consensus?: { candidates: number; by: string; drawn?: number; scores?: number[] } });
    };
    const what = (lines: Awaited<ReturnType<typeof gen>>) => lines.map((l) => [l.consensus?.candidates, l.consensus?.by, l.consensus?.drawn, l.consensus?.scores?.length]);
    const set = join(root, 'ac-set.json');
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }] }));
    expect(what(await gen('guided', '--constraints', set))).toEqual([[3, 'classifiers', 1, 1], [3, 'classifiers', 1, 1]]);
    expect(what(await gen('guided-all', '--constraints', set, '--accept-at', '1'))).toEqual([[3, 'classifiers', undefined, 3], [3, 'classifiers', undefined, 3]]);
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [{ kind: 'sentiment', label: 'positive' }], sampler: { accept_at: 1 } }));
    expect(what(await gen('guided-set', '--constraints', set))).toEqual([[3, 'classifiers', undefined, 3], [3, 'classifiers', undefined, 3]]);
    // a pinned run is chosen by consensus: every candidate drawn
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [{ kind: 'record', value: { name: 'The Vaults' } }] }));
    expect(what(await gen('pinned', '--constraints', set))).toEqual([[2, 'consensus', undefined, undefined], [2, 'consensus', undefined, undefined]]);
    const listed = JSON.parse((await cli('models', '--json')).out) as { models: { id: string }[] };
    expect(listed.models.find((m) => m.id === 'micro-ac')).toMatchObject({ continuousDefaults: { acceptAt: 1e-30 } });
  }, 120_000);

  it('models lists bundles and devices', async () => {
    const r = await cli('models', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { models: { id: string }[]; devices: { active: string; probes: { provider: string; usable: boolean; reason?: string }[] } };
    expect(j.models.map((m) => m.id)).toContain('micro');
    expect(j.devices.active).toBe('cpu');
    expect(j.devices.probes.find((p) => p.provider === 'webgpu')?.reason).toBeTruthy();
    const text = await cli('models');
    expect(text.out).toMatch(/micro\s+0\.0\.1/);
    expect(text.out).toMatch(/active: cpu/);
  });

  it('generates from a masked-diffusion bundle: the reference sampler tokens, its defaults, overrides by flag', async () => {
    const golden = JSON.parse(readFileSync(join(MASKED, 'golden.json'), 'utf8')) as { cases: { seed: number; samples: number; ids: number[][]; settings: Record<string, unknown> }[] };
    const tok = Tokenizer.fromJSON(JSON.parse(readFileSync(join(MASKED, 'vocab.json'), 'utf8')));
    const c = golden.cases[0]!;
    const out = join(root, 'masked.jsonl');
    const r = await cli('generate', '--model', 'masked-tiny', '--samples', String(c.samples), '--seed', String(c.seed), '--out', out);
    expect(r.code, r.err).toBe(0);
    // no --steps: the manifest's sampler_defaults.steps
    expect(r.err).toMatch(/step 12\/12/);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(c.samples);
    lines.forEach((l, i) => {
      const { steps, ...sampler } = c.settings;
      expect(steps).toBe(12);
      expect(l).toMatchObject({ index: i, steps: 12, model: 'masked-tiny', kind: 'masked-diffusion', precision: 'fp32', sampler });
      const text = c.ids[i]!.slice(17);
      const end = text.indexOf(2);
      expect(l.text).toBe(tok.decode(end < 0 ? text : text.slice(0, end)));
    });
    const out2 = join(root, 'masked2.jsonl');
    const flags = await cli('generate', '--model', 'masked-tiny', '--samples', '2', '--steps', '6', '--block-length', '4', '--confidence', 'origin', '--temperature', '0.7', '--top-p', '0.9', '--record-temperature', '1.2', '--out', out2);
    expect(flags.code, flags.err).toBe(0);
    const first = JSON.parse(readFileSync(out2, 'utf8').trim().split('\n')[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ steps: 6, sampler: { block_length: 4, confidence: 'origin', temperature: 0.7, top_p: 0.9, record_temperature: 1.2 } });
    for (const [args, re] of [
      [['--confidence', 'vibes'], /--confidence must be one of low_confidence, maskgit_plus, topk_margin, entropy, origin/],
      [['--top-p', '1.5'], /--top-p must be in \(0, 1\]/],
      [['--temperature', 'hot'], /--temperature must be a non-negative number/],
      [['--record-temperature', 'warm'], /--record-temperature must be a non-negative number/],
    ] as const) {
      const bad = await cli('generate', '--model', 'masked-tiny', ...args);
      expect(bad.code).not.toBe(0);
      expect(bad.err).toMatch(re);
    }
    const listed = await cli('models');
    expect(listed.out).toMatch(/masked-tiny\s+0\.0\.1\s+masked-diffusion/);
  });

  it('a masked model with temperature_unconditional: no temperature forced; each line records the one that ran', async () => {
    const gen = async (name: string, ...args: string[]) => {
      const out = join(root, `${name}.jsonl`);
      const r = await cli('generate', '--model', 'masked-unc', '--samples', '4', '--seed', '7', '--out', out, ...args);
      expect(r.code, r.err).toBe(0);
      return readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { text: string; recordText: string; sampler: { temperature: number } });
    };
    const sample = (ls: { text: string; recordText: string }[]) => ls.map((l) => `${l.recordText}|${l.text}`);
    // nothing pinned: temperature_unconditional, as if asked for
    const auto = await gen('unc-auto');
    expect(auto.map((l) => l.sampler.temperature)).toEqual([0.8, 0.8, 0.8, 0.8]);
    expect(new Set(sample(auto)).size).toBe(4);
    expect(sample(await gen('unc-explicit', '--temperature', '0.8'))).toEqual(sample(auto));
    // a held record: sampler_defaults.temperature (0, argmax: every sample the same)
    const set = join(root, 'unc-record.json');
    writeFileSync(set, JSON.stringify({ version: 1, constraints: [{ kind: 'record', value: { name: 'Alimentum' } }] }));
    const rec = await gen('unc-record', '--constraints', set);
    expect(rec.map((l) => l.sampler.temperature)).toEqual([0, 0, 0, 0]);
    expect(new Set(sample(rec)).size).toBe(1);
    // a temperature given always wins
    const cold = await gen('unc-cold', '--temperature', '0');
    expect(cold.map((l) => l.sampler.temperature)).toEqual([0, 0, 0, 0]);
    expect(new Set(sample(cold)).size).toBe(1);
  });
});

describe('dlm-studio bench on a masked-diffusion bundle', () => {
  it('measures every sampler setting at batch 8 and 64, and logits reuse on vs off, in one run', async () => {
    const out = join(root, 'bench-masked.json');
    const r = await cli('bench', '--model', 'masked-tiny', '--steps', '6', '--cache-steps', '24', '--rounds', '2', '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/round 2\/2: caching on vs off/);
    const j = JSON.parse(readFileSync(out, 'utf8')) as MaskedBenchResult;
    expect(j).toMatchObject({ kind: 'masked-diffusion', model: { id: 'masked-tiny' }, steps: 6, cacheSteps: 24, rounds: 2, batches: [8, 64] });
    expect(j.machine.cpus).toBeGreaterThan(0);
    expect(j.threads.lanes).toBe(1);
    expect(j.load.before).toHaveLength(3);
    expect(j.load.rounds).toHaveLength(2);
    expect(j.record.value).toEqual({ name: 'Alimentum', eatType: 'pub', food: 'Italian' });
    const positive = (f: MaskedBenchFigures) => {
      for (const k of ['msPerSample', 'msPerSampleMin', 'msPerStep', 'msPerCall', 'cpuMsPerSample', 'calls', 'steps'] as const) expect(f[k], k).toBeGreaterThan(0);
      expect(f.samplerMsPerStep).toBeGreaterThanOrEqual(0);
    };
    // every setting a user can pick, for both conditions and both batch sizes
    const want = [
      ['low_confidence', 0, 1, 8], ['maskgit_plus', 1, 1, 8], ['topk_margin', 0, 1, 8], ['entropy', 0, 1, 8], ['origin', 0, 1, 8],
      ['low_confidence', 1, 0.9, 8], ['low_confidence', 0, 1, 0], ['low_confidence', 1, 0.9, 0],
    ] as const;
    for (const condition of ['unconditional', 'data-to-text'] as const) {
      for (const batch of [8, 64]) {
        for (const [confidence, temperature, topP, blockLength] of want) {
          const rows = j.rows.filter((x) => x.condition === condition && x.batch === batch && x.confidence === confidence && x.temperature === temperature && x.topP === topP && x.blockLength === blockLength);
          expect(rows, `${condition} ${batch} ${confidence} ${temperature} ${blockLength}`).toHaveLength(1);
          positive(rows[0]!);
          expect(rows[0]!.calls).toBeLessThanOrEqual(rows[0]!.steps);
          expect(rows[0]!.positions).toBe(condition === 'unconditional' ? 32 : 15);
        }
      }
    }
    expect(j.rows).toHaveLength(32);
    // reuse on vs off where blocks have more steps than positions: data-to-text (15 positions) in 24 steps, both
    // blockings, both batch sizes; unconditional (32 positions) cannot save a call at 24 steps and says so
    expect(j.cache.map((x) => `${x.condition} ${x.batch} ${x.setting.blockLength}`).sort()).toEqual(['data-to-text 64 0', 'data-to-text 64 8', 'data-to-text 8 0', 'data-to-text 8 8']);
    for (const x of j.cache) {
      positive(x.on);
      positive(x.off);
      expect(x.on.calls).toBeLessThanOrEqual(x.off.calls);
      expect(x.on.calls).toBe(15);
      expect(x.off.calls).toBe(24);
      expect(x.on.emptySteps).toBe(9);
      expect(x.x).toBeGreaterThan(0);
    }
    expect(j.notes.join('\n')).toMatch(/unconditional, one block, 24 steps for 32 positions: every step commits/);
    // the printed report
    expect(r.out).toMatch(/^model masked-tiny 0\.0\.1 .*masked-diffusion/);
    expect(r.out).toMatch(/load average \(1 \/ 5 \/ 15 min\)/);
    expect(r.out).toMatch(/threads: DLM_ENGINE_THREADS/);
    expect(r.out).toMatch(/data-to-text\s+64\s+low_confidence\s+greedy\s+one\s+15\s+24\s+9\s+15 \/ 24/);
    expect(r.out).toMatch(/unconditional\s+8\s+maskgit_plus\s+T 1\s+8\s+32\s+6\s+6\s+\d/);
    // no int8 graph in this bundle: every run in fp32, and the report says why there are no int8 rows
    expect(j.precision).toBe('fp32');
    expect(j.precisions).toEqual([]);
    expect(j.guidancePrecision).toBe('fp32');
    expect(j.notes.join('\n')).toMatch(/no int8 denoiser/);
    expect(r.out).toMatch(/\(the bundle has no int8 denoiser\)/);
  }, 300_000);

  it('with an int8 denoiser: the tables run int8 (the cpu default), and int8 vs fp32 per condition and batch', async () => {
    const out = join(root, 'bench-masked-int8.json');
    const r = await cli('bench', '--model', 'masked-int8', '--steps', '6', '--cache-steps', '24', '--rounds', '2', '--batches', '8', '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/round 2\/2: int8 vs fp32, 2 settings/);
    const j = JSON.parse(readFileSync(out, 'utf8')) as MaskedBenchResult;
    expect(j.precision).toBe('int8');
    // guided vs unguided compare on one precision: this bundle's guided runs take int8 too
    expect(j.guidancePrecision).toBe('int8');
    expect(j.precisions.map((x) => `${x.condition} ${x.batch}`)).toEqual(['unconditional 8', 'data-to-text 8']);
    for (const x of j.precisions) {
      for (const f of [x.int8, x.fp32]) expect(f.msPerSample).toBeGreaterThan(0);
      // the same settings and seed: the same steps and calls either way
      expect(x.int8.calls).toBe(x.fp32.calls);
      expect(x.x).toBeCloseTo(x.fp32.msPerSample / x.int8.msPerSample, 6);
    }
    expect(r.out).toMatch(/int8 vs fp32 denoiser \(6 steps/);
    expect(r.out).toMatch(/data-to-text\s+8\s+[\d.]+ \/ [\d.]+\s+[\d.]+x/);
  }, 300_000);

  it('refuses bad masked options by name', async () => {
    const r = await cli('bench', '--model', 'masked-tiny', '--batches', '8,x');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--batches must be a comma-separated list/);
  });
});

describe('dlm-studio corpus slot-exact', () => {
  it('keeps the pairs whose text says every field of the MR and no other, and says why the others went', async () => {
    const input = join(root, 'corpus.csv');
    const output = join(root, 'exact.csv');
    writeFileSync(input, [
      'mr,ref',
      '"name[Alimentum], food[Italian]","Alimentum serves Italian food, ""al dente""."',
      '"name[Alimentum], food[Italian]",Alimentum is a nice place.',
      '"name[Alimentum], food[Italian]",Alimentum serves French food.',
      '"name[The Vaults], eatType[pub]",The Vaults is a pub with Italian food.',
    ].join('\n'));
    const r = await cli('corpus', 'slot-exact', '--in', input, '--out', output, '--model', 'masked-tiny');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('1 of 4 pairs kept');
    expect(r.out).toContain('1 writing another value of a field, 1 adding a field, 1 leaving one out');
    expect(readFileSync(output, 'utf8')).toBe('mr,ref\n"name[Alimentum], food[Italian]","Alimentum serves Italian food, ""al dente""."\n');
    const json = await cli('--json', 'corpus', 'slot-exact', '--in', input, '--out', output, '--model', 'masked-tiny');
    expect(JSON.parse(json.out)).toEqual({ pairs: 4, kept: 1, missing: 1, wrong: 1, added: 1 });
    // bad input is named
    const missing = await cli('corpus', 'slot-exact', '--in', join(root, 'nope.csv'), '--out', output, '--model', 'masked-tiny');
    expect(missing.code).not.toBe(0);
    expect(missing.err).toMatch(/--in: .*nope\.csv/);
    expect((await cli('corpus', 'slot-exact', '--in', input, '--out', output, '--model', 'nope')).err).toContain('--model: no bundle "nope"');
    expect((await cli('corpus', 'tidy', '--in', input, '--out', output)).err).toContain('unknown action "tidy"');
  });
});
