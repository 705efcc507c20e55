/**
 * The single, transport-neutral service contract of DLM Studio.
 *
 * `calls` maps each method name to its zod input schema and (through a phantom) its result type;
 * `StudioEvents` is the typed map of events the services push. Electron IPC, the WebSocket test
 * transport and the in-process CLI client all carry exactly this contract. Browser-safe: no Node imports.
 */
import { z } from 'zod';
import { parseConstraintSet, samplerSettings, type ConstraintSet, type ConstraintSetInput, type SamplerSettings, type UposTag } from '../constraints/set';
import {
  DEVICE_PREFERENCES,
  type DenoiserPrecision,
  type DevicePreference,
  type DeviceReport,
  type GeneratedOutput,
  type ModelSummary,
  type RunSummary,
  type RunTimings,
  type StepProgress,
} from '../engine/types';
import { CALL_NAME_LIST, EVENT_NAME_LIST } from './names';

// ---------------------------------------------------------------------------------------------
// Shared value types (results)
// ---------------------------------------------------------------------------------------------

export type Theme = 'dark' | 'light' | 'system';
export const THEMES: Theme[] = ['dark', 'light', 'system'];

export interface Settings {
  defaultDevice: DevicePreference;
  /** Extra folders searched for model bundles (absolute paths), after the bundled models/ folder. */
  modelFolders: string[];
  theme: Theme;
}

export interface AppInfo {
  name: string;
  version: string;
  dataDir: string;
  databasePath: string;
  schemaVersion: number;
  platform: string;
  arch: string;
  node: string;
  /** Whether an inference engine is available in this process, and why not if it is not. */
  engine: { available: boolean; reason?: string };
  modelDirs: string[];
  exportDir: string;
}

export interface ConstraintSetSummary {
  id: number;
  name: string;
  /** Latest version (or the row's version when listing all versions). */
  version: number;
  versions: number;
  description: string;
  constraintCount: number;
  kinds: string[];
  createdAt: string;
}

export interface StoredConstraintSet {
  id: number;
  name: string;
  version: number;
  description: string;
  body: ConstraintSet;
  createdAt: string;
}

export interface ValidationResult {
  valid: boolean;
  issues: { path: string; message: string }[];
  /** The normalised set (defaults filled in) when valid. */
  set?: ConstraintSet;
}

export interface Preset {
  id: number;
  name: string;
  settings: SamplerSettings;
  createdAt: string;
  updatedAt: string;
}

export type RunStatus = 'queued' | 'running' | 'completed' | 'cancelled' | 'failed';
export const RUN_STATUSES: RunStatus[] = ['queued', 'running', 'completed', 'cancelled', 'failed'];

/** Everything needed to reproduce a run; carried by the run row and by every export. */
export interface RunRecipe {
  format: 'dlm-studio-recipe/1';
  /** kind: the bundle's model family (manifest kind), recorded since the masked family arrived; absent in older recipes. */
  model: { id: string; version: string | null; hash: string | null; kind?: string };
  /** precision: the denoiser weights that ran (fp32 or int8), once the run has started. */
  device: { requested: DevicePreference; active: string | null; precision?: DenoiserPrecision | null };
  seed: number;
  steps: number;
  samples: number;
  sampler: SamplerSettings;
  constraintSet: { id: number | null; name: string | null; version: number | null; body: ConstraintSet };
  app: { name: string; version: string };
}

export interface RunRecord {
  id: number;
  status: RunStatus;
  recipe: RunRecipe;
  timings: RunTimings | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  outputCount: number;
}

export interface StoredOutput extends GeneratedOutput {
  runId: number;
  createdAt: string;
}

export interface RunDetail {
  run: RunRecord;
  outputs: StoredOutput[];
}

export type ExportFormat = 'jsonl' | 'csv' | 'markdown';
export const EXPORT_FORMATS: ExportFormat[] = ['jsonl', 'csv', 'markdown'];

export interface ExportResult {
  format: ExportFormat;
  runs: number;
  outputs: number;
  bytes: number;
  /** Set when the export was returned inline. */
  content?: string;
  /** Set when the export was written to a file (atomically) in the export folder. */
  path?: string;
}

export interface ImportedRecipe {
  recipe: RunRecipe;
  /** The id of the run the file came from (in the studio that exported it). */
  sourceRunId: number | null;
  outputs: number;
}

export interface RecipeImportResult {
  format: ExportFormat;
  recipes: ImportedRecipe[];
}

