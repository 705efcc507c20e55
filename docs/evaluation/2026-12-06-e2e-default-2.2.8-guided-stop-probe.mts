// The guided-stop probe of 2026-12-06-e2e-default-2.2.8.md. Per guided output: every candidate's classifier score
// (a run with 4 candidates) and every candidate's evaluator verdict (a run of 4x the samples, one each; candidate c
// of output j = plain sample j + c*samples).
//   npx tsx docs/evaluation/2026-12-06-e2e-default-2.2.8-guided-stop-probe.mts <eval samples.jsonl> [per control] [controls] [out.jsonl]
// <eval samples.jsonl>: an `eval --samples-out` file at seed 0; its guided targets are the probe's.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../../src-main/engine/index';
import type { GeneratedOutput } from '../../src-main/engine/types';

const rows = readFileSync(process.argv[2]!, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const perControl = Number(process.argv[3] ?? 20);
const controls = (process.argv[4] ?? 'pos,spans,attribute,length,sentiment').split(',');
const out = process.argv[5] ?? 'guided-stop-probe.jsonl';
const e = createEngine({ modelDirs: [fileURLToPath(new URL('../../models', import.meta.url))] });
const lines: string[] = [];
for (const control of controls) {
  const targets = rows.filter((r) => r.seed === 0 && r.guided && r.control === control).filter((_, i) => i % 4 === 0).slice(0, perControl).map((r) => r.target);
  for (let ti = 0; ti < targets.length; ti++) {
    const sampler = { steps: 40, spacing: 1, method: 'ancestral', seed: 1000 + ti };
    const run = async (samples: number, candidates: number) => {
      const outs: GeneratedOutput[] = [];
      await e.generate({ model: 'e2e-default', device: 'cpu', constraints: { version: 1, constraints: targets[ti], sampler: { ...sampler, samples, candidates } } as never }, { onOutput: (o) => outs.push(o) });
      return outs.sort((a, b) => a.index - b.index);
    };
    const k4 = await run(4, 4);
    const k1 = await run(16, 1);
    for (const o of k4) {
      const own = [0, 1, 2, 3].map((c) => k1[o.index + 4 * c]!);
      lines.push(JSON.stringify({ control, target: ti, output: o.index, scores: o.consensus?.scores, chosen: o.consensus?.chosen, success: own.map((x) => x.constraints.every((c) => c.satisfied)), fluency: own.map((x) => x.fluency) }));
    }
    writeFileSync(out, lines.join('\n') + '\n');
    process.stderr.write(`${control} ${ti + 1}/${targets.length}\n`);
  }
}
await e.dispose();
