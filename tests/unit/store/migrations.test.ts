import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, SCHEMA_VERSION, SchemaTooNewError, userVersion, useSqliteBinding, type DB } from '../../../src-main/store/db';
import { MIGRATIONS } from '../../../src-main/store/migrations';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dlm-migr-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const tables = (db: DB) => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);

describe('openDatabase', () => {
  it('creates the schema at the latest version with WAL and foreign keys', () => {
    const db = openDatabase(join(dir, 'a.sqlite'));
    expect(userVersion(db)).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(1);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(tables(db)).toEqual(expect.arrayContaining(['constraint_sets', 'outputs', 'presets', 'runs', 'settings']));
    db.close();
  });

  it('refuses a database written by a newer version, naming both versions', () => {
    const file = join(dir, 'new.sqlite');
    const raw = new Database(file);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 3}`);
    raw.close();
    let err: unknown;
    try {
      openDatabase(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as Error).message).toContain(`version ${SCHEMA_VERSION + 3}`);
    expect((err as Error).message).toContain(`supports up to ${SCHEMA_VERSION}`);
    expect((err as SchemaTooNewError).code).toBe('SCHEMA_TOO_NEW');
  });

  it('applies one step per version, each in its own transaction', () => {
    const file = join(dir, 'steps.sqlite');
    const steps = [(db: DB) => db.exec('CREATE TABLE a (x)'), (db: DB) => db.exec('CREATE TABLE b (x)')];
    const db1 = openDatabase(file, { migrations: steps.slice(0, 1) });
    expect(userVersion(db1)).toBe(1);
    expect(tables(db1)).toEqual(['a']);
    db1.close();
    const db2 = openDatabase(file, { migrations: steps });
    expect(userVersion(db2)).toBe(2);
    expect(tables(db2)).toEqual(['a', 'b']);
    db2.close();
  });

  it('upgrades a version-1 database step by step, keeping its rows', () => {
    const file = join(dir, 'v1.sqlite');
    const v1 = openDatabase(file, { migrations: MIGRATIONS.slice(0, 1) });
    v1.prepare(`INSERT INTO runs (status, recipe, model_id, device_requested, seed, steps, samples, created_at) VALUES ('completed', '{}', 'm', 'cpu', 1, 2, 3, 'now')`).run();
    v1.close();
    const db = openDatabase(file);
    expect(userVersion(db)).toBe(SCHEMA_VERSION);
    expect(db.prepare('SELECT model_id, owner FROM runs').all()).toEqual([{ model_id: 'm', owner: null }]);
    db.close();
  });

  it('can load the native addon from an explicit file (how the Electron shell uses its own build)', () => {
    const addon = join(import.meta.dirname, '..', '..', '..', 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
    try {
      useSqliteBinding(addon);
      const db = openDatabase(join(dir, 'bound.sqlite'));
      expect(userVersion(db)).toBe(SCHEMA_VERSION);
      db.close();
      useSqliteBinding(join(dir, 'no-such-addon.node'));
      expect(() => openDatabase(join(dir, 'other.sqlite'))).toThrow();
    } finally {
      useSqliteBinding(undefined);
    }
  });

  it('rolls a failing step back completely and keeps the previous version', () => {
    const file = join(dir, 'fail.sqlite');
    const steps = [
      (db: DB) => db.exec('CREATE TABLE a (x)'),
      (db: DB) => {
        db.exec('CREATE TABLE half_done (x)');
        throw new Error('step 2 failed');
      },
    ];
    expect(() => openDatabase(file, { migrations: steps })).toThrow('step 2 failed');
    const raw = new Database(file);
    expect(userVersion(raw)).toBe(1);
    expect(tables(raw)).toEqual(['a']);
    raw.close();
  });
});
