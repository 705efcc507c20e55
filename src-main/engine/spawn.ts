/**
 * Start an engine worker thread: the emitted `engine-worker.js` beside this module in a build, else the TypeScript
 * source through tsx's loader registered inside the worker (hooks registered on one thread do not reach others).
 * The same file serves the engine worker and its helper thread (the second cpu lane) (`workerData.role`).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

export function startWorker(workerData: unknown): Worker {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const name of ['engine-worker.js', 'engine-worker.mjs']) {
    const f = join(here, name);
    if (existsSync(f)) return new Worker(f, { workerData });
  }
  let ts = join(here, 'worker.ts');
  if (!existsSync(ts)) ts = join(here, '..', '..', 'src-main', 'engine', 'worker.ts');
  const api = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(ts).href)}); });`;
  return new Worker(code, { eval: true, workerData });
}
