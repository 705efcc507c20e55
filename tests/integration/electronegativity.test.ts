/**
 * Electronegativity over the main-process sources must report no HIGH or MEDIUM finding. It exits 0 even
 * with findings, so the test reads its CSV report.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../src-main/export/csv';
import { CONTENT_SECURITY_POLICY } from '../../src-main/electron/security';

const root = join(import.meta.dirname, '..', '..');
const ELECTRON_VERSION = (JSON.parse(readFileSync(join(root, 'node_modules', 'electron', 'package.json'), 'utf8')) as { version: string }).version;

describe('Electron security', () => {
  it('electronegativity finds nothing of high or medium severity', { timeout: 180_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'dlm-eneg-'));
    try {
      const report = join(out, 'report.csv');
      const bin = join(root, 'node_modules', '.bin', 'electronegativity');
      await promisify(execFile)(bin, ['-i', join(root, 'src-main'), '-e', ELECTRON_VERSION, '-o', report], { cwd: root, timeout: 170_000 });
      const rows = parseCsv(readFileSync(report, 'utf8'));
      const header = rows[0]!.map((h) => h.trim());
      expect(header.slice(0, 2)).toEqual(['issue', 'severity']);
      const findings = rows.slice(1).filter((r) => r.length > 1).map((r) => ({ issue: r[0]!, severity: r[1]!.trim().toUpperCase(), file: r[3], where: r[4] }));
      console.log(`electronegativity ${ELECTRON_VERSION}: ${findings.length} findings: ${findings.map((f) => `${f.issue} (${f.severity})`).join(', ') || 'none'}`);
      expect(findings.filter((f) => f.severity === 'HIGH' || f.severity === 'MEDIUM')).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('sets the same CSP in the session header hook as the protocol handler uses', () => {
    const main = readFileSync(join(root, 'src-main', 'electron', 'main.ts'), 'utf8');
    const literal = /'Content-Security-Policy': \["([^"]+)"\]/.exec(main);
    expect(literal?.[1]).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'");
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe');
  });

  it('keeps the window locked down (sandbox, isolation, no node, no navigation, deny permissions)', () => {
    const main = readFileSync(join(root, 'src-main', 'electron', 'main.ts'), 'utf8');
    for (const needle of ['contextIsolation: true', 'sandbox: true', 'nodeIntegration: false', 'webSecurity: true', "'will-navigate'", 'setWindowOpenHandler', 'setPermissionRequestHandler', 'callback(false)', 'app.enableSandbox()']) {
      expect(main, needle).toContain(needle);
    }
    const preload = readFileSync(join(root, 'src-main', 'electron', 'preload.ts'), 'utf8');
    expect(preload).toContain("exposeInMainWorld('dlm'");
    expect(preload).not.toMatch(/exposeInMainWorld\([^)]*ipcRenderer\s*[,)]/);
    // no file outside src-main/electron may load electron at run time (the CLI and tests run in plain Node)
    const offenders = readdirSync(join(root, 'src-main'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.startsWith('electron'))
      .filter((f) => /(^|\n)\s*import\s+(?!type\b)[^;]*from\s+['"]electron['"]|require\(['"]electron['"]\)/.test(readFileSync(join(root, 'src-main', f), 'utf8')));
    expect(offenders).toEqual([]);
    const html = readFileSync(join(root, 'src-renderer', 'index.html'), 'utf8');
    expect(html).toMatch(/http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self';/);
  });
});
