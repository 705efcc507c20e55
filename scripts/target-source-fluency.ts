/**
 * The fluency of the dev texts the evaluation's control targets were taken from, per control, under a bundle's
 * scorer: the perplexity a guided output would score if it were the very text its target came from. `dlm-studio
 * eval` compares guided outputs with the unguided pool; this is the other yardstick (docs/evaluation).
 * Usage: tsx scripts/target-source-fluency.ts [--model models/e2e-masked] [--targets tests/fixtures/eval/targets.json]
 *        [--per-control 40]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { perplexities } from '../src-main/engine/scorer';
import { Tokenizer } from '../src-main/engine/tokenizer';
import { arg } from './arg';

const dir = arg('--model', 'models/e2e-masked');
const targetsFile = arg('--targets', 'tests/fixtures/eval/targets.json');
const perControl = Number(arg('--per-control', '40'));
if (!Number.isInteger(perControl) || perControl < 1) throw new Error(`--per-control: ${perControl} is not a positive integer`);

const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { scorer?: { file: string; max_len: number; bos: number; eos: number } };
if (!manifest.scorer) throw new Error(`${dir}/manifest.json: the bundle has no scorer`);
const tokenizer = Tokenizer.fromJSON(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')));
const session = await ort.InferenceSession.create(join(dir, manifest.scorer.file), { intraOpNumThreads: 1 });
const targets = (JSON.parse(readFileSync(targetsFile, 'utf8')) as { targets: { control: string; source?: { text?: string } }[] }).targets;

const byControl = new Map<string, string[]>();
for (const t of targets) if (t.source?.text) byControl.set(t.control, [...(byControl.get(t.control) ?? []), t.source.text]);
console.log('control\ttexts\tmean perplexity\tmedian');
for (const [control, texts] of byControl) {
  const p = await perplexities(session, texts.slice(0, perControl).map((t) => tokenizer.encode(t)), manifest.scorer.max_len, manifest.scorer.bos, manifest.scorer.eos);
  const sorted = [...p].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  console.log(`${control}\t${p.length}\t${(p.reduce((a, b) => a + b, 0) / p.length).toFixed(2)}\t${median.toFixed(2)}`);
}
await session.release();
