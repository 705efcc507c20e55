import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Mulberry32, sampleSeeds } from '../../../src-main/engine/prng';
import { buildSchedule, respacedTimesteps, trainingAbar } from '../../../src-main/engine/schedule';

const PY = '/usr/bin/python3';
const ROOT = new URL('../../../', import.meta.url).pathname;

function python(code: string): string | null {
  if (!existsSync(PY)) return null;
  const r = spawnSync(PY, ['-c', code], { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

describe('mulberry32', () => {
  it('produces the documented stream (values from an independent big-integer Python transcription)', () => {
    const g = new Mulberry32(42);
    expect([g.next(), g.next(), g.next(), g.next(), g.next()]).toEqual([2581720956, 1925393290, 3661312704, 2876485805, 750819978]);
  });

  it('normals are Box-Muller pairs, cos first', () => {
    const g = new Mulberry32(0);
    expect(g.normal()).toBeCloseTo(1.6264323079191505, 14);
    expect(g.normal()).toBeCloseTo(0.00336973522237399, 14);
  });

  it('per-sample seeds are the outputs of mulberry32(seed), independent of batching', () => {
    const all = sampleSeeds(5, 10);
    expect(sampleSeeds(5, 4, 6)).toEqual(all.slice(6));
    const g = new Mulberry32(5);
    expect(all[0]).toBe(g.next());
  });

  it('agrees with the Python PRNG (training/dlm_train/prng.py) when python3 + numpy are present', () => {
    const out = python('from training.dlm_train.prng import normals, sample_seeds; import json; print(json.dumps({"n": [float(v) for v in normals(123, 0, 7)], "s": [int(v) for v in sample_seeds(9, 4)]}))');
    if (out === null) {
      console.warn('skipped: /usr/bin/python3 with numpy not available');
      return;
    }
    const py = JSON.parse(out) as { n: number[]; s: number[] };
    const g = new Mulberry32(123);
    const ts = new Float32Array(7);
    g.fillNormal(ts);
    expect(Array.from(ts)).toEqual(py.n.map((v) => Math.fround(v)));
    expect(sampleSeeds(9, 4)).toEqual(py.s);
  });
});

describe('sqrt schedule and respacing', () => {
  it('respaces to any step count up to T', () => {
    expect(respacedTimesteps(2000, 1)).toEqual([1999]);
    expect(respacedTimesteps(2000, 2)).toEqual([0, 1999]);
    const u = respacedTimesteps(2000, 200);
    expect(u[0]).toBe(0);
    expect(u[199]).toBe(1999);
    expect(u.every((v, i) => i === 0 || v > u[i - 1]!)).toBe(true);
    expect(respacedTimesteps(2000, 2000)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(() => respacedTimesteps(2000, 2001)).toThrow(/steps/);
    // half rounds away from zero: k * 1999 / 2 at k = 1 is 999.5
    expect(respacedTimesteps(2000, 3)).toEqual([0, 1000, 1999]);
  });

  it('spaces steps by a power of k / (S - 1), distinct and ending at T - 1', () => {
    expect(respacedTimesteps(2000, 5, 1)).toEqual(respacedTimesteps(2000, 5));
    // (k / 4)^0.5 x 1999: 0, 999.5, 1413.5, 1731.2, 1999 (half rounds up)
    expect(respacedTimesteps(2000, 5, 0.5)).toEqual([0, 1000, 1414, 1731, 1999]);
    expect(respacedTimesteps(2000, 5, 2)).toEqual([0, 125, 500, 1124, 1999]);
    // below 1 more of the steps sit at high noise: the upper half of the schedule gets more than half of them
    const low = respacedTimesteps(2000, 20, 0.33);
    expect(low.filter((t) => t >= 1000).length).toBeGreaterThan(10);
    // a steep spacing at many steps collides near t = 0 (0.25 at 2000 steps) and is pushed apart
    for (const [S, p] of [[2000, 0.25], [1500, 4], [200, 0.1]] as const) {
      const u = respacedTimesteps(2000, S, p);
      expect(u).toHaveLength(S);
      expect(u[0]).toBeGreaterThanOrEqual(0);
      expect(u[S - 1]).toBe(1999);
      expect(u.every((v, i) => i === 0 || v > u[i - 1]!)).toBe(true);
    }
    expect(() => respacedTimesteps(2000, 10, 0)).toThrow(/spacing/);
    expect(() => respacedTimesteps(2000, 10, 5)).toThrow(/spacing/);
  });

  it('has the posterior coefficients of the documented formulas', () => {
    const s = buildSchedule(2000, 1e-4, 50);
    expect(s.abarPrev[0]).toBe(1);
    expect(s.c1[0]).toBeCloseTo(1, 12); // x_{-1} = x0 at the last step
    expect(s.c2[0]).toBeCloseTo(0, 12);
    expect(s.variance[0]).toBe(s.variance[1]);
    const abar = trainingAbar(2000, 1e-4);
    expect(abar[0]).toBeCloseTo((1 - Math.sqrt(1 / 2000 + 1e-4)) / (1 - Math.sqrt(1e-4)), 14);
    expect(abar[1999]).toBeGreaterThan(0);
    expect(abar[1999]).toBeLessThan(1e-3);
  });

  it('agrees with the Python schedule (training/dlm_train/schedule.py) when python3 + numpy are present', () => {
    const out = python('from training.dlm_train.schedule import respace; import json; r = respace(37); print(json.dumps({k: [float(x) for x in getattr(r, k)] for k in ["use", "abar", "c1", "c2", "var"]}))');
    if (out === null) {
      console.warn('skipped: /usr/bin/python3 with numpy not available');
      return;
    }
    const py = JSON.parse(out) as Record<string, number[]>;
    const s = buildSchedule(2000, 1e-4, 37);
    expect(s.use).toEqual(py.use);
    for (const [k, arr] of [['abar', s.abar], ['c1', s.c1], ['c2', s.c2], ['var', s.variance]] as const) {
      py[k]!.forEach((v, i) => expect(Math.abs(arr[i]! - v)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(v))));
    }
  });
});
