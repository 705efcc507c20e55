/**
 * The guided masked step (src-main/engine/families/masked/sampler.ts, `guide`): weight x (g[i, v] - g[i, current]) is
 * added to the logits of masked positions in the guided segment before proposing, hard constraints still decide
 * what may be committed, and the gradient is computed with the logits (reused with them while the canvas stands).
 * The denoiser and the classifier are plain functions here; the real graphs are tested on the real bundle.
 */
import { describe, expect, it } from 'vitest';
import { textExtent } from '../../../src-main/engine/extent';
import { maskedGuidanceDefaults, type MaskedManifest } from '../../../src-main/engine/families/masked/manifest';
import { readBackLogp, sampleMasked, type MaskedSampleOptions } from '../../../src-main/engine/families/masked/sampler';
import { endRule, endsEarly, repeatRule } from '../../../src-main/engine/projection';
import { END, PAD } from '../../../src-main/engine/tokenizer';

const N = 6;
const V = 10; // tokens 0..8, mask id 9
const MASK = 9;

/** A denoiser that slightly prefers token 1 everywhere. */
const flatLogits: MaskedSampleOptions['logits'] = async (_ids, B) => {
  const logits = new Float32Array(B * N * V);
  for (let r = 0; r < B * N; r++) logits[r * V + 1] = 0.5;
  return { logits, V };
};

/** A denoiser that prefers token 1 (0.5), then token 2 (0.4), everywhere. */
const oneThenTwo: MaskedSampleOptions['logits'] = async (_ids, B) => {
  const l = new Float32Array(B * N * V);
  for (let r = 0; r < B * N; r++) {
    l[r * V + 1] = 0.5;
    l[r * V + 2] = 0.4;
  }
  return { logits: l, V };
};

/** A classifier gradient over positions 2..5 (a segment of length 4) that favours `token` at segment offset `at`. */
function guideFor(token: number, at: number, weight = 1, calls?: { n: number }): NonNullable<MaskedSampleOptions['guide']> {
  return {
    start: 2,
    length: 4,
    async grad(_ids, B) {
      if (calls) calls.n++;
      const g = new Float32Array(B * 4 * V);
      for (let b = 0; b < B; b++) g[(b * 4 + at) * V + token] = 3;
      return { grad: g, V };
    },
    weightAt: () => weight,
  };
}

const base = (extra: Partial<MaskedSampleOptions> = {}): MaskedSampleOptions => ({
  seeds: [1, 2],
  length: N,
  vocabSize: 9,
  maskId: MASK,
  shifted: false,
  settings: { steps: N, blockLength: 0, confidence: 'low_confidence', temperature: 0, topP: 1 },
  logits: flatLogits,
  ...extra,
});

