/**
 * The all-controls gradient graph (training/guidance/joint.py) against the per-control graphs on the same trunk:
 * the joint term's gradient must be the weighted sum of the per-control gradients (weights folded into targets),
 * with or without the batch split over the helper thread. Real graphs of the default and tiny bundles.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadBundle } from '../../../src-main/engine/bundle';
import { asContinuous } from '../../../src-main/engine/families/continuous/manifest';
import { auxSessionOptions } from '../../../src-main/engine/devices';
import { chooseJointGraph, GuidanceError, guideStep, jointTargets, jointTermFromTargets, makeTerm, type SoftTarget } from '../../../src-main/engine/guidance';
import { Mulberry32 } from '../../../src-main/engine/prng';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

for (const dir of [`${ROOT}models/e2e-default`, `${ROOT}tests/.generated/tiny-e2e`]) {
  const present = existsSync(join(dir, 'manifest.json'));
  describe.skipIf(!present)(`joint guidance graph == sum of per-control graphs (${dir.split('/').slice(-2).join('/')})`, () => {
    it('matches for every pair of controls at batch 5 (chunks of 4 + 1); a guidance step split in halves matches the whole', async () => {
      const b = await loadBundle(dir);
      const m = asContinuous(b.manifest);
      const j = m.joint_guidance!;
      expect(j).toBeTruthy();
      const N = m.canvas.length;
      const d = m.embedding.dim;
      const seg = m.canvas.segments.find((s) => s.name === j.segment)!;
      const sessions = async (files: Record<string, string>, sizes: number[]) => {
        const out = new Map<number, ort.InferenceSession>();
        for (const s of sizes) out.set(s, await ort.InferenceSession.create(join(dir, files[String(s)]!), auxSessionOptions('cpu')));
        return out;
      };
      const jointSessions = await sessions(j.files, j.batch_sizes);
      const entries = new Map(m.classifiers.map((c) => [c.control as string, c]));
      const food = m.record_schema?.fields.food?.[0];
      const targets: Record<string, SoftTarget> = {
        pos: { kind: 'pos', tags: ['PROPN', 'AUX', 'DET', 'ADJ', 'NOUN', 'PUNCT'] },
        spans: { kind: 'spans', spans: [[0, 1, 'NP']] },
        attribute: food ? { kind: 'attribute', field: 'food', value: food } : { kind: 'length', tokens: 5 },
        length: { kind: 'length', tokens: 9 },
        sentiment: { kind: 'sentiment', label: 'positive' },
      };
      const B = 5;
      const x = new Float32Array(B * N * d);
      new Mulberry32(3).fillNormal(x, 0, x.length);
      const t = new Float32Array(B).fill(700);
      const pairs = j.controls.flatMap((a, i) => j.controls.slice(i + 1).map((c) => [a, c] as const));
      let worst = 0;
      for (const [a, c] of pairs) {
        const softs = [{ soft: targets[a]!, weight: 1.5 }, { soft: targets[c]!, weight: 0.5 }];
        const expected = new Float32Array(B * N * d);
        for (const { soft, weight } of softs) {
          const e = entries.get(soft.kind)!;
          const term = makeTerm({ entry: e, sessions: await sessions(e.files, e.batch_sizes) }, soft, weight, seg.length, N, d);
          const g = (await term.grad(x, t, B)).grad;
          for (let i = 0; i < g.length; i++) expected[i]! += weight * g[i]!;
        }
        const term = jointTermFromTargets(jointSessions, jointTargets({ controls: j.controls, entries, sessions: jointSessions }, softs, seg.length), N, d);
        const local = await term.grad(x, t, B);
        // a guidance step over two halves of the batch (as the two lanes run it) equals the step over the whole batch
        const cfg = { terms: [term], iterations: 3, stepSize: 0.1, lambda: 0.01, offLastSteps: 0 };
        const mu = x.map((v) => v * 0.9);
        const whole = x.slice();
        await guideStep(whole, mu, 0.5, 700, B, N, d, [], cfg);
        const split = x.slice();
        await guideStep(split.subarray(0, 3 * N * d), mu.subarray(0, 3 * N * d), 0.5, 700, 3, N, d, [], cfg);
        await guideStep(split.subarray(3 * N * d), mu.subarray(3 * N * d), 0.5, 700, 2, N, d, [], cfg);
        let scale = 0;
        let splitDiff = 0;
        for (let i = 0; i < expected.length; i++) {
          scale = Math.max(scale, Math.abs(expected[i]!));
          worst = Math.max(worst, Math.abs(expected[i]! - local.grad[i]!));
          // the halves run through the batch-4 graph, the whole batch through batch 8: float noise only
          splitDiff = Math.max(splitDiff, Math.abs(split[i]! - whole[i]!));
        }
        expect(splitDiff).toBeLessThanOrEqual(1e-5);
        expect(whole).not.toEqual(x);
        expect(scale).toBeGreaterThan(0);
        expect(worst).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
      }
    }, 120_000);

    it('the one-field graph gives the all-fields gradient when at most one field is guided, and refuses two fields', async () => {
      const b = await loadBundle(dir);
      const m = asContinuous(b.manifest);
      const j = m.joint_guidance!;
      expect(j.one_field, 'bundle has no one-field joint graph').toBeTruthy();
      const N = m.canvas.length;
      const d = m.embedding.dim;
      const seg = m.canvas.segments.find((s) => s.name === j.segment)!;
      const entries = new Map(m.classifiers.map((c) => [c.control as string, c]));
      const open = async (files: Record<string, string>) => {
        const out = new Map<number, ort.InferenceSession>();
        for (const s of j.batch_sizes) out.set(s, await ort.InferenceSession.create(join(dir, files[String(s)]!), auxSessionOptions('cpu')));
        return out;
      };
      const all = await open(j.files);
      const one = await open(j.one_field!.files);
      const fields = Object.entries(m.record_schema?.fields ?? {}).filter(([f]) => entries.get('attribute')?.fields?.includes(f));
      expect(fields.length).toBeGreaterThanOrEqual(2);
      const [[f1, v1], [f2, v2]] = fields as [string, string[]][];
      const attr = (field: string, values: string[]): SoftTarget => ({ kind: 'attribute', field, value: values.at(-1)! });
      const sets: { soft: SoftTarget; weight: number }[][] = [
        [{ soft: { kind: 'pos', tags: ['PROPN', 'AUX', 'DET', 'NOUN', 'PUNCT'] }, weight: 1 }, { soft: attr(f1!, v1!), weight: 2 }],
        [{ soft: attr(f2!, v2!), weight: 1 }, { soft: attr(f2!, v2!.slice(0, 1)), weight: 0.5 }, { soft: { kind: 'sentiment', label: 'positive' }, weight: 1 }],
        [{ soft: { kind: 'length', tokens: 7 }, weight: 1 }, { soft: { kind: 'spans', spans: [[0, 1, 'NP']] }, weight: 1 }],
      ];
      const B = 5;
      const x = new Float32Array(B * N * d);
      new Mulberry32(11).fillNormal(x, 0, x.length);
      const t = new Float32Array(B).fill(500);
      for (const softs of sets) {
        expect(chooseJointGraph(j, softs).variant).toBe('one-field');
        const runner = (sessions: Map<number, ort.InferenceSession>) => ({ controls: j.controls, entries, sessions });
        const ga = (await jointTermFromTargets(all, jointTargets(runner(all), softs, seg.length), N, d).grad(x, t, B)).grad;
        const go = (await jointTermFromTargets(one, jointTargets(runner(one), softs, seg.length), N, d).grad(x, t, B)).grad;
        let scale = 0;
        let diff = 0;
        for (let i = 0; i < ga.length; i++) {
          scale = Math.max(scale, Math.abs(ga[i]!));
          diff = Math.max(diff, Math.abs(ga[i]! - go[i]!));
        }
        expect(scale).toBeGreaterThan(0);
        expect(diff, softs.map((s) => s.soft.kind).join('+')).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
      }
      const two = [{ soft: attr(f1!, v1!), weight: 1 }, { soft: attr(f2!, v2!), weight: 1 }];
      expect(chooseJointGraph(j, two).variant).toBe('all-fields');
      expect(() => jointTargets({ controls: j.controls, entries, sessions: one }, two, seg.length)).toThrow(GuidanceError);
      expect(() => jointTargets({ controls: j.controls, entries, sessions: one }, two, seg.length)).toThrow(/1 attribute slot/);
    }, 120_000);
  });
}
