/**
 * Classifier guidance for masked models (issue 16; docs/ARCHITECTURE.md, "Masked family"). The bundle's classifiers
 * read the canvas's token ids (mask id where nothing is committed yet) and return the gradient of log p(target | ids)
 * with respect to the one-hot text tokens, g [B, Lt, V] (training/guidance/masked.py). g[i, v] - g[i, current] is the
 * first-order estimate of how putting token v at text position i changes log p (Nisonoff et al. 2024, Schiff et al.
 * 2024); the sampler adds weight x that estimate to the denoiser's logits at every masked text position before it
 * proposes tokens (sampler.ts), so hard constraints, held tokens and the confidence rule apply on top unchanged.
 *
 * POS templates and phrase spans also take the bundle's token label lexicons (training/guidance/lexicon.py) when it has
 * them: weight x log p(label | v) added to every candidate v, before the top-k cut, as the exact guidance of a head that
 * reads one token (lexicon.ts); the first-order term alone ranks candidates poorly where a template fights the model.
 *
 * Weights: a constraint's own weight x the run's guidance strength x the bundle's per-control default
 * (guidance_defaults.weights, measured on dev) is folded into its target (log p is linear in it), so one graph call
 * per changed canvas serves every guided constraint; guidance_defaults.anneal_end scales it linearly over the steps.
 */
import type * as ort from 'onnxruntime-node';
import type { EngineHost } from '../../host';
import type { Provider } from '../../devices';
import { buildTargets, GuidanceError, type JointTargets, jointTargets, noGraphOfItsOwn, repeatTargets, type SoftTarget } from '../../guidance';
import { type Feeds, type Outputs, runRows } from '../../session-run';
import { exactTopKOf, type SamplerSettings } from '../../../constraints/set';
import type { MaskedManifest } from './manifest';
import { lexiconTerm, type LocalTerm } from '../../lexicon';
import { EngineInputError } from '../../types';

/** What the sampler needs: the gradient over one-hot tokens of the text segment, and the weight at a step. */
export interface MaskedGuide {
  /** The text segment the gradient covers: canvas positions start .. start+length-1. */
  start: number;
  length: number;
  /** ids [B, N] -> g [B, length, V] (V: the graph's vocabulary, the mask id included); absent without a graph. */
  grad?(ids: Int32Array, batch: number): Promise<{ grad: Float32Array; V: number }>;
  /** The lexicons' exact term [length, V] (lexicon.ts), added before the top-k cut. */
  local?: LocalTerm;
  /**
   * Exact top-k re-scoring (sampler.guidance.exactTopK): ids [B, N] -> the graphs' weighted log p of their targets per
   * canvas; the sampler scores each top-k candidate at a position it commits with it instead of the first-order term.
   */
  exact?(ids: Int32Array, batch: number): Promise<Float32Array>;
  /**
   * Per finished canvas (ids [B, N]), what the guidance pushed up: the graphs' weighted log p of their targets plus the
   * lexicon term of the tokens written. Candidates are ranked by it (runtime.ts).
   */
  score(ids: Int32Array, batch: number): Promise<Float32Array>;
  /** The factor on g at step `step` (0-based) of `total`. */
  weightAt(step: number, total: number): number;
  /** Which controls it steers, for warnings and reports. */
  controls: string[];
  topK: number;
  first: boolean;
  /** Remasking rounds after the plan (sampler.ts), when the bundle has them for a control this run guides. */
  remask?: { rounds: number; fraction: number; by: 'commit' | 'context' };
}

export interface MaskedGuidanceSetup {
  host: EngineHost;
  dir: string;
  manifest: MaskedManifest;
  soft: SoftTarget[];
  settings: SamplerSettings['guidance'];
  provider: Provider;
  warnings: string[];
  /** What the run did beyond its settings, for the run summary. */
  notes?: string[];
}

/** A gradient graph by batch size, with its forward-only copies (log p alone) where the bundle has them. */
type Graph = { sessions: Map<number, ort.InferenceSession>; logpSessions?: Map<number, ort.InferenceSession>; feedsFor(bs: number): Feeds };

