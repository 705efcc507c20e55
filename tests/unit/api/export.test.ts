import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCsv, toCsv } from '../../../src-main/export/csv';
import { writeFileAtomic } from '../../../src-main/export/atomic';
import { detectFormat } from '../../../src-main/export';

describe('CSV', () => {
  it('round-trips fields with commas, quotes, newlines, CR, leading spaces and unicode', () => {
    const rows = [
      ['a,b', 'say "hi"', 'line1\nline2', 'cr\r\nlf'],
      [' lead', 'trail ', '', 'Café £20-25 ✓'],
    ];
    expect(parseCsv(toCsv(['h1', 'h2', 'h3', 'h4'], rows))).toEqual([['h1', 'h2', 'h3', 'h4'], ...rows]);
  });

  it('accepts LF line ends, a BOM and a missing final newline', () => {
    expect(parseCsv('\uFEFFa,b\n1,2')).toEqual([['a', 'b'], ['1', '2']]);
  });

  it('names the line of a malformed quote', () => {
    expect(() => parseCsv('a,b\n"open,2\n')).toThrow(/line \d+: unterminated quoted field/);
    expect(() => parseCsv('a,b\n"x"y,2\n')).toThrow(/line 2: unexpected character after closing quote/);
  });
});

describe('writeFileAtomic', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-atomic-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces the file in one step and leaves no temp file', () => {
    const file = join(dir, 'sub', 'out.txt');
    writeFileAtomic(file, 'first');
    const r = writeFileAtomic(file, 'second, longer content');
    expect(readFileSync(file, 'utf8')).toBe('second, longer content');
    expect(r.bytes).toBe(22);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['out.txt']);
  });

  it('leaves the old file untouched and cleans up when the rename fails', () => {
    const target = join(dir, 'is-a-dir');
    writeFileSync(join(dir, 'keep.txt'), 'old');
    // renaming a file over a non-empty directory fails
    writeFileAtomic(join(target, 'x'), 'x');
    expect(() => writeFileAtomic(target, 'new')).toThrow();
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('old');
  });
});

describe('detectFormat', () => {
  it('recognises the three export formats', () => {
    expect(detectFormat('{"type":"recipe"}\n')).toBe('jsonl');
    expect(detectFormat('run_id,status\n')).toBe('csv');
    expect(detectFormat('# DLM Studio export\n```json dlm-studio-recipe\n{}\n```')).toBe('markdown');
  });
});
