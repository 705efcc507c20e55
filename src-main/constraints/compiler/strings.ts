/**
 * JSON string values: languages over the decoded characters (for minLength, pattern, format) and their encoding
 * into JSON string literals exactly as JSON.stringify writes them (`"` and `\` escaped, \b \f \n \r \t, other
 * controls as \u00xx in lower case, everything else literal). Lone surrogates are left out of the alphabet.
 */
import { CharSet, DFA, ENFA } from 'refa';
import type { Lang } from './lang';
import { MAX_CHAR, alt, chars, charSet, edgeSet, fromDfa, intersect, regexLang, rep, seq, toDfa, uncharged, withBudget } from './lang';

/** Any character a string may hold (every code point except lone surrogates). */
export const stringCharSet = (): CharSet => charSet([[0, 0xd7ff], [0xe000, MAX_CHAR]]);
export const stringChar = (): Lang => chars(stringCharSet());
export const stringContentAll = (): Lang => rep(stringChar(), 0, Infinity);

const SHORT: Record<number, string> = { 0x22: '"', 0x5c: '\\', 8: 'b', 9: 't', 10: 'n', 12: 'f', 13: 'r' };
const ESCAPED = charSet([[0, 0x1f], [0x22, 0x22], [0x5c, 0x5c]]);

function escapeOf(c: number): string {
  const s = SHORT[c];
  if (s !== undefined) return `\\${s}`;
  return `\\u${c.toString(16).padStart(4, '0')}`;
}

/** The language of JSON string literals whose decoded content is in `content`. */
export function encodeContent(content: Lang): Lang {
  const d: DFA = toDfa(intersect(content, stringContentAll()));
  const b = new ENFA.Builder(ENFA.nodeFactory);
  const map = new Map<DFA.ReadonlyNode, ENFA.Node>();
  const nodeOf = (n: DFA.ReadonlyNode): ENFA.Node => {
    let e = map.get(n);
    if (!e) {
      e = b.createNode();
      map.set(n, e);
    }
    return e;
  };
  const one = (c: number) => CharSet.fromCharacter(MAX_CHAR, c);
  // refa links two nodes at most once: collect the character sets per edge first
  const edges = edgeSet(b);
  const edge = edges.add;
  edge(b.initial, nodeOf(d.initial), one(0x22));
  for (const n of d.nodes()) {
    const from = nodeOf(n);
    if (d.finals.has(n as DFA.Node)) edge(from, b.final, one(0x22));
    // escape chains are shared per source node: "\" then the escape letter, or "u00" + two hex digits
    let bs: ENFA.Node | null = null;
    let u00: ENFA.Node | null = null;
    const hi: (ENFA.Node | null)[] = [null, null];
    for (const [range, to] of n.out) {
      const target = nodeOf(to);
      const set = CharSet.fromRange(MAX_CHAR, range);
      const plain = set.without(ESCAPED);
      if (!plain.isEmpty) edge(from, target, plain);
      const special = set.intersect(ESCAPED);
      if (special.isEmpty) continue;
      for (const c of special.characters()) {
        if (!bs) {
          bs = b.createNode();
          edge(from, bs, one(0x5c));
        }
        const esc = escapeOf(c);
        if (esc.length === 2) {
          edge(bs, target, one(esc.charCodeAt(1)));
          continue;
        }
        if (!u00) {
          const u = b.createNode();
          const u0 = b.createNode();
          u00 = b.createNode();
          edge(bs, u, one(0x75));
          edge(u, u0, one(0x30));
          edge(u0, u00, one(0x30));
        }
        const h = c >> 4;
        if (!hi[h]) {
          hi[h] = b.createNode();
          edge(u00, hi[h]!, one(0x30 + h));
        }
        edge(hi[h]!, target, one(esc.charCodeAt(5)));
      }
    }
  }
  edges.link();
  return ENFA.fromBuilder(b, { maxCharacter: MAX_CHAR });
}

// ---------------------------------------------------------------- formats (assertions, as ajv-formats "full" mode)

export const SUPPORTED_FORMATS = ['date', 'time', 'date-time', 'email', 'uuid', 'uri', 'ipv4'];

const formatCache = new Map<string, Lang>();

