/**
 * The masked family's step loop (docs/ARCHITECTURE.md, "Masked family"), independent of ONNX Runtime: the denoiser
 * comes in as an async function from ids to logits. Token for token the same as the PyTorch reference sampler
 * (training/dlm_train/masked_sample.py): the same plan of blocks and steps, the same PRNG draws, the same float64
 * softmax, top-p and confidence rules, and numpy's pairwise summation where the reference sums.
 */
import { uniformsAt } from '../../prng';
import { type EndRule, endsEarly, type GlueRule, type RepeatRule, SegmentReachability, type SegmentAutomaton } from '../../projection';
import type { Confidence } from './manifest';
import type { LocalTerm } from '../../lexicon';

export interface MaskedSettings {
  steps: number;
  /** Positions per block; <= 0 or >= the generated positions: one block. */
  blockLength: number;
  confidence: Confidence;
  /** 0: argmax; else sample from softmax(logits / temperature) restricted to the top-p nucleus. */
  temperature: number;
  topP: number;
  /** Positions start .. start+length-1 (the record segment) sample at this temperature instead. */
  segmentTemperature?: { start: number; length: number; temperature: number };
}

/** The denoiser: ids [B, N] (int64 values as numbers) -> logits [B, N, V]. */
export type LogitsFn = (ids: Int32Array, batch: number) => Promise<{ logits: Float32Array; V: number }>;

export interface MaskedSampleOptions {
  /** Per-sample stream seeds (seed_j). */
  seeds: number[];
  /** Canvas length N. */
  length: number;
  /** Tokenizer size: ids >= it are never committed. */
  vocabSize: number;
  maskId: number;
  /** Output position i-1 predicts token i (position 0 uses output 0). */
  shifted: boolean;
  settings: MaskedSettings;
  logits: LogitsFn;
  /** Per canvas position: the held token, or -1. */
  held?: Int32Array;
  /** Hard segments: a token is committed only where the segment can still be completed to an accepted one. */
  hard?: SegmentAutomaton[];
  /** After each step: the canvas [B, N] (masked positions hold the mask id) and the mask flags [B, N]. */
  onStep?(step: number, steps: number, tokens: Int32Array, masked: Uint8Array): void | Promise<void>;
  cancelled?(): boolean;
  /**
   * Reuse the logits while the canvas has not changed since the last call (default true). false: the denoiser runs
   * at every step, as a sampler without reuse would (for comparisons: the same tokens, more calls).
   */
  cache?: boolean;
  /**
   * Classifier guidance (guidance.ts): at masked positions of its segment, weightAt(step) x (g[i, v] - g[i, current])
   * is added to the logits before proposing. Computed on the canvas the logits were, once per denoiser call and only
   * when a step proposes inside the segment (steps that fill other positions need none).
   */
  guide?: {
    start: number;
    length: number;
    /** Absent: no classifier graph, only the local term. */
    grad?(ids: Int32Array, batch: number): Promise<{ grad: Float32Array; V: number }>;
    /**
     * Exact top-k re-scoring: ids [B, N] -> the classifiers' weighted log p per canvas. With it (and topK > 0), the
     * positions a step commits are chosen as without it, and each then samples from its top-k candidates scored
     * exactly, weightAt(step) x log p(target | the canvas with the candidate written), in one batch for the step.
     */
    exact?(ids: Int32Array, batch: number): Promise<Float32Array>;
    /**
     * An exact per-position term [length, V] (a token label lexicon's weight x log p(target label | v)), added to the
     * logits of every candidate at a masked position of the segment before the top-k cut and the classifier term.
     */
    local?: LocalTerm;
    weightAt(step: number, total: number): number;
    /** > 0: the term re-ranks the denoiser's topK tokens at a position, and the others are not proposed there. */
    topK?: number;
    /** Generate the guided segment's positions before the others (blocks follow that order). */
    first?: boolean;
    /**
     * At a masked position of the segment, no piece that would glue onto a committed neighbour (projection.ts
     * GlueRule): after a word-ending piece no letter-initial one, and before a letter-initial piece no word-ending
     * one. Where that leaves no token, it gives way.
     */
    glue?: GlueRule;
    /** At a masked position of the segment, no token writing the word a committed neighbour writes (projection.ts RepeatRule); where that leaves no token, it gives way. */
    repeats?: RepeatRule;
    /**
     * At a masked position of the segment, no <end> or <pad> right after a committed token that may not end a text,
     * and no such token right before a committed <end> or <pad> (projection.ts EndRule); where that leaves no token,
     * it gives way.
     */
    ends?: EndRule;
    /**
     * After the plan, `rounds` times: the `fraction` of the segment's generated tokens that the denoiser found least
     * likely go back to the mask and are generated again, one per step, under the last step's guidance weight, now
     * with the text on both sides of them. `by` "commit" (default): their probability when they were committed;
     * "context": the denoiser's probability of each on the canvas as it stands, from its logits at committed
     * positions (one more denoiser call per round).
     */
    remask?: { rounds: number; fraction: number; by?: 'commit' | 'context' };
  };
  /** Per canvas position, tokens never committed there (e.g. <end> and <pad> before a pinned length). */
  exclude?: Map<number, number[]>;
  /** Sum, per sample, the denoiser's log p of each guided token as it was committed (MaskedSampleResult.guidedLogp). */
  scoreModel?: boolean;
}

