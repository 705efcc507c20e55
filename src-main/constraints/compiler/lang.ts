/**
 * Regular languages over Unicode code points, built with refa automata. Every language here is an ENFA that the
 * caller may reuse: combinators copy their operands, never mutate them.
 */
import { CharSet, DFA, ENFA, JS, TooManyNodesError, Transformers, transform } from 'refa';
import type { CharRange } from 'refa';
import { ConstraintCompileError, SchemaTooLargeError } from './errors';

export const MAX_CHAR = 0x10ffff;
export type Lang = ENFA;
const OPTS = { maxCharacter: MAX_CHAR } as const;

/** Limits on automaton size and compile time; exceeding them raises SchemaTooLargeError naming `where`. */
export interface Budget {
  /** Most DFA states any intermediate or final automaton may have. */
  maxStates: number;
  /** Date.now() after which compilation gives up. */
  deadline: number;
}
let budget: Budget = { maxStates: 20_000, deadline: Number.POSITIVE_INFINITY };
let where = '';

export function withBudget<T>(b: Budget, fn: () => T): T {
  const saved = budget;
  const savedWhere = where;
  budget = b;
  try {
    return fn();
  } finally {
    budget = saved;
    where = savedWhere;
  }
}
/** Set the schema pointer blamed by size/time errors; returns the previous one. */
export function setWhere(pointer: string): string {
  const prev = where;
  where = pointer;
  return prev;
}
/** Run fn without charging its time to the current budget (for schema-independent, cached work). */
export function uncharged<T>(fn: () => T): T {
  const t0 = Date.now();
  try {
    return fn();
  } finally {
    budget = { ...budget, deadline: budget.deadline + (Date.now() - t0) };
  }
}
export function checkDeadline(): void {
  if (Date.now() > budget.deadline) throw new SchemaTooLargeError(where, 'compile time limit exceeded');
}

/** Node factory for ENFA construction (refa's default stops at 10,000 nodes). */
const enfaFactory = (): ENFA.LimitedNodeFactory => new ENFA.LimitedNodeFactory(Math.max(200_000, budget.maxStates * 20));

export const cp = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0)!);

export function charSet(ranges: Iterable<[number, number]>): CharSet {
  const rs: CharRange[] = [];
  for (const [min, max] of ranges) rs.push({ min, max });
  return CharSet.empty(MAX_CHAR).union(rs);
}
/** Character class from a string of single characters and "a-z" ranges (no escaping: keep it simple). */
export function cls(spec: string): CharSet {
  const chars = cp(spec);
  const ranges: [number, number][] = [];
  for (let i = 0; i < chars.length; i++) {
    if (chars[i + 1] === 0x2d && i + 2 < chars.length) {
      ranges.push([chars[i]!, chars[i + 2]!]);
      i += 2;
    } else ranges.push([chars[i]!, chars[i]!]);
  }
  return charSet(ranges);
}

export const empty = (): Lang => ENFA.empty(OPTS);
/** The empty word (built with distinct initial and final nodes: refa's emptyWord() shares one node, which
 * appending to it does not handle). */
export function eps(): Lang {
  const b = new ENFA.Builder(ENFA.nodeFactory);
  b.linkNodes(b.initial, b.final, null);
  return ENFA.fromBuilder(b, OPTS);
}
export const chars = (set: CharSet | string): Lang => ENFA.fromCharSet(typeof set === 'string' ? cls(set) : set);
export const anyChar = (): Lang => ENFA.fromCharSet(CharSet.all(MAX_CHAR));

export function lit(s: string): Lang {
  const e = eps();
  for (const c of cp(s)) e.append(ENFA.fromCharSet(CharSet.fromCharacter(MAX_CHAR, c)));
  return e;
}

export function seq(...parts: Lang[]): Lang {
  return guard(() => {
    const e = eps();
    const f = enfaFactory();
    for (const p of parts) e.append(p, f);
    return e;
  });
}

export function alt(...parts: Lang[]): Lang {
  return guard(() => {
    const e = empty();
    const f = enfaFactory();
    for (const p of parts) e.union(p, undefined, f);
    return e;
  });
}

export function rep(p: Lang, min: number, max: number): Lang {
  if (max === 0) return eps();
  return guard(() => {
    const f = enfaFactory();
    const e = p.copy(f);
    if (!(min === 1 && max === 1)) e.quantify(min, max, false, f);
    return e;
  });
}
export const opt = (p: Lang): Lang => rep(p, 0, 1);

function guard<T>(fn: () => T): T {
  checkDeadline();
  try {
    return fn();
  } catch (e) {
    if (e instanceof TooManyNodesError) throw new SchemaTooLargeError(where, `automaton exceeds ${budget.maxStates} states`);
    throw e;
  }
}

/** Minimized DFA of a language (bounded by the budget). */
export function toDfa(l: Lang): DFA {
  return guard(() => {
    const d = DFA.fromFA(l, new DFA.LimitedNodeFactory(budget.maxStates));
    d.minimize();
    return d;
  });
}
export const fromDfa = (d: DFA): Lang => guard(() => ENFA.fromFA(d, enfaFactory()));
/** Determinize + minimize (keeps intermediate automata small). */
export const minimal = (l: Lang): Lang => fromDfa(toDfa(l));

export function intersect(...ls: Lang[]): Lang {
  if (ls.length === 0) throw new Error('intersect of nothing');
  let d = toDfa(ls[0]!);
  for (let i = 1; i < ls.length; i++) {
    const right = ls[i]!;
    d = guard(() => {
      const x = DFA.fromIntersection(d, right, new DFA.LimitedNodeFactory(budget.maxStates));
      x.minimize();
      return x;
    });
    if (d.isEmpty) break;
  }
  return fromDfa(d);
}

