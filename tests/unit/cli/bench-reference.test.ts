import { describe, expect, it } from 'vitest';
import { chooseReferencePython, cpuHasBf16, formatBench, probeTorch, referenceSettings, type BenchResult, type TorchInfo } from '../../../src-main/cli/commands/bench';

const fakeProbe = (table: Record<string, string | null>) => async (python: string): Promise<TorchInfo> => ({ python, torch: table[python] ?? null, capability: 'AVX512' });

describe('bench: the PyTorch reference', () => {
  it('defaults to the first interpreter whose torch is 2.x; an asked one is taken as it is', async () => {
    expect((await chooseReferencePython(undefined, fakeProbe({ python3: '2.15.0+cu132', '/usr/bin/python3': '1.13.0a0' }))).python).toBe('python3');
    expect((await chooseReferencePython(undefined, fakeProbe({ python3: '1.13.1', '/usr/bin/python3': '2.3.0' }))).python).toBe('/usr/bin/python3');
    // no torch 2.x anywhere: the first with any torch, else the last tried (whose error the run reports)
    expect(await chooseReferencePython(undefined, fakeProbe({ python3: null, '/usr/bin/python3': '1.13.0a0' }))).toMatchObject({ python: '/usr/bin/python3', torch: '1.13.0a0' });
    expect(await chooseReferencePython(undefined, fakeProbe({}))).toMatchObject({ python: '/usr/bin/python3', torch: null });
    expect(await chooseReferencePython('/opt/py/bin/python', fakeProbe({ '/opt/py/bin/python': '1.13.0' }))).toMatchObject({ python: '/opt/py/bin/python', torch: '1.13.0' });
  });

  it('measures bf16 autocast only where the CPU has AVX512-BF16 or AMX', () => {
    const cpuinfo = (flags: string) => `processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse avx2 ${flags}\n\nprocessor\t: 1\nflags\t\t: fpu sse avx2 ${flags}\n`;
    expect(cpuHasBf16(cpuinfo('avx512f avx512_bf16'), 'AVX512')).toBe(true);
    expect(cpuHasBf16(cpuinfo('amx_bf16 amx_tile'), null)).toBe(true);
    expect(cpuHasBf16(cpuinfo('avx512f avx512_vnni'), 'AVX512')).toBe(false);
    expect(cpuHasBf16(null, 'AVX2')).toBe(false);
    expect(cpuHasBf16(null, 'AMX')).toBe(true);
  });

  it('settings: fp32 and (with bf16 units) bf16, each with 1 and N threads', () => {
    expect(referenceSettings(2, true)).toEqual([{ precision: 'fp32', threads: 1 }, { precision: 'fp32', threads: 2 }, { precision: 'bf16', threads: 1 }, { precision: 'bf16', threads: 2 }]);
    expect(referenceSettings(1, false)).toEqual([{ precision: 'fp32', threads: 1 }]);
  });

  it('a missing interpreter is a probe result with no torch, not a throw', async () => {
    const r = await probeTorch('/nonexistent/python3');
    expect(r.torch).toBeNull();
    expect(r.error).toBeTruthy();
  });

  it('the report lists every reference setting with its torch and precision and marks the fastest', () => {
    const row = (batch: number, precision: 'fp32' | 'bf16', threads: number, ms: number) => ({ batch, precision, threads, torch: '2.15.0', msPerStep: ms, minMs: ms - 1, cpuMsPerStep: ms });
    const settings = [row(8, 'fp32', 1, 80), row(8, 'bf16', 1, 36), row(64, 'fp32', 1, 760), row(64, 'bf16', 1, 317)];
    const r = {
      model: { id: 'm', version: '1', path: '/m' }, machine: { cpus: 2, cpuModel: 'X', memoryGiB: 8, node: '20', platform: 'linux/x64' }, steps: 10, threads: 2, rounds: 2,
      engine: [{ batch: 8, precision: 'int8', msPerStep: 18, minMs: 17, cpuMsPerStep: 18 }, { batch: 64, precision: 'int8', msPerStep: 150, minMs: 140, cpuMsPerStep: 150 }],
      reference: [settings[1]!, settings[3]!], referenceSettings: settings, referencePython: { python: 'python3', torch: '2.15.0', bf16: true },
      speedup: [], defaultPrecision: 'int8', guidance: [], load: [1, 1], eventLoop: { samples: 8, lagP50Ms: 0, lagP99Ms: 1, lagMaxMs: 1, runSeconds: 1 }, memory: { samples: 8, peakRssMiB: 100 }, targets: [],
    } as BenchResult;
    const text = formatBench(r);
    expect(text).toMatch(/torch 2\.15\.0; bf16 autocast measured/);
    expect(text.split('\n').filter((l) => /fastest \(the reference\)/.test(l))).toHaveLength(2);
    expect(text).toMatch(/36\.00 \/ 35\.00 \(bf16, 1 thr\)\s+2\.00x/);
  });
});