export interface MaskedSampleResult {
  /** [B, N], or null when cancelled. */
  tokens: Int32Array | null;
  stepMs: number[];
  /** Denoiser calls (a step whose canvas did not change since the last call reuses its logits). */
  calls: number;
  /** Milliseconds spent in the denoiser calls. */
  denoiserMs: number;
  /** Milliseconds spent in the guidance graph calls (0 without guidance). */
  guideMs: number;
  /**
   * With scoreModel and a guide: per sample, the sum over the guided segment's generated positions of the denoiser's
   * own log p (before the guidance terms) of the token committed there, at its last commit.
   */
  guidedLogp?: Float64Array;
}

/** For each block of the generated positions, how many positions each of its steps commits. */
export function stepPlan(nGen: number, s: Pick<MaskedSettings, 'steps' | 'blockLength'>): number[][] {
  const lb = s.blockLength;
  const nb = lb <= 0 || lb >= nGen ? 1 : Math.ceil(nGen / lb);
  const sizes = nb === 1 ? [nGen] : Array.from({ length: nb }, (_, b) => Math.min(lb, nGen - b * lb));
  return sizes.map((m, b) => {
    const sb = Math.max(1, Math.floor(s.steps / nb) + (b < s.steps % nb ? 1 : 0));
    return Array.from({ length: sb }, (_, i) => Math.floor(m / sb) + (i < m % sb ? 1 : 0));
  });
}

