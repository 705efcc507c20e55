/**
 * Provider choice (src-main/engine/devices.ts) with a stand-in probe: what `auto` tries, in which order, and why it
 * skips what it skips. The real probes on real sessions are in tests/integration/engine/engine.test.ts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseProvider, type Provider, vulkanLoaderPresent } from '../../../src-main/engine/devices';

const everything = new Map<string, boolean>([['cpu', true], ['webgpu', true], ['cuda', true]]);

describe('vulkanLoaderPresent', () => {
  it('finds libvulkan.so.1 on LD_LIBRARY_PATH or in the loader cache, and nowhere else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlm-vk-'));
    const none = join(dir, 'no-cache');
    // the machine's own library folders are searched too, so "absent" is only asserted where the machine has none
    const machine = vulkanLoaderPresent({}, none);
    writeFileSync(join(dir, 'libvulkan.so.1'), '');
    expect(vulkanLoaderPresent({ LD_LIBRARY_PATH: `/nonexistent:${dir}` }, none)).toBe(true);
    const cache = join(dir, 'ld.so.cache');
    writeFileSync(cache, Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from('libvulkan.so.1\0/usr/lib/x/libvulkan.so.1\0')]));
    expect(vulkanLoaderPresent({}, cache)).toBe(true);
    writeFileSync(cache, 'libc.so.6\0');
    expect(vulkanLoaderPresent({}, cache)).toBe(machine);
  });
});

describe('chooseProvider', () => {
  it('auto tries the best first and falls back, recording each reason; a named provider falls back to cpu', async () => {
    const tried: Provider[] = [];
    const probe = async (p: Provider) => {
      tried.push(p);
      if (p !== 'cpu') throw new Error(`${p}: no device\n at somewhere`);
    };
    const auto = await chooseProvider('auto', probe, everything);
    expect(auto.active).toBe('cpu');
    expect(auto.probes.map((p) => p.provider)).toEqual(['cuda', 'dml', 'coreml', 'webgpu', 'cpu']);
    for (const p of auto.probes.filter((x) => !x.usable)) expect(p.reason).toBeTruthy();
    const webgpu = auto.probes.find((p) => p.provider === 'webgpu')!;
    if (process.platform === 'linux' && !vulkanLoaderPresent()) {
      // not probed: the reason says why, and how to try it anyway
      expect(tried).not.toContain('webgpu');
      expect(webgpu.reason).toMatch(/libvulkan\.so\.1.*--device webgpu/);
    } else {
      expect(tried).toContain('webgpu');
      expect(webgpu.reason).toBe('webgpu: no device');
    }
    tried.length = 0;
    const named = await chooseProvider('webgpu', probe, everything);
    expect(tried).toEqual(['webgpu', 'cpu']);
    expect(named.active).toBe('cpu');
    expect(named.probes[0]).toMatchObject({ provider: 'webgpu', usable: false, reason: 'webgpu: no device' });
  });
});