/** Words of `universe` that are not in `l`. */
export function minus(universe: Lang, l: Lang): Lang {
  const c = toDfa(l);
  guard(() => c.complement(new DFA.LimitedNodeFactory(budget.maxStates)));
  return intersect(universe, fromDfa(c));
}

export function isEmptyLang(l: Lang): boolean {
  return toDfa(l).isEmpty;
}
export function acceptsEmpty(l: Lang): boolean {
  return l.test([]);
}
export function disjoint(a: Lang, b: Lang): boolean {
  return toDfa(intersect(a, b)).isEmpty;
}

/** Left quotient by one character: { w | c w in L } (of a language given as a DFA). */
export function quotientDfa(d: DFA, c: number): Lang {
  const start = d.initial.out.get(c);
  if (!start) return empty();
  const base = d.transitionIterator();
  const it = { initial: start, getOut: base.getOut, isFinal: base.isFinal };
  return guard(() => ENFA.fromTransitionIterator(it, OPTS, enfaFactory()));
}
export const quotient = (l: Lang, c: number): Lang => quotientDfa(toDfa(l), c);

/**
 * Edges for an ENFA.Builder merged per node pair (refa links two nodes at most once): `add` unions the character
 * sets, `link` writes them into the builder; an empty set into the builder's final node becomes an epsilon edge.
 */
export function edgeSet(b: ENFA.Builder) {
  const edges = new Map<ENFA.Node, Map<ENFA.Node, CharSet>>();
  return {
    add(from: ENFA.Node, to: ENFA.Node, set: CharSet): void {
      let m = edges.get(from);
      if (!m) edges.set(from, (m = new Map()));
      const prev = m.get(to);
      m.set(to, prev ? prev.union(set) : set);
    },
    link(): void {
      for (const [from, m] of edges) for (const [to, set] of m) b.linkNodes(from, to, to === b.final && set.isEmpty ? null : set);
    },
  };
}

/** The language with every occurrence of character `from` replaced by `to` (a letter-to-letter homomorphism). */
export function mapChar(l: Lang, from: number, to: number): Lang {
  const d = toDfa(l);
  return guard(() => {
    const b = new ENFA.Builder(enfaFactory());
    const ids = new Map<DFA.ReadonlyNode, ENFA.Node>();
    const node = (n: DFA.ReadonlyNode) => {
      let e = ids.get(n);
      if (!e) ids.set(n, (e = n === d.initial ? b.initial : b.createNode()));
      return e;
    };
    const edges = edgeSet(b);
    for (const n of d.nodes()) {
      const x = node(n);
      if (d.finals.has(n as DFA.Node)) edges.add(x, b.final, CharSet.empty(MAX_CHAR));
      for (const [range, target] of n.out) {
        let set = CharSet.fromRange(MAX_CHAR, range);
        if (set.has(from)) set = set.without({ min: from, max: from }).union([{ min: to, max: to }]);
        edges.add(x, node(target), set);
      }
    }
    edges.link();
    return ENFA.fromBuilder(b, OPTS);
  });
}

/** A finite set of literal strings. */
export function words(strings: Iterable<string>): Lang {
  const ws = [...strings].map(cp);
  if (ws.length === 0) return empty();
  return guard(() => ENFA.fromWords(ws, OPTS, enfaFactory()));
}

/**
 * Language of a JavaScript regular expression (u flag, as JSON Schema's `pattern` and Ajv use it).
 * `search`: true for JSON Schema's unanchored search semantics (the pattern may match anywhere), false for a
 * whole-string match. Anchors and lookarounds refa can resolve are handled; others are refused.
 */
export function regexLang(source: string, search: boolean, keyword = 'pattern', flags = 'u'): Lang {
  const wrapped = search ? `^(?:[^]*?(?:${source})[^]*)$` : `^(?:${source})$`;
  let parser: JS.Parser;
  try {
    new RegExp(source, flags);
    parser = JS.Parser.fromLiteral({ source: wrapped, flags });
  } catch (e) {
    throw new ConstraintCompileError('INVALID_PATTERN', `${keyword} at #${where}: invalid regular expression /${source}/${flags}: ${(e as Error).message}`, keyword, where);
  }
  return guard(() => {
    let expression;
    try {
      ({ expression } = parser.parse({ assertions: 'parse', backreferences: 'throw', maxNodes: 100_000 }));
    } catch (e) {
      if (e instanceof TooManyNodesError) throw e;
      throw new ConstraintCompileError('INVALID_PATTERN', `${keyword} at #${where}: cannot compile /${source}/: ${(e as Error).message}`, keyword, where);
    }
    const simplify = Transformers.simplify({ ignoreOrder: true, ignoreAmbiguity: true });
    expression = transform(simplify, expression);
    expression = transform(Transformers.patternEdgeAssertions({ remove: true }), expression);
    expression = transform(simplify, expression);
    try {
      return ENFA.fromRegex(expression, OPTS, { assertions: 'throw' }, enfaFactory());
    } catch (e) {
      if (e instanceof TooManyNodesError) throw e;
      throw new ConstraintCompileError('INVALID_PATTERN', `${keyword} at #${where}: /${source}/ uses assertions that cannot be compiled to an automaton (${(e as Error).message})`, keyword, where);
    }
  });
}

/** Count of states of the minimized DFA. */
export function stateCount(l: Lang): number {
  return toDfa(l).countNodes();
}
