/**
 * `dlm-studio corpus slot-exact`: the pairs of an E2E-style corpus (CSV with "mr" and "ref") whose text expresses
 * every field of its MR and no other, by the eval's slot matcher (eval/slots.ts). Crowd-written references often drop
 * a field or state another value (9.6% of the dev references' fields under the matcher), and a model trained on them
 * learns to drop fields too; training on the exact pairs is what training/README.md describes for e2e-masked 1.1.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readE2ECsv } from '../../eval/e2e';
import { errorCount, slotErrors } from '../../eval/slots';
import { CliError, requirePositional, type CliCommand } from '../framework';

const usage = `usage: dlm-studio corpus slot-exact --in <corpus.csv> --out <exact.csv> [--model <id>]

Writes the pairs whose text expresses every field of its MR and no other (no field missing, no other value, no
field added), by the slot matcher of dlm-studio eval. The field values that count as another value or an added
field are the record schema of --model (default e2e-masked). Prints how many pairs were kept and why the others
were not.`;

const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;

export const corpusCommand: CliCommand = {
  name: 'corpus',
  summary: 'prepare a training corpus (slot-exact: the pairs whose text says every field and no other)',
  usage,
  options: { in: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' } },
  async run(ctx, args) {
    const action = requirePositional(args, 0, 'an action (slot-exact)', usage);
    if (action !== 'slot-exact') throw new CliError('USAGE', `unknown action ${JSON.stringify(action)}\n\n${usage}`);
    const input = args.values.in;
    const output = args.values.out;
    if (typeof input !== 'string' || !input) throw new CliError('USAGE', `missing --in\n\n${usage}`);
    if (typeof output !== 'string' || !output) throw new CliError('USAGE', `missing --out\n\n${usage}`);
    const id = typeof args.values.model === 'string' ? args.values.model : 'e2e-masked';
    const model = (await ctx.client().call('models.list')).find((m) => m.id === id);
    if (!model || model.error) throw new CliError('INVALID_INPUT', `--model: ${model?.error ?? `no bundle ${JSON.stringify(id)}`}`);
    if (!Object.keys(model.recordFields).length) throw new CliError('INVALID_INPUT', `--model: bundle ${id} has no record schema to tell other values from`);
    let rows;
    try {
      rows = readE2ECsv(resolve(input));
    } catch (e) {
      throw new CliError('INVALID_INPUT', `--in: ${(e as Error).message}`);
    }
    const counts = { pairs: rows.length, kept: 0, missing: 0, wrong: 0, added: 0 };
    const lines = ['mr,ref'];
    for (const r of rows) {
      const e = slotErrors(r.record, r.text, model.recordFields);
      if (errorCount(e) === 0) {
        counts.kept++;
        lines.push(`${quote(r.mr)},${quote(r.text)}`);
      } else if (e.wrong) counts.wrong++;
      else if (e.added) counts.added++;
      else counts.missing++;
    }
    writeFileSync(resolve(output), `${lines.join('\n')}\n`);
    if (ctx.json) ctx.out(JSON.stringify(counts));
    else ctx.out(`${counts.kept} of ${counts.pairs} pairs kept -> ${resolve(output)}; left out: ${counts.wrong} writing another value of a field, ${counts.added} adding a field, ${counts.missing} leaving one out`);
    return 0;
  },
};
