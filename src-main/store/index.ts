/**
 * The studio's persistent store: constraint sets (named, versioned), presets, runs with their recipes,
 * outputs (each written in its own transaction as it arrives) and settings.
 */
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { ConstraintSet, SamplerSettings } from '../constraints/set';
import type { GeneratedOutput, RunTimings } from '../engine/types';
import type {
  ConstraintSetSummary,
  Preset,
  RunRecipe,
  RunRecord,
  RunStatus,
  StoredConstraintSet,
  StoredOutput,
} from '../api/contract';
import { openDatabase, SCHEMA_VERSION, userVersion, type DB } from './db';

export { SCHEMA_VERSION, SchemaTooNewError, openDatabase } from './db';
export type { DB } from './db';

export const DATABASE_FILE = 'studio.sqlite';

const now = () => new Date().toISOString();

/** This process, as recorded in runs.owner. */
export const PROCESS_OWNER = `${hostname()}:${process.pid}`;

function ownerIsAlive(owner: string | null): boolean {
  if (!owner || owner === PROCESS_OWNER) return false;
  const sep = owner.lastIndexOf(':');
  const host = owner.slice(0, sep);
  const pid = Number(owner.slice(sep + 1));
  // another machine sharing the folder: we cannot tell, so leave its runs alone
  if (host !== hostname()) return true;
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Escape LIKE wildcards so a search for "50%" matches literally. */
function likePattern(query: string): string {
  return `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

interface SetRow {
  id: number;
  name: string;
  version: number;
  description: string;
  body: string;
  created_at: string;
}

function toStoredSet(r: SetRow): StoredConstraintSet {
  return { id: r.id, name: r.name, version: r.version, description: r.description, body: JSON.parse(r.body) as ConstraintSet, createdAt: r.created_at };
}

export class ConstraintSetRepo {
  constructor(private readonly db: DB) {}

  /** Save `body` under `name` as a new version (1 for a new name). */
  save(name: string, body: ConstraintSet): StoredConstraintSet {
    return this.db.transaction(() => {
      const { v } = this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM constraint_sets WHERE name = ?').get(name) as { v: number };
      const stored = { ...body, name };
      const info = this.db
        .prepare('INSERT INTO constraint_sets (name, version, description, body, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(name, v + 1, body.description ?? '', JSON.stringify(stored), now());
      return this.getById(Number(info.lastInsertRowid))!;
    })();
  }

  getById(id: number): StoredConstraintSet | null {
    const r = this.db.prepare('SELECT * FROM constraint_sets WHERE id = ?').get(id) as SetRow | undefined;
    return r ? toStoredSet(r) : null;
  }

  /** The given version, or the latest one. */
  getByName(name: string, version?: number): StoredConstraintSet | null {
    const r = (
      version === undefined
        ? this.db.prepare('SELECT * FROM constraint_sets WHERE name = ? ORDER BY version DESC LIMIT 1').get(name)
        : this.db.prepare('SELECT * FROM constraint_sets WHERE name = ? AND version = ?').get(name, version)
    ) as SetRow | undefined;
    return r ? toStoredSet(r) : null;
  }

  /** Latest version of each set (or every version), newest first, filtered by name/description. */
  list(query = '', limit = 100, allVersions = false): ConstraintSetSummary[] {
    const where = query.trim() ? `WHERE (s.name LIKE @q ESCAPE '\\' OR s.description LIKE @q ESCAPE '\\')` : '';
    const latestOnly = allVersions ? '' : `${where ? 'AND' : 'WHERE'} s.version = (SELECT MAX(version) FROM constraint_sets WHERE name = s.name)`;
    const rows = this.db
      .prepare(
        `SELECT s.*, (SELECT COUNT(*) FROM constraint_sets c WHERE c.name = s.name) AS versions
         FROM constraint_sets s ${where} ${latestOnly}
         ORDER BY s.created_at DESC, s.id DESC LIMIT @limit`,
      )
      .all({ q: likePattern(query.trim()), limit }) as (SetRow & { versions: number })[];
    return rows.map((r) => {
      const body = JSON.parse(r.body) as ConstraintSet;
      return {
        id: r.id,
        name: r.name,
        version: r.version,
        versions: r.versions,
        description: r.description,
        constraintCount: body.constraints.length,
        kinds: [...new Set(body.constraints.map((c) => c.kind))],
        createdAt: r.created_at,
      };
    });
  }

  deleteById(id: number): number {
    return this.db.prepare('DELETE FROM constraint_sets WHERE id = ?').run(id).changes;
  }

  /** Delete every version of a named set. */
  deleteByName(name: string): number {
    return this.db.prepare('DELETE FROM constraint_sets WHERE name = ?').run(name).changes;
  }
}

interface PresetRow {
  id: number;
  name: string;
  settings: string;
  created_at: string;
  updated_at: string;
}
const toPreset = (r: PresetRow): Preset => ({ id: r.id, name: r.name, settings: JSON.parse(r.settings) as SamplerSettings, createdAt: r.created_at, updatedAt: r.updated_at });

export class PresetRepo {
  constructor(private readonly db: DB) {}

  /** Create or replace the preset with this name. */
  save(name: string, settings: SamplerSettings): Preset {
    const t = now();
    this.db
      .prepare(
        `INSERT INTO presets (name, settings, created_at, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
      )
      .run(name, JSON.stringify(settings), t, t);
    return this.getByName(name)!;
  }

  getByName(name: string): Preset | null {
    const r = this.db.prepare('SELECT * FROM presets WHERE name = ?').get(name) as PresetRow | undefined;
    return r ? toPreset(r) : null;
  }

  list(query = ''): Preset[] {
    return (this.db.prepare(`SELECT * FROM presets WHERE name LIKE ? ESCAPE '\\' ORDER BY name COLLATE NOCASE`).all(likePattern(query.trim())) as PresetRow[]).map(toPreset);
  }

  deleteById(id: number): number {
    return this.db.prepare('DELETE FROM presets WHERE id = ?').run(id).changes;
  }

  deleteByName(name: string): number {
    return this.db.prepare('DELETE FROM presets WHERE name = ?').run(name).changes;
  }
}

