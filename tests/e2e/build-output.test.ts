/**
 * The built output (npm run build) works where it will run: every import of the main-process bundles resolves
 * under Node's ESM rules from out/main (the CLI and the engine worker run in plain Node), the sandboxed preload
 * requires nothing but electron, the CLI starts, the engine worker loads, and the page has no inline script.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const OUT = join(ROOT, 'out');
const built = existsSync(join(OUT, 'main', 'cli.js'));

function specifiers(code: string): string[] {
  const found = new Set<string>();
  for (const re of [/\bfrom\s*"([^"]+)"/g, /\bimport\s*\(\s*"([^"]+)"\s*\)/g, /\brequire\s*\(\s*"([^"]+)"\s*\)/g, /^import\s+"([^"]+)"/gm]) {
    for (const m of code.matchAll(re)) found.add(m[1]!);
  }
  return [...found];
}

const isBuiltin = (s: string) => s.startsWith('node:') || builtinModules.includes(s) || builtinModules.includes(s.split('/')[0]!);

describe('build output', () => {
  it('was built (run `npm run build` first)', () => {
    expect(built, 'out/main/cli.js is missing: run `npm run build`').toBe(true);
  });

  it('resolves every import of out/main/*.js the way Node will at run time', () => {
    const mainDir = join(OUT, 'main');
    const files = readdirSync(mainDir).filter((f) => f.endsWith('.js'));
    expect(files).toEqual(expect.arrayContaining(['index.js', 'cli.js', 'engine-worker.js']));
    const bare = new Set<string>();
    for (const f of files) {
      for (const spec of specifiers(readFileSync(join(mainDir, f), 'utf8'))) {
        if (spec.startsWith('.')) expect(existsSync(join(mainDir, spec)), `${f} imports ${spec}`).toBe(true);
        else if (!isBuiltin(spec) && spec !== 'electron' && !spec.startsWith('electron/')) bare.add(spec);
      }
    }
    expect(bare.size).toBeGreaterThan(0);
    // a module inside out/main resolves each bare specifier with import.meta.resolve (ESM rules, exports maps)
    const probe = join(mainDir, `.resolve-probe-${process.pid}.mjs`);
    writeFileSync(probe, `const bad = [];\nfor (const s of ${JSON.stringify([...bare])}) { try { import.meta.resolve(s); } catch (e) { bad.push(s + ': ' + e.message); } }\nconsole.log(JSON.stringify(bad));\n`);
    try {
      const r = spawnSync(process.execPath, [probe], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual([]);
    } finally {
      rmSync(probe, { force: true });
    }
  });

  it('the sandboxed preload is one CommonJS file that requires only electron', () => {
    const code = readFileSync(join(OUT, 'preload', 'index.cjs'), 'utf8');
    expect(specifiers(code)).toEqual(['electron']);
    expect(code).not.toMatch(/\bimport\s/);
  });

  it('the CLI runs in plain Node from the build', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'dlm-studio.js'), 'help'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/usage: dlm-studio <command>/);
    expect(r.stdout).toMatch(/serve-test/);
  });

  it('the engine worker module loads in a worker thread', () => {
    const script = `
      const { Worker } = await import('node:worker_threads');
      const w = new Worker(${JSON.stringify(join(OUT, 'main', 'engine-worker.js'))}, { workerData: { cancel: new SharedArrayBuffer(4) } });
      let failed = null;
      w.on('error', (e) => { failed = e; });
      await new Promise((r) => setTimeout(r, 1500));
      await w.terminate();
      if (failed) { console.error(String(failed && failed.stack || failed)); process.exit(1); }
    `;
    const file = join(OUT, `.worker-probe-${process.pid}.mjs`);
    writeFileSync(file, script);
    try {
      const r = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: ROOT });
      expect(r.status, r.stderr).toBe(0);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('the page has a CSP meta tag and no inline script or style', () => {
    const html = readFileSync(join(OUT, 'renderer', 'index.html'), 'utf8');
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self';/);
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      expect(m[1], 'every script has a src').toMatch(/\bsrc=/);
      expect(m[2]!.trim()).toBe('');
    }
    expect(html).not.toMatch(/<style\b|\sstyle="/);
  });
});
