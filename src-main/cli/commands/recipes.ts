/** `dlm-studio recipes show|run`: read the recipe carried by an exported file, and run it again. */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../export';
import type { ImportedRecipe, RunStatus } from '../../api/contract';
import { CliError, intOption, requirePositional, type CliCommand, type CliContext } from '../framework';

const usage = `usage: dlm-studio recipes <show|run> <export-file> [options]

  recipes show <file> [--set-out <set.json>]   the recipe(s) in a JSONL, CSV or Markdown export; --set-out writes
                                               the constraint set (with its sampler settings) for generate/sets import
  recipes run <file> [--index <n>]             start the recipe again (same model, device, seed, steps, samples and
                                               constraint set), wait for it, and print the new run id`;

function load(ctx: CliContext, file: string): Promise<ImportedRecipe[]> {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError('IO_ERROR', `${file}: ${(e as Error).message}`);
  }
  return ctx
    .client()
    .call('recipes.import', { content })
    .then((r) => r.recipes)
    .catch((e: unknown) => {
      throw new CliError('IMPORT_FAILED', `${file}: ${(e as Error).message.replace(/^[^:]*: /, '')}`);
    });
}

export const recipesCommand: CliCommand = {
  name: 'recipes',
  summary: 'show or re-run the recipe carried by an exported file',
  usage,
  options: { 'set-out': { type: 'string' }, index: { type: 'string' } },
  async run(ctx, args) {
    const sub = requirePositional(args, 0, 'a subcommand (show or run)', usage);
    const file = requirePositional(args, 1, 'an exported file', usage);
    const recipes = await load(ctx, file);
    if (sub === 'show') {
      if (ctx.json) ctx.out(JSON.stringify(recipes, null, 2));
      else {
        for (const { recipe: r, sourceRunId, outputs } of recipes) {
          ctx.out(
            [
              `run ${sourceRunId ?? '?'} (${outputs} outputs): ${r.model.id} ${r.model.version ?? ''}${r.model.hash ? ` ${r.model.hash.slice(0, 12)}` : ''}`,
              `  device ${r.device.requested} (ran on ${r.device.active ?? 'unknown'}), seed ${r.seed}, ${r.steps} steps, ${r.samples} samples${r.model.kind === 'masked-diffusion' ? '' : `, sampler ${samplerWords(r.sampler)}`}`,
              `  set ${r.constraintSet.name ?? '(unsaved)'}: ${r.constraintSet.body.constraints.map((c) => c.kind).join(', ') || 'no constraints'}`,
            ].join('\n'),
          );
        }
      }
      const setOut = args.values['set-out'] as string | undefined;
      if (setOut) {
        const first = recipes[0]!.recipe;
        writeFileAtomic(setOut, JSON.stringify({ ...first.constraintSet.body, sampler: first.sampler }, null, 2) + '\n');
        ctx.err(`wrote the constraint set of run ${recipes[0]!.sourceRunId ?? '?'} to ${setOut}`);
      }
      return;
    }
    if (sub !== 'run') throw new CliError('USAGE', `unknown subcommand "${sub}"\n\n${usage}`);
    const index = intOption(args, 'index') ?? 0;
    const chosen = recipes[index];
    if (!chosen) throw new CliError('INVALID_INPUT', `--index ${index}: the file holds ${recipes.length} recipe(s)`);
    const r = chosen.recipe;
    const client = ctx.client();
    const done = new Promise<{ status: RunStatus; error: string | null }>((resolve) => {
      const off = client.on('run.finished', (f) => {
        if (f.runId === started) {
          off();
          resolve(f);
        }
      });
    });
    let started = -1;
    let lastStep = 0;
    client.on('run.progress', (p) => {
      if (p.runId === started && p.step !== lastStep && (p.step === p.steps || p.step % 25 === 0)) ctx.err(`run ${started}: step ${p.step}/${p.steps} (samples from ${p.batchStart})`);
      lastStep = p.step;
    });
    const { runId } = await client.call('runs.start', { model: r.model.id, device: r.device.requested, constraintSet: r.constraintSet.body, sampler: r.sampler });
    started = runId;
    ctx.err(`started run ${runId} from the recipe of run ${chosen.sourceRunId ?? '?'}`);
    const fin = await done;
    const detail = await client.call('runs.get', { runId, outputs: false });
    if (detail.run.recipe.model.hash && r.model.hash && detail.run.recipe.model.hash !== r.model.hash) {
      ctx.err(`note: model ${r.model.id} differs from the recipe's weights (hash ${detail.run.recipe.model.hash.slice(0, 12)} vs ${r.model.hash.slice(0, 12)})`);
    }
    ctx.out(ctx.json ? JSON.stringify(detail.run, null, 2) : `run ${runId}: ${fin.status}${fin.error ? ` (${fin.error})` : ''}, ${detail.run.outputCount} outputs`);
    return fin.status === 'completed' ? 0 : 1;
  },
};

/** A continuous recipe's sampler: "ddim (eta 0.5)", "dpm2m", "ancestral, spacing 0.33". */
function samplerWords(s: { method?: string; eta?: number; spacing?: number }): string {
  const method = s.method === 'ddim' ? `ddim (eta ${s.eta ?? 0})` : (s.method ?? 'ancestral');
  return s.spacing !== undefined && s.spacing !== 1 ? `${method}, spacing ${s.spacing}` : method;
}