/** Every kind's per-sample target rows repeated over a batch of bs (the graph's input names per kind). */
function repeat(targets: JointTargets, bs: number, names: (kind: string) => { target: string; mask: string }, inputs: Set<string>): Feeds {
  const out: Feeds = {};
  for (const [kind, tt] of Object.entries(targets)) Object.assign(out, repeatTargets(tt, bs, names(kind), inputs.has(names(kind).mask)));
  return out;
}

/** The joint graph when the bundle has one (one trunk pass for all controls), else one graph per guided control. */
async function graphsFor(s: MaskedGuidanceSetup, weighted: { soft: SoftTarget; weight: number }[], segLength: number, exact: boolean): Promise<Graph[]> {
  const { host, dir, manifest: m, provider } = s;
  const load = async (files: Record<string, string>, sizes: number[]) => {
    const sessions = new Map<number, ort.InferenceSession>();
    for (const b of sizes) sessions.set(b, await host.auxSession(dir, files[String(b)]!, provider));
    return sessions;
  };
  const j = m.joint_guidance;
  if (j && process.env.DLM_GUIDANCE_JOINT !== '0' && weighted.every(({ soft }) => j.controls.includes(soft.kind))) {
    const sessions = await load(j.files, j.batch_sizes);
    // forward-only graphs only where exact re-scoring will read them
    const logpSessions = exact && j.logp ? await load(j.logp.files, j.logp.batch_sizes) : undefined;
    const entries = new Map(m.classifiers.filter((c) => j.controls.includes(c.control)).map((c) => [c.control as string, c]));
    const targets = jointTargets({ controls: j.controls, entries, sessions }, weighted, segLength);
    const inputs = new Set(sessions.values().next().value!.inputNames);
    return [{ sessions, ...(logpSessions ? { logpSessions } : {}), feedsFor: (bs) => repeat(targets, bs, (k) => ({ target: `target_${k}`, mask: `mask_${k}` }), inputs) }];
  }
  // per control: the constraints of one kind add up in its target
  const byKind = new Map<string, { soft: SoftTarget; weight: number }[]>();
  for (const w of weighted) byKind.set(w.soft.kind, [...(byKind.get(w.soft.kind) ?? []), w]);
  const out: Graph[] = [];
  for (const [kind, list] of byKind) {
    const entry = m.classifiers.find((c) => c.control === kind)!;
    if (!entry.batch_sizes.length) throw noGraphOfItsOwn(m.id, kind);
    const sessions = await load(entry.files, entry.batch_sizes);
    const session = sessions.values().next().value!;
    let acc: JointTargets[string] | null = null;
    for (const { soft, weight } of list) {
      const tt = buildTargets(entry, soft, segLength, session);
      if (!acc) acc = { ...tt, target: new Float32Array(tt.target.length), mask: tt.mask ? new Float32Array(tt.mask.length) : null };
      for (let i = 0; i < tt.target.length; i++) acc.target[i]! += weight * tt.target[i]!;
      if (acc.mask && tt.mask) for (let i = 0; i < tt.mask.length; i++) acc.mask[i] = Math.max(acc.mask[i]!, tt.mask[i]!);
    }
    const inputs = new Set(session.inputNames);
    const targets = { [kind]: acc! };
    out.push({ sessions, feedsFor: (bs) => repeat(targets, bs, () => ({ target: 'target', mask: 'mask' }), inputs) });
  }
  return out;
}

/**
 * ids [B, N] through `sessions` in chunks padded to their batch sizes (padding rows repeat the chunk's first row, and
 * their outputs are dropped): `each` gets a chunk's outputs, its batch size bs, its real rows n and its first row.
 */
