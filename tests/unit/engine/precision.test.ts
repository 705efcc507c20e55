import { describe, expect, it } from 'vitest';
import { resolvePrecision, runPrecision } from '../../../src-main/engine/types';

describe('denoiser precision of a run', () => {
  it('auto: int8 on cpu where the bundle has it, fp32 elsewhere; int8 without one names the setting', () => {
    expect(resolvePrecision('auto', 'cpu', true, 'm')).toBe('int8');
    expect(resolvePrecision('auto', 'cuda', true, 'm')).toBe('fp32');
    expect(resolvePrecision('auto', 'cpu', false, 'm')).toBe('fp32');
    expect(resolvePrecision('fp32', 'cpu', true, 'm')).toBe('fp32');
    expect(() => resolvePrecision('int8', 'cpu', false, 'm')).toThrow(/sampler\.precision: model m has no int8 denoiser/);
  });

  it('a bundle whose int8 graph leaves guided runs to fp32: auto keeps guided runs on fp32, asking for int8 still gets it', () => {
    expect(runPrecision('auto', 'cpu', true, 'fp32', true, 'm')).toBe('fp32');
    expect(runPrecision('auto', 'cpu', true, 'fp32', false, 'm')).toBe('int8');
    expect(runPrecision('int8', 'cpu', true, 'fp32', true, 'm')).toBe('int8');
    expect(runPrecision('auto', 'cpu', true, 'int8', true, 'm')).toBe('int8');
    expect(runPrecision('auto', 'cpu', true, undefined, true, 'm')).toBe('int8');
  });
});
