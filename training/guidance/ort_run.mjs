// Run an ONNX graph with onnxruntime-node (CPU) on raw tensors, for the Python export checks.
// Usage: node training/guidance/ort_run.mjs <dir>   where <dir>/spec.json is
//   {"model": "path.onnx", "inputs": [{"name", "dtype": "float32"|"int64", "dims": [...], "file": "x.bin"}]}
// Writes <dir>/out_<name>.bin (raw little-endian) and <dir>/outputs.json ({name: {dtype, dims, file}}).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';

const dir = process.argv[2];
if (!dir) throw new Error('usage: ort_run.mjs <dir with spec.json>');
const spec = JSON.parse(readFileSync(join(dir, 'spec.json'), 'utf8'));
const feeds = {};
for (const inp of spec.inputs) {
  const buf = readFileSync(join(dir, inp.file));
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const data = inp.dtype === 'int64' ? new BigInt64Array(ab) : new Float32Array(ab);
  feeds[inp.name] = new ort.Tensor(inp.dtype, data, inp.dims);
}
const session = await ort.InferenceSession.create(resolve(spec.model), { executionProviders: ['cpu'] });
const out = await session.run(feeds);
const meta = {};
for (const [name, t] of Object.entries(out)) {
  const file = `out_${name}.bin`;
  writeFileSync(join(dir, file), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  meta[name] = { dtype: t.type, dims: t.dims, file };
}
writeFileSync(join(dir, 'outputs.json'), JSON.stringify(meta));
