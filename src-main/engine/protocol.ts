/** Messages between the engine (main thread) and its worker. */
import type { GenerateJob } from './runtime';
import type { DevicePreference, GeneratedOutput, StepProgress } from './types';

export type ToWorker =
  | { type: 'probe'; id: number; dir: string; pref: DevicePreference }
  | { type: 'generate'; id: number; job: GenerateJob }
  | { type: 'dispose'; id: number };

export type FromWorker =
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: { code: string; message: string; path?: string } }
  | { type: 'progress'; id: number; progress: StepProgress }
  | { type: 'output'; id: number; output: GeneratedOutput };

/** Written into the shared cancel slot when the engine is disposed: every run stops at its next step. */
export const CANCEL_ALL = -1;
