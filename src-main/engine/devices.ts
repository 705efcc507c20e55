/**
 * Execution providers: probe each by creating a session on the real denoiser and running one forward pass,
 * catch, fall back, and report which one runs and why the others were skipped. Runs inside the engine worker.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { DevicePreference, DeviceProbe, DeviceReport } from './types';

export type Provider = Exclude<DevicePreference, 'auto'>;

/** Order `auto` tries, best first. */
export const AUTO_ORDER: Provider[] = ['cuda', 'dml', 'coreml', 'webgpu', 'cpu'];

const PLATFORM_OF: Partial<Record<Provider, NodeJS.Platform>> = { dml: 'win32', coreml: 'darwin' };

export function bundledProviders(): Map<string, boolean> {
  const m = new Map<string, boolean>();
  try {
    for (const b of ort.listSupportedBackends()) m.set(b.name, b.bundled);
  } catch {
    m.set('cpu', true);
  }
  return m;
}

export function sessionOptions(provider: Provider): ort.InferenceSession.SessionOptions {
  const threads = Number(process.env.DLM_ENGINE_THREADS) || undefined;
  const spin = process.env.DLM_ENGINE_SPIN ?? '0';
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    interOpNumThreads: 1,
    ...(threads ? { intraOpNumThreads: threads } : {}),
    executionMode: 'sequential',
    // several sessions (denoiser, classifiers, rounding) run in turn: idle pools must not spin on the cores the
    // next session needs
    extra: { session: { intra_op: { allow_spinning: spin } } },
  };
}