describe('guided masked sampling', () => {
  it('moves the proposal at the guided position and nowhere else', async () => {
    const plain = await sampleMasked(base());
    expect([...plain.tokens!]).toEqual(new Array(2 * N).fill(1));
    const guided = await sampleMasked(base({ guide: guideFor(7, 1) }));
    for (let b = 0; b < 2; b++) {
      const row = [...guided.tokens!.subarray(b * N, (b + 1) * N)];
      expect(row).toEqual([1, 1, 1, 7, 1, 1]); // segment offset 1 = canvas position 3
    }
  });

  it('weight 0 (or an anneal that ends at 0 on the only step) leaves the sampler as it was', async () => {
    const plain = await sampleMasked(base());
    const zero = await sampleMasked(base({ guide: guideFor(7, 1, 0) }));
    expect([...zero.tokens!]).toEqual([...plain.tokens!]);
  });

  it('a weak gradient does not beat a confident denoiser: the term is weight x the gradient difference', async () => {
    // 3 x 0.1 = 0.3 < the 0.5 the denoiser gives token 1
    const weak = await sampleMasked(base({ guide: guideFor(7, 1, 0.1) }));
    expect([...weak.tokens!]).toEqual(new Array(2 * N).fill(1));
  });

  it('held positions are never changed by guidance', async () => {
    const held = new Int32Array(N).fill(-1);
    held[3] = 4;
    const r = await sampleMasked(base({ held, guide: guideFor(7, 1) }));
    expect(r.tokens![3]).toBe(4);
    expect(r.tokens![N + 3]).toBe(4);
  });

  it('is computed on the logits\' canvas: one gradient call per denoiser call that leaves a guided position open, its time reported', async () => {
    const calls = { n: 0 };
    let needed = 0;
    const logits: MaskedSampleOptions['logits'] = async (ids, B) => {
      // a guided position (2..5) still masked in some row: this call's canvas needs a gradient
      if ([...ids].some((t, k) => t === MASK && k % N >= 2)) needed++;
      return flatLogits(ids, B);
    };
    const r = await sampleMasked(base({ logits, guide: guideFor(7, 1, 1, calls), settings: { steps: 12, blockLength: 0, confidence: 'low_confidence', temperature: 0, topP: 1 } }));
    expect(calls.n).toBe(needed);
    expect(r.calls).toBeLessThan(12); // 12 steps for 6 positions: steps that commit nothing reuse both
    expect(r.guideMs).toBeGreaterThanOrEqual(0);
    // blocks of 2, the segment (2..5) first: the last block (0, 1) needs no gradient, so fewer calls than the denoiser's
    calls.n = 0;
    needed = 0;
    const blocks = await sampleMasked(base({ logits, guide: { ...guideFor(7, 1, 1, calls), first: true }, settings: { steps: 6, blockLength: 2, confidence: 'low_confidence', temperature: 0, topP: 1 } }));
    expect(calls.n).toBe(needed);
    expect(calls.n).toBeLessThan(blocks.calls);
  });

  it('top-k: guidance only re-ranks the denoiser\'s own top candidates', async () => {
    // the denoiser prefers 1 (0.5), then 2 (0.4); the gradient prefers 7 strongly and 2 a little
    const logits = oneThenTwo;
    const grad = (top: number): NonNullable<MaskedSampleOptions['guide']> => ({
      start: 0, length: N, weightAt: () => 1, topK: top,
      async grad(_ids, B) {
        const g = new Float32Array(B * N * V);
        for (let r = 0; r < B * N; r++) {
          g[r * V + 7] = 5;
          g[r * V + 2] = 0.5;
        }
        return { grad: g, V };
      },
    });
    expect(new Set((await sampleMasked(base({ logits, guide: grad(0) }))).tokens)).toEqual(new Set([7]));
    expect(new Set((await sampleMasked(base({ logits, guide: grad(2) }))).tokens)).toEqual(new Set([2]));
    expect(new Set((await sampleMasked(base({ logits, guide: grad(1) }))).tokens)).toEqual(new Set([1]));
  });

  it('exact top-k re-scoring: each candidate written into the canvas and scored, where the first-order estimate ranks them otherwise', async () => {
    // the denoiser ranks 1 (0.5), 2 (0.4), 3 (0.3), the rest 0; the classifier's log p is 4 when the canvas has token 3
    // at position 3 and 0 otherwise, but its gradient there points at token 2 (a first-order estimate that misleads)
    const logits: MaskedSampleOptions['logits'] = async (_ids, B) => {
      const l = new Float32Array(B * N * V);
      for (let r = 0; r < B * N; r++) {
        l[r * V + 1] = 0.5;
        l[r * V + 2] = 0.4;
        l[r * V + 3] = 0.3;
      }
      return { logits: l, V };
    };
    const scored: number[][] = [];
    let batches = 0;
    const guide = (exact: boolean): NonNullable<MaskedSampleOptions['guide']> => ({
      start: 2, length: 4, weightAt: () => 1, topK: 3,
      async grad(_ids, B) {
        const g = new Float32Array(B * 4 * V);
        for (let b = 0; b < B; b++) g[(b * 4 + 1) * V + 2] = 4;
        return { grad: g, V };
      },
      ...(exact ? {
        async exact(ids: Int32Array, B: number) {
          batches++;
          const out = new Float32Array(B);
          for (let r = 0; r < B; r++) {
            scored.push([...ids.subarray(r * N, (r + 1) * N)]);
            out[r] = ids[r * N + 3] === 3 ? 4 : 0;
          }
          return out;
        },
      } : {}),
    });
    const settings = { steps: N, blockLength: 0, confidence: 'low_confidence' as const, temperature: 0, topP: 1 };
    const firstOrder = await sampleMasked(base({ logits, settings, guide: guide(false) }));
    expect(firstOrder.tokens![3]).toBe(2);
    const exact = await sampleMasked(base({ logits, settings, guide: guide(true) }));
    for (let b = 0; b < 2; b++) expect([...exact.tokens!.subarray(b * N, (b + 1) * N)]).toEqual([1, 1, 1, 3, 1, 1]);
    // one batch per step that commits a guided position (4 of the 6 steps), both samples' candidates in it: the top 3
    // tokens, each written at the position being committed into the canvas as it stood
    expect(batches).toBe(4);
    expect(scored.length).toBe(4 * 2 * 3);
    const atThree = scored.filter((ids) => ids[3] !== MASK && ids.filter((t) => t !== MASK).length === 1);
    expect(new Set(atThree.map((ids) => ids[3]))).toEqual(new Set([1, 2, 3]));
    // the guidance time includes the exact scoring
    expect(exact.guideMs).toBeGreaterThan(0);
  });

  it('the guided segment first: with blocks, its positions are committed before the rest', async () => {
    const order: number[] = [];
    await sampleMasked(base({
      guide: { ...guideFor(7, 1, 0), first: true },
      settings: { steps: N, blockLength: 4, confidence: 'origin', temperature: 0, topP: 1 },
      onStep(_s, _t, _tokens, masked) {
        for (let i = 0; i < N; i++) if (!masked[i] && !order.includes(i)) order.push(i);
      },
    }));
    expect(order.slice(0, 4).sort()).toEqual([2, 3, 4, 5]);
  });

  it('the term is relative to the current token: a gradient equal for every token changes nothing', async () => {
    const uniform: NonNullable<MaskedSampleOptions['guide']> = {
      start: 0, length: N, weightAt: () => 100,
      async grad(_ids, B) {
        return { grad: new Float32Array(B * N * V).fill(5), V };
      },
    };
    const plain = await sampleMasked(base());
    const r = await sampleMasked(base({ guide: uniform }));
    expect([...r.tokens!]).toEqual([...plain.tokens!]);
  });

  it('a lexicon\'s local term works without a classifier graph, at its positions only, and before the top-k cut', async () => {
    // the denoiser prefers 1 (0.5), then 2 (0.4); the local term favours 7 (outside the top 2) at segment offset 1
    const logits = oneThenTwo;
    const Vl = 9; // one row per tokenizer id, no mask column
    const values = new Float32Array(4 * Vl);
    values[1 * Vl + 7] = 2;
    const local = (topK: number): NonNullable<MaskedSampleOptions['guide']> => ({ start: 2, length: 4, weightAt: () => 1, topK, local: { values, V: Vl } });
    for (const topK of [0, 2]) {
      const r = await sampleMasked(base({ logits, guide: local(topK) }));
      for (let b = 0; b < 2; b++) expect([...r.tokens!.subarray(b * N, (b + 1) * N)]).toEqual([1, 1, 1, 7, 1, 1]);
      expect(r.guideMs).toBe(0); // no graph to run
    }
    // a local term smaller than the denoiser's margin leaves the proposal alone: it is added, not a veto
    values[1 * Vl + 7] = 0.4;
    const weak = await sampleMasked(base({ logits, guide: local(0) }));
    expect([...weak.tokens!]).toEqual(new Array(2 * N).fill(1));
  });

  it('remasking: the tokens the denoiser found least likely are written again with the text on both sides', async () => {
    // token 1 everywhere, except that position 3 wants 5 once position 4 holds 7 (and only mildly 1 before);
    // a lexicon forces 7 at position 4 (segment offset 2); blocks of one position commit left to right
    const contextual: MaskedSampleOptions['logits'] = async (ids, B) => {
      const l = new Float32Array(B * N * V);
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < N; i++) l[(b * N + i) * V + 1] = 3;
        const at3 = (b * N + 3) * V;
        if (ids[b * N + 4] === 7) l[at3 + 5] = 6;
        else {
          l[at3 + 1] = 0.5;
          l[at3 + 5] = 0.45;
        }
      }
      return { logits: l, V };
    };
    const Vl = 9;
    const values = new Float32Array(4 * Vl);
    values[2 * Vl + 7] = 10;
    const guide = (remask?: { rounds: number; fraction: number }): NonNullable<MaskedSampleOptions['guide']> =>
      ({ start: 2, length: 4, weightAt: () => 1, local: { values, V: Vl }, ...(remask ? { remask } : {}) });
    const settings = { steps: N, blockLength: 1, confidence: 'low_confidence' as const, temperature: 0, topP: 1 };
    const once = await sampleMasked(base({ logits: contextual, settings, guide: guide() }));
    for (let b = 0; b < 2; b++) expect([...once.tokens!.subarray(b * N, (b + 1) * N)]).toEqual([1, 1, 1, 1, 7, 1]);
    expect(once.stepMs).toHaveLength(N);
    // half of the 4 segment positions: 4 (7, forced against the model) and 3 (1, a weak preference) are redone
    const steps: number[] = [];
    const again = await sampleMasked(base({ logits: contextual, settings, guide: guide({ rounds: 1, fraction: 0.5 }), onStep: (_g, total) => void steps.push(total) }));
    for (let b = 0; b < 2; b++) expect([...again.tokens!.subarray(b * N, (b + 1) * N)]).toEqual([1, 1, 1, 5, 7, 1]);
    expect(again.stepMs).toHaveLength(N + 2);
    expect(new Set(steps)).toEqual(new Set([N + 2]));
    // positions outside the guided segment are never remasked, and no rounds means none
    const none = await sampleMasked(base({ logits: contextual, settings, guide: guide({ rounds: 0, fraction: 0.5 }) }));
    expect([...none.tokens!]).toEqual([...once.tokens!]);
  });

  it('remasking by context: the token the finished text makes unlikely goes back, not the one forced at its commit', async () => {
    // token 1 everywhere; a committed token's own logit gets +4 (a denoiser trained on committed positions reads them
    // back); position 2 wants 6 once position 5 holds 8, which a lexicon forces there (segment offset 3); blocks of
    // one position commit left to right, so 2 is committed before 5
    const reads: MaskedSampleOptions['logits'] = async (ids, B) => {
      const l = new Float32Array(B * N * V);
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < N; i++) {
          l[(b * N + i) * V + 1] = 3;
          const cur = ids[b * N + i]!;
          if (cur !== MASK) l[(b * N + i) * V + cur] += 4;
        }
        if (ids[b * N + 5] === 8) l[(b * N + 2) * V + 6] = ids[b * N + 2] === MASK ? 6 : 9;
      }
      return { logits: l, V };
    };
    const Vl = 9;
    const values = new Float32Array(4 * Vl);
    values[3 * Vl + 8] = 10;
    const guide = (by: 'commit' | 'context'): NonNullable<MaskedSampleOptions['guide']> =>
      ({ start: 2, length: 4, weightAt: () => 1, local: { values, V: Vl }, remask: { rounds: 1, fraction: 0.25, by } });
    const settings = { steps: N, blockLength: 1, confidence: 'low_confidence' as const, temperature: 0, topP: 1 };
    // at its commit, 8 at position 5 was the least likely: redone, the lexicon writes it again
    const byCommit = await sampleMasked(base({ logits: reads, settings, guide: guide('commit') }));
    for (let b = 0; b < 2; b++) expect([...byCommit.tokens!.subarray(b * N, (b + 1) * N)]).toEqual([1, 1, 1, 1, 1, 8]);
    // on the finished text, 1 at position 2 is the least likely (p 0.12 against 0.67 for the 8): it becomes 6
    const byContext = await sampleMasked(base({ logits: reads, settings, guide: guide('context') }));
    for (let b = 0; b < 2; b++) expect([...byContext.tokens!.subarray(b * N, (b + 1) * N)]).toEqual([1, 1, 6, 1, 1, 8]);
  });

  it('a bundle\'s remask setting is checked by name', () => {
    expect(maskedGuidanceDefaults.parse({ remask: { rounds: 2, fraction: 0.35, controls: ['pos'] } }).remask).toEqual({ rounds: 2, fraction: 0.35, controls: ['pos'], by: 'commit' });
    expect(maskedGuidanceDefaults.parse({ remask: { rounds: 2, fraction: 0.35, controls: ['pos'], by: 'context' } }).remask?.by).toBe('context');
    expect(maskedGuidanceDefaults.parse({}).remask).toBeUndefined();
    for (const bad of [{ rounds: 2, fraction: 0, controls: ['pos'] }, { rounds: 9, fraction: 0.5, controls: ['pos'] }, { rounds: 1, fraction: 0.5, controls: [] }, { rounds: 1, fraction: 0.5, controls: ['pos'], extra: 1 }, { rounds: 1, fraction: 0.5, controls: ['Pos'] }, { rounds: 1, fraction: 0.5, controls: ['pos'], by: 'now' }]) {
      expect(() => maskedGuidanceDefaults.parse({ remask: bad })).toThrow(/remask/);
    }
  });

  it('a bundle\'s candidate_fluency: commit at weight 1 without it, checked by name', () => {
    expect(maskedGuidanceDefaults.parse({}).candidate_fluency).toEqual({ by: 'commit', weight: 1 });
    expect(maskedGuidanceDefaults.parse({ candidate_fluency: { by: 'read-back', weight: 0.5 } }).candidate_fluency).toEqual({ by: 'read-back', weight: 0.5 });
    for (const bad of [{ by: 'readback', weight: 1 }, { by: 'commit', weight: -1 }, { by: 'commit' }, { by: 'commit', weight: 1, extra: 1 }]) {
      expect(() => maskedGuidanceDefaults.parse({ candidate_fluency: bad })).toThrow(/candidate_fluency/);
    }
  });
});

