// Loads a bundle's denoiser.onnx in onnxruntime-node and compares its output with PyTorch's on given inputs.
// node training/dlm_train/onnx_check.mjs <bundle_dir> <case.json>
//   (case: {inputs: {name: {dims, data}} for x_t, t and any recipe-B inputs, x0: PyTorch's output, flat})
import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [bundle, casePath] = process.argv.slice(2);
const c = JSON.parse(readFileSync(casePath, 'utf8'));
const session = await ort.InferenceSession.create(join(bundle, 'denoiser.onnx'));
const feeds = {};
for (const [name, v] of Object.entries(c.inputs)) feeds[name] = new ort.Tensor('float32', Float32Array.from(v.data), v.dims);
const out = await session.run(feeds);
const x0 = out.x0.data;
let maxDiff = 0;
for (let i = 0; i < x0.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x0[i] - c.x0[i]));
console.log(JSON.stringify({ ok: x0.length === c.x0.length, dims: out.x0.dims, maxDiff, ort: ort.env.versions?.common ?? null }));
