/**
 * The guidance helper thread: runs classifier gradient graphs so that two active classifiers are evaluated at the
 * same time on two cores (the engine worker runs one, this thread another). Sessions use one intra-op thread each.
 */
import type { MessagePort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { auxSessionOptions, type Provider } from './devices';

export interface AuxRequest {
  id: number;
  file: string;
  provider: Provider;
  feeds: Record<string, { type: 'float32'; data: Float32Array; dims: number[] }>;
}
export type AuxReply =
  | { id: number; ok: true; outputs: Record<string, { data: Float32Array; dims: number[] }> }
  | { id: number; ok: false; message: string };

export function serveAux(port: MessagePort): void {
  const sessions = new Map<string, Promise<ort.InferenceSession>>();
  const session = (file: string, provider: Provider) => {
    const key = `${provider}|${file}`;
    let s = sessions.get(key);
    if (!s) {
      s = ort.InferenceSession.create(file, auxSessionOptions(provider));
      sessions.set(key, s);
    }
    return s;
  };
  let chain: Promise<unknown> = Promise.resolve();
  port.on('message', (m: AuxRequest) => {
    chain = chain.then(async () => {
      try {
        const s = await session(m.file, m.provider);
        const feeds: Record<string, ort.Tensor> = {};
        for (const [k, v] of Object.entries(m.feeds)) feeds[k] = new ort.Tensor(v.type, v.data, v.dims);
        const out = await s.run(feeds);
        const outputs: Record<string, { data: Float32Array; dims: number[] }> = {};
        const transfer: ArrayBuffer[] = [];
        for (const [k, v] of Object.entries(out)) {
          const data = (v.data as Float32Array).slice();
          outputs[k] = { data, dims: [...v.dims] };
          transfer.push(data.buffer as ArrayBuffer);
        }
        port.postMessage({ id: m.id, ok: true, outputs } satisfies AuxReply, transfer);
      } catch (e) {
        port.postMessage({ id: m.id, ok: false, message: (e as Error).message } satisfies AuxReply);
      }
    });
  });
}
