/**
 * End-to-end harness: the BUILT renderer (out/renderer) over a small static server, the real services behind
 * the WebSocket test transport started by the built CLI (`dlm-studio serve-test`) on a temp data dir, and
 * Debian's Chromium driven by playwright-core with a fresh profile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, relative, isAbsolute } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const ROOT = join(import.meta.dirname, '..', '..');
export const RENDERER = join(ROOT, 'out', 'renderer');
export const SCREENS = join(ROOT, 'test-results', 'screens');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

// The page policy the app uses, plus the test transport's socket (the meta tag in index.html allows it too).
const TEST_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self' ws://127.0.0.1:*; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };

export interface Harness {
  dataDir: string;
  dbPath: string;
  pageUrl: string;
  /** The page without the #ws= hash (for a page that gets its services another way). */
  plainUrl: string;
  connectUrl: string;
  context: BrowserContext;
  page: Page;
  /** Console errors, page errors and CSP violations seen so far. */
  problems: string[];
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

function staticServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = join(RENDERER, normalize(path === '/' ? '/index.html' : path));
    const rel = relative(RENDERER, file);
    if (rel.startsWith('..') || isAbsolute(rel) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream', 'Content-Security-Policy': TEST_CSP, 'Cache-Control': 'no-store' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({ server, origin: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` });
  }));
}

function startServices(dataDir: string): Promise<{ child: ChildProcess; connectUrl: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'dlm-studio.js'), 'serve-test', '--data-dir', dataDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        try {
          resolve({ child, connectUrl: (JSON.parse(buf.slice(0, nl)) as { connectUrl: string }).connectUrl });
        } catch (e) {
          reject(new Error(`serve-test printed ${buf.slice(0, nl)}: ${(e as Error).message}`));
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`serve-test exited with ${code}: ${err}`)));
  });
}

export async function startHarness(): Promise<Harness> {
  if (!existsSync(join(RENDERER, 'index.html'))) throw new Error(`${RENDERER}/index.html is missing: run \`npm run build\` before the e2e tests`);
  if (!existsSync(join(ROOT, 'out', 'main', 'cli.js'))) throw new Error('out/main/cli.js is missing: run `npm run build` before the e2e tests');
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`);
  mkdirSync(SCREENS, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'dlm-e2e-'));
  const dataDir = join(tmp, 'data');
  const { server, origin } = await staticServer();
  const services = await startServices(dataDir);
  const context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
  });
  const problems: string[] = [];
  const page = context.pages()[0] ?? (await context.newPage());
  const watch = (p: Page) => {
    p.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  };
  watch(page);
  context.on('page', watch);
  const pageUrl = `${origin}/index.html#ws=${encodeURIComponent(services.connectUrl)}`;
  return {
    dataDir,
    dbPath: join(dataDir, 'studio.sqlite'),
    pageUrl,
    plainUrl: `${origin}/index.html`,
    connectUrl: services.connectUrl,
    context,
    page,
    problems,
    async screenshot(name) {
      const file = join(SCREENS, `${name}.png`);
      await page.screenshot({ path: file });
      return file;
    },
    async close() {
      await context.close().catch(() => undefined);
      services.child.kill('SIGTERM');
      await new Promise((r) => (services.child.exitCode !== null ? r(null) : services.child.once('exit', r)));
      await new Promise((r) => server.close(r));
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
