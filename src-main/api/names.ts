/**
 * Method and event names of the contract, without zod, for the preload script (which must stay tiny).
 * contract.ts checks at compile time that these lists match its maps exactly.
 */
export const CALL_NAME_LIST = [
  'app.info',
  'settings.get',
  'settings.set',
  'models.list',
  'devices.probe',
  'constraintSets.list',
  'constraintSets.get',
  'constraintSets.save',
  'constraintSets.delete',
  'constraintSets.validate',
  'constraints.compile',
  'constraints.posTags',
  'presets.list',
  'presets.save',
  'presets.delete',
  'runs.start',
  'runs.cancel',
  'runs.list',
  'runs.get',
  'runs.delete',
  'export.run',
  'recipes.import',
] as const;

export const EVENT_NAME_LIST = ['run.queued', 'run.started', 'run.progress', 'run.output', 'run.finished'] as const;

/** IPC channel names (Electron transport). */
export const IPC_CALL_CHANNEL = 'dlm:call';
export const IPC_EVENT_CHANNEL = 'dlm:event';
