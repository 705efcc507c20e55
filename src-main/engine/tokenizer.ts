/**
 * Surface-piece tokenizer (docs/ARCHITECTURE.md, "Tokenizer"). Must agree exactly with training/dlm_train/tokenizer.py.
 * Strings are scanned by Unicode code point, as Python does.
 */
export const PAD = 0;
export const SEP = 1;
export const END = 2;
export const UNK = 3;
export const SPECIAL_NAMES = ['<pad>', '<sep>', '<end>', '<unk>'] as const;
const SPECIAL_SURFACES = ['', '', '', '\ufffd'];
export const SPECIALS = { pad: PAD, sep: SEP, end: END, unk: UNK } as const;

type CharClass = 'L' | 'D' | 'S' | 'W' | 'P';
const LETTER = /\p{L}/u;

function charClass(ch: string): CharClass {
  if (ch === ' ') return 'S';
  if (ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v') return 'W';
  if (ch >= '0' && ch <= '9' && ch.length === 1) return 'D';
  if (LETTER.test(ch)) return 'L';
  return 'P';
}

/** Split into pieces: an optional single leading space + a maximal run of one class among L/D/P; a lone space and
 * every other whitespace character are pieces on their own. */
export function pretokenize(s: string): string[] {
  const chars = Array.from(s);
  const classes = chars.map(charClass);
  const pieces: string[] = [];
  const n = chars.length;
  let i = 0;
  while (i < n) {
    let c = classes[i]!;
    if (c === 'W') {
      pieces.push(chars[i]!);
      i++;
      continue;
    }
    const start = i;
    if (c === 'S') {
      const next = classes[i + 1];
      if (next === 'L' || next === 'D' || next === 'P') {
        i++;
        c = next;
      } else {
        pieces.push(' ');
        i++;
        continue;
      }
    }
    let j = i + 1;
    while (j < n && classes[j] === c) j++;
    pieces.push(chars.slice(start, j).join(''));
    i = j;
  }
  return pieces;
}

export class TokenizerError extends Error {
  readonly code = 'BUNDLE_INVALID';
}

export class Tokenizer {
  readonly tokens: string[];
  private readonly index = new Map<string, number>();

  constructor(tokens: string[]) {
    for (let i = 0; i < 4; i++) {
      if (tokens[i] !== SPECIAL_NAMES[i]) {
        throw new TokenizerError(`vocab: tokens[${i}] must be ${SPECIAL_NAMES[i]}, got ${JSON.stringify(tokens[i])}`);
      }
    }
    this.tokens = tokens;
    for (let i = 4; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (typeof t !== 'string') throw new TokenizerError(`vocab: tokens[${i}] must be a string`);
      const prev = this.index.get(t);
      if (prev !== undefined) throw new TokenizerError(`vocab: duplicate token ${JSON.stringify(t)} at ids ${prev} and ${i}`);
      this.index.set(t, i);
    }
  }

  /** Parse a vocab.json object; errors name the field. */
  static fromJSON(obj: unknown, source = 'vocab.json'): Tokenizer {
    if (!obj || typeof obj !== 'object' || !Array.isArray((obj as { tokens?: unknown }).tokens)) {
      throw new TokenizerError(`${source}: field 'tokens' must be a list of strings`);
    }
    const specials = (obj as { specials?: Record<string, unknown> }).specials;
    const ok = specials && typeof specials === 'object'
      && Object.keys(specials).length === 4
      && Object.entries(SPECIALS).every(([k, v]) => specials[k] === v);
    if (!ok) throw new TokenizerError(`${source}: field 'specials' must be ${JSON.stringify(SPECIALS)}`);
    try {
      return new Tokenizer((obj as { tokens: string[] }).tokens);
    } catch (e) {
      throw new TokenizerError(`${source}: ${(e as Error).message}`);
    }
  }

  get size(): number {
    return this.tokens.length;
  }

  surface(id: number): string {
    return id < 4 ? SPECIAL_SURFACES[id]! : (this.tokens[id] ?? SPECIAL_SURFACES[UNK]!);
  }

  /** Id of a non-special vocabulary entry, if any. */
  lookup(piece: string): number | undefined {
    return this.index.get(piece);
  }

  encodePiece(piece: string): number[] {
    const id = this.index.get(piece);
    if (id !== undefined) return [id];
    return Array.from(piece, (ch) => this.index.get(ch) ?? UNK);
  }

  encode(s: string): number[] {
    const out: number[] = [];
    for (const p of pretokenize(s)) for (const id of this.encodePiece(p)) out.push(id);
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) s += this.surface(ids[i]!);
    return s;
  }
}
