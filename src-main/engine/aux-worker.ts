/**
 * The helper thread: the engine's second lane on the cpu provider. It runs half of each batch through the denoiser
 * and the guidance gradient graphs while the engine worker runs the other half, so two cores work without onnxruntime
 * thread pools (whose wake-ups cost more than these small graphs' operators). Sessions use one intra-op thread each.
 */
import type { MessagePort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { laneSessionOptions, type Provider } from './devices';
import { guideStep, type JointTargets, jointTermFromTargets } from './guidance';
import { type Feeds, type Outputs, runRows } from './session-run';

/** One guidance step (K Adagrad iterations through the joint graph) on this lane's share of the batch. */
export interface AuxGuideRequest {
  kind: 'guide';
  id: number;
  /** Joint gradient graph per exported batch size. */
  files: Record<string, string>;
  targets: JointTargets;
  x: Float32Array;
  mu: Float32Array;
  sigma: number;
  tTrain: number;
  B: number;
  N: number;
  d: number;
  heldPos: number[];
  iterations: number;
  stepSize: number;
  lambda: number;
}

export interface AuxRequest {
  kind?: 'run';
  id: number;
  file: string;
  provider: Provider;
  feeds: Feeds;
  /** Rows (samples, along the leading batch dimension) per call, outputs stacked (session-run.ts runRows; 0 or absent: all). */
  rows?: number;
  /** Intra-op threads of the session (default 1). */
  threads?: number;
}

export type AuxReply =
  | { id: number; ok: true; outputs: Outputs }
  | { id: number; ok: false; message: string };

export function serveAux(port: MessagePort): void {
  const sessions = new Map<string, Promise<ort.InferenceSession>>();
  const session = (file: string, provider: Provider, threads: number) => {
    const key = `${provider}|${threads}|${file}`;
    let s = sessions.get(key);
    if (!s) {
      s = ort.InferenceSession.create(file, laneSessionOptions(provider, threads));
      sessions.set(key, s);
    }
    return s;
  };
  let chain: Promise<unknown> = Promise.resolve();
  port.on('message', (m: AuxRequest | AuxGuideRequest) => {
    chain = chain.then(async () => {
      if (m.kind === 'guide') {
        try {
          const sessionsBySize = new Map<number, ort.InferenceSession>();
          for (const [bs, file] of Object.entries(m.files)) sessionsBySize.set(Number(bs), await session(file, 'cpu', 1));
          const term = jointTermFromTargets(sessionsBySize, m.targets, m.N, m.d);
          await guideStep(m.x, m.mu, m.sigma, m.tTrain, m.B, m.N, m.d, m.heldPos, { terms: [term], iterations: m.iterations, stepSize: m.stepSize, lambda: m.lambda, offLastSteps: 0 });
          port.postMessage({ id: m.id, ok: true, outputs: { x: { data: m.x, dims: [m.B, m.N, m.d] } } } satisfies AuxReply, [m.x.buffer as ArrayBuffer]);
        } catch (e) {
          port.postMessage({ id: m.id, ok: false, message: (e as Error).message } satisfies AuxReply);
        }
        return;
      }
      try {
        const s = await session(m.file, m.provider, m.threads ?? 1);
        const out = await runRows(s, m.feeds, m.rows ?? 0);
        const outputs: Outputs = {};
        const transfer: ArrayBuffer[] = [];
        for (const [k, v] of Object.entries(out)) {
          const data = v.data.slice();
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