describe('no glued pieces in the guided text (sampler.ts, guide.glue)', () => {
  // tokens 1 and 2 end a word, 3 and 4 continue one (a letter-initial piece with no space), 5 neither
  const glue = { endsWord: Uint8Array.from([0, 1, 1, 0, 0, 0, 0, 0, 0, 0]), continues: Uint8Array.from([0, 0, 0, 1, 1, 0, 0, 0, 0, 0]) };
  /** A denoiser that wants token 1 at position 2 (first, most confident) and token 3 (a continuation) after it. */
  const wantsGlue: MaskedSampleOptions['logits'] = async (_ids, B) => {
    const l = new Float32Array(B * N * V);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < N; i++) l[(b * N + i) * V + 5] = 0.1;
      l[(b * N + 2) * V + 1] = 10;
      for (let i = 3; i < N; i++) {
        l[(b * N + i) * V + 3] = 1;
        l[(b * N + i) * V + 5] = 0.5;
      }
    }
    return { logits: l, V };
  };
  const noGrad = (): NonNullable<MaskedSampleOptions['guide']> => ({ start: 2, length: 4, weightAt: () => 1 });

  it('after a word-ending piece the guided text takes no continuation; without the rule it does', async () => {
    const settings = { steps: N, blockLength: 0, confidence: 'low_confidence' as const, temperature: 0, topP: 1 };
    const glued = await sampleMasked(base({ logits: wantsGlue, settings, guide: noGrad() }));
    expect([...glued.tokens!.subarray(2, 4)]).toEqual([1, 3]);
    const kept = await sampleMasked(base({ logits: wantsGlue, settings, guide: { ...noGrad(), glue } }));
    expect([...kept.tokens!.subarray(2, 4)]).toEqual([1, 5]);
    // outside the guided segment nothing is barred: positions 0 and 1 take what the denoiser wants
    expect([...kept.tokens!.subarray(0, 2)]).toEqual([...glued.tokens!.subarray(0, 2)]);
  });

  it('where the rule would leave no token, it gives way', async () => {
    const onlyGlue: MaskedSampleOptions['logits'] = async (ids, B) => {
      const r = await wantsGlue(ids, B);
      // position 3 may only take continuations (every other token -inf)
      for (let b = 0; b < B; b++) for (let v = 0; v < V; v++) if (v !== 3 && v !== 4) r.logits[(b * N + 3) * V + v] = -Infinity;
      return r;
    };
    const settings = { steps: N, blockLength: 0, confidence: 'low_confidence' as const, temperature: 0, topP: 1 };
    const out = await sampleMasked(base({ logits: onlyGlue, settings, guide: { ...noGrad(), glue } }));
    expect([...out.tokens!.subarray(2, 4)]).toEqual([1, 3]);
  });
});

