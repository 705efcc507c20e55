/**
 * Classifier guidance: turn the compiler's abstract soft targets into the tensors of the bundle's gradient graphs
 * (docs/ARCHITECTURE.md, "Guidance classifiers"), and run those graphs padded to an exported batch size.
 */
import * as ort from 'onnxruntime-node';
import type { ClassifierEntry } from './bundle-schema';
import { type Feeds, type Outputs, runRows } from './session-run';
import { EngineInputError } from './types';

export type SoftTarget =
  | { kind: 'pos'; tags: (string | null)[]; weight?: number; index?: number }
  /** closed: the position after each span is also a target, outside any chunk (O), so that the chunk ends there. */
  | { kind: 'spans'; spans: [number, number, string][]; closed?: boolean; weight?: number; index?: number }
  | { kind: 'attribute'; field: string; value: string; weight?: number; index?: number }
  | { kind: 'length'; tokens: number; weight?: number; index?: number }
  | { kind: 'sentiment'; label: string; weight?: number; index?: number };

/** Diffusion-LM's per-control fluency-anchor weights (public code): semantic content 0.01, POS 0.0001, spans 0.1,
 * length 0.01; sentiment is a semantic-content-like whole-text control. */
export const DEFAULT_LAMBDA: Record<string, number> = { attribute: 0.01, pos: 0.0001, spans: 0.1, length: 0.01, sentiment: 0.01 };

export class GuidanceError extends EngineInputError {}

/** The error when a run would guide `kind` through its own graph (one per control) and the bundle's entry has none: only its joint graph serves it. */
export function noGraphOfItsOwn(modelId: string, kind: string): GuidanceError {
  const off = process.env.DLM_GUIDANCE_JOINT === '0' ? ', and DLM_GUIDANCE_JOINT=0 turns that off' : '';
  return new GuidanceError(`classifiers: ${modelId} has no ${kind} graph of its own (its joint_guidance graph serves ${kind}${off})`);
}

/** One active guidance term: d log p(target | x, t) / dx for the batch (targets are baked into the term). */
export interface GuidanceTerm {
  control: string;
  weight: number;
  /** Computed on another thread (started first, so that it overlaps with the local ones). */
  remote?: boolean;
  grad(x: Float32Array, t: Float32Array, batch: number): Promise<{ grad: Float32Array; logp: Float32Array }>;
  /** Per sample, the term's weighted log p of its targets (what its gradient ascends): candidates are ranked by it. */
  score(x: Float32Array, t: Float32Array, batch: number): Promise<Float32Array>;
}

export interface GuidanceConfig {
  terms: GuidanceTerm[];
  iterations: number;
  stepSize: number;
  /** Fluency-anchor weight lambda in lambda * sum((mu - x)^2 / sigma). */
  lambda: number;
  offLastSteps: number;
  /** Runs one guidance step in place of guideStep (the batch split over the two cpu lanes, guidance-setup.ts). */
  run?(x: Float32Array, mu: Float32Array, sigma: number, tTrain: number, B: number, N: number, d: number, heldPos: number[]): Promise<void>;
}

/** K Adagrad steps (fresh state) on x minimizing sum_c w_c (-log p_c) + lambda * sum((mu - x)^2 / sigma).
 * Every quantity is per sample, so any split of the batch gives the same result per sample. */
export async function guideStep(
  x: Float32Array, mu: Float32Array, sigma: number, tTrain: number, B: number, N: number, d: number,
  heldPos: number[], g: GuidanceConfig,
): Promise<void> {
  const size = x.length;
  const acc = new Float64Array(size);
  const grad = new Float32Array(size);
  const t = new Float32Array(B).fill(tTrain);
  const anchor = (2 * g.lambda) / sigma;
  for (let it = 0; it < g.iterations; it++) {
    for (let i = 0; i < size; i++) grad[i] = anchor * (x[i]! - mu[i]!);
    // all terms at once: a term served by another thread runs while this one computes its own
    const active = g.terms.filter((term) => term.weight !== 0).sort((a, b) => Number(!!b.remote) - Number(!!a.remote));
    const results = await Promise.all(active.map((term) => term.grad(x, t, B)));
    active.forEach((term, j) => {
      const r = results[j]!;
      for (let i = 0; i < size; i++) grad[i] -= term.weight * r.grad[i]!;
    });
    for (let b = 0; b < B; b++) for (const p of heldPos) grad.fill(0, (b * N + p) * d, (b * N + p + 1) * d);
    for (let i = 0; i < size; i++) {
      const gi = grad[i]!;
      if (!Number.isFinite(gi)) continue;
      acc[i] += gi * gi;
      x[i] -= (g.stepSize * gi) / (Math.sqrt(acc[i]!) + 1e-10);
    }
  }
}

