/**
 * The guidance gradient graphs and the fluency scorer of a bundle, run in onnxruntime-node, agree with the PyTorch
 * reference outputs saved when they were exported (training/guidance/train_all.py --fixtures), for every exported
 * batch size. Bundles: the committed default one, and the CI smoke bundle when training/smoke.sh has built it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../../..');
const CASES = [
  { bundle: 'models/e2e-default', fixture: 'tests/unit/guidance/fixtures/e2e-default.json' },
  { bundle: 'tests/.generated/tiny-e2e', fixture: 'tests/.generated/guidance/tiny-e2e.json' },
];

interface Packed { dims: number[]; f32_base64: string }
interface ControlFixture { file: string; batch: number; inputs: Record<string, Packed>; logp: Packed; grad: Packed }
interface ScorerFixture { file: string; tokens: number[]; dims: number[]; nll: Packed; logits_head: Packed }
interface Fixture { bundle: string; controls: Record<string, ControlFixture | ScorerFixture> }
interface Entry { control: string; files: Record<string, string>; batch_sizes: number[]; inputs: Record<string, string>; outputs: Record<string, string> }

function unpack(p: Packed): Float32Array {
  const buf = Buffer.from(p.f32_base64, 'base64');
  const out = new Float32Array(buf.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  expect(out.length).toBe(p.dims.reduce((a, b) => a * b, 1));
  return out;
}

/** max |a - b| / (atol + rtol |b|) must stay <= 1 */
function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  expect(a.length, what).toBe(b.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const r = Math.abs(a[i]! - b[i]!) / (atol + rtol * Math.abs(b[i]!));
    if (!(r <= worst)) { worst = r; at = i; }
  }
  expect(worst, `${what}: worst at ${at}: ${a[at]} vs ${b[at]}`).toBeLessThanOrEqual(1);
}

/** "float32[B,51,19]" -> [51, 19] (dims after the batch) */
function dimsAfterBatch(spec: string): number[] {
  const m = /^float32\[B((?:,\d+)*)\]$/.exec(spec);
  if (!m) throw new Error(`bad tensor spec ${spec}`);
  return m[1] ? m[1].slice(1).split(',').map(Number) : [];
}

