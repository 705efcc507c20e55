/**
 * The engine's view of the constraint compiler and evaluators (docs/ARCHITECTURE.md, "Compiler <-> engine
 * interface"). Until src-main/constraints/compiler lands this holds a minimal compile of its own: held tokens for
 * `record` and `text`, soft targets for the guided controls, no hard projectors, no evaluation.
 */
import type { ConstraintSet } from '../constraints/set';
import type { SoftTarget } from './guidance';
import type { Projector } from './sampler';
import type { Tokenizer } from './tokenizer';
import { END, PAD, SEP } from './tokenizer';
import type { ConstraintScore } from './types';

export const E2E_FIELD_ORDER = ['name', 'eatType', 'food', 'priceRange', 'customer rating', 'area', 'familyFriendly', 'near'];

export interface EngineModelInfo {
  vocab: string[];
  specials: { pad: number; sep: number; end: number; unk: number };
  canvas: { length: number; segments: { name: string; start: number; length: number; format?: string }[] };
  recordFields: Record<string, string[]>;
  tokenizer: Tokenizer;
}

export interface CompiledForEngine {
  hard: (Projector & { segment: string })[];
  held: { position: number; token: number }[];
  soft: SoftTarget[];
}

export class CompileError extends Error {
  readonly code = 'INVALID_INPUT';
  constructor(message: string, readonly path?: string) {
    super(message);
  }
}

export function canonicalRecord(value: Record<string, unknown>): string {
  const ordered: Record<string, unknown> = {};
  for (const k of E2E_FIELD_ORDER) if (k in value) ordered[k] = value[k];
  for (const k of Object.keys(value)) if (!(k in ordered)) ordered[k] = value[k];
  return JSON.stringify(ordered);
}

/** Hold a whole segment (tokens, optional terminal, then <pad>), and the <sep> between record and text. */
function holdSegment(model: EngineModelInfo, name: string, ids: number[], terminal: number | null, path: string): { position: number; token: number }[] {
  const seg = model.canvas.segments.find((s) => s.name === name);
  if (!seg) throw new CompileError(`${path}: this model has no ${name} segment`, path);
  const seq = terminal === null ? ids : [...ids, terminal];
  if (seq.length > seg.length) throw new CompileError(`${path}: ${seq.length} tokens do not fit the ${seg.length}-token ${name} segment`, path);
  const out: { position: number; token: number }[] = [];
  for (let i = 0; i < seg.length; i++) out.push({ position: seg.start + i, token: i < seq.length ? seq[i]! : PAD });
  const sep = model.canvas.segments.find((s) => s.name === 'sep');
  if (sep) out.push({ position: sep.start, token: SEP });
  return out;
}

export async function compileForEngine(set: ConstraintSet, model: EngineModelInfo): Promise<CompiledForEngine> {
  const held: { position: number; token: number }[] = [];
  const soft: SoftTarget[] = [];
  set.constraints.forEach((c, index) => {
    if (!c.enabled) return;
    const path = `constraints[${index}]`;
    switch (c.kind) {
      case 'record':
        held.push(...holdSegment(model, 'record', model.tokenizer.encode(canonicalRecord(c.value)), null, `${path}.value`));
        break;
      case 'text':
        held.push(...holdSegment(model, 'text', model.tokenizer.encode(c.value), END, `${path}.value`));
        break;
      case 'pos':
        soft.push({ kind: 'pos', tags: c.tags.map((t) => (t === '*' ? null : t)), weight: c.weight, index });
        break;
      case 'attribute':
        soft.push({ kind: 'attribute', field: c.field, value: c.value, weight: c.weight, index });
        break;
      case 'length':
        soft.push({ kind: 'length', tokens: c.tokens, weight: c.weight, index });
        break;
      case 'sentiment':
        // set.ts's common optional `label` (a UI caption) shares the name with the sentiment label
        if (c.label) soft.push({ kind: 'sentiment', label: c.label, weight: c.weight, index });
        break;
      case 'spans':
        soft.push({ kind: 'spans', spans: c.spans, weight: c.weight, index });
        break;
      default:
        break;
    }
  });
  return { hard: [], held, soft };
}

export async function evaluateForEngine(_set: ConstraintSet, outputs: { text: string; record: Record<string, unknown> | null }[]): Promise<ConstraintScore[][]> {
  return outputs.map(() => []);
}
