/**
 * Engine worker thread: owns the ONNX Runtime sessions (session.run blocks its thread), runs one job at a time,
 * posts progress and outputs back. Cancellation comes through a shared Int32Array (the run id to stop), so it is
 * seen between steps even while this thread never yields to its event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serveAux } from './aux-worker';
import { Runtime } from './runtime';
import { CANCEL_ALL, type FromWorker, type ToWorker } from './protocol';

const port = parentPort;
if (!port) throw new Error('engine worker must run in a worker thread');
const role = (workerData as { role?: string }).role ?? 'engine';
if (role === 'aux') serveAux(port);
const cancel = role === 'engine' ? new Int32Array((workerData as { cancel: SharedArrayBuffer }).cancel) : new Int32Array(1);
const runtime = role === 'engine' ? new Runtime() : (null as unknown as Runtime);
let chain: Promise<unknown> = Promise.resolve();

function post(m: FromWorker): void {
  port!.postMessage(m);
}

function errorShape(e: unknown): { code: string; message: string; path?: string } {
  const err = e as { code?: unknown; message?: unknown; path?: unknown };
  return {
    code: typeof err?.code === 'string' ? err.code : 'INTERNAL',
    message: typeof err?.message === 'string' ? err.message : String(e),
    ...(typeof err?.path === 'string' ? { path: err.path } : {}),
  };
}

async function handle(m: ToWorker): Promise<void> {
  try {
    switch (m.type) {
      case 'probe':
        post({ type: 'result', id: m.id, ok: true, value: await runtime.probe(m.dir, m.pref) });
        break;
      case 'generate': {
        const value = await runtime.generate(m.job, {
          progress: (progress) => post({ type: 'progress', id: m.id, progress }),
          output: (output) => post({ type: 'output', id: m.id, output }),
          cancelled: () => {
            const c = Atomics.load(cancel, 0);
            return c === m.id || c === CANCEL_ALL;
          },
        });
        post({ type: 'result', id: m.id, ok: true, value });
        break;
      }
      case 'dispose':
        await runtime.dispose();
        post({ type: 'result', id: m.id, ok: true, value: null });
        break;
    }
  } catch (e) {
    post({ type: 'result', id: m.id, ok: false, error: errorShape(e) });
  }
}

if (role === 'engine') {
  port.on('message', (m: ToWorker) => {
    chain = chain.then(() => handle(m));
  });
}
