/**
 * SIGKILL a process in the middle of writing a run of 1,000 outputs, 20 times, on one database file:
 * the database must pass integrity_check and keep every output the child reported as committed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

const ROUNDS = 20;
const OUTPUTS = 1000;
const fixture = join(import.meta.dirname, 'fixtures', 'crash-writer.ts');
const dir = mkdtempSync(join(tmpdir(), 'dlm-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Round {
  runId: number;
  reported: number[];
  killedAfter: number;
  finished: boolean;
}

function crashOnce(killAfter: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, String(OUTPUTS)], { cwd: join(import.meta.dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    let runId = -1;
    const reported: number[] = [];
    let killed = false;
    let finished = false;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('run ')) runId = Number(line.slice(4));
        else if (line === 'done') finished = true;
        else {
          const [, idx] = line.split(' ');
          reported.push(Number(idx));
          if (!killed && reported.length >= killAfter) {
            killed = true;
            child.kill('SIGKILL');
          }
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL' && !finished) return reject(new Error(`child exited ${code} ${signal}: ${stderr}`));
      resolve({ runId, reported, killedAfter: killAfter, finished });
    });
  });
}

describe('crash safety of run outputs', () => {
  it(`survives ${ROUNDS} SIGKILLs mid-run with every committed output intact`, { timeout: 600_000 }, async () => {
    let state = 20261127;
    const uniform = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const figures: { reported: number; stored: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const killAfter = 1 + Math.floor(uniform() * (OUTPUTS - 2));
      const r = await crashOnce(killAfter);
      expect(r.runId).toBeGreaterThan(0);
      expect(r.finished).toBe(false);
      const db = new Database(join(dir, 'studio.sqlite'));
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        const stored = (db.prepare('SELECT idx FROM outputs WHERE run_id = ? ORDER BY idx').all(r.runId) as { idx: number }[]).map((x) => x.idx);
        const have = new Set(stored);
        const missing = r.reported.filter((i) => !have.has(i));
        expect(missing).toEqual([]);
        // outputs are written in order, so what is stored is a gap-free prefix (at most a few past the last report)
        expect(stored).toEqual(stored.map((_, i) => i));
        expect(stored.length).toBeGreaterThanOrEqual(r.reported.length);
        figures.push({ reported: r.reported.length, stored: stored.length });
      } finally {
        db.close();
      }
    }
    const db = new Database(join(dir, 'studio.sqlite'));
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect((db.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n).toBe(ROUNDS);
    db.close();
    const extra = figures.map((f) => f.stored - f.reported);
    console.log(
      `crash test: ${ROUNDS} SIGKILLs; reported-committed outputs per round ${Math.min(...figures.map((f) => f.reported))}-${Math.max(...figures.map((f) => f.reported))}; ` +
        `all present; stored beyond last report: max ${Math.max(...extra)}; integrity_check ok`,
    );
  });
});
