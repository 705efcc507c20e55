/**
 * Classifier guidance: turn the compiler's abstract soft targets into the tensors of the bundle's gradient graphs
 * (docs/ARCHITECTURE.md, "Guidance classifiers"), and run those graphs padded to an exported batch size.
 */
import * as ort from 'onnxruntime-node';
import type { ClassifierEntry } from './bundle';
import type { GuidanceTerm } from './sampler';

export type SoftTarget =
  | { kind: 'pos'; tags: (string | null)[]; weight?: number; index?: number }
  | { kind: 'spans'; spans: [number, number, string][]; weight?: number; index?: number }
  | { kind: 'attribute'; field: string; value: string; weight?: number; index?: number }
  | { kind: 'length'; tokens: number; weight?: number; index?: number }
  | { kind: 'sentiment'; label: string; weight?: number; index?: number };

/** Diffusion-LM's per-control fluency-anchor weights (public code): semantic content 0.01, POS 0.0001, spans 0.1,
 * length 0.01; sentiment is a semantic-content-like whole-text control. */
export const DEFAULT_LAMBDA: Record<string, number> = { attribute: 0.01, pos: 0.0001, spans: 0.1, length: 0.01, sentiment: 0.01 };

export class GuidanceError extends Error {
  readonly code = 'INVALID_INPUT';
}

export interface TargetTensors {
  /** Per-sample target, flattened; shape excludes the batch dimension. */
  target: Float32Array;
  targetShape: number[];
  mask: Float32Array | null;
  maskShape: number[];
}

