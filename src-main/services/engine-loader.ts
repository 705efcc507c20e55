/**
 * How the app and the CLI obtain the real inference engine (src-main/engine/index.ts, `createEngine`).
 */
import type { EngineFactory } from './index';

export interface EngineChoice {
  engine: EngineFactory | null;
  reason?: string;
}

export function defaultEngine(): EngineChoice {
  return { engine: null, reason: 'the inference engine is not built into this version yet' };
}
