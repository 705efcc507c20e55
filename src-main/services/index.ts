/**
 * The one implementation of the service contract (src-main/api/contract.ts). Every transport (Electron IPC,
 * the CLI's in-process client, the WebSocket test transport) calls these handlers through the dispatcher.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { parseConstraintSet, type ConstraintSet } from '../constraints/set';
import type { DevicePreference, Engine } from '../engine/types';
import type { CallParsed, RunRecipe, Settings, Theme } from '../api/contract';
import { ApiError } from '../api/errors';
import { createDispatcher, EventHub, type Dispatcher, type Handlers } from '../api/dispatch';
import { openStore, type Store } from '../store';
import { EXPORT_EXTENSIONS, exportRuns, importRecipes, writeFileAtomic } from '../export';
import { RunManager } from './runs';
import { compileReport, posTagsReport } from './constraint-tools';

export type EngineFactory = (modelDirs: string[]) => Engine | Promise<Engine>;

export interface StudioServicesOptions {
  /** Folder holding the database (and exports, unless exportDir is given). Created if missing. */
  dataDir: string;
  /** Bundled model folders (searched first); the user's settings.modelFolders are appended. */
  modelDirs: string[];
  /**
   * The inference engine: an instance, a factory (re-invoked when the model folders change), or null when
   * this process has none (calls that need it answer ENGINE_UNAVAILABLE).
   */
  engine: Engine | EngineFactory | null;
  /** Why there is no engine, shown by app.info and in ENGINE_UNAVAILABLE errors. */
  engineUnavailableReason?: string;
  exportDir?: string;
  app?: { name: string; version: string };
  /** How long close() waits for a running generation to stop (default 10 s). */
  shutdownTimeoutMs?: number;
}

export interface StudioServices {
  readonly handlers: Handlers;
  readonly dispatcher: Dispatcher;
  readonly events: EventHub;
  readonly store: Store;
  readonly runs: RunManager;
  readonly options: StudioServicesOptions;
  close(): Promise<void>;
}

export const DEFAULT_SETTINGS: Settings = { defaultDevice: 'auto', modelFolders: [], theme: 'system' };