function dimsOf(session: ort.InferenceSession | undefined, name: string): number[] | null {
  const meta = session?.inputMetadata?.find((m) => m.name === name);
  if (!meta || !meta.isTensor) return null;
  const shape = (meta as ort.InferenceSession.TensorValueMetadata).shape;
  if (!shape.length || shape.slice(1).some((s) => typeof s !== 'number' || s < 0)) return null;
  return shape.slice(1) as number[];
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Build one soft target's tensors for a classifier entry. `textLength` is the addressed segment's length. */
export function buildTargets(entry: ClassifierEntry, soft: SoftTarget, segLength: number, session?: ort.InferenceSession): TargetTensors {
  const labels = entry.labels;
  const label = (name: string) => {
    const i = labels.indexOf(name);
    if (i < 0) throw new GuidanceError(`${soft.kind} classifier has no label ${JSON.stringify(name)} (labels: ${labels.join(', ')})`);
    return i;
  };
  const tShape = dimsOf(session, 'target');
  const mShape = dimsOf(session, 'mask');
  switch (soft.kind) {
    case 'pos':
    case 'spans': {
      const L = tShape?.[0] ?? segLength;
      const C = tShape?.[1] ?? labels.length;
      const target = new Float32Array(L * C);
      const mask = new Float32Array(L);
      if (soft.kind === 'pos') {
        if (soft.tags.length > L) throw new GuidanceError(`pos: ${soft.tags.length} tags do not fit the ${L}-token text segment`);
        const padLabel = labels.indexOf('PAD');
        for (let i = 0; i < L; i++) {
          const tag = i < soft.tags.length ? soft.tags[i] : 'PAD';
          if (tag === null || tag === '*' || (tag === 'PAD' && padLabel < 0)) continue;
          target[i * C + label(tag!)] = 1;
          mask[i] = 1;
        }
      } else {
        for (let i = 0; i < L; i++) target[i * C + label('O')] = 1;
        for (const [s, e, lab] of soft.spans) {
          if (e >= L) throw new GuidanceError(`spans: span [${s}, ${e}] does not fit the ${L}-token text segment`);
          for (let i = s; i <= e; i++) {
            target.fill(0, i * C, (i + 1) * C);
            target[i * C + label(`${i === s ? 'B' : 'I'}-${lab}`)] = 1;
            mask[i] = 1;
          }
        }
      }
      return { target, targetShape: [L, C], mask, maskShape: [L] };
    }
    case 'attribute': {
      const fields = entry.fields ?? [];
      const f = fields.indexOf(soft.field);
      if (f < 0) throw new GuidanceError(`attribute classifier has no field ${JSON.stringify(soft.field)} (fields: ${fields.join(', ')})`);
      const values = entry.value_labels?.[soft.field] ?? [];
      const v = values.indexOf(soft.value);
      if (v < 0) throw new GuidanceError(`attribute classifier has no value ${JSON.stringify(soft.value)} for ${soft.field}`);
      const F = tShape?.[0] ?? fields.length;
      const K = tShape?.[1] ?? 1 + Math.max(...fields.map((x) => entry.value_labels?.[x]?.length ?? 0));
      const target = new Float32Array(F * K);
      const mask = new Float32Array(F);
      target[f * K + 1 + v] = 1;
      mask[f] = 1;
      return { target, targetShape: [F, K], mask, maskShape: mShape ?? [F] };
    }
    case 'length': {
      const n = tShape?.[0] ?? segLength;
      if (soft.tokens >= n) throw new GuidanceError(`length: ${soft.tokens} tokens exceed the classifier's maximum ${n - 1}`);
      const target = new Float32Array(n);
      target[soft.tokens] = 1;
      return { target, targetShape: [n], mask: null, maskShape: [] };
    }
    case 'sentiment': {
      const n = tShape?.[0] ?? labels.length;
      const target = new Float32Array(n);
      target[label(soft.label)] = 1;
      return { target, targetShape: [n], mask: null, maskShape: [] };
    }
  }
}

/** A loaded classifier: one session per exported batch size. */
export interface ClassifierRunner {
  entry: ClassifierEntry;
  sessions: Map<number, ort.InferenceSession>;
  /** Run a graph elsewhere (the guidance helper thread) instead of on `sessions`: batch size -> outputs. */
  remote?: (batchSize: number, feeds: Record<string, { type: 'float32'; data: Float32Array; dims: number[] }>) => Promise<Record<string, { data: Float32Array; dims: number[] }>>;
}

/** Guidance term for one soft target: runs the gradient graph padded to an exported batch size. */
export function makeTerm(runner: ClassifierRunner, soft: SoftTarget, weight: number, segLength: number, N: number, d: number): GuidanceTerm {
  const sizes = [...runner.sessions.keys()].sort((a, b) => a - b);
  const anySession = runner.sessions.get(sizes[0]!);
  const tt = buildTargets(runner.entry, soft, segLength, anySession);
  const inputNames = new Set(anySession?.inputNames ?? []);
  return {
    control: soft.kind,
    weight,
    remote: !!runner.remote,
    async grad(x, t, B) {
      const grad = new Float32Array(B * N * d);
      const logp = new Float32Array(B);
      for (let start = 0; start < B; ) {
        const left = B - start;
        const bs = sizes.find((s) => s >= left) ?? sizes[sizes.length - 1]!;
        const n = Math.min(bs, left);
        const session = runner.sessions.get(bs)!;
        const xb = new Float32Array(bs * N * d);
        xb.set(x.subarray(start * N * d, (start + n) * N * d));
        const tb = new Float32Array(bs).fill(t[0]!);
        tb.set(t.subarray(start, start + n));
        const raw: Record<string, { type: 'float32'; data: Float32Array; dims: number[] }> = {
          x_t: { type: 'float32', data: xb, dims: [bs, N, d] },
          t: { type: 'float32', data: tb, dims: [bs] },
        };
        const tsz = prod(tt.targetShape);
        const target = new Float32Array(bs * tsz);
        for (let b = 0; b < bs; b++) target.set(tt.target, b * tsz);
        raw.target = { type: 'float32', data: target, dims: [bs, ...tt.targetShape] };
        if (tt.mask && inputNames.has('mask')) {
          const msz = prod(tt.maskShape);
          const mask = new Float32Array(bs * msz);
          for (let b = 0; b < bs; b++) mask.set(tt.mask, b * msz);
          raw.mask = { type: 'float32', data: mask, dims: [bs, ...tt.maskShape] };
        }
        let g: Float32Array;
        let lp: Float32Array | undefined;
        if (runner.remote) {
          const out = await runner.remote(bs, raw);
          g = (out.grad ?? Object.values(out)[0])!.data;
          lp = out.logp?.data;
        } else {
          const feeds: Record<string, ort.Tensor> = {};
          for (const [k, v] of Object.entries(raw)) feeds[k] = new ort.Tensor(v.type, v.data, v.dims);
          const out = await session.run(feeds);
          g = (out.grad ?? out[session.outputNames[0]!])!.data as Float32Array;
          lp = (out.logp ?? out[session.outputNames[1]!])?.data as Float32Array | undefined;
        }
        grad.set(g.subarray(0, n * N * d), start * N * d);
        if (lp) logp.set(lp.subarray(0, n), start);
        start += n;
      }
      return { grad, logp };
    },
  };
}
