/**
 * The `dlm-studio` command line: real services on a temp data dir, named errors and exit codes, and
 * serve-test started as its own process (as the e2e tests use it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src-main/api/client';
import { defaultDataDir } from '../../src-main/cli/framework';
import { connectWsChannel } from '../../src-main/transports/ws-client';
import { runCliCaptured } from './cli-harness';

const root = join(import.meta.dirname, '..', '..');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dlm-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...argv: string[]) => runCliCaptured(argv, { dir, bundledModelDirs: [join(root, 'models')], engine: { engine: null, reason: 'not needed here' } });

describe('dlm-studio sets', () => {
  it('imports (new version each time), lists and shows constraint sets', async () => {
    const file = join(dir, 'pub.json');
    writeFileSync(file, JSON.stringify({ version: 1, name: 'pub', description: 'family pubs', constraints: [{ kind: 'attribute', field: 'eatType', value: 'pub' }] }));
    expect(await cli('sets', 'import', file)).toMatchObject({ code: 0, out: 'saved "pub" v1 (id 1)' });
    expect((await cli('sets', 'import', file, '--name', 'renamed')).out).toBe('saved "renamed" v1 (id 2)');
    expect((await cli('sets', 'import', file)).out).toBe('saved "pub" v2 (id 3)');
    const list = await cli('sets', 'list', '--query', 'family', '--json');
    expect(JSON.parse(list.out).map((s: { name: string; version: number }) => `${s.name}@${s.version}`)).toEqual(['pub@2', 'renamed@1']);
    const show = await cli('sets', 'show', 'pub', '--version', '1');
    expect(JSON.parse(show.out)).toMatchObject({ version: 1, constraints: [{ kind: 'attribute', value: 'pub' }] });
    expect((await cli('sets', 'validate', file)).out).toMatch(/valid \(1 constraints\)/);
  });

  it('exits non-zero with a named error naming the file and field', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ version: 1, constraints: [{ kind: 'pos', tags: ['NOUN', 'VERBISH'] }] }));
    const r = await cli('sets', 'import', bad);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error \[INVALID_INPUT\]: .*bad\.json: .*constraints\[0\]\.tags\[1\]/);
    const notJson = join(dir, 'nj.json');
    writeFileSync(notJson, '{nope');
    expect((await cli('sets', 'import', notJson)).err).toMatch(/INVALID_INPUT.*nj\.json: not valid JSON/);
    expect((await cli('sets', 'import', join(dir, 'missing.json'))).err).toMatch(/IO_ERROR.*missing\.json/);
    expect((await cli('sets', 'show', 'nobody')).err).toMatch(/NOT_FOUND.*"nobody"/);
    expect((await cli('sets', 'frobnicate')).code).toBe(2);
    expect((await cli('sets', 'list', '--bogus')).err).toMatch(/USAGE.*--bogus/);
  });
});

describe('dlm-studio runs', () => {
  it('lists nothing, refuses bad ids and formats by name', async () => {
    // exit code 0, also where the command ends by printing (it once handed print's result back as the exit code)
    expect(await cli('runs', 'list')).toMatchObject({ code: 0, out: 'no runs yet' });
    expect(await cli('runs', 'list', '--json')).toMatchObject({ code: 0, out: '[]' });
    expect((await cli('runs', 'show', 'x')).err).toMatch(/INVALID_INPUT.*run id #1/);
    expect((await cli('runs', 'export', '1', '--format', 'xml')).err).toMatch(/--format must be one of jsonl, csv, markdown/);
    expect((await cli('runs', 'export', '1', '--format', 'csv')).err).toMatch(/NOT_FOUND.*run 1/);
    expect((await cli('runs', 'list', '--status', 'weird')).code).toBe(2);
  });
});

describe('dlm-studio (framework)', () => {
  it('prints help, rejects unknown commands, and shares the app data folder by default', async () => {
    const help = await cli('help');
    expect(help.out).toMatch(/usage: dlm-studio <command>/);
    expect((await cli('nope')).err).toMatch(/unknown command "nope"/);
    // global options may come before the command as well as after it
    expect(await cli('--data-dir', join(dir, 'elsewhere'), 'runs', 'list')).toMatchObject({ code: 0, err: '' });
    expect(JSON.parse((await cli('--json', 'sets', 'list')).out)).toEqual(JSON.parse((await cli('sets', 'list', '--json')).out));
    expect((await cli('--bogus', 'runs', 'list')).err).toMatch(/unknown command "--bogus"/);
    expect(defaultDataDir({ XDG_CONFIG_HOME: '/x' }, 'linux')).toBe('/x/dlm-studio');
    expect(defaultDataDir({ DLM_STUDIO_DATA_DIR: '/custom' }, 'linux')).toBe('/custom');
  });

  it('serve-test serves the real services over WebSocket in its own process', { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src-main', 'cli', 'main.ts'), 'serve-test', '--data-dir', join(dir, 'data')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d) => {
          buf += d;
          if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')));
        });
        child.on('exit', (c) => reject(new Error(`serve-test exited ${c}`)));
      });
      const info = JSON.parse(line) as { connectUrl: string; token: string; url: string };
      expect(info.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
      expect(info.token).toMatch(/^[0-9a-f]{48}$/);
      const channel = await connectWsChannel(info.connectUrl, (u) => new WebSocket(u) as never);
      const client = createClient(channel);
      expect((await client.call('constraintSets.list', {})).map((s) => s.name)).toContain('pub');
      channel.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    expect(readFileSync(join(dir, 'data', 'studio.sqlite')).length).toBeGreaterThan(0);
  });
});