async function inChunks(g: Graph, sessions: Map<number, ort.InferenceSession>, ids: Int32Array, B: number, N: number,
  each: (res: Outputs, bs: number, n: number, start: number) => void): Promise<void> {
  const sizes = [...sessions.keys()].sort((a, b) => a - b);
  for (let start = 0; start < B; ) {
    const left = B - start;
    const bs = sizes.find((s) => s >= left) ?? sizes[sizes.length - 1]!;
    const n = Math.min(bs, left);
    const data = new BigInt64Array(bs * N);
    for (let i = 0; i < n * N; i++) data[i] = BigInt(ids[start * N + i]!);
    for (let r = n; r < bs; r++) data.copyWithin(r * N, 0, N);
    const feeds = { ...g.feedsFor(bs), ids: { type: 'int64', data, dims: [bs, N] } } as unknown as Feeds;
    each(await runRows(sessions.get(bs)!, feeds, 0), bs, n, start);
    start += n;
  }
}

/** Adds each of a chunk's n real rows' logp columns (each a control's weighted log p) into logp from row `start`. */
function addLogp(logp: Float32Array, lp: Float32Array, bs: number, n: number, start: number): void {
  const cols = lp.length / bs;
  for (let r = 0; r < n; r++) for (let c = 0; c < cols; c++) logp[start + r]! += lp[r * cols + c]!;
}

/**
 * ids [B, N] through one graph, in chunks padded to its exported batch sizes: g [B, Lt, V], and per sample the sum of
 * its logp columns (each a control's weighted log p).
 */
async function runGraph(g: Graph, ids: Int32Array, B: number, N: number, Lt: number): Promise<{ grad: Float32Array; V: number; logp: Float32Array }> {
  let out: Float32Array | null = null;
  let V = 0;
  const logp = new Float32Array(B);
  await inChunks(g, g.sessions, ids, B, N, (res, bs, n, start) => {
    const grad = res.grad!;
    if (grad.dims.length !== 3 || grad.dims[1] !== Lt) throw new GuidanceError(`masked classifier graph: output 'grad' has shape [${grad.dims.join(', ')}], expected [${bs}, ${Lt}, V]`);
    V = grad.dims[2]!;
    out ??= new Float32Array(B * Lt * V);
    out.set(grad.data.subarray(0, n * Lt * V), start * Lt * V);
    if (res.logp) addLogp(logp, res.logp.data, bs, n, start);
  });
  return { grad: out!, V, logp };
}

/** The run's guide, or null when nothing is guided (guidance off, no soft targets, or no classifiers for them). */
export async function buildMaskedGuidance(s: MaskedGuidanceSetup): Promise<MaskedGuide | null> {
  const { manifest: m, settings: gs, warnings } = s;
  if (!gs.enabled || gs.strength <= 0 || !s.soft.length) return null;
  const hasLexicon = (kind: string) => m.lexicons.some((l) => l.control === kind);
  const guided = s.soft.filter((soft) => {
    if (m.classifiers.some((c) => c.control === soft.kind)) return true;
    if (!hasLexicon(soft.kind)) warnings.push(`no ${soft.kind} classifier in bundle ${m.id}: constraint ${soft.index ?? ''} is evaluated but not guided`.replace('  ', ' '));
    return false;
  });
  const segName = m.joint_guidance?.segment ?? m.classifiers[0]?.segment ?? 'text';
  const seg = m.canvas.segments.find((x) => x.name === segName);
  if (!seg) return null;
  const local = lexiconTerm(s.dir, m.lexicons, s.soft, gs.strength, seg.length);
  if (!guided.length && !local) return null;
  const d = m.guidance_defaults;
  const weighted = guided.map((soft) => ({ soft, weight: (soft.weight ?? 1) * gs.strength * (d.weights[soft.kind as keyof typeof d.weights] ?? d.weight) }));
  // exact re-scoring needs the classifier graphs (guided kinds), and a top k to score: checked before they load
  const exact = exactTopKOf(s.soft, gs, d.exact_top_k?.controls) && guided.length > 0;
  if (exact && d.top_k <= 0) throw new EngineInputError(`sampler.guidance.exactTopK: ${m.id} lets guidance re-rank every token (its guidance_defaults.top_k is 0); exact re-scoring scores the denoiser's top k`);
  const graphs = guided.length ? await graphsFor(s, weighted, seg.length, exact) : [];
  const N = m.canvas.length;
  const kinds = [...guided.map((x) => x.kind), ...(local ? s.soft.filter((x) => hasLexicon(x.kind)).map((x) => x.kind) : [])];
  const r = d.remask;
  const remask = r && r.rounds > 0 && kinds.some((k) => r.controls.includes(k)) ? { rounds: r.rounds, fraction: r.fraction, by: r.by } : null;
  if (exact) s.notes?.push(`exact top-k re-scoring: at each guided position a step commits, the denoiser's top ${d.top_k} tokens are each written into the canvas and scored by the classifiers`);
  if (remask) s.notes?.push(`remasking: ${remask.rounds} rounds of the ${Math.round(100 * remask.fraction)}% of the text's tokens the model found least likely ${remask.by === 'context' ? 'in the finished text' : 'when they were committed'}, generated again (the bundle's guidance_defaults.remask for ${r!.controls.join(', ')})`);
  return {
    start: seg.start,
    length: seg.length,
    controls: [...new Set(kinds)],
    topK: d.top_k,
    first: d.segment_first,
    ...(remask ? { remask } : {}),
    ...(local ? { local } : {}),
    ...(graphs.length ? { grad: (ids: Int32Array, B: number) => gradOf(graphs, ids, B, N, seg.length) } : {}),
    ...(exact ? { exact: (ids: Int32Array, B: number) => logpOf(graphs, ids, B, N, seg.length) } : {}),
    score: (ids, B) => scoreOf(graphs, local, ids, B, N, seg.start, seg.length),
    weightAt(step, total) {
      return total > 1 ? 1 + (d.anneal_end - 1) * (step / (total - 1)) : 1;
    },
  };
}

