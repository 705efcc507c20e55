import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../cli-harness';
import { defaultEngine } from '../../../src-main/services/engine-loader';
import { writeMicroBundle } from './micro-bundle';

let root: string;
let models: string;

const cli = (...argv: string[]) => runCliCaptured(argv, { dir: root, bundledModelDirs: [join(root, 'no-bundled-models')], engine: defaultEngine(), extraArgs: ['--models', models] });

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'dlm-cli-'));
  models = join(root, 'models');
  writeMicroBundle(join(models, 'micro'));
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
});