/** Whether scripts/enable-cuda-provider.sh (onnxruntime-node's installer) put the CUDA provider library in place. */
export function cudaProviderInstalled(): boolean {
  try {
    const main = createRequire(import.meta.url).resolve('onnxruntime-node');
    return existsSync(join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

/** Classifier graphs are small: one intra-op thread each, and two of them run at once on two threads. */
export function auxSessionOptions(provider: Provider): ort.InferenceSession.SessionOptions {
  return { ...sessionOptions(provider), intraOpNumThreads: Number(process.env.DLM_GUIDANCE_THREADS) || 1 };
}

/**
 * The denoiser on one of the two cpu lanes (the engine worker and the helper thread each take half the batch):
 * half the cores each. On two cores that is one thread per lane, which beats one session with a two-thread pool
 * (docs/engine.md): the pool's wake-ups cost more than the small operators they split.
 */
export function laneThreads(): number {
  const total = Number(process.env.DLM_ENGINE_THREADS) || cpus().length;
  return Math.max(1, Math.floor(total / 2));
}

/**
 * Rows (samples) per denoiser call on cpu: a lane's share of a large batch runs in calls of this many rows, whose
 * activations stay in the core's cache (int8, one thread: 3.0 ms per sample at 4 rows per call, 4.5 at 32;
 * docs/engine.md, "A faster step"). DLM_DENOISER_ROWS overrides it (0: the whole share in one call).
 */
export function denoiserRows(): number {
  const v = process.env.DLM_DENOISER_ROWS;
  return v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Math.max(0, Math.floor(Number(v))) : 4;
}

export function laneSessionOptions(provider: Provider, threads = laneThreads()): ort.InferenceSession.SessionOptions {
  return { ...sessionOptions(provider), intraOpNumThreads: threads };
}

/** Nearest-embedding rounding (one Gemm + ArgMin over the vocabulary): up to 4 threads, no spinning. */
export function rounderSessionOptions(): ort.InferenceSession.SessionOptions {
  return { ...sessionOptions('cpu'), intraOpNumThreads: Math.min(4, Number(process.env.DLM_ENGINE_THREADS) || cpus().length) };
}

/** Why a provider cannot be tried at all here, or null if it can. */
export function unavailableReason(p: Provider, bundled: Map<string, boolean>): string | null {
  const plat = PLATFORM_OF[p];
  if (plat && process.platform !== plat) return `${p} is only available on ${plat === 'win32' ? 'Windows' : 'macOS'}`;
  if (!bundled.has(p)) return `onnxruntime-node ${ort.env.versions.node ?? ''} has no ${p} provider for ${process.platform}/${process.arch}`.replace('  ', ' ');
  if (p === 'cuda' && bundled.get(p) === false && !cudaProviderInstalled()) {
    return 'the CUDA provider is not installed (Linux: run scripts/enable-cuda-provider.sh on a machine with internet, CUDA 12 and cuDNN 9)';
  }
  return null;
}

/**
 * Whether the Vulkan loader is installed (Linux). WebGPU runs on Vulkan there (Dawn), so without libvulkan.so.1 no
 * adapter can exist; `auto` then skips the webgpu probe, which costs seconds to fail. A named webgpu is still tried.
 */
export function vulkanLoaderPresent(env: NodeJS.ProcessEnv = process.env, cache = '/etc/ld.so.cache'): boolean {
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/lib64', '/lib', '/usr/local/lib'];
  if (dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')))) return true;
  try {
    return readFileSync(cache).includes('libvulkan.so.1');
  } catch {
    return false;
  }
}

/** Why `auto` does not try a provider that is there (its runtime is missing), or null. */
function autoSkipReason(p: Provider): string | null {
  if (p === 'webgpu' && process.platform === 'linux' && !vulkanLoaderPresent()) {
    return 'no Vulkan loader (libvulkan.so.1) here: WebGPU on Linux needs a GPU with a Vulkan driver and libvulkan1 (not probed; --device webgpu tries anyway)';
  }
  return null;
}

export type ProbeFn = (p: Provider) => Promise<void>;

/**
 * Pick the provider for a preference. `auto` tries AUTO_ORDER; a named provider is tried first and falls back to
 * cpu. `probe` must throw when the provider cannot run the denoiser (a BUNDLE_INVALID error is rethrown at once).
 */
export async function chooseProvider(pref: DevicePreference, probe: ProbeFn, bundled = bundledProviders()): Promise<DeviceReport> {
  const order: Provider[] = pref === 'auto' ? AUTO_ORDER : pref === 'cpu' ? ['cpu'] : [pref, 'cpu'];
  const probes: DeviceProbe[] = [];
  let active: Provider | null = null;
  for (const p of order) {
    const reason = unavailableReason(p, bundled);
    if (reason) {
      probes.push({ provider: p, bundled: false, usable: false, reason });
      continue;
    }
    const skip = pref === 'auto' ? autoSkipReason(p) : null;
    if (skip) {
      probes.push({ provider: p, bundled: true, usable: false, reason: skip });
      continue;
    }
    try {
      await probe(p);
      probes.push({ provider: p, bundled: true, usable: true });
      active = p;
      break;
    } catch (e) {
      // a bundle the engine refuses is refused on every provider: say so instead of trying the next one
      if ((e as { code?: unknown })?.code === 'BUNDLE_INVALID') throw e;
      probes.push({ provider: p, bundled: true, usable: false, reason: cleanReason(e) });
    }
  }
  if (!active) throw new Error(`no execution provider could run the denoiser: ${probes.map((p) => `${p.provider}: ${p.reason}`).join('; ')}`);
  return { requested: pref, active, probes };
}

/** First line of an ORT error without its source location and assertion text. */
export function cleanReason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  let line = msg.split('\n').find((l) => l.trim())?.trim() ?? 'failed';
  line = line.replace(/^\/\S+:\d+\s+/, '').replace(/^.*?\bwas false\.\s*/, '');
  if (/WebGPU adapter/i.test(line) && process.platform === 'linux') line += ' (WebGPU on Linux needs a GPU with a Vulkan driver and the Vulkan loader, libvulkan1)';
  return line.slice(0, 400);
}

export function describeReport(r: DeviceReport): string {
  const skipped = r.probes.filter((p) => !p.usable).map((p) => `${p.provider} skipped: ${p.reason}`);
  return [`device ${r.active} (requested ${r.requested})`, ...skipped].join('; ');
}