/** numpy's pairwise summation of a[lo .. lo+n) (what ndarray.sum() does on a contiguous float64 array). */
export function pairwiseSum(a: Float64Array, lo: number, n: number): number {
  if (n < 8) {
    let r = 0;
    for (let i = 0; i < n; i++) r += a[lo + i]!;
    return r;
  }
  if (n <= 128) {
    const r = [a[lo]!, a[lo + 1]!, a[lo + 2]!, a[lo + 3]!, a[lo + 4]!, a[lo + 5]!, a[lo + 6]!, a[lo + 7]!];
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += a[lo + i + j]!;
    let res = ((r[0]! + r[1]!) + (r[2]! + r[3]!)) + ((r[4]! + r[5]!) + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[lo + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, lo, n2) + pairwiseSum(a, lo + n2, n - n2);
}

/** Scratch buffers for propose (one set per sampler run). */
interface Scratch {
  p: Float64Array;
  q: Float64Array;
  /** A heap of ids, then the kept ids in order. */
  order: Int32Array;
  kept: Int32Array;
  sorted: Float64Array;
}

/** The confidence rule of `s` for `token` under the probabilities p (softmax of the row it was proposed from). */
function confidenceOf(p: Float64Array, token: number, uOrd: number, s: MaskedSettings, buf: Scratch): number {
  const V = p.length;
  switch (s.confidence) {
    case 'low_confidence':
    case 'maskgit_plus':
      return p[token]!;
    case 'topk_margin': {
      let a = -Infinity;
      let b = -Infinity;
      for (let v = 0; v < V; v++) {
        const x = p[v]!;
        if (x > a) {
          b = a;
          a = x;
        } else if (x > b) b = x;
      }
      return V > 1 ? a - b : a;
    }
    case 'entropy': {
      const nz = buf.sorted;
      let n = 0;
      for (let v = 0; v < V; v++) if (p[v]! > 0) nz[n++] = p[v]! * Math.log(p[v]!);
      return pairwiseSum(nz, 0, n);
    }
    case 'origin':
      return uOrd;
  }
}

/** p = softmax(row) in float64, the reference's way (max subtracted, pairwise sum). */
function softmaxInto(row: Float64Array, p: Float64Array): void {
  const V = row.length;
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (row[v]! > max) max = row[v]!;
  for (let v = 0; v < V; v++) p[v] = Math.exp(row[v]! - max);
  const sum = pairwiseSum(p, 0, V);
  for (let v = 0; v < V; v++) p[v] = p[v]! / sum;
}

/**
 * The proposed token and its confidence at one masked position, from its logits row (invalid ids already -inf):
 * the reference sampler's `propose`.
 */
export function propose(row: Float64Array, uTok: number, uOrd: number, s: MaskedSettings, buf: Scratch): { token: number; confidence: number } {
  const V = row.length;
  const { p, q } = buf;
  softmaxInto(row, p);
  let token = 0;
  if (s.temperature === 0) {
    for (let v = 1; v < V; v++) if (p[v]! > p[token]!) token = v;
  } else {
    if (s.temperature === 1) {
      // softmax(logits / 1) is p, computed the same way
      q.set(p);
    } else {
      let mq = -Infinity;
      for (let v = 0; v < V; v++) {
        q[v] = row[v]! / s.temperature;
        if (q[v]! > mq) mq = q[v]!;
      }
      for (let v = 0; v < V; v++) q[v] = Math.exp(q[v]! - mq);
      const qs = pairwiseSum(q, 0, V);
      for (let v = 0; v < V; v++) q[v] = q[v]! / qs;
    }
    // ids by q descending (lower id first on ties), taken one by one from a heap until the cumulative sum
    // reaches top_p (sequential, as np.cumsum): the shortest such prefix
    const heap = buf.order;
    for (let v = 0; v < V; v++) heap[v] = v;
    const before = (a: number, b: number) => q[a]! > q[b]! || (q[a] === q[b] && a < b);
    const sift = (i: number, n: number) => {
      const x = heap[i]!;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(heap[r]!, heap[l]!) ? r : l;
        if (!before(heap[c]!, x)) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = x;
    };
    for (let i = (V >> 1) - 1; i >= 0; i--) sift(i, V);
    const kept = buf.kept;
    const w = buf.sorted;
    let keep = 0;
    let cum = 0;
    for (let n = V; n > 0; ) {
      const top = heap[0]!;
      kept[keep] = top;
      w[keep++] = q[top]!;
      cum += q[top]!;
      if (cum >= s.topP) break;
      heap[0] = heap[--n]!;
      sift(0, n);
    }
    const ws = pairwiseSum(w, 0, keep);
    let acc = 0;
    token = -1;
    for (let i = 0; i < keep; i++) {
      acc += w[i]! / ws;
      if (acc > uTok) {
        token = kept[i]!;
        break;
      }
    }
    if (token < 0) {
      // the reference takes the last kept id; never one of zero probability (an invalid id)
      let last = keep - 1;
      while (last > 0 && w[last] === 0) last--;
      token = kept[last]!;
    }
  }
  return { token, confidence: confidenceOf(p, token, uOrd, s, buf) };
}

export async function sampleMasked(o: MaskedSampleOptions): Promise<MaskedSampleResult> {
  const B = o.seeds.length;
  const N = o.length;
  const s = o.settings;
  const held = o.held ?? new Int32Array(N).fill(-1);
  let gen: number[] = [];
  for (let i = 0; i < N; i++) if (held[i]! < 0) gen.push(i);
  if (o.guide?.first) {
    // the guided segment first: the rest (e.g. an unpinned record) then follows what was written there
    const inSeg = (i: number) => i >= o.guide!.start && i < o.guide!.start + o.guide!.length;
    gen = [...gen.filter(inSeg), ...gen.filter((i) => !inSeg(i))];
  }
  // the settings a position proposes under (its segment's temperature)
  const st = s.segmentTemperature;
  const sSeg = st ? { ...s, temperature: st.temperature } : s;
  const settingsAt = (i: number) => (st && i >= st.start && i < st.start + st.length ? sSeg : s);
  const plan = stepPlan(gen.length, s);
  const blocks = plan.length === 1 ? [gen] : plan.map((_, b) => gen.slice(b * s.blockLength, (b + 1) * s.blockLength));
  const topK = o.guide?.topK ?? 0;
  const top = new Float64Array(Math.max(1, topK));
  const totalSteps = plan.reduce((a, p) => a + p.length, 0);
  const x = new Int32Array(B * N);
  const masked = new Uint8Array(B * N);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < N; i++) {
      const h = held[i]!;
      x[b * N + i] = h >= 0 ? h : o.maskId;
      masked[b * N + i] = h >= 0 ? 0 : 1;
    }
  }
  // hard segments: per row, the reachability of each segment; a position's segment (or -1)
  const segOf = new Int32Array(N).fill(-1);
  (o.hard ?? []).forEach((h, k) => {
    for (let i = 0; i < h.length; i++) segOf[h.start + i] = k;
  });
  const reach = Array.from({ length: B }, () => (o.hard ?? []).map((h) => new SegmentReachability(h)));
  for (let b = 0; b < B; b++) {
    reach[b]!.forEach((r, k) => {
      if (!r.update(x.subarray(b * N, (b + 1) * N), masked.subarray(b * N, (b + 1) * N))) {
        throw new MaskedConstraintError(k, `no accepted sequence fills canvas positions ${r.start}..${r.start + r.length - 1} with the held tokens`);
      }
    });
  }

  let cache: { logits: Float32Array; V: number } | null = null;
  let guideGrad: { grad: Float32Array; V: number } | null = null;
  let changed = true;
  let calls = 0;
  let denoiserMs = 0;
  let guideMs = 0;
  /** Whether guideGrad is older than the canvas the current logits were computed on. */
  let guideStale = true;
  const reuse = o.cache ?? true;
  const guide = o.guide;
  const inGuided = (i: number) => !!guide && i >= guide.start && i < guide.start + guide.length;
  const callDenoiser = async () => {
    const t = performance.now();
    cache = await o.logits(x, B);
    denoiserMs += performance.now() - t;
    calls++;
    changed = false;
    guideStale = true;
  };
  /**
   * Exact top-k re-scoring: each chosen guided position's candidates (the finite entries of its row: the top k before
   * the step's commits) written one at a time into its sample's canvas and scored by guide.exact in one batch.
   * Returns, per b * N + i, each candidate's weighted log p.
   */
  const exactScores = async (chosenBy: { b: number; chosen: { i: number }[] }[], rowOf: (b: number, i: number) => Float64Array) => {
    const asked: { b: number; i: number; candidates: number[] }[] = [];
    for (const c of chosenBy) {
      for (const { i } of c.chosen) {
        if (!inGuided(i)) continue;
        const r = rowOf(c.b, i);
        const candidates: number[] = [];
        for (let v = 0; v < r.length; v++) if (r[v] !== -Infinity) candidates.push(v);
        if (candidates.length) asked.push({ b: c.b, i, candidates });
      }
    }
    const out = new Map<number, Map<number, number>>();
    const total = asked.reduce((a, q) => a + q.candidates.length, 0);
    if (!total) return out;
    const ids = new Int32Array(total * N);
    let n = 0;
    for (const q of asked) {
      for (const v of q.candidates) {
        ids.set(x.subarray(q.b * N, (q.b + 1) * N), n * N);
        ids[n++ * N + q.i] = v;
      }
    }
    const logp = await guide!.exact!(ids, total);
    n = 0;
    for (const q of asked) out.set(q.b * N + q.i, new Map(q.candidates.map((v) => [v, logp[n++]!])));
    return out;
  };
  const stepMs: number[] = [];
  const u = new Float64Array(2 * N);
  let scratch: Scratch | null = null;
  let row = new Float64Array(0);
  /** The row before the guidance terms, and its softmax (remasking). */
  let base = new Float64Array(0);
  let baseP = new Float64Array(0);
  let allowed = new Uint8Array(o.vocabSize);
  // the plan as a list of steps; remasking rounds (guided runs) follow it
  type Step = { k: number; positions: number[]; remask: number };
  const schedule: Step[] = plan.flatMap((p, bi) => p.map((k) => ({ k, positions: blocks[bi]!, remask: 0 })));
  // remasking: only the guided segment's generated positions outside hard segments
  const remaskable = gen.filter((i) => inGuided(i) && segOf[i]! < 0);
  const rounds = guide?.remask?.rounds ?? 0;
  const perRound = rounds > 0 ? Math.min(remaskable.length, Math.ceil(guide!.remask!.fraction * remaskable.length)) : 0;
  const remasking = perRound > 0;
  const modelP = remasking || (!!guide && !!o.scoreModel);
  /** The denoiser's own probability of each committed guided token when it was committed (remasking order). */
  const committedP = new Float64Array(B * N).fill(1);
  for (let r = 0; remasking && r < rounds; r++) {
    for (let j = 0; j < perRound; j++) schedule.push({ k: 1, positions: remaskable, remask: j === 0 ? perRound : 0 });
  }
  for (let g = 0; g < schedule.length; g++) {
    if (o.cancelled?.()) return { tokens: null, stepMs, calls, denoiserMs, guideMs };
    const t0 = performance.now();
    const { k, positions, remask } = schedule[g]!;
    if (remask > 0) {
      // the least likely guided tokens (under the denoiser, at their commit or on the canvas as it stands) go back to
      // the mask
      if (guide!.remask!.by === 'context') {
        if (changed || !cache) await callDenoiser();
        const { logits, V } = cache!;
        for (let b = 0; b < B; b++) for (const i of positions) committedP[b * N + i] = probOfCommitted(logits, V, b * N + (o.shifted ? Math.max(i - 1, 0) : i), x[b * N + i]!, o.vocabSize, o.maskId);
      }
      for (let b = 0; b < B; b++) {
        const worst = [...positions].sort((a, c) => committedP[b * N + a]! - committedP[b * N + c]! || a - c).slice(0, remask);
        for (const i of worst) {
          x[b * N + i] = o.maskId;
          masked[b * N + i] = 1;
        }
      }
      changed = true;
    }
    // without reuse every step calls the denoiser, also one that commits nothing
    if (!reuse) await callDenoiser();
    if (k > 0) {
      if (changed || !cache) await callDenoiser();
      // no commit since the last call: x is still the canvas those logits saw
      if (guide?.grad && guideStale && positions.some((i) => inGuided(i) && o.seeds.some((_, b) => masked[b * N + i]))) {
        const tg = performance.now();
        guideGrad = await guide.grad(x, B);
        guideMs += performance.now() - tg;
        guideStale = false;
      }
      const { logits, V } = cache!;
      if (!scratch || scratch.p.length !== V) {
        scratch = { p: new Float64Array(V), q: new Float64Array(V), order: new Int32Array(V), kept: new Int32Array(V), sorted: new Float64Array(V) };
        row = new Float64Array(V);
        base = new Float64Array(V);
        baseP = new Float64Array(V);
        allowed = new Uint8Array(Math.max(V, o.vocabSize));
      }
      const buf = scratch;
      const w = guide ? guide.weightAt(Math.min(g, totalSteps - 1), totalSteps) : 0;
      /** The committed tokens beside guided position i (-1: masked or outside the segment). */
      const neighbours = (b: number, i: number): [number, number] => [
        i > guide!.start && !masked[b * N + i - 1] ? x[b * N + i - 1]! : -1,
        i + 1 < guide!.start + guide!.length && !masked[b * N + i + 1] ? x[b * N + i + 1]! : -1,
      ];
      /** Whether token v at guided position i breaks the glue or repeat rule next to what is committed now. */
      const clashes = (b: number, i: number, v: number) => {
        const [before, after] = neighbours(b, i);
        return (!!guide!.glue && gluesOn(guide!.glue, v, before, after)) || (!!guide!.repeats && repeatsWord(guide!.repeats, v, before, after)) || (!!guide!.ends && endsEarly(guide!.ends, v, before, after));
      };
      /**
       * The float64 logits a position proposes from: its own (or shifted) row, plus the guidance term at a masked
       * position of the guided segment; invalid ids and disallowed tokens -inf.
       */
      const rowFor = (b: number, i: number, only: Uint8Array | null, exactAt?: Map<number, number>) => {
        const src = (b * N + (o.shifted ? Math.max(i - 1, 0) : i)) * V;
        for (let v = 0; v < V; v++) row[v] = v >= o.vocabSize || v === o.maskId || (only && !only[v]) ? -Infinity : logits[src + v]!;
        const ex = o.exclude?.get(i);
        if (ex) for (const v of ex) if (v < V) row[v] = -Infinity;
        if (!inGuided(i)) return row;
        const [before, after] = neighbours(b, i);
        if (guide!.glue) barGlue(row, guide!.glue, before, after);
        if (guide!.repeats) barRepeats(row, guide!.repeats, before, after);
        if (guide!.ends) barEarlyEnds(row, guide!.ends, before, after);
        if (modelP) base.set(row);
        const local = guide!.local;
        if (local) {
          const at = (i - guide!.start) * local.V;
          const n = Math.min(V, local.V);
          for (let v = 0; v < n; v++) if (row[v] !== -Infinity) row[v] = row[v]! + local.values[at + v]!;
        }
        if (exactAt) {
          // the candidates scored exactly (the top k of this row before the step's commits); the rest are not proposed
          for (let v = 0; v < V; v++) row[v] = row[v] !== -Infinity && exactAt.has(v) ? row[v]! + w * exactAt.get(v)! : -Infinity;
          return row;
        }
        const gg = guideGrad;
        if (gg && w !== 0) {
          if (topK > 0) {
            // the k-th largest logit (ties kept): only the denoiser's own top candidates are re-ranked
            let n = 0;
            for (let v = 0; v < V; v++) {
              const r = row[v]!;
              if (r === -Infinity || (n === topK && r <= top[n - 1]!)) continue;
              let j = n < topK ? n++ : n - 1;
              while (j > 0 && top[j - 1]! < r) {
                top[j] = top[j - 1]!;
                j--;
              }
              top[j] = r;
            }
            if (n === topK) for (let v = 0; v < V; v++) if (row[v]! < top[n - 1]!) row[v] = -Infinity;
          }
          const Vg = gg.V;
          const at = (b * guide!.length + (i - guide!.start)) * Vg;
          const cur = x[b * N + i]!;
          const base = cur < Vg ? gg.grad[at + cur]! : 0;
          const n = Math.min(V, Vg);
          for (let v = 0; v < n; v++) if (row[v] !== -Infinity) row[v] = row[v]! + w * (gg.grad[at + v]! - base);
        }
        return row;
      };
      const constrained = (b: number, i: number) => (segOf[i]! >= 0 ? reach[b]![segOf[i]!]! : null);
      const onlyAt = (b: number, i: number) => {
        const r = constrained(b, i);
        return r ? r.allowed(i - r.start, allowed) : null;
      };
      /** The denoiser's own probability (before the guidance terms) of `token` in the row rowFor built last. */
      const modelProb = (token: number) => {
        softmaxInto(base, baseP);
        return baseP[token]!;
      };
      /** Commits sample b's chosen proposals in order (exact: the exact scores of its guided positions). */
      const commit = (b: number, ub: Float64Array, chosen: { i: number; token: number; pModel: number }[], exact: Map<number, Map<number, number>> | null) => {
        for (const pr of chosen) {
          const r = constrained(b, pr.i);
          const exactAt = exact?.get(b * N + pr.i);
          let token = pr.token;
          let pModel = pr.pModel;
          if (exactAt) {
            token = propose(rowFor(b, pr.i, onlyAt(b, pr.i), exactAt), ub[pr.i]!, ub[N + pr.i]!, settingsAt(pr.i), buf).token;
            if (modelP) pModel = modelProb(token);
          }
          // an earlier commit of this step may have ruled the proposal out (a hard segment's automaton, or a guided
          // neighbour it would glue onto or repeat): propose again under what is left
          if ((r && !r.allows(pr.i - r.start, token)) || (inGuided(pr.i) && clashes(b, pr.i, token))) {
            token = propose(rowFor(b, pr.i, onlyAt(b, pr.i), exactAt), ub[pr.i]!, ub[N + pr.i]!, settingsAt(pr.i), buf).token;
            if (modelP && inGuided(pr.i)) pModel = modelProb(token);
          }
          x[b * N + pr.i] = token;
          masked[b * N + pr.i] = 0;
          committedP[b * N + pr.i] = pModel;
          if (r) r.update(x.subarray(b * N, (b + 1) * N), masked.subarray(b * N, (b + 1) * N));
        }
        changed = true;
      };
      // exact top-k re-scoring: every sample's positions are chosen first, then their candidates scored in one batch
      const exactOn = !!guide?.exact && !!guideGrad && w !== 0 && topK > 0;
      const chosenBy: { b: number; u: Float64Array; chosen: { i: number; token: number; pModel: number }[] }[] = [];
      for (let b = 0; b < B; b++) {
        const ub = exactOn ? new Float64Array(2 * N) : u;
        uniformsAt(o.seeds[b]!, g * 2 * N, 2 * N, ub);
        const open = positions.filter((i) => masked[b * N + i]);
        if (!open.length) continue;
        const props = open.map((i) => {
          const pr = propose(rowFor(b, i, onlyAt(b, i)), ub[i]!, ub[N + i]!, settingsAt(i), buf);
          return { i, pModel: modelP && inGuided(i) ? modelProb(pr.token) : 1, ...pr };
        });
        props.sort((a, c) => c.confidence - a.confidence || a.i - c.i);
        if (exactOn) chosenBy.push({ b, u: ub, chosen: props.slice(0, k) });
        else commit(b, ub, props.slice(0, k), null);
      }
      if (exactOn && chosenBy.length) {
        const tg = performance.now();
        const exact = await exactScores(chosenBy, (b, i) => rowFor(b, i, onlyAt(b, i)));
        guideMs += performance.now() - tg;
        for (const c of chosenBy) commit(c.b, c.u, c.chosen, exact);
      }
    }
    stepMs.push(performance.now() - t0);
    if (o.onStep) await o.onStep(g + 1, schedule.length, x, masked);
  }
  if (!guide || !o.scoreModel) return { tokens: x, stepMs, calls, denoiserMs, guideMs };
  const guidedLogp = new Float64Array(B);
  const guidedGen = gen.filter(inGuided);
  for (let b = 0; b < B; b++) for (const i of guidedGen) guidedLogp[b] += Math.log(committedP[b * N + i]!);
  return { tokens: x, stepMs, calls, denoiserMs, guideMs, guidedLogp };
}

