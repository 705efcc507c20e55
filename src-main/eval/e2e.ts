/** Reading the E2E CSV files: `mr,ref` rows, MRs as `field[value], ...`, grouped by MR for multi-reference BLEU. */
import { readFileSync } from 'node:fs';

export const E2E_FIELDS = ['name', 'eatType', 'food', 'priceRange', 'customer rating', 'area', 'familyFriendly', 'near'] as const;

export type E2ERecord = Record<string, string>;

export interface E2ERow {
  /** 1-based line of the row in the file (header is line 1). */
  line: number;
  mr: string;
  record: E2ERecord;
  text: string;
}

/** RFC 4180 CSV: quoted fields with "" escapes, commas and newlines inside quotes. */
export function parseCsv(content: string, source = 'csv'): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  const s = content.charCodeAt(0) === 0xfeff ? content.slice(1) : content;
  while (i < s.length) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') {
      quoted = true;
      i++;
    } else if (ch === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (ch === '\n' || ch === '\r') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += ch === '\r' && s[i + 1] === '\n' ? 2 : 1;
    } else {
      field += ch;
      i++;
    }
  }
  if (quoted) throw new Error(`${source}: unterminated quoted field at end of file`);
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const MR_ITEM = /\s*([^[\],]+?)\s*\[([^\]]*)\]\s*(?:,|$)/y;

/** `name[The Vaults], eatType[pub]` -> {name: "The Vaults", eatType: "pub"}; errors name the source and position. */
export function parseMr(mr: string, where = 'mr'): E2ERecord {
  const out: E2ERecord = {};
  const s = mr.trim();
  let pos = 0;
  while (pos < s.length) {
    MR_ITEM.lastIndex = pos;
    const m = MR_ITEM.exec(s);
    if (!m) throw new Error(`${where}: cannot parse meaning representation at char ${pos}: ${JSON.stringify(s.slice(pos, pos + 40))}`);
    const key = m[1]!;
    if (key in out) throw new Error(`${where}: field ${JSON.stringify(key)} appears twice`);
    out[key] = m[2]!;
    pos = MR_ITEM.lastIndex;
  }
  return out;
}

/** Keys in E2E field order first (the canonical record order of the canvas), then any others. */
export function canonicalRecord(rec: E2ERecord): E2ERecord {
  const keys = [...E2E_FIELDS.filter((k) => k in rec), ...Object.keys(rec).filter((k) => !(E2E_FIELDS as readonly string[]).includes(k))];
  const out: E2ERecord = {};
  for (const k of keys) out[k] = rec[k]!;
  return out;
}

export function readE2ECsv(path: string): E2ERow[] {
  const rows = parseCsv(readFileSync(path, 'utf8'), path);
  const header = rows[0];
  if (!header) throw new Error(`${path}: empty file`);
  const mrCol = header.indexOf('mr');
  const refCol = header.indexOf('ref');
  if (mrCol < 0 || refCol < 0) throw new Error(`${path}: needs columns "mr" and "ref" (found: ${header.join(', ')})`);
  const out: E2ERow[] = [];
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    if (row.length === 1 && row[0] === '') continue;
    const where = `${path}:${r + 1}`;
    if (row.length <= Math.max(mrCol, refCol)) throw new Error(`${where}: expected ${header.length} columns, got ${row.length}`);
    const mr = row[mrCol]!;
    out.push({ line: r + 1, mr, record: canonicalRecord(parseMr(mr, `${where}: column "mr"`)), text: row[refCol]! });
  }
  if (out.length === 0) throw new Error(`${path}: no rows`);
  return out;
}

export interface MrGroup {
  mr: string;
  record: E2ERecord;
  refs: string[];
}

/** Group rows by their MR string in first-seen order (the official multi-reference grouping). */
export function groupByMr(rows: E2ERow[]): MrGroup[] {
  const byMr = new Map<string, MrGroup>();
  for (const r of rows) {
    let g = byMr.get(r.mr);
    if (!g) {
      g = { mr: r.mr, record: r.record, refs: [] };
      byMr.set(r.mr, g);
    }
    g.refs.push(r.text);
  }
  return [...byMr.values()];
}