export interface TargetTensors {
  /** Per-sample target, flattened; shape excludes the batch dimension. */
  target: Float32Array;
  targetShape: number[];
  mask: Float32Array | null;
  maskShape: number[];
  /** Field selection of a slotted attribute head (the joint graph's one-field variant): one-hot rows [S, F]. */
  select?: Float32Array;
  selectShape?: number[];
}

function dimsOf(session: ort.InferenceSession | undefined, name: string): number[] | null {
  const meta = session?.inputMetadata?.find((m) => m.name === name);
  if (!meta || !meta.isTensor) return null;
  const shape = (meta as ort.InferenceSession.TensorValueMetadata).shape;
  if (!shape.length || shape.slice(1).some((s) => typeof s !== 'number' || s < 0)) return null;
  return shape.slice(1) as number[];
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Build one soft target's tensors for a classifier entry. `segLength` is the addressed segment's length; the
 * session (if given) fixes the shapes from its inputs `target` / `mask` (or, for the joint graph, `target_<kind>`). */
export function buildTargets(entry: Pick<ClassifierEntry, 'labels' | 'fields' | 'value_labels'>, soft: SoftTarget, segLength: number, session?: ort.InferenceSession, suffix = ''): TargetTensors {
  const labels = entry.labels;
  const label = (name: string) => {
    const i = labels.indexOf(name);
    if (i < 0) throw new GuidanceError(`${soft.kind} classifier has no label ${JSON.stringify(name)} (labels: ${labels.join(', ')})`);
    return i;
  };
  const tShape = dimsOf(session, `target${suffix}`);
  const mShape = dimsOf(session, `mask${suffix}`);
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
        // the span's chunk ends with it: the next position, unless another span takes it, is outside any chunk
        if (soft.closed) for (const [, e] of soft.spans) if (e + 1 < L && !mask[e + 1]) mask[e + 1] = 1;
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

/** Runs one gradient graph of batch size `bs` on the given feeds (locally, or on the guidance helper thread). */
type GraphCall = (bs: number, feeds: Feeds) => Promise<{ grad: Float32Array; logp?: Float32Array }>;

/** A loaded classifier: one session per exported batch size. */
export interface ClassifierRunner {
  entry: ClassifierEntry;
  sessions: Map<number, ort.InferenceSession>;
  /** Run a graph elsewhere (the guidance helper thread) instead of on `sessions`: batch size -> outputs. */
  remote?: (batchSize: number, feeds: Feeds) => Promise<Outputs>;
}

function localCall(sessions: Map<number, ort.InferenceSession>): GraphCall {
  return async (bs, feeds) => {
    const session = sessions.get(bs)!;
    const out = await runRows(session, feeds, 0);
    return { grad: (out.grad ?? out[session.outputNames[0]!])!.data, logp: (out.logp ?? out[session.outputNames[1]!])?.data };
  };
}

function remoteCall(remote: NonNullable<ClassifierRunner['remote']>): GraphCall {
  return async (bs, raw) => {
    const out = await remote(bs, raw);
    return { grad: (out.grad ?? Object.values(out)[0])!.data, logp: out.logp?.data };
  };
}

/** Per-sample target tensors, repeated over a batch of bs (plus a mask when the graph takes one). */
export function repeatTargets(tt: TargetTensors, bs: number, names: { target: string; mask: string; select?: string }, withMask: boolean): Feeds {
  const repeat = (row: Float32Array | null, shape: number[]): Feeds[string] => {
    const n = prod(shape);
    const data = new Float32Array(bs * n);
    if (row) for (let b = 0; b < bs; b++) data.set(row, b * n);
    return { type: 'float32', data, dims: [bs, ...shape] };
  };
  const out: Feeds = { [names.target]: repeat(tt.target, tt.targetShape) };
  if (withMask) out[names.mask] = repeat(tt.mask, tt.maskShape);
  if (names.select && tt.select) out[names.select] = repeat(tt.select, tt.selectShape!);
  return out;
}

/**
 * Run a gradient graph over the B samples of x [B, N, d], in chunks padded to the exported batch sizes, and return
 * the gradient [B, N, d] and logp per sample (the first column when the graph has several; logpSum: all columns).
 */
async function runChunks(
  x: Float32Array, t: Float32Array, B: number, N: number, d: number, sizes: number[],
  targetsFor: (bs: number) => Feeds, call: GraphCall,
): Promise<{ grad: Float32Array; logp: Float32Array; logpSum: Float32Array }> {
  const grad = new Float32Array(B * N * d);
  const logp = new Float32Array(B);
  const logpSum = new Float32Array(B);
  for (let start = 0; start < B; ) {
    const left = B - start;
    const bs = sizes.find((s) => s >= left) ?? sizes[sizes.length - 1]!;
    const n = Math.min(bs, left);
    // a full chunk reads x and t in place; a short one is padded (with copies of its first time step)
    let xb = x.subarray(start * N * d, (start + n) * N * d);
    let tb = t.subarray(start, start + n);
    if (n < bs) {
      xb = new Float32Array(bs * N * d);
      xb.set(x.subarray(start * N * d, (start + n) * N * d));
      tb = new Float32Array(bs).fill(t[start]!);
      tb.set(t.subarray(start, start + n));
    }
    const out = await call(bs, { x_t: { type: 'float32', data: xb, dims: [bs, N, d] }, t: { type: 'float32', data: tb, dims: [bs] }, ...targetsFor(bs) });
    grad.set(out.grad.subarray(0, n * N * d), start * N * d);
    if (out.logp) {
      const cols = out.logp.length / bs;
      for (let i = 0; i < n; i++) {
        logp[start + i] = out.logp[i * cols]!;
        for (let c = 0; c < cols; c++) logpSum[start + i]! += out.logp[i * cols + c]!;
      }
    }
    start += n;
  }
  return { grad, logp, logpSum };
}

/** Guidance term for one soft target: runs the gradient graph padded to an exported batch size. */
export function makeTerm(runner: ClassifierRunner, soft: SoftTarget, weight: number, segLength: number, N: number, d: number): GuidanceTerm {
  const sizes = [...runner.sessions.keys()].sort((a, b) => a - b);
  const anySession = runner.sessions.get(sizes[0]!);
  const tt = buildTargets(runner.entry, soft, segLength, anySession);
  const withMask = !!tt.mask && new Set(anySession?.inputNames ?? []).has('mask');
  const call = runner.remote ? remoteCall(runner.remote) : localCall(runner.sessions);
  const run = (x: Float32Array, t: Float32Array, B: number) => runChunks(x, t, B, N, d, sizes, (bs) => repeatTargets(tt, bs, { target: 'target', mask: 'mask' }, withMask), call);
  return {
    control: soft.kind,
    weight,
    remote: !!runner.remote,
    grad: (x, t, B) => run(x, t, B),
    score: async (x, t, B) => (await run(x, t, B)).logp.map((v) => weight * v),
  };
}

/** The all-controls gradient graph (training/guidance/joint.py): one session per exported batch size. */
export interface JointRunner {
  controls: string[];
  /** Per-control entries (labels, fields) from the manifest's classifiers. */
  entries: Map<string, ClassifierEntry>;
  sessions: Map<number, ort.InferenceSession>;
}

/** Per-kind target tensors of the joint graph (one sample's worth; shapes from the graph's inputs). */
export type JointTargets = Record<string, TargetTensors>;

/** Distinct record fields among the attribute targets. */
export function attributeFields(softs: { soft: SoftTarget }[]): Set<string> {
  return new Set(softs.flatMap(({ soft }) => (soft.kind === 'attribute' ? [soft.field] : [])));
}

/**
 * Which joint graph a run uses: the one-field variant (its attribute head scores one field: 1.73 vs 2.10 ms per call
 * at batch 4) when the bundle has it and at most one record field is guided, else the all-fields graph.
 * DLM_GUIDANCE_ONE_FIELD=0 (like DLM_GUIDANCE_JOINT=0 for the joint graph) turns it off, for comparisons.
 */
export function chooseJointGraph(joint: { files: Record<string, string>; one_field?: { files: Record<string, string> } | null }, softs: { soft: SoftTarget }[]): { variant: 'one-field' | 'all-fields'; files: Record<string, string> } {
  if (joint.one_field && process.env.DLM_GUIDANCE_ONE_FIELD !== '0' && attributeFields(softs).size <= 1) return { variant: 'one-field', files: joint.one_field.files };
  return { variant: 'all-fields', files: joint.files };
}

/**
 * Move the all-fields attribute target [F, K] / mask [F] into S slots (select [S, F] one-hot, target [S, K], mask
 * [S]) for a slotted attribute head; slots beyond the guided fields stay zero and add nothing.
 */
function slotAttribute(full: TargetTensors, selectShape: number[], targetShape: number[]): TargetTensors {
  const [S, F] = selectShape as [number, number];
  const K = targetShape[1]!;
  const select = new Float32Array(S * F);
  const target = new Float32Array(S * K);
  const mask = new Float32Array(S);
  let s = 0;
  for (let f = 0; f < F; f++) {
    if (!full.mask?.[f]) continue;
    if (s >= S) throw new GuidanceError(`joint guidance graph has ${S} attribute slot(s); the constraints guide more fields`);
    select[s * F + f] = 1;
    target.set(full.target.subarray(f * K, (f + 1) * K), s * K);
    mask[s] = full.mask[f]!;
    s++;
  }
  return { target, targetShape, mask, maskShape: [S], select, selectShape };
}

/**
 * The joint graph's targets for several soft targets. log p is linear in the target, so each constraint's weight is
 * folded into its (one-hot) target and constraints of one kind add up; kinds not guided get zero targets.
 */
export function jointTargets(runner: JointRunner, softs: { soft: SoftTarget; weight: number }[], segLength: number): JointTargets {
  const sizes = [...runner.sessions.keys()].sort((a, b) => a - b);
  const session = runner.sessions.get(sizes[0]!)!;
  const perKind: JointTargets = {};
  const slotted = new Map<string, { selectShape: number[]; targetShape: number[] }>();
  for (const kind of runner.controls) {
    let tShape = dimsOf(session, `target_${kind}`);
    let mShape = dimsOf(session, `mask_${kind}`);
    if (!tShape) throw new GuidanceError(`joint guidance graph has no input target_${kind}`);
    const sShape = dimsOf(session, `select_${kind}`);
    if (sShape) {
      // accumulate in the all-fields layout, then move the guided fields into the graph's slots
      slotted.set(kind, { selectShape: sShape, targetShape: tShape });
      tShape = [sShape[1]!, tShape[1]!];
      mShape = [sShape[1]!];
    }
    perKind[kind] = { target: new Float32Array(prod(tShape)), targetShape: tShape, mask: mShape ? new Float32Array(prod(mShape)) : null, maskShape: mShape ?? [] };
  }
  for (const { soft, weight } of softs) {
    const entry = runner.entries.get(soft.kind);
    const acc = perKind[soft.kind];
    if (!entry || !acc) throw new GuidanceError(`joint guidance graph does not cover ${soft.kind}`);
    const tt = buildTargets(entry, soft, segLength, slotted.has(soft.kind) ? undefined : session, `_${soft.kind}`);
    if (tt.target.length !== acc.target.length) throw new GuidanceError(`joint guidance graph: ${soft.kind} target has ${acc.target.length} values, the ${soft.kind} classifier's labels make ${tt.target.length}`);
    for (let i = 0; i < acc.target.length; i++) acc.target[i]! += weight * tt.target[i]!;
    if (acc.mask && tt.mask) for (let i = 0; i < acc.mask.length; i++) acc.mask[i] = Math.max(acc.mask[i]!, tt.mask[i]!);
  }
  for (const [kind, shapes] of slotted) perKind[kind] = slotAttribute(perKind[kind]!, shapes.selectShape, shapes.targetShape);
  return perKind;
}

/**
 * One guidance term for several soft targets through the joint graph (targets from jointTargets): the classifiers'
 * shared trunk runs once per Adagrad step instead of once per control. The helper thread builds its own this way.
 */
export function jointTermFromTargets(sessions: Map<number, ort.InferenceSession>, perKind: JointTargets, N: number, d: number, control = 'joint'): GuidanceTerm {
  const sizes = [...sessions.keys()].sort((a, b) => a - b);
  const inputs = new Set(sessions.get(sizes[0]!)!.inputNames);
  const built = new Map<number, Feeds>();
  const targetsFor = (bs: number) => {
    let out = built.get(bs);
    if (!out) {
      out = {};
      for (const [kind, tt] of Object.entries(perKind)) Object.assign(out, repeatTargets(tt, bs, { target: `target_${kind}`, mask: `mask_${kind}`, select: `select_${kind}` }, inputs.has(`mask_${kind}`)));
      built.set(bs, out);
    }
    return out;
  };
  const local = localCall(sessions);
  return {
    control,
    weight: 1,
    grad: (x, t, B) => runChunks(x, t, B, N, d, sizes, targetsFor, local),
    // each control's column is its weighted log p (weights folded into the targets): the sum is the objective
    score: async (x, t, B) => (await runChunks(x, t, B, N, d, sizes, targetsFor, local)).logpSum,
  };
}
