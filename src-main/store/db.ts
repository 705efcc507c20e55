/**
 * SQLite database: WAL, foreign keys, synchronous=FULL (a committed output survives a crash), and schema
 * migrations by `PRAGMA user_version`, one step per version, each in its own transaction.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { MIGRATIONS } from './migrations';

export type DB = Database.Database;

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

export class SchemaTooNewError extends Error {
  readonly code = 'SCHEMA_TOO_NEW';
  constructor(readonly file: string, readonly found: number, readonly supported: number) {
    super(
      `${file}: database schema version ${found} was written by a newer DLM Studio; this version supports up to ${supported}. ` +
        'Update the studio, or point --data-dir at another folder.',
    );
    this.name = 'SchemaTooNewError';
  }
}

let nativeBinding: string | undefined;

/**
 * Load better-sqlite3's native addon from this file instead of node_modules (the Electron shell uses an
 * Electron-ABI build in development, while node_modules keeps the Node build for the CLI and the tests).
 */
export function useSqliteBinding(path: string | undefined): void {
  nativeBinding = path;
}

export interface OpenOptions {
  /** Migrations to apply (tests pass their own lists); defaults to the studio's. */
  migrations?: readonly ((db: DB) => void)[];
}

export function openDatabase(file: string, options: OpenOptions = {}): DB {
  const migrations = options.migrations ?? MIGRATIONS;
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, nativeBinding ? { nativeBinding } : {});
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, file, migrations);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

export function userVersion(db: DB): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Apply each missing step in its own transaction; refuse a database newer than `migrations`. */
export function migrate(db: DB, file: string, migrations: readonly ((db: DB) => void)[]): { from: number; to: number } {
  const from = userVersion(db);
  if (from > migrations.length) throw new SchemaTooNewError(file, from, migrations.length);
  for (let v = from; v < migrations.length; v++) {
    const step = migrations[v]!;
    db.transaction(() => {
      step(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return { from, to: migrations.length };
}
