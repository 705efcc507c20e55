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
    for (let d = 0; d <= 9; d++) {
      const to = (r * 10 + d) % m;
      b.linkNodes(nodes[r]!, nodes[to]!, CharSet.fromCharacter(MAX_CHAR, 0x30 + d));
    }
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
