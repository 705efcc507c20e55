/**
 * Token label lexicons (manifest `lexicons`, made by training/guidance/lexicon.py): log p(label | token) for the
 * labels a POS template or phrase span asks for at each text position. A lexicon is the exact guidance of a head
 * that reads one token: adding weight x log p(label_i | v) to every candidate v at position i. Both families use the
 * same term: the masked family adds it to the denoiser's logits (families/masked/guidance.ts), the continuous family
 * to the rounding scores -||x0 - e_v||^2 when it clamps and rounds (families/continuous/index.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LexiconEntry } from './bundle-schema';
import { buildTargets, GuidanceError, type SoftTarget } from './guidance';

/** A term per segment position and token: [length, V] row-major (V: the tokenizer's size). */
export interface LocalTerm {
  values: Float32Array;
  V: number;
}

/** A lexicon's table, read and size-checked once per file. */
const tables = new Map<string, Float32Array>();
function lexiconTable(dir: string, l: LexiconEntry): Float32Array {
  const path = join(dir, l.file);
  let t = tables.get(path);
  if (!t) {
    const buf = readFileSync(path);
    const want = l.shape[0] * l.shape[1] * 4;
    if (buf.byteLength !== want) throw new GuidanceError(`${l.file}: ${buf.byteLength} bytes, expected ${want} (float32 [${l.shape.join(', ')}])`);
    // little-endian float32 rows; copied so the table is aligned whatever the Buffer's offset
    t = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + want));
    tables.set(path, t);
  }
  return t;
}

/**
 * The lexicons' term over a segment of `segLength` positions: for every position a POS or span constraint names,
 * w x log p(its label | v), w = the constraint's weight x `strength` x the lexicon's weight; and after each span,
 * w x log(1 - p(I-label | v)), so that the chunk ends where the span does. Summed over constraints; null when no
 * constraint has a lexicon. Not annealed: the label a template asks for holds at the last step as at the first.
 */
export function lexiconTerm(dir: string, lexicons: LexiconEntry[], soft: SoftTarget[], strength: number, segLength: number): LocalTerm | null {
  let out: LocalTerm | null = null;
  for (const c of soft) {
    if (c.kind !== 'pos' && c.kind !== 'spans') continue;
    const l = lexicons.find((x) => x.control === c.kind);
    const w = (c.weight ?? 1) * strength * (l?.weight ?? 0);
    if (!l || w === 0) continue;
    const table = lexiconTable(dir, l);
    const [V, C] = l.shape;
    const { target, mask } = buildTargets({ labels: l.labels }, c, segLength);
    out ??= { values: new Float32Array(segLength * V), V };
    const add = (i: number, f: (logp: number) => number, col: number) => {
      const row = out!.values.subarray(i * V, (i + 1) * V);
      for (let v = 0; v < V; v++) row[v]! += w * f(table[v * C + col]!);
    };
    for (let i = 0; i < segLength; i++) if (mask![i]) add(i, (lp) => lp, target.subarray(i * C, (i + 1) * C).indexOf(1));
    if (c.kind === 'spans') {
      for (const [, e, lab] of c.spans) {
        const col = l.labels.indexOf(`I-${lab}`);
        if (e + 1 < segLength && !mask![e + 1] && col >= 0) add(e + 1, (lp) => Math.log(Math.max(1 - Math.exp(lp), 1e-9)), col);
      }
    }
  }
  return out;
}

/** The verdict's words for a control a lexicon serves. */
export const LEXICON_DETAIL = 'the log-probability of each position\'s label given the token (a token label lexicon), added to every candidate token\'s score';