/** The compiler's verdict on one constraint (see src-main/constraints/compiler, `Verdict`). */
export interface CompileVerdict {
  index: number;
  kind: string;
  /** hard: enforced by projection; held: tokens held; soft: a guidance target; unchecked: no model to compile against. */
  status: 'hard' | 'held' | 'soft' | 'disabled' | 'error' | 'unchecked';
  detail?: string;
  /** A soft constraint the model's family cannot steer (e.g. "not served by the masked family yet"): scored only. */
  unserved?: boolean;
  /** Why the compiler refuses it: e.g. code UNSUPPORTED_KEYWORD with the keyword and its JSON pointer. */
  error?: { code: string; message: string; keyword?: string; pointer?: string };
}

export interface CompileReport {
  /** The model whose vocabulary and canvas the set was compiled against (null: schema-level checks only). */
  model: string | null;
  /** Why the full compile was not possible, when model is null. */
  note?: string;
  compileMs: number;
  verdicts: CompileVerdict[];
}

export interface PosTagsResult {
  /** One UPOS tag per word of the sentence, as the POS evaluator tags it. */
  tokens: { text: string; tag: UposTag }[];
}

// ---------------------------------------------------------------------------------------------
// Input schemas
// ---------------------------------------------------------------------------------------------

const empty = z.object({}).strict();
const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const name = z.string().trim().min(1, 'name must not be empty').max(200);
const query = z.string().max(200);
const device = z.enum(DEVICE_PREFERENCES as [DevicePreference, ...DevicePreference[]]);
const absolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => /^(\/|[A-Za-z]:[\\/]|\\\\)/.test(p), { message: 'must be an absolute path' })
  .refine((p) => !p.includes('\0'), { message: 'must not contain NUL' });

/**
 * A constraint-set body: validated by `parseConstraintSet` (the one schema of the file format), with each
 * issue reported at its own path below the field (e.g. `body.constraints[1].kind`).
 */
export const constraintSetBody = z.custom<ConstraintSetInput>((v) => v !== undefined, { message: 'required' }).transform((value, ctx): ConstraintSet => {
  try {
    return parseConstraintSet(value);
  } catch (err) {
    const issues = (err as { issues?: { path: string; message: string }[] }).issues ?? [{ path: '(root)', message: String(err) }];
    for (const issue of issues) {
      ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path === '(root)' ? [] : [issue.path] });
    }
    return z.NEVER;
  }
});

const byIdOrName = z
  .object({ id: id.optional(), name: name.optional() })
  .strict()
  .refine((v) => (v.id === undefined) !== (v.name === undefined), { message: 'give exactly one of id or name' });

const samplerInput = z.custom<z.input<typeof samplerSettings>>((v) => v !== undefined, { message: 'required' }).pipe(samplerSettings);