for (const c of CASES) {
  const dir = join(ROOT, c.bundle);
  const manifestPath = join(dir, 'manifest.json');
  const manifest = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, 'utf8')) : null;
  const entries: Entry[] = manifest?.classifiers ?? [];
  const hasWork = entries.length > 0 || !!manifest?.scorer;

  describe.skipIf(!hasWork)(`guidance graphs of ${c.bundle}`, () => {
    const fixture: Fixture | null = existsSync(join(ROOT, c.fixture)) ? JSON.parse(readFileSync(join(ROOT, c.fixture), 'utf8')) : null;

    it('has a PyTorch reference for every classifier and the scorer', () => {
      expect(fixture, `${c.fixture} is missing: rerun training/guidance/train_all.py with --fixtures`).not.toBeNull();
      expect(fixture!.bundle).toBe(manifest.id);
      for (const e of entries) expect(Object.keys(fixture!.controls)).toContain(e.control);
      if (manifest.scorer) expect(Object.keys(fixture!.controls)).toContain('scorer');
    });

    for (const e of entries) {
      it(`${e.control}: every batch size matches the reference`, async () => {
        const fx = fixture!.controls[e.control] as ControlFixture;
        expect(e.batch_sizes.map(String).sort()).toEqual(Object.keys(e.files).sort());
        const ref = { logp: unpack(fx.logp), grad: unpack(fx.grad) };
        const inputs = Object.fromEntries(Object.entries(fx.inputs).map(([k, v]) => [k, { dims: v.dims, data: unpack(v) }]));
        const B0 = fx.batch;
        const per = (name: string) => inputs[name]!.data.length / B0;
        for (const B of e.batch_sizes) {
          const session = await ort.InferenceSession.create(join(dir, e.files[String(B)]!), { executionProviders: ['cpu'] });
          try {
            expect([...session.inputNames].sort()).toEqual(Object.keys(e.inputs).sort());
            expect([...session.outputNames].sort()).toEqual(['grad', 'logp']);
            for (const meta of session.inputMetadata) {
              if (!meta.isTensor || meta.name === 't') continue;
              expect((meta as ort.InferenceSession.TensorValueMetadata).shape, meta.name).toEqual([B, ...dimsAfterBatch(e.inputs[meta.name]!)]);
            }
            // rows 0..B0-1 carry the reference inputs; further rows repeat row 0 shifted, to check batch independence
            const feeds: Record<string, ort.Tensor> = {};
            for (const [name, inp] of Object.entries(inputs)) {
              const n = per(name);
              const data = new Float32Array(B * n);
              for (let b = 0; b < B; b++) {
                const src = b < B0 ? b : 0;
                for (let i = 0; i < n; i++) data[b * n + i] = inp.data[src * n + i]! + (b >= B0 && name === 'x_t' ? 0.5 : 0);
              }
              feeds[name] = new ort.Tensor('float32', data, [B, ...inp.dims.slice(1)]);
            }
            const out = await session.run(feeds);
            const rows = Math.min(B, B0);
            const g = out.grad!.data as Float32Array;
            const lp = out.logp!.data as Float32Array;
            const gn = ref.grad.length / B0;
            // float32 reductions in the backward pass differ between torch and onnxruntime by a small fraction of the
            // gradient's scale, so the absolute tolerance follows that scale (elements near zero are not relative-exact)
            const scale = ref.grad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
            expectClose(g.subarray(0, rows * gn), ref.grad.subarray(0, rows * gn), 1e-4, Math.max(1e-6, 1e-5 * scale), `${e.control} b${B} grad`);
            expectClose(lp.subarray(0, rows), ref.logp.subarray(0, rows), 1e-5, 1e-5, `${e.control} b${B} logp`);
            expect(Array.from(g).every(Number.isFinite)).toBe(true);
            if (B > B0) {
              // the shifted rows differ from row 0, so their gradient must too (the graph is not constant)
              let diff = 0;
              for (let i = 0; i < gn; i++) diff = Math.max(diff, Math.abs(g[B0 * gn + i]! - g[i]!));
              expect(diff).toBeGreaterThan(0);
            }
          } finally {
            await session.release();
          }
        }
      });
    }

    it.skipIf(!manifest?.scorer)('scorer: logits and next-token NLL match the reference, at any batch and length', async () => {
      const fx = fixture!.controls.scorer as ScorerFixture;
      const session = await ort.InferenceSession.create(join(dir, manifest.scorer.file), { executionProviders: ['cpu'] });
      try {
        const [B, L] = fx.dims as [number, number];
        const out = await session.run({ tokens: new ort.Tensor('int64', BigInt64Array.from(fx.tokens.map(BigInt)), [B, L]) });
        const logits = out.logits!;
        const V = logits.dims[2]!;
        expect(logits.dims).toEqual([B, L, manifest.tokenizer.size]);
        const data = logits.data as Float32Array;
        const nll: number[] = [];
        const head: number[] = [];
        for (let b = 0; b < B; b++) {
          for (let i = 0; i < L; i++) {
            const off = (b * L + i) * V;
            for (let v = 0; v < 16; v++) head.push(data[off + v]!);
            if (i + 1 >= L) continue;
            let max = -Infinity;
            for (let v = 0; v < V; v++) max = Math.max(max, data[off + v]!);
            let sum = 0;
            for (let v = 0; v < V; v++) sum += Math.exp(data[off + v]! - max);
            nll.push(-(data[off + fx.tokens[b * L + i + 1]!]! - max - Math.log(sum)));
          }
        }
        expectClose(head, unpack(fx.logits_head), 1e-4, 1e-4, 'scorer logits');
        expectClose(nll, unpack(fx.nll), 1e-4, 1e-4, 'scorer nll');
        // a prefix run (shorter length, batch 1) gives the same logits: causal and dynamic in both axes
        const short = await session.run({ tokens: new ort.Tensor('int64', BigInt64Array.from(fx.tokens.slice(0, 5).map(BigInt)), [1, 5]) });
        expectClose((short.logits!.data as Float32Array), data.subarray(0, 5 * V), 1e-4, 1e-4, 'scorer prefix');
      } finally {
        await session.release();
      }
    });
  });
}
