/**
 * Running an onnxruntime session on plain tensors ({ data, dims }), the form that crosses between the engine worker
 * and its helper thread: the denoiser lanes, the helper thread and the guidance graphs all run sessions this way.
 */
import * as ort from 'onnxruntime-node';

export type Feeds = Record<string, { type: 'float32'; data: Float32Array; dims: number[] }>;
export type Outputs = Record<string, { data: Float32Array; dims: number[] }>;

/**
 * Run a session on feeds whose first dimension is the batch, `rows` samples per call (0: all in one call).
 * One call per sample: the int8 denoiser (activations: dynamic) quantizes its activations with one range per call,
 * so this keeps every sample independent of the others in its batch, at about 15% more time than one batched call
 * (measured at batch 4). A few rows per call: the denoiser's activations stay in the core's cache (docs/engine.md,
 * "A faster step": 4 rows per call; 32 rows of a lane take about 96 instead of 144 ms with int8).
 */
export async function runRows(s: ort.InferenceSession, feeds: Feeds, rows: number): Promise<Outputs> {
  const run = async (f: Feeds): Promise<Outputs> => {
    const t: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(f)) t[k] = new ort.Tensor(v.type, v.data, v.dims);
    const out = await s.run(t);
    const o: Outputs = {};
    for (const [k, v] of Object.entries(out)) o[k] = { data: v.data as Float32Array, dims: [...v.dims] };
    return o;
  };
  const B = Object.values(feeds)[0]?.dims[0] ?? 1;
  const per = rows > 0 ? Math.floor(rows) : B;
  if (per >= B) return run(feeds);
  const parts: Outputs[] = [];
  for (let b = 0; b < B; b += per) {
    const n = Math.min(per, B - b);
    const f: Feeds = {};
    for (const [k, v] of Object.entries(feeds)) {
      const row = v.data.length / v.dims[0]!;
      f[k] = { type: v.type, data: v.data.subarray(b * row, (b + n) * row), dims: [n, ...v.dims.slice(1)] };
    }
    parts.push(await run(f));
  }
  const out: Outputs = {};
  for (const k of Object.keys(parts[0]!)) {
    const first = parts[0]![k]!;
    const row = first.data.length / first.dims[0]!;
    const data = new Float32Array(row * B);
    parts.forEach((p, i) => data.set(p[k]!.data, i * per * row));
    out[k] = { data, dims: [B, ...first.dims.slice(1)] };
  }
  return out;
}
