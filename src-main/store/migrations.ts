/**
 * Schema migrations: entry i takes the database from user_version i to i + 1. Never edit a shipped step;
 * append a new one.
 */
import type Database from 'better-sqlite3';

export const MIGRATIONS: readonly ((db: Database.Database) => void)[] = [
  // 0 -> 1: the initial schema
  (db) => {
    db.exec(`
      CREATE TABLE constraint_sets (
        id          INTEGER PRIMARY KEY,
        name        TEXT    NOT NULL,
        version     INTEGER NOT NULL CHECK (version >= 1),
        description TEXT    NOT NULL DEFAULT '',
        body        TEXT    NOT NULL CHECK (json_valid(body)),
        created_at  TEXT    NOT NULL,
        UNIQUE (name, version)
      );
      CREATE INDEX constraint_sets_by_name ON constraint_sets (name COLLATE NOCASE, version);

      CREATE TABLE presets (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        settings   TEXT NOT NULL CHECK (json_valid(settings)),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      CREATE TABLE runs (
        id                     INTEGER PRIMARY KEY,
        status                 TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'cancelled', 'failed')),
        recipe                 TEXT    NOT NULL CHECK (json_valid(recipe)),
        model_id               TEXT    NOT NULL,
        model_version          TEXT,
        model_hash             TEXT,
        device_requested       TEXT    NOT NULL,
        device_active          TEXT,
        seed                   INTEGER NOT NULL,
        steps                  INTEGER NOT NULL,
        samples                INTEGER NOT NULL,
        constraint_set_id      INTEGER REFERENCES constraint_sets (id) ON DELETE SET NULL,
        constraint_set_name    TEXT,
        constraint_set_version INTEGER,
        timings                TEXT CHECK (timings IS NULL OR json_valid(timings)),
        error                  TEXT,
        created_at             TEXT    NOT NULL,
        started_at             TEXT,
        finished_at            TEXT
      );
      CREATE INDEX runs_by_created ON runs (created_at);

      CREATE TABLE outputs (
        id          INTEGER PRIMARY KEY,
        run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL CHECK (idx >= 0),
        seed        INTEGER NOT NULL,
        text        TEXT    NOT NULL,
        record      TEXT CHECK (record IS NULL OR json_valid(record)),
        record_text TEXT    NOT NULL,
        tokens      TEXT    NOT NULL CHECK (json_valid(tokens)),
        scores      TEXT    NOT NULL CHECK (json_valid(scores)),
        fluency     REAL,
        created_at  TEXT    NOT NULL,
        UNIQUE (run_id, idx)
      );

      CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL CHECK (json_valid(value))
      );
    `);
  },
  // 1 -> 2: which process owns a queued/running run, so a second process on the same data folder (the CLI
  // while the app runs) does not mark the other's live runs as interrupted
  (db) => {
    db.exec(`ALTER TABLE runs ADD COLUMN owner TEXT`);
  },
];