describe('no word twice in a row in the guided text (sampler.ts, guide.repeats)', () => {
  it('tokens of letters or digits, with or without their space, name their lowercased word; a sentence or clause mark names itself; others none', () => {
    const { word } = repeatRule(['Loch', ' Loch', ' loch', '.', ' ', '-', ' 5', 'ly', ' Fyne', ' .', ',', ' £', "'"]);
    expect(word[0]).toBe(word[1]);
    expect(word[2]).toBe(word[0]);
    expect([word[4], word[5], word[11], word[12]]).toEqual([-1, -1, -1, -1]);
    expect(word[9]).toBe(word[3]);
    expect(new Set([word[0], word[3], word[6], word[7], word[8], word[10]]).size).toBe(6);
    expect(word[3]).toBeGreaterThanOrEqual(0);
  });

  // tokens 6 and 7 write the same word ("Loch" / " Loch"), 8 another; the denoiser wants 6 or 7 everywhere
  const rule = { word: Int32Array.from([-1, -1, -1, -1, -1, -1, 0, 0, 1, -1]) };
  const sameWord: MaskedSampleOptions['logits'] = async (_ids, B) => {
    const l = new Float32Array(B * N * V);
    for (let r = 0; r < B * N; r++) {
      l[r * V + 6] = 1;
      l[r * V + 7] = 0.9;
      l[r * V + 8] = 0.2;
    }
    return { logits: l, V };
  };
  const noGrad = (): NonNullable<MaskedSampleOptions['guide']> => ({ start: 2, length: 4, weightAt: () => 1 });
  const repeated = (t: Int32Array, b: number) => [2, 3, 4].filter((i) => rule.word[t[b * N + i]!]! >= 0 && rule.word[t[b * N + i]!] === rule.word[t[b * N + i + 1]!]);

  for (const steps of [N, N / 2]) {
    it(`neighbours committed in earlier steps${steps < N ? ' and in the same step' : ''} are not repeated; without the rule they are`, async () => {
      const settings = { steps, blockLength: 0, confidence: 'low_confidence' as const, temperature: 0, topP: 1 };
      const free = await sampleMasked(base({ logits: sameWord, settings, guide: noGrad() }));
      expect(repeated(free.tokens!, 0).length).toBeGreaterThan(0);
      const kept = await sampleMasked(base({ logits: sameWord, settings, guide: { ...noGrad(), repeats: rule } }));
      for (let b = 0; b < 2; b++) {
        expect(repeated(kept.tokens!, b)).toEqual([]);
        expect([...kept.tokens!.subarray(b * N + 2, b * N + 6)]).toEqual([6, 8, 6, 8]);
        // outside the guided segment nothing is barred
        expect([...kept.tokens!.subarray(b * N, b * N + 2)]).toEqual([...free.tokens!.subarray(b * N, b * N + 2)]);
      }
    });
  }
});