export function createStudioServices(options: StudioServicesOptions): StudioServices {
  mkdirSync(options.dataDir, { recursive: true });
  const store = openStore(options.dataDir);
  const interrupted = store.runs.failInterrupted();
  void interrupted;
  const events = new EventHub();
  const app = options.app ?? { name: 'DLM Studio', version: '0.0.0' };
  const exportDir = options.exportDir ?? join(options.dataDir, 'exports');

  const readSettings = (): Settings => ({
    defaultDevice: store.settings.get<DevicePreference>('defaultDevice') ?? DEFAULT_SETTINGS.defaultDevice,
    modelFolders: store.settings.get<string[]>('modelFolders') ?? DEFAULT_SETTINGS.modelFolders,
    theme: store.settings.get<Theme>('theme') ?? DEFAULT_SETTINGS.theme,
  });
  const modelDirs = () => [...options.modelDirs, ...readSettings().modelFolders.filter((d) => !options.modelDirs.includes(d))];

  // Engine lifecycle: a factory is (re)invoked lazily with the current model folders.
  let engine: Engine | null = typeof options.engine === 'function' || options.engine === null ? null : options.engine;
  let engineDirsKey = '';
  // engine creation/replacement is serialized, so concurrent calls never create two engines
  let engineLock: Promise<unknown> = Promise.resolve();
  const getEngine = (): Promise<Engine> => {
    const factory = options.engine;
    if (factory === null) {
      return Promise.reject(new ApiError('ENGINE_UNAVAILABLE', options.engineUnavailableReason ?? 'no inference engine is available in this process'));
    }
    if (typeof factory !== 'function') return Promise.resolve(factory);
    const task = engineLock.then(async () => {
      const dirs = modelDirs();
      const key = JSON.stringify(dirs);
      if (engine && key !== engineDirsKey && runs.activeRunId === null) {
        const old = engine;
        engine = null;
        await old.dispose().catch(() => undefined);
      }
      if (!engine) {
        engine = await factory(dirs);
        engineDirsKey = key;
      }
      return engine;
    });
    engineLock = task.catch(() => undefined);
    return task;
  };

  const runs = new RunManager(store, events, getEngine);

  const resolveSet = (input: CallParsed<'runs.start'>): { id: number | null; name: string | null; version: number | null; body: ConstraintSet } => {
    if (input.constraintSetId !== undefined) {
      const stored = store.constraintSets.getById(input.constraintSetId);
      if (!stored) throw new ApiError('NOT_FOUND', `constraint set ${input.constraintSetId} does not exist`, 'constraintSetId');
      return { id: stored.id, name: stored.name, version: stored.version, body: stored.body };
    }
    const body = input.constraintSet!;
    return { id: null, name: body.name ?? null, version: null, body };
  };

  const handlers: Handlers = {
    'app.info': () => ({
      name: app.name,
      version: app.version,
      dataDir: options.dataDir,
      databasePath: store.file,
      schemaVersion: store.schemaVersion,
      platform: process.platform,
      arch: process.arch,
      node: process.versions.node,
      engine: options.engine === null ? { available: false, reason: options.engineUnavailableReason ?? 'no inference engine in this process' } : { available: true },
      modelDirs: modelDirs(),
      exportDir,
    }),

    'settings.get': () => readSettings(),
    'settings.set': (input) => {
      store.settings.setMany(input);
      return readSettings();
    },

    'models.list': async () => (await getEngine()).listModels(),
    'devices.probe': async (input) => (await getEngine()).probeDevices(input.preference ?? readSettings().defaultDevice),

    'constraintSets.list': (input) => store.constraintSets.list(input.query ?? '', input.limit ?? 100, input.allVersions ?? false),
    'constraintSets.get': (input) => {
      const found = input.id !== undefined ? store.constraintSets.getById(input.id) : store.constraintSets.getByName(input.name!, input.version);
      if (!found) {
        const what = input.id !== undefined ? `id ${input.id}` : `"${input.name}"${input.version !== undefined ? ` version ${input.version}` : ''}`;
        throw new ApiError('NOT_FOUND', `constraint set ${what} does not exist`, input.id !== undefined ? 'id' : 'name');
      }
      return found;
    },
    'constraintSets.save': (input) => store.constraintSets.save(input.name, input.body),
    'constraintSets.delete': (input) => {
      const deleted = input.id !== undefined ? store.constraintSets.deleteById(input.id) : store.constraintSets.deleteByName(input.name!);
      if (deleted === 0) throw new ApiError('NOT_FOUND', `constraint set ${input.id !== undefined ? `id ${input.id}` : `"${input.name}"`} does not exist`, input.id !== undefined ? 'id' : 'name');
      return { deleted };
    },
    'constraintSets.validate': (input) => {
      try {
        const set = parseConstraintSet(input.body);
        return { valid: true, issues: [], set };
      } catch (err) {
        const issues = (err as { issues?: { path: string; message: string }[] }).issues;
        if (!issues) throw err;
        return { valid: false, issues };
      }
    },

    'constraints.compile': (input) => compileReport(input.body, input.model, async () => (await getEngine()).listModels()),
    'constraints.posTags': (input) => posTagsReport(input.sentence),

    'presets.list': (input) => store.presets.list(input.query ?? ''),
    'presets.save': (input) => store.presets.save(input.name, input.settings),
    'presets.delete': (input) => {
      const deleted = input.id !== undefined ? store.presets.deleteById(input.id) : store.presets.deleteByName(input.name!);
      if (deleted === 0) throw new ApiError('NOT_FOUND', `preset ${input.id !== undefined ? `id ${input.id}` : `"${input.name}"`} does not exist`, input.id !== undefined ? 'id' : 'name');
      return { deleted };
    },

    'runs.start': async (input) => {
      const set = resolveSet(input);
      const sampler = input.sampler ?? set.body.sampler;
      const engineInstance = await getEngine();
      const models = await engineInstance.listModels();
      const model = models.find((m) => m.id === input.model);
      if (!model) throw new ApiError('NOT_FOUND', `model "${input.model}" is not installed (known: ${models.map((m) => m.id).join(', ') || 'none'})`, 'model');
      if (model.error) throw new ApiError('BUNDLE_INVALID', `model "${model.id}" cannot be loaded: ${model.error}`, 'model');
      const recipe: RunRecipe = {
        format: 'dlm-studio-recipe/1',
        model: { id: model.id, version: model.version, hash: model.hash, ...(model.kind ? { kind: model.kind } : {}) },
        device: { requested: input.device ?? readSettings().defaultDevice, active: null },
        seed: sampler.seed,
        steps: sampler.steps,
        samples: sampler.samples,
        sampler,
        constraintSet: { ...set, body: { ...set.body, sampler } },
        app,
      };
      return runs.start(recipe);
    },
    'runs.cancel': (input) => runs.cancel(input.runId),
    'runs.list': (input) => store.runs.list(input),
    'runs.get': (input) => {
      const run = store.runs.get(input.runId);
      if (!run) throw new ApiError('NOT_FOUND', `run ${input.runId} does not exist`, 'runId');
      const outputs = input.outputs === false ? [] : store.runs.outputs(run.id, input.outputsOffset ?? 0, input.outputsLimit ?? 10000);
      return { run, outputs };
    },
    'runs.delete': (input) => {
      if (runs.isBusy(input.runId)) throw new ApiError('CONFLICT', `run ${input.runId} is queued or running; cancel it first`, 'runId');
      const deleted = store.runs.delete(input.runId);
      if (deleted === 0) throw new ApiError('NOT_FOUND', `run ${input.runId} does not exist`, 'runId');
      return { deleted };
    },

    'export.run': (input) => {
      const items = input.runIds.map((runId, i) => {
        const run = store.runs.get(runId);
        if (!run) throw new ApiError('NOT_FOUND', `run ${runId} does not exist`, `runIds[${i}]`);
        return { run, outputs: store.runs.outputs(runId, 0, 1_000_000, input.outputs) };
      });
      const content = exportRuns(items, input.format);
      const outputs = items.reduce((n, it) => n + it.outputs.length, 0);
      const base = { format: input.format, runs: items.length, outputs, bytes: Buffer.byteLength(content, 'utf8') };
      if (input.fileName === undefined) return { ...base, content };
      const ext = EXPORT_EXTENSIONS[input.format];
      const file = join(exportDir, input.fileName.endsWith(ext) ? input.fileName : input.fileName + ext);
      const written = writeFileAtomic(file, content);
      return { ...base, path: written.path };
    },
    'recipes.import': (input) => importRecipes(input.content, input.format ?? 'auto'),
  };

  const dispatcher = createDispatcher(handlers);
  let closed = false;
  return {
    handlers,
    dispatcher,
    events,
    store,
    runs,
    options,
    async close() {
      if (closed) return;
      closed = true;
      await runs.shutdown(options.shutdownTimeoutMs);
      if (engine) await engine.dispose().catch(() => undefined);
      store.close();
    },
  };
}
