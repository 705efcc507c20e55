/**
 * The engine's view of the constraint compiler and evaluators (docs/ARCHITECTURE.md, "Compiler <-> engine
 * interface"): compile a set into hard projectors, held tokens and soft targets; score outputs.
 */
import { compileConstraintSet, type Verdict } from '../constraints/compiler/index';
import { evaluateOutputs } from '../constraints/evaluators/index';
import type { ConstraintSet } from '../constraints/set';
import type { SoftTarget } from './guidance';
import type { Projector } from './projection';
import type { TokenAutomaton } from '../constraints/compiler/token-automaton';
import type { Tokenizer } from './tokenizer';
import { pretokenize, SEP } from './tokenizer';
import type { ConstraintScore } from './types';

export const E2E_FIELD_ORDER = ['name', 'eatType', 'food', 'priceRange', 'customer rating', 'area', 'familyFriendly', 'near'];

export interface EngineModelInfo {
  vocab: string[];
  specials: { pad: number; sep: number; end: number; unk: number };
  canvas: { length: number; segments: { name: string; start: number; length: number; format?: string }[] };
  recordFields: Record<string, string[]>;
  tokenizer: Tokenizer;
  /** Soft kinds the bundle's family cannot steer (reported in the verdicts). */
  unservedSoft?: { kinds: readonly string[]; detail: string };
  /** How the family serves a soft kind, when it says (the verdict's detail). */
  softDetail?: Readonly<Record<string, string>>;
  /** An attribute also holds the record segment to its value (the compiler's CompileModel.attributeRecord). */
  attributeRecord?: boolean;
}

export interface CompiledForEngine {
  /** With the segment's token automaton (the masked family's reachability needs it). */
  hard: (Projector & { segment: string; automaton: TokenAutomaton; constraints: number[] })[];
  held: { position: number; token: number }[];
  soft: SoftTarget[];
  verdicts: Verdict[];
}

export class CompileError extends Error {
  constructor(message: string, readonly path?: string, readonly code: 'INVALID_INPUT' | 'UNSUPPORTED_KEYWORD' = 'INVALID_INPUT') {
    super(message);
  }
}

export function canonicalRecord(value: Record<string, unknown>): string {
  const ordered: Record<string, unknown> = {};
  for (const k of E2E_FIELD_ORDER) if (k in value) ordered[k] = value[k];
  for (const k of Object.keys(value)) if (!(k in ordered)) ordered[k] = value[k];
  return JSON.stringify(ordered);
}

/** Compile through the constraint compiler; a constraint that fails to compile fails the run, named. */
export async function compileForEngine(set: ConstraintSet, model: EngineModelInfo): Promise<CompiledForEngine> {
  const compiled = compileConstraintSet(set, {
    vocab: model.vocab,
    specials: model.specials,
    canvas: model.canvas,
    recordFields: Object.keys(model.recordFields).length ? model.recordFields : undefined,
    encode: (t) => model.tokenizer.encode(t),
    unservedSoft: model.unservedSoft,
    softDetail: model.softDetail,
    attributeRecord: model.attributeRecord,
  });
  const bad = compiled.verdicts.find((v) => v.status === 'error');
  if (bad?.error) {
    const path = `constraints[${bad.index}]${bad.error.pointer ? ` ${bad.error.pointer}` : ''}`;
    throw new CompileError(`constraints[${bad.index}] (${bad.kind}): ${bad.error.message}`, path, bad.error.code === 'UNSUPPORTED_KEYWORD' ? 'UNSUPPORTED_KEYWORD' : 'INVALID_INPUT');
  }
  const held = [...compiled.held];
  // as the reference sampler does: a held record or text also holds the <sep> between them
  const sep = model.canvas.segments.find((s) => s.name === 'sep');
  if (sep && held.length && !held.some((h) => h.position === sep.start)) held.push({ position: sep.start, token: SEP });
  return { hard: compiled.hard, held, soft: compiled.soft, verdicts: compiled.verdicts };
}

/** Score outputs with the model-independent evaluators; span positions map through each output's own tokens. */
export async function evaluateForEngine(
  set: ConstraintSet,
  outputs: { text: string; record: Record<string, unknown> | null; textPieces?: string[] }[],
): Promise<ConstraintScore[][]> {
  if (!set.constraints.some((c) => c.enabled)) return outputs.map(() => []);
  const pieces = new Map<string, string[]>();
  for (const o of outputs) if (o.textPieces) pieces.set(o.text, o.textPieces);
  return evaluateOutputs(set, outputs.map((o) => ({ text: o.text, record: o.record })), {
    pieces: (text) => pieces.get(text) ?? pretokenize(text),
  });
}
