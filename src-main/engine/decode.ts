/** From canvas token ids to what an output shows (docs/ARCHITECTURE.md, "Canvas layout"), for every family alike. */
import type { FamilyManifestBase } from './families/family';
import { END, type Tokenizer } from './tokenizer';

export interface Decoded {
  recordText: string;
  /** The text segment up to its first <end>, without whitespace before its first word. */
  text: string;
  textIds: number[];
  /** The surface of each of textIds, as `text` shows it (the first without its leading whitespace). */
  pieces: string[];
}

/**
 * Decode one canvas (tokens[off .. off + N)). `surface` renders a position (default: the token's surface): the
 * masked family shows a still-masked position as a mask glyph in its progress snapshots.
 */
export function decodeCanvas(
  tokens: ArrayLike<number>, off: number, bundle: { manifest: FamilyManifestBase; tokenizer: Tokenizer },
  surface?: (position: number, id: number) => string | null,
): Decoded {
  const segs = bundle.manifest.canvas.segments;
  const rec = segs.find((s) => s.name === 'record');
  const txt = segs.find((s) => s.name === 'text')!;
  const show = (pos: number) => {
    const id = tokens[off + pos]!;
    return surface?.(pos, id) ?? bundle.tokenizer.surface(id);
  };
  let recordText = '';
  if (rec) for (let i = 0; i < rec.length; i++) recordText += show(rec.start + i);
  const textIds: number[] = [];
  const pieces: string[] = [];
  let text = '';
  /** Whether `text` has a character other than whitespace yet. */
  let begun = false;
  for (let i = 0; i < txt.length; i++) {
    const id = tokens[off + txt.start + i]!;
    const shown = surface?.(txt.start + i, id) ?? null;
    if (shown !== null) {
      text += shown;
      begun ||= /\S/.test(shown);
      continue;
    }
    if (id === END) break;
    // a text does not begin with whitespace: a guided text's first token can be a word's space-prefixed piece
    // (" Less than £20 ...": the POS lexicon rates " Less" an adjective as much as "Less"); it shows without it
    const piece: string = begun ? bundle.tokenizer.surface(id) : bundle.tokenizer.surface(id).trimStart();
    textIds.push(id);
    pieces.push(piece);
    text += piece;
    begun ||= piece !== '';
  }
  return { recordText, text, textIds, pieces };
}

export function parseRecord(s: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(s) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
