/**
 * A micro model bundle for engine tests, written by the engine's own ONNX writer (no Python needed): a random
 * one-layer denoiser, a linear 3-class "sentiment" gradient graph, and a bigram fluency scorer. Small enough that
 * a full run takes milliseconds; real enough that every ONNX Runtime path of the engine is exercised.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLOAT, INT64, model, node, tensor, valueInfo } from '../../../src-main/engine/onnx-graph';
import { Mulberry32 } from '../../../src-main/engine/prng';

export const MICRO = { d: 8, hidden: 16, record: 12, text: 15, classes: ['negative', 'neutral', 'positive'], batchSizes: [1, 4] };
export const MICRO_N = MICRO.record + 1 + MICRO.text;

function randn(g: Mulberry32, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = g.normal() * scale;
  return a;
}

export interface MicroBundle {
  dir: string;
  V: number;
  emb: Float32Array;
  /** The sentiment classifier's weights [N*d, 3]. */
  clsW: Float32Array;
}

/** extraInputs: the denoiser also takes x_self_cond [B, N, d] and clean [B, N] (and the manifest lists them). */
export function writeMicroBundle(dir: string, opts: { id?: string; classifier?: boolean; scorer?: boolean; seed?: number; extraInputs?: boolean } = {}): MicroBundle {
  mkdirSync(join(dir, 'classifiers'), { recursive: true });
  const g = new Mulberry32(opts.seed ?? 7);
  const { d, hidden } = MICRO;
  const N = MICRO_N;
  const vocab = readFileSync(fileURLToPath(new URL('../../fixtures/tokenizer/vocab.json', import.meta.url)), 'utf8');
  writeFileSync(join(dir, 'vocab.json'), vocab);
  const V = (JSON.parse(vocab) as { tokens: string[] }).tokens.length;
  const emb = randn(g, V * d);
  writeFileSync(join(dir, 'embeddings.f32'), Buffer.from(emb.buffer));

  // x0 = tanh(x W1 + (t / 1000) wt [+ x_self_cond Wsc + clean wc]) W2 + 0.5 x
  const extra = !!opts.extraInputs;
  const den = model(
    [
      node('Reshape', ['t', 'SHAPE_B11'], ['T3']),
      node('Div', ['T3', 'THOUSAND'], ['TS']),
      node('Mul', ['TS', 'WT'], ['TW']),
      node('MatMul', ['x_t', 'W1'], ['XW']),
      node('Add', ['XW', 'TW'], [extra ? 'PRE0' : 'PRE']),
      ...(extra ? [
        node('MatMul', ['x_self_cond', 'WSC'], ['SCW']),
        node('Unsqueeze', ['clean', 'AX2'], ['C3']),
        node('Mul', ['C3', 'WC'], ['CW']),
        node('Add', ['PRE0', 'SCW'], ['PRE1']),
        node('Add', ['PRE1', 'CW'], ['PRE']),
      ] : []),
      node('Tanh', ['PRE'], ['H']),
      node('MatMul', ['H', 'W2'], ['HW']),
      node('Mul', ['x_t', 'HALF'], ['XH']),
      node('Add', ['HW', 'XH'], ['x0']),
    ],
    [
      tensor('SHAPE_B11', [3], BigInt64Array.of(-1n, 1n, 1n), INT64),
      tensor('THOUSAND', [], Float32Array.of(1000), FLOAT),
      tensor('HALF', [], Float32Array.of(0.5), FLOAT),
      tensor('WT', [hidden], randn(g, hidden), FLOAT),
      tensor('W1', [d, hidden], randn(g, d * hidden, 0.5), FLOAT),
      tensor('W2', [hidden, d], randn(g, hidden * d, 0.5), FLOAT),
      ...(extra ? [
        tensor('WSC', [d, hidden], randn(new Mulberry32(99), d * hidden, 0.5), FLOAT),
        tensor('WC', [hidden], randn(new Mulberry32(98), hidden), FLOAT),
        tensor('AX2', [1], BigInt64Array.of(2n), INT64),
      ] : []),
    ],
    [valueInfo('x_t', FLOAT, ['B', N, d]), valueInfo('t', FLOAT, ['B']), ...(extra ? [valueInfo('x_self_cond', FLOAT, ['B', N, d]), valueInfo('clean', FLOAT, ['B', N])] : [])],
    [valueInfo('x0', FLOAT, ['B', N, d])],
  );
  writeFileSync(join(dir, 'denoiser.onnx'), den);

  const clsW = randn(g, N * d * 3, 0.3);
  const clsWT = new Float32Array(3 * N * d);
  for (let i = 0; i < N * d; i++) for (let c = 0; c < 3; c++) clsWT[c * N * d + i] = clsW[i * 3 + c]!;
  const files = ['denoiser.onnx', 'embeddings.f32', 'vocab.json'];
  const classifiers: unknown[] = [];
  if (opts.classifier !== false) {
    const filesByB: Record<string, string> = {};
    for (const B of MICRO.batchSizes) {
      const f = `classifiers/sentiment.b${B}.onnx`;
      // logits = flat(x) W; logp = sum(target * log_softmax); grad = (target - softmax) W^T
      writeFileSync(join(dir, f), model(
        [
          node('Reshape', ['x_t', 'FLAT'], ['XF']),
          node('MatMul', ['XF', 'W'], ['LOGITS']),
          node('LogSoftmax', ['LOGITS'], ['LS'], [{ name: 'axis', i: 1 }]),
          node('Softmax', ['LOGITS'], ['P'], [{ name: 'axis', i: 1 }]),
          node('Mul', ['target', 'LS'], ['TL']),
          node('ReduceSum', ['TL', 'AX1'], ['logp'], [{ name: 'keepdims', i: 0 }]),
          node('Sub', ['target', 'P'], ['R']),
          node('MatMul', ['R', 'WT'], ['GF']),
          node('Reshape', ['GF', 'SHAPE_X'], ['grad']),
        ],
        [
          tensor('FLAT', [2], BigInt64Array.of(BigInt(B), BigInt(N * d)), INT64),
          tensor('SHAPE_X', [3], BigInt64Array.of(BigInt(B), BigInt(N), BigInt(d)), INT64),
          tensor('AX1', [1], BigInt64Array.of(1n), INT64),
          tensor('W', [N * d, 3], clsW, FLOAT),
          tensor('WT', [3, N * d], clsWT, FLOAT),
        ],
        [valueInfo('x_t', FLOAT, [B, N, d]), valueInfo('t', FLOAT, [B]), valueInfo('target', FLOAT, [B, 3])],
        [valueInfo('grad', FLOAT, [B, N, d]), valueInfo('logp', FLOAT, [B])],
      ));
      filesByB[String(B)] = f;
      files.push(f);
    }
    classifiers.push({
      control: 'sentiment', files: filesByB, batch_sizes: MICRO.batchSizes, segment: 'text', labels: MICRO.classes,
      inputs: { x_t: 'float32[B,N,d]', t: 'float32[B]', target: 'float32[B,3]' }, outputs: { grad: 'float32[B,N,d]', logp: 'float32[B]' },
    });
  }
  let scorer: unknown = null;
  if (opts.scorer !== false) {
    // bigram LM: logits[b, i] = EMB(tokens[b, i]) . S   (S [d, V])
    writeFileSync(join(dir, 'scorer.onnx'), model(
      [node('Gather', ['EMB', 'tokens'], ['TE']), node('MatMul', ['TE', 'S'], ['logits'])],
      [tensor('EMB', [V, d], emb, FLOAT), tensor('S', [d, V], randn(g, d * V, 0.2), FLOAT)],
      [valueInfo('tokens', INT64, ['B', 'L'])],
      [valueInfo('logits', FLOAT, ['B', 'L', V])],
    ));
    files.push('scorer.onnx');
    scorer = { file: 'scorer.onnx', inputs: { tokens: 'int64[B,L]' }, outputs: { logits: 'float32[B,L,V]' }, bos: 1, eos: 2 };
  }
  const manifest = {
    format: 'dlm-bundle/1', id: opts.id ?? 'micro', version: '0.0.1', kind: 'continuous-embedding-diffusion',
    name: 'micro test bundle (random weights)',
    tokenizer: { type: 'surface-pieces/1', vocab: 'vocab.json', size: V },
    canvas: {
      length: N,
      segments: [
        { name: 'record', start: 0, length: MICRO.record, format: 'json' },
        { name: 'sep', start: MICRO.record, length: 1 },
        { name: 'text', start: MICRO.record + 1, length: MICRO.text },
      ],
    },
    embedding: { file: 'embeddings.f32', dim: d, dtype: 'float32' },
    schedule: { type: 'sqrt', T: 2000, s: 0.0001 },
    denoiser: {
      file: 'denoiser.onnx',
      inputs: { x_t: 'float32[B,N,d]', t: 'float32[B]', ...(extra ? { x_self_cond: 'float32[B,N,d]', clean: 'float32[B,N]' } : {}) },
      outputs: { x0: 'float32[B,N,d]' },
    },
    record_schema: { fields: { name: ['Alimentum'], food: ['Italian', 'French'] } },
    files: files.map((f) => {
      const b = readFileSync(join(dir, f));
      return { path: f, sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length };
    }),
    training: { data: 'none (random weights)', license: 'MIT', steps: 0 },
    metrics: {},
    classifiers,
    scorer,
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return { dir, V, emb, clsW };
}