/**
 * Per canvas, how well the denoiser reads `positions` back from the rest: the sum of log p of the token at each, with
 * the positions masked in `groups` interleaved groups (one denoiser call per group; the rest of the canvas as it
 * stands). A data-to-text candidate whose text leaves a field out, or says another value, makes its held record less
 * likely.
 */
export async function readBackLogp(
  logits: LogitsFn, tokens: Int32Array, B: number, N: number, positions: readonly number[], groups: number,
  o: { vocabSize: number; maskId: number; shifted: boolean },
): Promise<Float64Array> {
  const out = new Float64Array(B);
  const G = Math.max(1, Math.min(groups, positions.length));
  const ids = new Int32Array(tokens.length);
  for (let g = 0; g < G; g++) {
    ids.set(tokens);
    const group = positions.filter((_, j) => j % G === g);
    for (let b = 0; b < B; b++) for (const i of group) ids[b * N + i] = o.maskId;
    const { logits: l, V } = await logits(ids, B);
    for (let b = 0; b < B; b++) {
      for (const i of group) out[b] += Math.log(Math.max(probOfCommitted(l, V, b * N + (o.shifted ? Math.max(i - 1, 0) : i), tokens[b * N + i]!, o.vocabSize, o.maskId), 1e-30));
    }
  }
  return out;
}

