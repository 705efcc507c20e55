/**
 * Canonical JSON numbers (as JSON.stringify writes them) and exact range / divisibility languages over them.
 *
 * JSON.stringify writes a finite double either in decimal form (1e-7 <= |x| < 1e21: "-12", "0.5", "0.000001") or
 * in exponent form ("1e+21", "1.5e-7"); never "-0", never trailing fraction zeros. The compiler splits numbers into
 * INT (canonical integers within +-(2^53-1), the only integers `type: integer` produces) and FRAC (every other
 * canonical number: non-integers and exponent forms).
 */
import type { Lang } from './lang';
import { alt, chars, empty, eps, intersect, lit, rep, seq } from './lang';
import { ENFA, CharSet } from 'refa';
import { MAX_CHAR } from './lang';

export const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const D = () => chars('0-9');
const NZ = () => chars('1-9');

/** Decimal strings (no sign, no leading zeros) of the integers in [lo, hi], lo <= hi, both >= 0. */
export function natRange(lo: bigint, hi: bigint): Lang {
  if (lo > hi) return empty();
  const a = lo.toString();
  const b = hi.toString();
  if (a.length === b.length) return sameLen(a, b);
  const parts: Lang[] = [sameLen(a, '9'.repeat(a.length))];
  for (let n = a.length + 1; n < b.length; n++) parts.push(seq(NZ(), rep(D(), n - 1, n - 1)));
  parts.push(sameLen('1' + '0'.repeat(b.length - 1), b));
  return alt(...parts);
}

const digitRange = (x: number, y: number): Lang => (x > y ? empty() : chars(`${x}-${y}`));

/** Digit strings of equal length n with a <= s <= b (a, b of length n; leading digit handled by caller's values). */
function sameLen(a: string, b: string): Lang {
  if (a === b) return lit(a);
  let p = 0;
  while (a[p] === b[p]) p++;
  const prefix = lit(a.slice(0, p));
  const da = Number(a[p]);
  const db = Number(b[p]);
  const r = a.length - p - 1;
  const lower = seq(lit(a[p]!), suffixGe(a.slice(p + 1)));
  const middle = seq(digitRange(da + 1, db - 1), rep(D(), r, r));
  const upper = seq(lit(b[p]!), suffixLe(b.slice(p + 1)));
  return seq(prefix, alt(lower, middle, upper));
}

/** Digit strings of length |s| that are >= s. */
function suffixGe(s: string): Lang {
  if (s.length === 0) return eps();
  if (/^0*$/.test(s)) return rep(D(), s.length, s.length);
  const d = Number(s[0]);
  return alt(seq(lit(s[0]!), suffixGe(s.slice(1))), seq(digitRange(d + 1, 9), rep(D(), s.length - 1, s.length - 1)));
}
/** Digit strings of length |s| that are <= s. */
function suffixLe(s: string): Lang {
  if (s.length === 0) return eps();
  if (/^9*$/.test(s)) return rep(D(), s.length, s.length);
  const d = Number(s[0]);
  return alt(seq(lit(s[0]!), suffixLe(s.slice(1))), seq(digitRange(0, d - 1), rep(D(), s.length - 1, s.length - 1)));
}

/** Canonical integers in [lo, hi] (JSON.stringify form: no "-0"). */
export function intRange(lo: bigint, hi: bigint): Lang {
  if (lo > hi) return empty();
  const parts: Lang[] = [];
  if (hi >= 0n) parts.push(natRange(lo > 0n ? lo : 0n, hi));
  if (lo < 0n) {
    const mLo = hi < 0n ? -hi : 1n;
    const mHi = -lo;
    if (mLo <= mHi) parts.push(seq(lit('-'), natRange(mLo, mHi)));
  }
  return alt(...parts);
}

export const intAll = (): Lang => intRange(-MAX_SAFE, MAX_SAFE);

/** Canonical non-integer numbers and exponent forms (every canonical number that is not an INT). */
export function fracAll(): Lang {
  const intPart = alt(lit('0'), seq(NZ(), rep(D(), 0, 20)));
  const fraction = seq(lit('.'), rep(D(), 0, Infinity), NZ());
  const decimal = seq(intPart, fraction);
  const mant = seq(NZ(), rep(seq(lit('.'), rep(D(), 0, Infinity), NZ()), 0, 1));
  const expo = seq(mant, lit('e'), chars('+-'), NZ(), rep(D(), 0, 2));
  return seq(rep(lit('-'), 0, 1), alt(decimal, expo));
}

/** Non-negative decimal integers (digit strings, no sign) divisible by m, as a DFA over the digits. */
function divisibleDigits(m: number): Lang {
  const b = new ENFA.Builder(ENFA.nodeFactory);
  const nodes = Array.from({ length: m }, () => b.createNode());
  b.linkNodes(b.initial, nodes[0]!, null);
  b.linkNodes(nodes[0]!, b.final, null);
  for (let r = 0; r < m; r++) {
    const byTarget = new Map<number, number[]>();
    for (let d = 0; d <= 9; d++) {
      const to = (r * 10 + d) % m;
      byTarget.set(to, [...(byTarget.get(to) ?? []), 0x30 + d]);
    }
    for (const [to, cs] of byTarget) b.linkNodes(nodes[r]!, nodes[to]!, CharSet.fromCharacters(MAX_CHAR, cs));
  }
  return ENFA.fromBuilder(b, { maxCharacter: MAX_CHAR });
}

