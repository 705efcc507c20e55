/**
 * Benchmark of the constraint compiler and the projection. Prints figures; asserts nothing.
 *
 * Run: node --import tsx src-main/constraints/bench.ts [--vocab tests/fixtures/tokenizer/vocab.json] [--bundle models/<id>]
 *  - compile time of an E2E record schema (JSON Schema -> DFA) and the token lift, cold and cached;
 *  - projection time per denoising step at batch 8 over the 44-token record segment (max-product), and the
 *    sum-product / sampling forms;
 *  - with --bundle (or models/e2e-default when present): the denoiser's time per step at batch 8 on the CPU, for
 *    the ratio.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { compileJsonSchema } from './compiler/json-schema';
import { liftToTokens } from './compiler/token-automaton';
import { clearCompileCaches, compileConstraintSet, type CompileModel } from './compiler';
import { parseConstraintSet } from './set';
import { Tokenizer } from '../engine/tokenizer';

const args = process.argv.slice(2);
const opt = (name: string, dflt?: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};

const SCHEMA_PATH = 'tests/fixtures/constraints/e2e-record.schema.json';
const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'));

function loadVocab(): { tokens: string[]; specials: CompileModel['specials']; source: string } {
  const p = opt('--vocab', 'tests/fixtures/tokenizer/vocab.json')!;
  if (existsSync(p)) {
    const v = JSON.parse(readFileSync(p, 'utf8'));
    return { tokens: v.tokens, specials: v.specials, source: p };
  }
  // synthetic: printable ASCII + words of the schema's values
  const tokens = ['<pad>', '<sep>', '<end>', '<unk>'];
  for (let c = 0x20; c < 0x7f; c++) tokens.push(String.fromCharCode(c));
  const words = new Set<string>();
  for (const p of Object.values(schema.properties) as { enum: string[] }[]) for (const v of p.enum) for (const w of v.split(/(?=[ ])/)) words.add(w);
  tokens.push(...[...words].filter((w) => !tokens.includes(w)));
  while (tokens.length < 1800) tokens.push(`w${tokens.length}`);
  return { tokens, specials: { pad: 0, sep: 1, end: 2, unk: 3 }, source: 'synthetic' };
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return `mean ${mean.toFixed(2)} ms, median ${s[Math.floor(s.length / 2)]!.toFixed(2)} ms, p90 ${s[Math.floor(s.length * 0.9)]!.toFixed(2)} ms`;
}

async function denoiserStepMs(bundle: string, batch: number): Promise<number | null> {
  const manifestPath = join(bundle, 'manifest.json');
  if (!existsSync(manifestPath)) return null;
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(join(bundle, m.denoiser.file));
  const N = m.canvas.length;
  const d = m.embedding.dim;
  const x = new ort.Tensor('float32', new Float32Array(batch * N * d).map(() => Math.random() - 0.5), [batch, N, d]);
  const t = new ort.Tensor('float32', new Float32Array(batch).fill(1000), [batch]);
  const times: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t0 = performance.now();
    await session.run({ x_t: x, t });
    if (i >= 2) times.push(performance.now() - t0);
  }
  return times.reduce((a, b) => a + b, 0) / times.length;
}

/** A fixed pure-JS workload: compare it across runs to see how busy the machine was when the figures were taken. */
function calibrate(): number {
  const t0 = performance.now();
  let x = 0;
  for (let i = 0; i < 2e7; i++) x = (x + ((i * 2654435761) >>> 7)) | 0;
  if (x === 42) console.log('');
  return performance.now() - t0;
}

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; calibration loop ${calibrate().toFixed(1)} ms`);
  const vocab = loadVocab();
  const V = vocab.tokens.length;
  console.log(`vocabulary: ${V} tokens (${vocab.source}); schema: ${SCHEMA_PATH}`);
  const model: CompileModel = {
    vocab: vocab.tokens,
    specials: vocab.specials,
    canvas: { length: 96, segments: [{ name: 'record', start: 0, length: 44, format: 'json' }, { name: 'sep', start: 44, length: 1 }, { name: 'text', start: 45, length: 51 }] },
  };

  // 1. compile
  const t0 = performance.now();
  const c = compileJsonSchema(schema);
  const t1 = performance.now();
  const a = liftToTokens(c.dfa, vocab.tokens, vocab.specials, 'record');
  const t2 = performance.now();
  console.log(`cold (first in process): schema -> DFA ${(t1 - t0).toFixed(1)} ms (${c.states} states), token lift ${(t2 - t1).toFixed(1)} ms (${a.numStates} states, ${a.edges} edges), total ${(t2 - t0).toFixed(1)} ms`);
  const warm: number[] = [];
  for (let i = 0; i < 5; i++) {
    const s0 = performance.now();
    const cc = compileJsonSchema(schema);
    liftToTokens(cc.dfa, vocab.tokens, vocab.specials, 'record');
    warm.push(performance.now() - s0);
  }
  console.log(`warm compile + lift (uncached, 5 runs): ${stats(warm)}`);
  const set = parseConstraintSet({ version: 1, constraints: [{ kind: 'json-schema', schema }] });
  clearCompileCaches();
  const s0 = performance.now();
  const compiled = compileConstraintSet(set, model);
  const s1 = performance.now();
  const again = compileConstraintSet(set, model);
  const s2 = performance.now();
  console.log(`compileConstraintSet: first ${(s1 - s0).toFixed(1)} ms, cached reuse ${(s2 - s1).toFixed(3)} ms (cached=${again.cached})`);

  // 2. projection at batch 8 over the record segment
  const p = compiled.hard[0]!;
  const L = p.length;
  const tok = new Tokenizer(vocab.tokens);
  const records = [
    '{"name":"The Vaults","eatType":"pub","priceRange":"more than £30","customer rating":"5 out of 5","near":"Café Adriatic"}',
    '{"name":"The Mill","eatType":"coffee shop","food":"French","area":"riverside","familyFriendly":"yes"}',
  ];
  let seed = 42;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const makeScores = (noise: number, flip: number) => {
    const target = tok.encode(records[Math.floor(rnd() * records.length)]!);
    const s = new Float32Array(L * V);
    for (let i = 0; i < s.length; i++) s[i] = -noise * rnd();
    for (let i = 0; i < L; i++) {
      const t = i < target.length ? target[i]! : vocab.specials.pad;
      const wrong = 4 + Math.floor(rnd() * (V - 4));
      s[i * V + (rnd() < flip ? wrong : t)]! += noise;
    }
    return s;
  };
  for (const [label, noise, flip] of [['near-valid canvas (10% positions corrupted)', 8, 0.1], ['noisy canvas (40% corrupted)', 8, 0.4], ['random scores', 8, 1]] as const) {
    const batch = Array.from({ length: 8 }, () => makeScores(noise, flip));
    for (const s of batch) p.project(s); // warm-up
    const steps: number[] = [];
    let fellBack = 0;
    for (let step = 0; step < 20; step++) {
      const q0 = performance.now();
      for (const s of batch) if (p.projectDetailed(s)?.fellBack) fellBack++;
      steps.push(performance.now() - q0);
    }
    console.log(`projection, batch 8, ${label}: ${stats(steps)} per step (top-k fallbacks: ${fellBack}/${20 * 8})`);
  }
  const batch = Array.from({ length: 8 }, () => makeScores(8, 0.1));
  const lp: number[] = [];
  const sm: number[] = [];
  for (let step = 0; step < 5; step++) {
    const q0 = performance.now();
    for (const s of batch) p.logPartition(s);
    const q1 = performance.now();
    for (const s of batch) p.sample(s, rnd);
    lp.push(q1 - q0);
    sm.push(performance.now() - q1);
  }
  console.log(`sum-product (logPartition), batch 8: ${stats(lp)}; exact sampling, batch 8: ${stats(sm)}`);

  // 3. denoiser step for the ratio
  console.log(`calibration loop at the end: ${calibrate().toFixed(1)} ms; load average ${loadavg()[0]!.toFixed(1)}`);
  const bundle = opt('--bundle', existsSync('models/e2e-default/manifest.json') ? 'models/e2e-default' : undefined);
  if (bundle) {
    try {
      const ms = await denoiserStepMs(bundle, 8);
      if (ms !== null) console.log(`denoiser step (ONNX Runtime CPU, batch 8, ${bundle}): ${ms.toFixed(1)} ms`);
    } catch (e) {
      console.log(`denoiser timing skipped: ${(e as Error).message}`);
    }
  } else {
    console.log('no bundle found (models/e2e-default): compare with the ~40-80 ms denoiser step of the default bundle');
  }
}

void main();
