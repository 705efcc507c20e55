/**
 * How the app and the CLI obtain the real inference engine (src-main/engine/index.ts). The engine is created
 * lazily by the services, with the bundled model folder plus the user's model folders.
 */
import { createEngine } from '../engine/index';
import type { EngineFactory } from './index';

export interface EngineChoice {
  engine: EngineFactory | null;
  reason?: string;
}

export function defaultEngine(): EngineChoice {
  return { engine: (modelDirs) => createEngine({ modelDirs }) };
}