/** softmax(logits[row]) at `token` over the real tokens (ids < vocabSize other than the mask), in float64. */
function probOfCommitted(logits: Float32Array, V: number, row: number, token: number, vocabSize: number, maskId: number): number {
  const n = Math.min(V, vocabSize);
  const at = row * V;
  let max = -Infinity;
  for (let v = 0; v < n; v++) if (v !== maskId && logits[at + v]! > max) max = logits[at + v]!;
  let sum = 0;
  for (let v = 0; v < n; v++) if (v !== maskId) sum += Math.exp(logits[at + v]! - max);
  return token < n ? Math.exp(logits[at + token]! - max) / sum : 0;
}

/** Whether piece v glues onto the committed neighbours `before` / `after` (-1: masked or outside the segment). */
function gluesOn(glue: GlueRule, v: number, before: number, after: number): boolean {
  return (before >= 0 && glue.endsWord[before] === 1 && glue.continues[v] === 1) || (after >= 0 && glue.continues[after] === 1 && glue.endsWord[v] === 1);
}

/** Whether token v writes the word of a committed neighbour `before` / `after` (-1: none). */
function repeatsWord(rule: RepeatRule, v: number, before: number, after: number): boolean {
  const w = rule.word[v] ?? -1;
  return w >= 0 && ((before >= 0 && rule.word[before] === w) || (after >= 0 && rule.word[after] === w));
}