/** Per canvas: the graphs' logp summed, plus the lexicon term of each text token written. */
async function scoreOf(graphs: Graph[], local: LocalTerm | null, ids: Int32Array, B: number, N: number, start: number, Lt: number): Promise<Float32Array> {
  const parts = await Promise.all(graphs.map((g) => runGraph(g, ids, B, N, Lt)));
  const out = new Float32Array(B);
  for (const p of parts) for (let b = 0; b < B; b++) out[b]! += p.logp[b]!;
  if (local) {
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < Lt; i++) {
        const v = ids[b * N + start + i]!;
        if (v >= 0 && v < local.V) out[b]! += local.values[i * local.V + v]!;
      }
    }
  }
  return out;
}

/**
 * Per canvas, the graphs' weighted log p of their targets: from the forward-only graphs where the bundle has them
 * (joint_guidance.logp; the same numbers without the gradient's work), else from the gradient graphs.
 */
async function logpOf(graphs: Graph[], ids: Int32Array, B: number, N: number, Lt: number): Promise<Float32Array> {
  const out = new Float32Array(B);
  for (const g of graphs) {
    const lp = g.logpSessions ? await runLogp(g, g.logpSessions, ids, B, N) : (await runGraph(g, ids, B, N, Lt)).logp;
    for (let b = 0; b < B; b++) out[b]! += lp[b]!;
  }
  return out;
}

/** ids [B, N] through a forward-only graph in chunks padded to its batch sizes: per sample, its logp columns summed. */
async function runLogp(g: Graph, sessions: Map<number, ort.InferenceSession>, ids: Int32Array, B: number, N: number): Promise<Float32Array> {
  const logp = new Float32Array(B);
  await inChunks(g, sessions, ids, B, N, (res, bs, n, start) => {
    if (!res.logp) throw new GuidanceError(`masked classifier log p graph: no output 'logp'`);
    addLogp(logp, res.logp.data, bs, n, start);
  });
  return logp;
}

/** The graphs' gradients summed: g [B, Lt, V]. */
async function gradOf(graphs: Graph[], ids: Int32Array, B: number, N: number, Lt: number): Promise<{ grad: Float32Array; V: number }> {
  const parts = await Promise.all(graphs.map((g) => runGraph(g, ids, B, N, Lt)));
  const first = parts[0]!;
  for (const p of parts.slice(1)) {
    if (p.V !== first.V) throw new GuidanceError(`masked classifier graphs disagree on the vocabulary (${first.V} vs ${p.V})`);
    for (let i = 0; i < first.grad.length; i++) first.grad[i]! += p.grad[i]!;
  }
  return first;
}