/** Canonical integers divisible by the positive integer m. */
export function multipleOfInt(m: bigint): Lang {
  if (m === 1n) return intAll();
  const digits = divisibleDigits(Number(m));
  return intersect(intAll(), seq(rep(lit('-'), 0, 1), digits));
}

/** A JSON number as an exact fraction p/q (q > 0) from its decimal string; null if not a finite decimal. */
export function toRational(x: number): { p: bigint; q: bigint } | null {
  if (!Number.isFinite(x)) return null;
  const s = String(x);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(s);
  if (!m) return null;
  const frac = m[3] ?? '';
  const exp = Number(m[4] ?? '0') - frac.length;
  let p = BigInt(m[2]! + frac) * (m[1] ? -1n : 1n);
  let q = 1n;
  if (exp >= 0) p *= 10n ** BigInt(exp);
  else q = 10n ** BigInt(-exp);
  const g = gcd(p < 0n ? -p : p, q);
  return { p: p / g, q: q / g };
}
function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}

/** Smallest integer >= p/q and largest <= p/q. */
export function ceilDiv(p: bigint, q: bigint): bigint {
  const f = p / q;
  return p % q !== 0n && p > 0n ? f + 1n : f;
}
export function floorDiv(p: bigint, q: bigint): bigint {
  const f = p / q;
  return p % q !== 0n && p < 0n ? f - 1n : f;
}

// ---------------------------------------------------------------- bounds and divisibility on non-integers (FRAC)

const INT_PART_MAX = 10n ** 21n - 1n;
const FRAC_DIGITS = () => seq(rep(D(), 0, Infinity), NZ());

/** Fraction digit strings F (canonical: ending in 1-9) compared with Cf as decimals 0.F vs 0.Cf. */
function fracCmp(cf: string, op: 'gt' | 'lt'): Lang {
  const parts: Lang[] = [];
  for (let i = 0; i < cf.length; i++) {
    const d = Number(cf[i]);
    const range = op === 'gt' ? digitRange(d + 1, 9) : digitRange(0, d - 1);
    parts.push(seq(lit(cf.slice(0, i)), range, rep(D(), 0, Infinity)));
  }
  if (op === 'gt') parts.push(seq(lit(cf), rep(D(), 1, Infinity)));
  else for (let j = 1; j < cf.length; j++) parts.push(lit(cf.slice(0, j)));
  return intersect(alt(...parts), FRAC_DIGITS());
}

/** Unsigned decimals "I.F" (F canonical) with value > c (or >= when !strict), c = ci.cf >= 0. */
function decAbove(ci: bigint, cf: string, strict: boolean): Lang {
  const higherInt = seq(natRange(ci + 1n, INT_PART_MAX), lit('.'), FRAC_DIGITS());
  let sameInt: Lang;
  if (cf === '') sameInt = FRAC_DIGITS(); // any fraction > .0
  else sameInt = strict ? fracCmp(cf, 'gt') : alt(fracCmp(cf, 'gt'), lit(cf));
  return alt(higherInt, seq(lit(ci.toString()), lit('.'), sameInt));
}
/** Unsigned decimals "I.F" with value < c (or <=), c = ci.cf >= 0. */
function decBelow(ci: bigint, cf: string, strict: boolean): Lang {
  const lowerInt = ci > 0n ? seq(natRange(0n, ci - 1n), lit('.'), FRAC_DIGITS()) : empty();
  let sameInt: Lang;
  if (cf === '') sameInt = empty(); // .F > .0 always
  else sameInt = strict ? fracCmp(cf, 'lt') : alt(fracCmp(cf, 'lt'), lit(cf));
  return alt(lowerInt, seq(lit(ci.toString()), lit('.'), sameInt));
}

export class BoundNotExactError extends Error {}

/** Split a finite bound into sign, integer part and canonical fraction digits; null if it needs exponent notation. */
function splitBound(c: number): { neg: boolean; ci: bigint; cf: string } | null {
  if (c === 0) return { neg: false, ci: 0n, cf: '' };
  const s = String(Math.abs(c));
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return null;
  return { neg: c < 0, ci: BigInt(m[1]!), cf: m[2] ?? '' };
}

const EXP_TINY_POS = () => seq(NZ(), rep(seq(lit('.'), FRAC_DIGITS()), 0, 1), lit('e-'), NZ(), rep(D(), 0, 2));
const EXP_HUGE_POS = () => seq(NZ(), rep(seq(lit('.'), FRAC_DIGITS()), 0, 1), lit('e+'), NZ(), rep(D(), 0, 2));
const DEC_ANY = () => seq(alt(lit('0'), seq(NZ(), rep(D(), 0, 20))), lit('.'), FRAC_DIGITS());

