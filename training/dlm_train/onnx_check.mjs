// Loads a bundle's denoiser.onnx in onnxruntime-node and compares its output with PyTorch's on given inputs.
// node training/dlm_train/onnx_check.mjs <bundle_dir> <case.json>   (case: {batch, N, d, x_t, t, x0})
import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [bundle, casePath] = process.argv.slice(2);
const c = JSON.parse(readFileSync(casePath, 'utf8'));
const session = await ort.InferenceSession.create(join(bundle, 'denoiser.onnx'));
const feeds = {
  x_t: new ort.Tensor('float32', Float32Array.from(c.x_t), [c.batch, c.N, c.d]),
  t: new ort.Tensor('float32', Float32Array.from(c.t), [c.batch]),
};
const out = await session.run(feeds);
const x0 = out.x0.data;
let maxDiff = 0;
for (let i = 0; i < x0.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x0[i] - c.x0[i]));
console.log(JSON.stringify({ ok: x0.length === c.x0.length, dims: out.x0.dims, maxDiff, ort: ort.env.versions?.common ?? null }));
