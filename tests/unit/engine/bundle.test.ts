import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleError, loadBundle, readManifest, resolveModel, scanModels, summarize } from '../../../src-main/engine/bundle';
import { asContinuous, loadEmbeddings } from '../../../src-main/engine/families/continuous/manifest';
import { writeMicroBundle } from '../../integration/engine/micro-bundle';

let root: string;
let good: string;

function copyBundle(name: string): string {
  const dst = join(root, name);
  mkdirSync(join(dst, 'classifiers'), { recursive: true });
  for (const f of ['manifest.json', 'denoiser.onnx', 'embeddings.f32', 'vocab.json', 'scorer.onnx', 'classifiers/sentiment.b1.onnx', 'classifiers/sentiment.b4.onnx']) {
    copyFileSync(join(good, f), join(dst, f));
  }
  return dst;
}

function editManifest(dir: string, edit: (m: Record<string, any>) => void): void {
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  edit(m);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
}

async function refusal(dir: string): Promise<BundleError> {
  try {
    await loadBundle(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(BundleError);
    expect((e as BundleError).code).toBe('BUNDLE_INVALID');
    return e as BundleError;
  }
  throw new Error(`bundle ${dir} was accepted`);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'dlm-bundles-'));
  good = join(root, 'a-good');
  writeMicroBundle(good);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('bundle loading', () => {
  it('loads a good bundle: tokenizer, embeddings, hash', async () => {
    const b = await loadBundle(good);
    expect(b.manifest.id).toBe('micro');
    const m = asContinuous(b.manifest);
    expect((await loadEmbeddings(b.dir, m, b.vocabSize)).length).toBe(b.vocabSize * m.embedding.dim);
    expect(b.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.tokenizer.decode(b.tokenizer.encode('The Vaults'))).toBe('The Vaults');
  });

  it('refuses a corrupt file by name and field (sha256)', async () => {
    const dir = copyBundle('corrupt');
    const buf = readFileSync(join(dir, 'embeddings.f32'));
    buf[100] ^= 0xff;
    writeFileSync(join(dir, 'embeddings.f32'), buf);
    const e = await refusal(dir);
    expect(e.message).toMatch(/embeddings\.f32/);
    expect(e.field).toMatch(/^files\[\d\]\.sha256$/);
    expect(e.file).toBe('embeddings.f32');
  });

  it('refuses an incomplete bundle (missing file) and a truncated one (size)', async () => {
    const dir = copyBundle('incomplete');
    unlinkSync(join(dir, 'denoiser.onnx'));
    expect((await refusal(dir)).message).toMatch(/denoiser\.onnx.*missing/);
    const dir2 = copyBundle('truncated');
    writeFileSync(join(dir2, 'scorer.onnx'), readFileSync(join(dir2, 'scorer.onnx')).subarray(0, 10));
    const e = await refusal(dir2);
    expect(e.message).toMatch(/scorer\.onnx has 10 bytes/);
    expect(e.field).toMatch(/bytes$/);
  });

  it('refuses a malformed or mismatched manifest, naming the field', async () => {
    const cases: [string, (m: Record<string, any>) => void, RegExp][] = [
      ['bad-format', (m) => { m.format = 'other/2'; }, /field format/],
      ['bad-canvas', (m) => { m.canvas.length = 99; }, /field canvas\.length/],
      ['format-v2', (m) => { m.format = 'dlm-bundle/2'; }, /field format: unknown bundle format "dlm-bundle\/2" \(this engine reads dlm-bundle\/1\)/],
      ['no-format', (m) => { delete m.format; }, /field format: missing/],
      ['bad-kind', (m) => { m.kind = 'autoregressive'; }, /field kind: unknown model kind "autoregressive" \(known: continuous-embedding-diffusion/],
      ['bad-input', (m) => { m.denoiser.inputs.foo = 'float32[B]'; }, /field denoiser\.inputs\.foo: unknown denoiser input \(known: x_t, t, x_self_cond, clean\)/],
      ['bad-input-shape', (m) => { m.denoiser.inputs.clean = 'float32[B,N,d]'; }, /field denoiser\.inputs\.clean: must be float32\[B,N\]/],
      ['bad-segment', (m) => { m.canvas.segments[2].start = 3; }, /canvas\.segments\[2\]\.start/],
      ['unlisted', (m) => { m.files = m.files.filter((f: { path: string }) => f.path !== 'denoiser.onnx'); }, /denoiser\.file: denoiser\.onnx is not listed/],
      ['vocab-size', (m) => { m.tokenizer.size = 5; }, /tokenizer\.size/],
      ['emb-dim', (m) => { m.embedding.dim = 4; }, /embedding\.dim/],
      ['cls-batch', (m) => { m.classifiers[0].batch_sizes = [1, 4, 8]; }, /classifiers\[0\]\.files.*batch size 8/],
      ['escape', (m) => { m.denoiser.file = '../x.onnx'; }, /denoiser\.file.*relative path/],
      ['int8-unlisted', (m) => { m.denoiser.int8 = { file: 'denoiser.int8.onnx', activations: 'static' }; }, /denoiser\.int8\.file: denoiser\.int8\.onnx is not listed/],
      ['int8-activations', (m) => { m.denoiser.int8 = { file: 'denoiser.onnx', activations: 'weekly' }; }, /field denoiser\.int8\.activations/],
      ['joint-batch', (m) => { m.joint_guidance = { controls: ['sentiment'], files: { 1: 'classifiers/sentiment.b1.onnx' }, batch_sizes: [1, 4], segment: 'text' }; }, /joint_guidance\.files.*batch size 4/],
      ['joint1-batch', (m) => { m.joint_guidance = { controls: ['sentiment'], files: { 1: 'classifiers/sentiment.b1.onnx' }, one_field: { files: { 2: 'classifiers/sentiment.b1.onnx' } }, batch_sizes: [1], segment: 'text' }; }, /joint_guidance\.one_field\.files.*batch size 1/],
      ['joint1-unlisted', (m) => { m.joint_guidance = { controls: ['sentiment'], files: { 1: 'classifiers/sentiment.b1.onnx' }, one_field: { files: { 1: 'classifiers/joint1.b1.onnx' } }, batch_sizes: [1], segment: 'text' }; }, /joint_guidance\.one_field\.files\.1: classifiers\/joint1\.b1\.onnx is not listed/],
      ['joint-control', (m) => { m.joint_guidance = { controls: ['pos'], files: { 1: 'classifiers/sentiment.b1.onnx' }, batch_sizes: [1], segment: 'text' }; }, /joint_guidance\.controls: pos has no entry in classifiers/],
      ['sd-steps-zero', (m) => { m.sampler_defaults = { steps: 0 }; }, /manifest\.json: field sampler_defaults\.steps: /],
      ['sd-steps-big', (m) => { m.sampler_defaults = { steps: 2001 }; }, /field sampler_defaults\.steps: /],
      ['sd-steps-float', (m) => { m.sampler_defaults = { steps: 12.5 }; }, /field sampler_defaults\.steps: /],
      ['sd-steps-missing', (m) => { m.sampler_defaults = { method: 'ddim' }; }, /field sampler_defaults\.steps: /],
      ['sd-steps-over-T', (m) => { m.schedule.T = 100; m.sampler_defaults = { steps: 101 }; }, /field sampler_defaults\.steps: 101 steps exceed the schedule's T \(100\)/],
      ['sd-guided-steps-over-T', (m) => { m.schedule.T = 100; m.sampler_defaults = { steps: 50, guided_steps: 101 }; }, /field sampler_defaults\.guided_steps: 101 steps exceed the schedule's T \(100\)/],
      ['sd-method', (m) => { m.sampler_defaults = { steps: 50, method: 'euler' }; }, /field sampler_defaults\.method: /],
      ['sd-eta', (m) => { m.sampler_defaults = { steps: 50, method: 'ddim', eta: 1.5 }; }, /field sampler_defaults\.eta: /],
      ['sd-eta-method', (m) => { m.sampler_defaults = { steps: 50, eta: 0.5 }; }, /field sampler_defaults\.eta: eta applies to method ddim only \(the method is ancestral\)/],
      ['sd-measured', (m) => { m.sampler_defaults = { steps: 50, measured: 3 }; }, /field sampler_defaults\.measured: /],
    ];
    for (const [name, edit, re] of cases) {
      const dir = copyBundle(name);
      editManifest(dir, edit);
      expect((await refusal(dir)).message, name).toMatch(re);
    }
    const dir = copyBundle('not-json');
    writeFileSync(join(dir, 'manifest.json'), '{"format":');
    expect((await refusal(dir)).message).toMatch(/manifest\.json is not valid JSON/);
  });

  it('continuous sampler_defaults: completed (ancestral, eta 0, spacing 1) into the summary; absent: no defaults (200 ancestral steps)', async () => {
    const plain = await readManifest(good);
    expect(summarize(good, plain, 'user')).not.toHaveProperty('continuousDefaults');
    expect(summarize(good, plain, 'user')).not.toHaveProperty('samplerDefaults');
    const dir = join(mkdtempSync(join(tmpdir(), 'dlm-sd-')), 'micro-sd');
    mkdirSync(dir);
    copyFileSync(join(good, 'manifest.json'), join(dir, 'manifest.json'));
    editManifest(dir, (m) => { m.sampler_defaults = { steps: 50 }; });
    expect(summarize(dir, await readManifest(dir), 'user').continuousDefaults).toEqual({ steps: 50, method: 'ancestral', eta: 0, spacing: 1 });
    const measured = { by: 'dlm-studio eval', within: '2 points of 200-step ancestral', bleu: { 50: 41.2, 200: 41.9 } };
    editManifest(dir, (m) => { m.sampler_defaults = { steps: 25, method: 'ddim', eta: 0.5, measured }; });
    const s = summarize(dir, await readManifest(dir), 'user');
    expect(s.continuousDefaults).toEqual({ steps: 25, method: 'ddim', eta: 0.5, spacing: 1, measured });
    expect(s).not.toHaveProperty('samplerDefaults');
    editManifest(dir, (m) => { m.sampler_defaults = { steps: 10, method: 'dpm2m', measured: 'docs/evaluation/x.md' }; });
    expect(summarize(dir, await readManifest(dir), 'user').continuousDefaults).toEqual({ steps: 10, method: 'dpm2m', eta: 0, spacing: 1, measured: 'docs/evaluation/x.md' });
    editManifest(dir, (m) => { m.sampler_defaults = { steps: 20, spacing: 0.33 }; });
    expect(summarize(dir, await readManifest(dir), 'user').continuousDefaults).toEqual({ steps: 20, method: 'ancestral', eta: 0, spacing: 0.33 });
    // a spacing outside (0, 4] is refused by field
    editManifest(dir, (m) => { m.sampler_defaults = { steps: 20, spacing: 0 }; });
    await expect(readManifest(dir)).rejects.toThrow(/sampler_defaults\.spacing/);
    rmSync(dirname(dir), { recursive: true, force: true });
  });

  it('lists valid and invalid bundles; resolves ids; unknown ids are NOT_FOUND', async () => {
    const list = await scanModels([root]);
    const ok = list.filter((m) => !m.error);
    expect(ok.map((m) => m.id)).toEqual(['micro']);
    expect(ok[0]!.controls).toEqual(['sentiment']);
    expect(ok[0]!.hasScorer).toBe(true);
    const bad = list.find((m) => m.path.endsWith('corrupt'));
    expect(bad?.error).toMatch(/embeddings\.f32.*sha256/);
    expect((await resolveModel([root], 'micro')).path).toBe(good);
    await expect(resolveModel([root], 'nope')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/unknown model "nope"/) });
  });

  it('a user folder bundle with a bundled id is listed as unusable, naming the bundle that has the id', async () => {
    const user = mkdtempSync(join(tmpdir(), 'dlm-dup-'));
    cpSync(good, join(user, 'micro-copy'), { recursive: true });
    const list = await scanModels([root, user]);
    // (the root's broken variants of micro are listed by its id too, with their own errors)
    const copies = list.filter((m) => m.id === 'micro' && (!m.error || m.source === 'user'));
    expect(copies.map((m) => m.path)).toEqual([good, join(user, 'micro-copy')]);
    expect(copies[0]!.error).toBeUndefined();
    expect(copies[1]!.source).toBe('user');
    expect(copies[1]!.error).toBe(`id "micro" is already taken by ${good} (the first models folder wins); give this bundle another id in its manifest.json to use it`);
    expect((await resolveModel([root, user], 'micro')).path).toBe(good);
    rmSync(user, { recursive: true, force: true });
  });
});