/**
 * Canonical non-integer numbers (FRAC) x with x > c / x >= c (dir 'min') or x < c / x <= c (dir 'max').
 * Exact for bounds written without an exponent (1e-7 <= |c| < 1e21, or 0); other bounds throw BoundNotExactError.
 */
export function fracBound(c: number, dir: 'min' | 'max', strict: boolean): Lang {
  const b = splitBound(c);
  if (!b) throw new BoundNotExactError(`bound ${c} needs exponent notation`);
  const { neg, ci, cf } = b;
  const pos = (l: Lang) => l;
  const negl = (l: Lang) => seq(lit('-'), l);
  const parts: Lang[] = [];
  if (dir === 'min') {
    if (!neg) {
      // x >= c >= 0: positive decimals above; positive tiny only if c == 0; positive huge always
      parts.push(pos(decAbove(ci, cf, strict)), pos(EXP_HUGE_POS()));
      if (c === 0) parts.push(pos(EXP_TINY_POS()));
    } else {
      // c < 0: every positive; negatives -y with y < |c| (or <=)
      parts.push(pos(DEC_ANY()), pos(EXP_TINY_POS()), pos(EXP_HUGE_POS()));
      parts.push(negl(decBelow(ci, cf, strict)), negl(EXP_TINY_POS()));
    }
  } else if (neg) {
    // x <= c < 0: negatives -y with y > |c| (or >=), negative huge
    parts.push(negl(decAbove(ci, cf, strict)), negl(EXP_HUGE_POS()));
  } else {
    // c >= 0: every negative; positives below c; positive tiny if c > 0
    parts.push(negl(DEC_ANY()), negl(EXP_TINY_POS()), negl(EXP_HUGE_POS()));
    parts.push(pos(decBelow(ci, cf, strict)));
    if (c > 0) parts.push(pos(EXP_TINY_POS()));
    else if (c === 0 && !strict) { /* x <= 0: negatives only (0 itself is an INT) */ }
  }
  return alt(...parts);
}

/**
 * Canonical decimals (no exponent) that are multiples of p/q, where q divides 10^m for some m <= 12:
 * x is a multiple iff N = x * 10^m is an integer divisible by D = (10^m / q) * p. Exponent forms are excluded.
 * Returns null when q has prime factors other than 2 and 5 (or D is too large): not compiled.
 */
export function decimalMultiple(p: bigint, q: bigint): Lang | null {
  let m = 0;
  while (m <= 12 && (10n ** BigInt(m)) % q !== 0n) m++;
  if (m > 12) return null;
  const Dv = (10n ** BigInt(m) / q) * p;
  if (Dv > 10_000n) return null;
  const Dn = Number(Dv);
  // states: integer-part residue r (before '.'), then (r, j) after j fraction digits
  const b = new ENFA.Builder(ENFA.nodeFactory);
  const intNodes = Array.from({ length: Dn }, () => b.createNode());
  const fracNodes = Array.from({ length: m + 1 }, () => Array.from({ length: Dn }, () => b.createNode()));
  const edges = new Map<ENFA.Node, Map<ENFA.Node, number[]>>();
  const edge = (from: ENFA.Node, to: ENFA.Node, c: number) => {
    let e = edges.get(from);
    if (!e) edges.set(from, (e = new Map()));
    const l = e.get(to) ?? [];
    l.push(c);
    e.set(to, l);
  };
  const start = b.createNode();
  b.linkNodes(b.initial, start, null);
  edge(start, intNodes[0]!, 0x2d); // optional minus: from start, '-' goes to a fresh integer start
  for (let d = 0; d <= 9; d++) edge(start, intNodes[d % Dn]!, 0x30 + d);
  // after '-' we reuse intNodes[0] as "no digits yet"; leading-zero/canonical shape comes from intersecting with FRAC
  for (let r = 0; r < Dn; r++) {
    for (let d = 0; d <= 9; d++) edge(intNodes[r]!, intNodes[(r * 10 + d) % Dn]!, 0x30 + d);
    edge(intNodes[r]!, fracNodes[0]![r]!, 0x2e);
  }
  const pow10 = (k: number) => Number((10n ** BigInt(k)) % Dv);
  for (let j = 0; j <= m; j++) {
    for (let r = 0; r < Dn; r++) {
      if (j < m) for (let d = 0; d <= 9; d++) edge(fracNodes[j]![r]!, fracNodes[j + 1]![(r * 10 + d) % Dn]!, 0x30 + d);
      if (j >= 1 && (r * pow10(m - j)) % Dn === 0) b.linkNodes(fracNodes[j]![r]!, b.final, null);
    }
  }
  for (const [from, e] of edges) for (const [to, cs] of e) b.linkNodes(from, to, CharSet.fromCharacters(MAX_CHAR, [...new Set(cs)].sort((x, y) => x - y)));
  return intersect(ENFA.fromBuilder(b, { maxCharacter: MAX_CHAR }), fracAll());
}