interface RunRow {
  id: number;
  status: RunStatus;
  recipe: string;
  timings: string | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  output_count: number;
}
const toRun = (r: RunRow): RunRecord => ({
  id: r.id,
  status: r.status,
  recipe: JSON.parse(r.recipe) as RunRecipe,
  timings: r.timings === null ? null : (JSON.parse(r.timings) as RunTimings),
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  outputCount: r.output_count,
});

interface OutputRow {
  run_id: number;
  idx: number;
  seed: number;
  text: string;
  record: string | null;
  record_text: string;
  tokens: string;
  scores: string;
  fluency: number | null;
  created_at: string;
}
const toOutput = (r: OutputRow): StoredOutput => ({
  runId: r.run_id,
  index: r.idx,
  seed: r.seed,
  text: r.text,
  record: r.record === null ? null : (JSON.parse(r.record) as Record<string, unknown>),
  recordText: r.record_text,
  tokens: JSON.parse(r.tokens) as number[],
  constraints: JSON.parse(r.scores) as StoredOutput['constraints'],
  fluency: r.fluency,
  createdAt: r.created_at,
});

const RUN_SELECT = `SELECT r.*, (SELECT COUNT(*) FROM outputs o WHERE o.run_id = r.id) AS output_count FROM runs r`;

export class RunRepo {
  constructor(private readonly db: DB) {}

  create(recipe: RunRecipe, status: RunStatus = 'queued'): RunRecord {
    const info = this.db
      .prepare(
        `INSERT INTO runs (status, recipe, model_id, model_version, model_hash, device_requested, device_active, seed, steps, samples,
                           constraint_set_id, constraint_set_name, constraint_set_version, created_at, owner)
         VALUES (@status, @recipe, @modelId, @modelVersion, @modelHash, @deviceRequested, @deviceActive, @seed, @steps, @samples,
                 @setId, @setName, @setVersion, @createdAt, @owner)`,
      )
      .run({
        status,
        recipe: JSON.stringify(recipe),
        modelId: recipe.model.id,
        modelVersion: recipe.model.version,
        modelHash: recipe.model.hash,
        deviceRequested: recipe.device.requested,
        deviceActive: recipe.device.active,
        seed: recipe.seed,
        steps: recipe.steps,
        samples: recipe.samples,
        setId: recipe.constraintSet.id,
        setName: recipe.constraintSet.name,
        setVersion: recipe.constraintSet.version,
        createdAt: now(),
        owner: PROCESS_OWNER,
      });
    return this.get(Number(info.lastInsertRowid))!;
  }

  get(id: number): RunRecord | null {
    const r = this.db.prepare(`${RUN_SELECT} WHERE r.id = ?`).get(id) as RunRow | undefined;
    return r ? toRun(r) : null;
  }

  list(opts: { query?: string; status?: RunStatus; limit?: number; offset?: number } = {}): RunRecord[] {
    const clauses: string[] = [];
    const params: Record<string, unknown> = { limit: opts.limit ?? 100, offset: opts.offset ?? 0 };
    if (opts.status) {
      clauses.push('r.status = @status');
      params.status = opts.status;
    }
    if (opts.query?.trim()) {
      clauses.push(`(r.model_id LIKE @q ESCAPE '\\' OR r.constraint_set_name LIKE @q ESCAPE '\\' OR CAST(r.id AS TEXT) = @exact)`);
      params.q = likePattern(opts.query.trim());
      params.exact = opts.query.trim();
    }
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    return (this.db.prepare(`${RUN_SELECT} ${where} ORDER BY r.id DESC LIMIT @limit OFFSET @offset`).all(params) as RunRow[]).map(toRun);
  }