/** Set row[v] to -inf for the tokens v < n that `barred` names, unless that would leave the row without a finite logit. */
function barUnlessEmpty(row: Float64Array, n: number, barred: (v: number) => boolean): void {
  const m = Math.min(row.length, n);
  let left = false;
  for (let v = 0; v < m && !left; v++) if (row[v] !== -Infinity && !barred(v)) left = true;
  if (!left) return;
  for (let v = 0; v < m; v++) if (barred(v)) row[v] = -Infinity;
}

/** Bar the tokens writing the word of a committed neighbour (-1: none); a row left without a finite logit stays as it was. */
function barRepeats(row: Float64Array, rule: RepeatRule, before: number, after: number): void {
  if ((before < 0 || rule.word[before]! < 0) && (after < 0 || rule.word[after]! < 0)) return;
  barUnlessEmpty(row, rule.word.length, (v) => repeatsWord(rule, v, before, after));
}

/** Bar what would end the text too early next to the committed neighbours; a row left without a finite logit stays as it was. */
function barEarlyEnds(row: Float64Array, rule: EndRule, before: number, after: number): void {
  const stopAfter = before >= 0 && rule.stop[before] !== 1 && rule.ender[before] !== 1;
  const enderBefore = after >= 0 && rule.stop[after] === 1;
  if (!stopAfter && !enderBefore) return;
  barUnlessEmpty(row, rule.stop.length, (v) => endsEarly(rule, v, before, after));
}

/**
 * Bar the pieces that would glue onto the committed neighbours `before` / `after` (-1: masked or outside the
 * segment); a row the rule would leave without a finite logit is left as it was.
 */
function barGlue(row: Float64Array, glue: GlueRule, before: number, after: number): void {
  if (!(before >= 0 && glue.endsWord[before] === 1) && !(after >= 0 && glue.continues[after] === 1)) return;
  barUnlessEmpty(row, glue.continues.length, (v) => gluesOn(glue, v, before, after));
}

/** A hard segment the held tokens leave no completion for (index into `hard`). */
export class MaskedConstraintError extends Error {
  constructor(readonly segment: number, message: string) {
    super(message);
  }
}