describe('where a masked text ends (extent.ts): lengths pinned, spans reached', () => {
  const m = { canvas: { length: 8, segments: [{ name: 'record', start: 0, length: 2 }, { name: 'text', start: 2, length: 6 }] } } as unknown as MaskedManifest;
  const free = () => new Int32Array(8).fill(-1);

  it('a length n: <end> held at text position n, <pad> after it, <end>/<pad>/barred tokens excluded before it', () => {
    const r = textExtent(m, [{ kind: 'length', tokens: 3, index: 0 }, { kind: 'sentiment', label: 'positive', index: 1 }], free(), [], [9]);
    expect([...r.held]).toEqual([-1, -1, -1, -1, -1, END, PAD, PAD]);
    expect([...r.exclude!.entries()]).toEqual([[2, [END, PAD, 9]], [3, [END, PAD, 9]], [4, [END, PAD, 9]]]);
    expect(r.rest.map((t) => t.kind)).toEqual(['sentiment']);
  });

  it('a POS template sets the length unless wildcards end it; an explicit length wins', () => {
    expect([...textExtent(m, [{ kind: 'pos', tags: ['PROPN', 'VERB'] }], free(), []).held].slice(2)).toEqual([-1, -1, END, PAD, PAD, PAD]);
    expect(textExtent(m, [{ kind: 'pos', tags: ['PROPN', 'VERB', null] }], free(), []).exclude).toBeNull();
    expect([...textExtent(m, [{ kind: 'pos', tags: ['PROPN'] }, { kind: 'length', tokens: 2 }], free(), []).held].slice(2)).toEqual([-1, -1, END, PAD, PAD, PAD]);
  });

  it('phrase spans bar <end>/<pad> and spaces up to one token past their last; a held text is left alone, with a warning for a length', () => {
    const r = textExtent(m, [{ kind: 'spans', spans: [[1, 2, 'PP']] }], free(), [], [9]);
    expect(r.held).toEqual(free());
    expect([...r.exclude!.entries()]).toEqual([[2, [END, PAD, 9]], [3, [END, PAD, 9]], [4, [END, PAD, 9]], [5, [END, PAD, 9]]]);
    // a span up to the segment's last text position but one: <end> still has its place at the end
    expect([...textExtent(m, [{ kind: 'spans', spans: [[3, 4, 'NP']] }], free(), []).exclude!.keys()]).toEqual([2, 3, 4, 5, 6]);
    const held = free();
    held[2] = 7;
    const warnings: string[] = [];
    expect(textExtent(m, [{ kind: 'length', tokens: 3, index: 4 }], held, warnings).exclude).toBeNull();
    expect(warnings).toEqual([expect.stringMatching(/^constraints\[4\] \(length\): the text is held/)]);
  });

  it('refuses two different lengths and one the segment cannot hold, naming the constraints', () => {
    expect(() => textExtent(m, [{ kind: 'length', tokens: 2, index: 0 }, { kind: 'length', tokens: 3, index: 2 }], free(), []))
      .toThrow(/constraints\[0\], constraints\[2\]: two lengths asked for \(2 and 3 tokens\)/);
    expect(() => textExtent(m, [{ kind: 'length', tokens: 6, index: 1 }], free(), [])).toThrow(/constraints\[1\]: 6 tokens do not fit the 6-position text segment/);
  });

  it('scoreModel sums the denoiser\'s own log p of each guided token it committed, before the guidance terms', async () => {
    // the denoiser's distribution at every position: token 1 at 0.5, token 2 at 0.4, the other 7 allowed tokens at 0
    const logZ = Math.log(Math.exp(0.5) + Math.exp(0.4) + 7);
    const logp = (v: number) => (v === 1 ? 0.5 : v === 2 ? 0.4 : 0) - logZ;
    const r = await sampleMasked(base({ logits: oneThenTwo, guide: guideFor(7, 1), scoreModel: true, seeds: [1, 2, 3] }));
    for (let b = 0; b < 3; b++) {
      const toks = Array.from(r.tokens!.subarray(b * N + 2, b * N + 6));
      // guidance put token 7 at offset 1, which the denoiser alone gives 1 / Z
      expect(toks[1]).toBe(7);
      expect(r.guidedLogp![b]).toBeCloseTo(toks.reduce((a, v) => a + logp(v), 0), 6);
    }
    // without the flag, or without a guide, nothing is summed
    expect((await sampleMasked(base({ logits: oneThenTwo, guide: guideFor(7, 1) }))).guidedLogp).toBeUndefined();
    expect((await sampleMasked(base({ logits: oneThenTwo, scoreModel: true }))).guidedLogp).toBeUndefined();
  });
});

