/** Fluency: perplexity of each output's text under the bundle's autoregressive scorer (docs/ARCHITECTURE.md). */
import * as ort from 'onnxruntime-node';
import { END, PAD, SEP } from './tokenizer';

/**
 * texts: per output, the text-segment token ids up to (not including) <end>. Input `<sep> t1..tn <end> <pad>*`;
 * perplexity = exp(mean NLL of t1..tn and <end>). `L` is the scorer's sequence length (text segment + 1).
 */
export async function perplexities(session: ort.InferenceSession, texts: number[][], L: number, bos = SEP, eos = END): Promise<number[]> {
  const meta = session.inputMetadata?.[0] as ort.InferenceSession.TensorValueMetadata | undefined;
  const fixedB = meta?.isTensor && typeof meta.shape[0] === 'number' && meta.shape[0] > 0 ? meta.shape[0] : null;
  const fixedL = meta?.isTensor && typeof meta.shape[1] === 'number' && meta.shape[1] > 0 ? meta.shape[1] : L;
  const out: number[] = [];
  const B = fixedB ?? Math.max(1, texts.length);
  for (let start = 0; start < texts.length; start += B) {
    const chunk = texts.slice(start, start + B);
    const ids = new BigInt64Array(B * fixedL).fill(BigInt(PAD));
    chunk.forEach((toks, b) => {
      const seq = [bos, ...toks.slice(0, fixedL - 2), eos];
      seq.forEach((id, i) => (ids[b * fixedL + i] = BigInt(id)));
    });
    const res = await session.run({ [session.inputNames[0]!]: new ort.Tensor('int64', ids, [B, fixedL]) });
    const logits = res[session.outputNames[0]!]!;
    const V = logits.dims[2]!;
    const data = logits.data as Float32Array;
    chunk.forEach((toks, b) => {
      const seq = [bos, ...toks.slice(0, fixedL - 2), eos];
      let nll = 0;
      for (let i = 0; i + 1 < seq.length; i++) {
        const off = (b * fixedL + i) * V;
        let max = -Infinity;
        for (let v = 0; v < V; v++) max = Math.max(max, data[off + v]!);
        let sum = 0;
        for (let v = 0; v < V; v++) sum += Math.exp(data[off + v]! - max);
        nll -= data[off + seq[i + 1]!]! - max - Math.log(sum);
      }
      out.push(Math.exp(nll / (seq.length - 1)));
    });
    logits.dispose?.();
  }
  return out;
}
