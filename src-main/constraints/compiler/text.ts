/**
 * Hard constraints on the text segment, as regular languages over the text's code points:
 *  - regex {pattern}: the text matches the JavaScript regular expression (u flag, search semantics as
 *    RegExp.prototype.test: anchor with ^...$ to match the whole text);
 *  - infill {template}: the text is the template with every "___" replaced by one or more words (runs of
 *    non-space characters separated by single spaces);
 *  - words {include, exclude}: each included word/phrase appears as a whole word (case-insensitive), no excluded
 *    one does. "Whole word": not preceded or followed by a letter or digit.
 * The same predicates, as RegExps, are what the evaluators check.
 */
import type { Lang } from './lang';
import { anyChar, intersect, minus, regexLang, rep } from './lang';

export const BLANK = '___';

/** Escape for a u-flag RegExp (only syntax characters may be escaped there). */
export function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** Whole-text regex source for an infill template. */
export function infillRegexSource(template: string): string {
  const parts = template.split(BLANK).map(escapeRegex);
  return `^${parts.join('\\S+(?: \\S+)*')}$`;
}

export function wordRegexSource(word: string): string {
  return `(?:^|[^\\p{L}\\p{N}])${escapeRegex(word)}(?:$|[^\\p{L}\\p{N}])`;
}

export const regexTextLang = (pattern: string): Lang => regexLang(pattern, true, 'pattern');

export const infillLang = (template: string): Lang => regexLang(infillRegexSource(template), true, 'template');

/** Whole-text form of "contains the word" without anchors inside groups (what the automaton compiles). */
function containsWordSource(word: string): string {
  return `(?:[^]*[^\\p{L}\\p{N}])?${escapeRegex(word)}(?:[^\\p{L}\\p{N}][^]*)?`;
}

export function wordsLang(include: readonly string[], exclude: readonly string[]): Lang {
  const all = rep(anyChar(), 0, Infinity);
  const inc = include.map((w) => regexLang(containsWordSource(w), false, 'include', 'iu'));
  let l = inc.length ? intersect(all, ...inc) : all;
  for (const w of exclude) l = minus(l, regexLang(containsWordSource(w), false, 'exclude', 'iu'));
  return l;
}

/** The evaluator side: does the text satisfy the constraint? */
export const testRegex = (pattern: string, text: string): boolean => new RegExp(pattern, 'u').test(text);
export const testInfill = (template: string, text: string): boolean => new RegExp(infillRegexSource(template), 'u').test(text);
export function testWords(include: readonly string[], exclude: readonly string[], text: string): { missing: string[]; present: string[] } {
  const has = (w: string) => new RegExp(wordRegexSource(w), 'iu').test(text);
  return { missing: include.filter((w) => !has(w)), present: exclude.filter(has) };
}