describe('reading a held record back from a candidate\'s text (data-to-text candidates)', () => {
  it('scores the canvas whose text implies the record higher, masking the record in groups, one call each', async () => {
    // record at positions 0-1 (tokens 5, 6), text at 2-5; a masked position 0 reads 5 when the text holds 7 at
    // position 3, a masked position 1 reads 6 whatever the text
    const calls: Int32Array[] = [];
    const logits: MaskedSampleOptions['logits'] = async (ids, B) => {
      calls.push(ids.slice());
      const l = new Float32Array(B * N * V);
      for (let b = 0; b < B; b++) {
        if (ids[b * N] === MASK) l[b * N * V + 5] = ids[b * N + 3] === 7 ? 4 : -4;
        if (ids[b * N + 1] === MASK) l[(b * N + 1) * V + 6] = 4;
      }
      return { logits: l, V };
    };
    const tokens = Int32Array.from([5, 6, 1, 7, 1, 1, 5, 6, 1, 2, 1, 1]);
    const o = { vocabSize: V, maskId: MASK, shifted: false };
    const two = await readBackLogp(logits, tokens, 2, N, [0, 1], 2, o);
    expect(two[0]).toBeGreaterThan(two[1]!);
    // p = e^4 / (e^4 + 8) at position 1 in both; at position 0, e^4 / (e^4 + 8) against e^-4 / (e^-4 + 8)
    const p = (z: number) => Math.log(Math.exp(z) / (Math.exp(z) + 8));
    expect(two[0]).toBeCloseTo(2 * p(4), 6);
    expect(two[1]).toBeCloseTo(p(4) + p(-4), 6);
    expect(calls.map((ids) => [...ids.subarray(0, N)].map((t) => (t === MASK ? 1 : 0)))).toEqual([[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]]);
    // one group: one call, everything masked at once; the same sums here (the positions do not read each other)
    calls.length = 0;
    const one = await readBackLogp(logits, tokens, 2, N, [0, 1], 1, o);
    expect(calls).toHaveLength(1);
    expect([...one].map((x) => x.toFixed(6))).toEqual([...two].map((x) => x.toFixed(6)));
  });
});