export const calls = {
  'app.info': call<AppInfo>()(empty),

  'settings.get': call<Settings>()(empty),
  'settings.set': call<Settings>()(
    z.object({ defaultDevice: device.optional(), modelFolders: z.array(absolutePath).max(16).optional(), theme: z.enum(THEMES as [Theme, ...Theme[]]).optional() }).strict(),
  ),

  'models.list': call<ModelSummary[]>()(empty),
  'devices.probe': call<DeviceReport>()(z.object({ preference: device.optional() }).strict()),

  'constraintSets.list': call<ConstraintSetSummary[]>()(
    z.object({ query: query.optional(), limit: z.number().int().min(1).max(1000).optional(), allVersions: z.boolean().optional() }).strict(),
  ),
  'constraintSets.get': call<StoredConstraintSet>()(
    z
      .object({ id: id.optional(), name: name.optional(), version: z.number().int().positive().optional() })
      .strict()
      .refine((v) => (v.id === undefined) !== (v.name === undefined), { message: 'give exactly one of id or name' })
      .refine((v) => v.version === undefined || v.name !== undefined, { message: 'version needs a name', path: ['version'] }),
  ),
  'constraintSets.save': call<StoredConstraintSet>()(z.object({ name, body: constraintSetBody }).strict()),
  'constraintSets.delete': call<{ deleted: number }>()(byIdOrName),
  'constraintSets.validate': call<ValidationResult>()(z.object({ body: z.unknown().refine((v) => v !== undefined, { message: 'required' }) }).strict()),

  /** Compile a set against a model (default: the first loadable one) and return the compiler's verdict per constraint. */
  'constraints.compile': call<CompileReport>()(z.object({ body: constraintSetBody, model: z.string().min(1).max(200).optional() }).strict()),
  /** UPOS tags of an example sentence (the start of a POS template). */
  'constraints.posTags': call<PosTagsResult>()(z.object({ sentence: z.string().trim().min(1, 'sentence must not be empty').max(2000) }).strict()),

  'presets.list': call<Preset[]>()(z.object({ query: query.optional() }).strict()),
  'presets.save': call<Preset>()(z.object({ name, settings: samplerInput }).strict()),
  'presets.delete': call<{ deleted: number }>()(byIdOrName),

  'runs.start': call<{ runId: number; status: RunStatus; queuePosition: number }>()(
    z
      .object({
        model: z.string().min(1).max(200),
        device: device.optional(),
        constraintSetId: id.optional(),
        constraintSet: constraintSetBody.optional(),
        /** Replaces the set's own sampler settings when given. */
        sampler: samplerInput.optional(),
      })
      .strict()
      .refine((v) => (v.constraintSetId === undefined) !== (v.constraintSet === undefined), { message: 'give exactly one of constraintSetId or constraintSet' }),
  ),
  'runs.cancel': call<{ runId: number; status: RunStatus }>()(z.object({ runId: id }).strict()),
  'runs.list': call<RunRecord[]>()(
    z
      .object({
        query: query.optional(),
        status: z.enum(RUN_STATUSES as [RunStatus, ...RunStatus[]]).optional(),
        limit: z.number().int().min(1).max(1000).optional(),
        offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
      })
      .strict(),
  ),
  'runs.get': call<RunDetail>()(
    z
      .object({ runId: id, outputs: z.boolean().optional(), outputsOffset: z.number().int().min(0).optional(), outputsLimit: z.number().int().min(1).max(10000).optional() })
      .strict(),
  ),
  'runs.delete': call<{ deleted: number }>()(z.object({ runId: id }).strict()),

  'export.run': call<ExportResult>()(
    z
      .object({
        runIds: z.array(id).min(1).max(100),
        format: z.enum(EXPORT_FORMATS as [ExportFormat, ...ExportFormat[]]),
        /** Only these output indices (per run); all when omitted. */
        outputs: z.array(z.number().int().min(0)).max(100000).optional(),
        /** Write the export to this file name inside the export folder (never an arbitrary path); inline when omitted. */
        fileName: z
          .string()
          .min(1)
          .max(200)
          .regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, 'must be a plain file name (letters, digits, space, . _ -)')
          .refine((f) => !f.includes('..'), { message: 'must not contain ".."' })
          .optional(),
      })
      .strict(),
  ),
  'recipes.import': call<RecipeImportResult>()(
    z.object({ content: z.string().min(1).max(64 * 1024 * 1024), format: z.enum(['auto', ...EXPORT_FORMATS] as ['auto', ...ExportFormat[]]).optional() }).strict(),
  ),
} as const;

/** Phantom-typed call descriptor: the schema is real, the result type rides along in the type only. */
export interface CallSpec<S extends z.ZodType, R> {
  input: S;
  readonly __result?: R;
}
function call<R>() {
  return <S extends z.ZodType>(input: S): CallSpec<S, R> => ({ input });
}

export type Calls = typeof calls;
export type CallName = keyof Calls;
export const CALL_NAMES = Object.keys(calls) as CallName[];
// Compile-time check that names.ts (used by the zod-free preload) lists exactly these calls.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const callNamesMatch: Same<CallName, (typeof CALL_NAME_LIST)[number]> = true;
void callNamesMatch;
/** What a caller passes (defaults optional). */
export type CallInput<K extends CallName> = z.input<Calls[K]['input']>;
/** What the implementation receives after validation (defaults applied). */
export type CallParsed<K extends CallName> = z.output<Calls[K]['input']>;
export type CallResult<K extends CallName> = NonNullable<Calls[K]['__result']>;

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

export interface StudioEvents {
  'run.queued': { runId: number; queuePosition: number };
  'run.started': { runId: number };
  'run.progress': { runId: number } & StepProgress;
  'run.output': { runId: number; output: GeneratedOutput };
  'run.finished': { runId: number; status: Exclude<RunStatus, 'queued' | 'running'>; summary: RunSummary | null; error: string | null };
}
export type EventName = keyof StudioEvents;
export const EVENT_NAMES: EventName[] = [...EVENT_NAME_LIST];
const eventNamesMatch: Same<EventName, (typeof EVENT_NAME_LIST)[number]> = true;
void eventNamesMatch;
export type StudioEvent = { [K in EventName]: { name: K; payload: StudioEvents[K] } }[EventName];

export type { ConstraintSet, ConstraintSetInput, SamplerSettings, DevicePreference, DeviceReport, GeneratedOutput, ModelSummary, RunSummary, RunTimings, StepProgress };