const DAY31 = '(?:0[1-9]|[12][0-9]|3[01])';
const DAY30 = '(?:0[1-9]|[12][0-9]|30)';
const LEAP_YEAR = '(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)';
const DATE = `(?:[0-9]{4}-(?:0[13578]|1[02])-${DAY31}|[0-9]{4}-(?:0[469]|11)-${DAY30}|[0-9]{4}-02-(?:0[1-9]|1[0-9]|2[0-8])|${LEAP_YEAR}-02-29)`;
// time (as ajv-formats): offsets "+hh", "+hhmm", "+hh:mm"; date-time (RFC 3339, as the test suite): "+hh:mm" only
const TZ = '(?:[zZ]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)';
const TZ_RFC3339 = '(?:[zZ]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])';
const TIME_CORE = '(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?';

/**
 * Leap-second times "hh:mm:60[.fraction]offset" (as ajv-formats checks them: valid only when the time in UTC is
 * 23:59). The offset is a function of the local time, so the automaton remembers hh:mm: built directly as a DFA
 * (a trie of the 1440 local times, each with the trie of its own offsets) rather than through subset construction.
 */
function leapSecondLang(rfc3339: boolean): Lang {
  const pad = (n: number) => String(n).padStart(2, '0');
  interface T { kids: Map<number, T>; final: boolean; node?: DFA.Node }
  const mk = (): T => ({ kids: new Map(), final: false });
  const insert = (root: T, str: string): T => {
    let t = root;
    for (const ch of str) {
      const c = ch.codePointAt(0)!;
      let k = t.kids.get(c);
      if (!k) t.kids.set(c, (k = mk()));
      t = k;
    }
    return t;
  };
  const root = mk();
  const spell = (sign: string, h: number, m: number): string[] => {
    const out = [`${sign}${pad(h)}:${pad(m)}`];
    if (!rfc3339) out.push(`${sign}${pad(h)}${pad(m)}`);
    if (m === 0 && !rfc3339) out.push(`${sign}${pad(h)}`);
    if (sign === '+' && h === 0 && m === 0) out.push('z', 'Z');
    return out;
  };
  for (let hr = 0; hr <= 23; hr++) {
    for (let min = 0; min <= 59; min++) {
      const offsets: string[] = [];
      for (const sign of [1, -1]) {
        for (let tzH = 0; tzH <= 23; tzH++) {
          for (let tzM = 0; tzM <= 59; tzM++) {
            const utcMin = min - tzM * sign;
            if (utcMin !== 59 && utcMin !== -1) continue;
            const utcHr = hr - tzH * sign - (utcMin < 0 ? 1 : 0);
            if (utcHr !== 23 && utcHr !== -1) continue;
            offsets.push(...spell(sign > 0 ? '+' : '-', tzH, tzM));
          }
        }
      }
      if (offsets.length === 0) continue;
      const L = insert(root, `${pad(hr)}:${pad(min)}:60`);
      const offRoot = mk();
      for (const o of offsets) insert(offRoot, o).final = true;
      // fraction: L --.--> P --digit--> F --digit--> F; offsets follow L or F
      const P = mk();
      const F = mk();
      L.kids.set(0x2e, P);
      for (let d = 0x30; d <= 0x39; d++) {
        P.kids.set(d, F);
        F.kids.set(d, F);
      }
      for (const [c, k] of offRoot.kids) {
        L.kids.set(c, k);
        F.kids.set(c, k);
      }
    }
  }
  const b = new DFA.Builder(new DFA.LimitedNodeFactory(1_000_000));
  const seen = new Set<T>();
  const stack: T[] = [root];
  root.node = b.initial;
  seen.add(root);
  while (stack.length) {
    const t = stack.pop()!;
    if (t.final) b.makeFinal(t.node!);
    const byChild = new Map<T, number[]>();
    for (const [c, k] of t.kids) byChild.set(k, [...(byChild.get(k) ?? []), c]);
    for (const [k, cs] of byChild) {
      if (!seen.has(k)) {
        seen.add(k);
        k.node = b.createNode();
        stack.push(k);
      }
      b.linkNodes(t.node!, k.node!, CharSet.fromCharacters(MAX_CHAR, cs.sort((x, y) => x - y)));
    }
  }
  const dfa = DFA.fromBuilder(b, { maxCharacter: MAX_CHAR });
  dfa.minimize();
  return fromDfa(dfa);
}

function timeLang(rfc3339: boolean): Lang {
  return alt(regexLang(TIME_CORE + (rfc3339 ? TZ_RFC3339 : TZ), false, 'format'), leapSecondLang(rfc3339));
}

