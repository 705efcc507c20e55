#!/usr/bin/env node
// `npm start`: build, make sure an Electron-ABI build of better-sqlite3 exists (the one in node_modules stays
// built for Node, for the CLI and the tests), then start the app with electron-vite preview.
// Needs a networked machine the first time: Electron's binary, and the Electron build of better-sqlite3
// (a prebuilt download, or a node-gyp build against Electron's headers).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (cmd, args, cwd = root) => spawnSync(cmd, args, { cwd, stdio: 'inherit' }).status === 0;

if (!run(bin('electron-vite'), ['build'])) process.exit(1);

const electronVersion = JSON.parse(readFileSync(join(root, 'node_modules', 'electron', 'package.json'), 'utf8')).version;
const nativeDir = join(root, 'out', 'native', `electron-${electronVersion}`);
const binding = join(nativeDir, 'better_sqlite3.node');
if (!existsSync(binding)) {
  console.log(`Building better-sqlite3 for Electron ${electronVersion} (once) ...`);
  const work = join(root, 'out', 'native', 'build', 'better-sqlite3');
  rmSync(work, { recursive: true, force: true });
  cpSync(join(root, 'node_modules', 'better-sqlite3'), work, { recursive: true, filter: (src) => !src.includes(`${join('better-sqlite3', 'build')}`) });
  const prebuilt = run(process.execPath, [join(root, 'node_modules', 'prebuild-install', 'bin.js'), '--runtime', 'electron', '--target', electronVersion], work);
  const gyp = process.env.npm_config_node_gyp;
  const built =
    prebuilt ||
    (gyp
      ? run(process.execPath, [gyp, 'rebuild', '--release', `--target=${electronVersion}`, '--dist-url=https://electronjs.org/headers'], work)
      : run('npx', ['--yes', 'node-gyp', 'rebuild', '--release', `--target=${electronVersion}`, '--dist-url=https://electronjs.org/headers'], work));
  const out = join(work, 'build', 'Release', 'better_sqlite3.node');
  if (!built || !existsSync(out)) {
    console.error('error [NATIVE_BUILD]: could not get better-sqlite3 for Electron (needs network for a prebuilt or Electron headers)');
    process.exit(1);
  }
  mkdirSync(nativeDir, { recursive: true });
  cpSync(out, binding);
  rmSync(join(root, 'out', 'native', 'build'), { recursive: true, force: true });
}

process.exit(run(bin('electron-vite'), ['preview', '--skipBuild']) ? 0 : 1);