  markRunning(id: number): void {
    this.db.prepare(`UPDATE runs SET status = 'running', started_at = ? WHERE id = ?`).run(now(), id);
  }

  /** Record what actually ran (model version/hash, active device) once the engine reports it. */
  updateRecipe(id: number, recipe: RunRecipe): void {
    this.db
      .prepare('UPDATE runs SET recipe = ?, model_version = ?, model_hash = ?, device_active = ? WHERE id = ?')
      .run(JSON.stringify(recipe), recipe.model.version, recipe.model.hash, recipe.device.active, id);
  }

  finish(id: number, status: Exclude<RunStatus, 'queued' | 'running'>, timings: RunTimings | null, error: string | null): void {
    this.db.prepare('UPDATE runs SET status = ?, timings = ?, error = ?, finished_at = ? WHERE id = ?').run(status, timings ? JSON.stringify(timings) : null, error, now(), id);
  }

  /**
   * Runs left queued/running by a process that is gone are marked failed (called at startup). Runs owned by
   * another live process on this machine (the app, while the CLI opens the same folder) are left alone.
   */
  failInterrupted(): number {
    const open = this.db.prepare(`SELECT id, owner FROM runs WHERE status IN ('queued', 'running')`).all() as { id: number; owner: string | null }[];
    const dead = open.filter((r) => !ownerIsAlive(r.owner));
    const mark = this.db.prepare(`UPDATE runs SET status = 'failed', error = 'interrupted: the studio stopped during this run', finished_at = ? WHERE id = ?`);
    const t = now();
    this.db.transaction(() => {
      for (const r of dead) mark.run(t, r.id);
    })();
    return dead.length;
  }

  delete(id: number): number {
    return this.db.prepare('DELETE FROM runs WHERE id = ?').run(id).changes;
  }

  /** Each output is its own transaction: once this returns, the sample survives a crash. */
  addOutput(runId: number, o: GeneratedOutput): void {
    this.insertOutput.run({
      runId,
      idx: o.index,
      seed: o.seed,
      text: o.text,
      record: o.record === null ? null : JSON.stringify(o.record),
      recordText: o.recordText,
      tokens: JSON.stringify(o.tokens),
      scores: JSON.stringify(o.constraints),
      fluency: o.fluency === null || !Number.isFinite(o.fluency) ? null : o.fluency,
      createdAt: now(),
    });
  }

  private get insertOutput() {
    return (this._insertOutput ??= this.db.prepare(
      `INSERT INTO outputs (run_id, idx, seed, text, record, record_text, tokens, scores, fluency, created_at)
       VALUES (@runId, @idx, @seed, @text, @record, @recordText, @tokens, @scores, @fluency, @createdAt)`,
    ));
  }
  private _insertOutput?: ReturnType<DB['prepare']>;

  outputs(runId: number, offset = 0, limit = 10000, indices?: number[]): StoredOutput[] {
    const rows = this.db.prepare('SELECT * FROM outputs WHERE run_id = ? ORDER BY idx LIMIT ? OFFSET ?').all(runId, limit, offset) as OutputRow[];
    const keep = indices ? new Set(indices) : null;
    return rows.filter((r) => !keep || keep.has(r.idx)).map(toOutput);
  }
}

export class SettingsRepo {
  constructor(private readonly db: DB) {}

  get<T>(key: string): T | undefined {
    const r = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return r ? (JSON.parse(r.value) as T) : undefined;
  }

  setMany(values: Record<string, unknown>): void {
    const stmt = this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(values)) if (v !== undefined) stmt.run(k, JSON.stringify(v));
    })();
  }
}

export class Store {
  readonly constraintSets: ConstraintSetRepo;
  readonly presets: PresetRepo;
  readonly runs: RunRepo;
  readonly settings: SettingsRepo;

  constructor(readonly db: DB, readonly file: string) {
    this.constraintSets = new ConstraintSetRepo(db);
    this.presets = new PresetRepo(db);
    this.runs = new RunRepo(db);
    this.settings = new SettingsRepo(db);
  }

  get schemaVersion(): number {
    return userVersion(this.db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** Open (creating and migrating) the store in `dataDir`. */
export function openStore(dataDir: string): Store {
  const file = join(dataDir, DATABASE_FILE);
  return new Store(openDatabase(file), file);
}

export { SCHEMA_VERSION as LATEST_SCHEMA_VERSION };