// RFC 3986 URI (absolute, with scheme), ASCII only, as ajv-formats' "uri" requires ("/" or ":" present).
const UNRESERVED = "A-Za-z0-9\\-._~";
const SUBDELIMS = "!$&'()*+,;=";
const PCT = '%[0-9A-Fa-f]{2}';
const PCHAR = `(?:[${UNRESERVED}${SUBDELIMS}:@]|${PCT})`;
const DEC_OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const IPV4 = `${DEC_OCTET}(?:\\.${DEC_OCTET}){3}`;
const H16 = '[0-9A-Fa-f]{1,4}';
const LS32 = `(?:${H16}:${H16}|${IPV4})`;
const IPV6 = [
  `(?:${H16}:){6}${LS32}`,
  `::(?:${H16}:){5}${LS32}`,
  `(?:${H16})?::(?:${H16}:){4}${LS32}`,
  `(?:(?:${H16}:){0,1}${H16})?::(?:${H16}:){3}${LS32}`,
  `(?:(?:${H16}:){0,2}${H16})?::(?:${H16}:){2}${LS32}`,
  `(?:(?:${H16}:){0,3}${H16})?::${H16}:${LS32}`,
  `(?:(?:${H16}:){0,4}${H16})?::${LS32}`,
  `(?:(?:${H16}:){0,5}${H16})?::${H16}`,
  `(?:(?:${H16}:){0,6}${H16})?::`,
].join('|');
const IP_LITERAL = `\\[(?:${IPV6}|[Vv][0-9A-Fa-f]+\\.[${UNRESERVED}${SUBDELIMS}:]+)\\]`;
const HOST = `(?:${IP_LITERAL}|${IPV4}|(?:[${UNRESERVED}${SUBDELIMS}]|${PCT})*)`;
const AUTHORITY = `(?:(?:[${UNRESERVED}${SUBDELIMS}:]|${PCT})*@)?${HOST}(?::[0-9]*)?`;
const PATH_ABEMPTY = `(?:/${PCHAR}*)*`;
const HIER = `(?://${AUTHORITY}${PATH_ABEMPTY}|/(?:${PCHAR}+(?:/${PCHAR}*)*)?|${PCHAR}+(?:/${PCHAR}*)*|)`;
const URI = `[A-Za-z][A-Za-z0-9+\\-.]*:${HIER}(?:\\?(?:${PCHAR}|[/?])*)?(?:#(?:${PCHAR}|[/?])*)?`;

// RFC 5321 mailbox (ASCII): dot-atom or quoted local part; domain name or [IPv4] / [IPv6:...] address literal.
const ATEXT = "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]";
const QUOTED_LOCAL = '"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\x20-\\x7e])*"';
const EMAIL = `(?:${ATEXT}+(?:\\.${ATEXT}+)*|${QUOTED_LOCAL})@(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\\.)*[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?|\\[(?:IPV4_LITERAL|IPv6:(?:IPV6_LITERAL))\\])`;
const UUID = '[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}';

/** Decoded-content language of a supported format. */
export function formatLang(name: string): Lang {
  const hit = formatCache.get(name);
  if (hit) return hit;
  // built once per process, independent of the schema: not charged to the schema's budget
  const l = uncharged(() => withBudget({ maxStates: 400_000, deadline: Date.now() + 60_000 }, () => buildFormat(name)));
  formatCache.set(name, l);
  return l;
}

const encodedFormatCache = new Map<string, Lang>();
/** The JSON string literals of a format (cached: formats are schema-independent). */
export function encodedFormat(name: string): Lang {
  const hit = encodedFormatCache.get(name);
  if (hit) return hit;
  const f = formatLang(name);
  const l = uncharged(() => withBudget({ maxStates: 400_000, deadline: Date.now() + 60_000 }, () => fromDfa(toDfa(encodeContent(f)))));
  encodedFormatCache.set(name, l);
  return l;
}

function buildFormat(name: string): Lang {
  let l: Lang;
  switch (name) {
    case 'date': l = regexLang(DATE, false, 'format'); break;
    case 'time': l = timeLang(false); break;
    case 'date-time': l = seq(regexLang(DATE, false, 'format'), chars('tT \t\n\r\f\v\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff'), timeLang(true)); break;
    case 'email': l = regexLang(EMAIL.replace('IPV4_LITERAL', IPV4).replace('IPV6_LITERAL', IPV6), false, 'format'); break;
    case 'uuid': l = regexLang(UUID, false, 'format'); break;
    case 'ipv4': l = regexLang(IPV4, false, 'format'); break;
    case 'uri': l = intersect(regexLang(URI, false, 'format'), regexLang('[/:]', true, 'format')); break;
    default: throw new Error(`format ${name} not supported`);
  }
  return fromDfa(toDfa(l));
}
