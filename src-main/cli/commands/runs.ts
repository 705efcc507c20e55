/** `dlm-studio runs list|show|export`: past runs and their outputs. */
import { resolve } from 'node:path';
import type { ExportFormat, RunStatus } from '../../api/contract';
import { EXPORT_FORMATS, RUN_STATUSES } from '../../api/contract';
import { writeFileAtomic } from '../../export';
import { CliError, intOption, requirePositional, table, type CliCommand, type ParsedArgs } from '../framework';

const usage = `usage: dlm-studio runs <list|show|export> [options]

  runs list [--status <s>] [--query <text>] [--limit <n>]
  runs show <run-id> [--outputs]                  a run's recipe, timings (and outputs)
  runs export <run-id>... --format <jsonl|csv|markdown> [--out <file>]
                                                  export runs with their recipes (atomic write, or stdout)`;

function runId(value: string, i: number): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new CliError('INVALID_INPUT', `run id #${i + 1} must be a positive integer (got ${JSON.stringify(value)})`);
  return Number(value);
}

function statusOption(args: ParsedArgs): RunStatus | undefined {
  const s = args.values.status;
  if (s === undefined) return undefined;
  if (!(RUN_STATUSES as unknown[]).includes(s)) throw new CliError('INVALID_INPUT', `--status must be one of ${RUN_STATUSES.join(', ')} (got ${JSON.stringify(s)})`);
  return s as RunStatus;
}

export const runsCommand: CliCommand = {
  name: 'runs',
  summary: 'list, show and export generation runs',
  usage,
  options: { status: { type: 'string' }, query: { type: 'string' }, limit: { type: 'string' }, outputs: { type: 'boolean' }, format: { type: 'string' }, out: { type: 'string' } },
  async run(ctx, args) {
    const sub = requirePositional(args, 0, 'a subcommand (list, show or export)', usage);
    const client = () => ctx.client();
    switch (sub) {
      case 'list': {
        const runs = await client().call('runs.list', { status: statusOption(args), query: args.values.query as string | undefined, limit: intOption(args, 'limit') });
        if (ctx.json) return ctx.out(JSON.stringify(runs, null, 2));
        if (!runs.length) return ctx.out('no runs yet');
        ctx.out(
          table(
            ['id', 'status', 'model', 'device', 'set', 'samples', 'steps', 'outputs', 'created'],
            runs.map((r) => [r.id, r.status, r.recipe.model.id, `${r.recipe.device.requested}->${r.recipe.device.active ?? '?'}`, r.recipe.constraintSet.name ?? '(unsaved)', r.recipe.samples, r.recipe.steps, r.outputCount, r.createdAt]),
          ),
        );
        return;
      }
      case 'show': {
        const id = runId(requirePositional(args, 1, 'a run id', usage), 0);
        const detail = await client().call('runs.get', { runId: id, outputs: args.values.outputs === true });
        if (ctx.json) return ctx.out(JSON.stringify(detail, null, 2));
        const r = detail.run;
        ctx.out(
          [
            `run ${r.id}: ${r.status}${r.error ? ` (${r.error})` : ''}`,
            `model     ${r.recipe.model.id} ${r.recipe.model.version ?? ''} ${r.recipe.model.hash ? r.recipe.model.hash.slice(0, 12) : ''}`.trimEnd(),
            `device    requested ${r.recipe.device.requested}, ran on ${r.recipe.device.active ?? 'unknown'}`,
            `sampler   seed ${r.recipe.seed}, ${r.recipe.steps} steps, ${r.recipe.samples} samples${(r.recipe.sampler.candidates ?? 1) > 1 ? `, each chosen among ${r.recipe.sampler.candidates} candidates` : ''}`,
            `set       ${r.recipe.constraintSet.name ?? '(unsaved)'}${r.recipe.constraintSet.version ? ` v${r.recipe.constraintSet.version}` : ''}: ${r.recipe.constraintSet.body.constraints.map((c) => c.kind).join(', ') || 'no constraints'}`,
            `timings   ${r.timings ? `total ${Math.round(r.timings.totalMs)} ms, ${r.timings.perStepMs.toFixed(1)} ms/step` : '-'}`,
            `outputs   ${r.outputCount}`,
            ...detail.outputs.map((o) => `  [${o.index}] ${o.text}`),
          ].join('\n'),
        );
        return;
      }
      case 'export': {
        const ids = args.positionals.slice(1).map(runId);
        if (!ids.length) throw new CliError('USAGE', `missing run ids\n\n${usage}`);
        const format = args.values.format;
        if (!(EXPORT_FORMATS as unknown[]).includes(format)) throw new CliError('INVALID_INPUT', `--format must be one of ${EXPORT_FORMATS.join(', ')} (got ${JSON.stringify(format ?? null)})`);
        const result = await client().call('export.run', { runIds: ids, format: format as ExportFormat });
        const out = args.values.out as string | undefined;
        if (out) {
          const written = writeFileAtomic(resolve(out), result.content ?? '');
          ctx.err(`wrote ${written.path} (${result.runs} runs, ${result.outputs} outputs, ${written.bytes} bytes)`);
        } else {
          process.stdout.write(result.content ?? '');
        }
        return;
      }
      default:
        throw new CliError('USAGE', `unknown subcommand "${sub}"\n\n${usage}`);
    }
  },
};
