// Time ONNX graphs with onnxruntime-node (the engine's runtime, CPU provider), for products_bench.py.
// Usage: node training/dlm_train/ort_time.mjs <spec.json>   where spec.json is
//   {"threads": [1, 2], "seconds": 1.0, "graphs": [{"file": "g.onnx", "input": "A", "dims": [M, K]}]}
// Prints one JSON line: [{"file", "threads", "ms": median ms per run, "runs"}].
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = [];
for (const g of spec.graphs) {
  const n = g.dims.reduce((a, b) => a * b, 1);
  // activations of the scale the calibrated graph sees (|x| <= 1), never all zeros
  const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const feeds = { [g.input]: new ort.Tensor('float32', data, g.dims) };
  for (const threads of spec.threads) {
    const session = await ort.InferenceSession.create(g.file, {
      executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    });
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const times = [];
    const t0 = performance.now();
    while (performance.now() - t0 < spec.seconds * 1000 || times.length < 5) {
      const t = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    results.push({ file: g.file, threads, ms: times[times.length >> 1], runs: times.length });
    await session.release();
  }
}
console.log(JSON.stringify(results));