describe('a guided text ends only on a token that ends texts (sampler.ts, guide.ends)', () => {
  // 6 never ends a training text ("It"), 7 and 8 do ("." and "centre"); <end> is 2, <pad> 0
  const rule = endRule(['<pad>', '<sep>', '<end>', '<unk>', ' a', ' b', ' It', '.', ' centre'], [7, 8]);
  const noGrad = (): NonNullable<MaskedSampleOptions['guide']> => ({ start: 2, length: 4, weightAt: () => 1 });
  const settings = { steps: N, blockLength: 0, confidence: 'low_confidence' as const, temperature: 0, topP: 1 };
  /** Logits from a per-position table of {token: logit} over the guided positions 2..5; elsewhere flat. */
  const table = (rows: Record<number, Record<number, number>>): MaskedSampleOptions['logits'] => async (_ids, B) => {
    const l = new Float32Array(B * N * V);
    for (let b = 0; b < B; b++) for (const [i, row] of Object.entries(rows)) for (const [v, x] of Object.entries(row)) l[(b * N + Number(i)) * V + Number(v)] = x;
    return { logits: l, V };
  };

  it('the rule: a stop after a token that may not end a text, or such a token before a stop', () => {
    expect(endsEarly(rule, END, 6, -1)).toBe(true);
    expect(endsEarly(rule, PAD, 6, -1)).toBe(true);
    expect(endsEarly(rule, END, 7, -1)).toBe(false);
    expect(endsEarly(rule, PAD, END, -1)).toBe(false); // padding after <end>
    expect(endsEarly(rule, END, -1, -1)).toBe(false); // nothing committed before it yet
    expect(endsEarly(rule, 6, -1, END)).toBe(true);
    expect(endsEarly(rule, 8, -1, END)).toBe(false);
    expect(endsEarly(rule, 6, 7, 5)).toBe(false);
  });

  it('no <end> right after a committed "It"; without the rule the text stops there', async () => {
    // "It" at position 3 first, then <pad> at 5, then position 4 wants <end> (then "centre")
    const logits = table({ 3: { 6: 12 }, 4: { [END]: 6, 8: 3 }, 5: { [PAD]: 9 } });
    const free = await sampleMasked(base({ logits, settings, guide: noGrad() }));
    expect([...free.tokens!.subarray(3, 6)]).toEqual([6, END, PAD]);
    const kept = await sampleMasked(base({ logits, settings, guide: { ...noGrad(), ends: rule } }));
    for (let b = 0; b < 2; b++) expect([...kept.tokens!.subarray(b * N + 3, b * N + 6)]).toEqual([6, 8, PAD]);
  });

  it('before a committed <end> the last word is one that ends texts', async () => {
    const logits = table({ 4: { [END]: 12 }, 3: { 6: 8, 7: 4 } });
    const free = await sampleMasked(base({ logits, settings, guide: noGrad() }));
    expect(free.tokens![3]).toBe(6);
    const kept = await sampleMasked(base({ logits, settings, guide: { ...noGrad(), ends: rule } }));
    expect([kept.tokens![3], kept.tokens![4]]).toEqual([7, END]);
  });

  it('where the rule would leave no token, it gives way', async () => {
    const only = table({ 3: { 6: 12 }, 4: { [END]: 6 } });
    const onlyStops: MaskedSampleOptions['logits'] = async (ids, B) => {
      const r = await only(ids, B);
      for (let b = 0; b < B; b++) for (let v = 0; v < V; v++) if (v !== END && v !== PAD) r.logits[(b * N + 4) * V + v] = -Infinity;
      return r;
    };
    const out = await sampleMasked(base({ logits: onlyStops, settings, guide: { ...noGrad(), ends: rule } }));
    expect(out.tokens![4]).toBe(END);
  });
});
