/** `dlm-studio sets list|show|import|validate`: the constraint-set library. */
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parseConstraintSet } from '../../constraints/set';
import { CliError, intOption, requirePositional, table, type CliCommand } from '../framework';

const usage = `usage: dlm-studio sets <list|show|import|validate> [options]

  sets list [--query <text>] [--all-versions]     sets in the library (latest version of each)
  sets show <name|id> [--version <n>]             print a set as JSON
  sets import <file.json> [--name <name>]         validate a constraint-set file and save it as a new version
  sets validate <file.json>                       check a constraint-set file without saving it`;

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError('IO_ERROR', `${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CliError('INVALID_INPUT', `${file}: not valid JSON (${(e as Error).message})`);
  }
}

export const setsCommand: CliCommand = {
  name: 'sets',
  summary: 'list, show, import and validate constraint sets',
  usage,
  options: { query: { type: 'string' }, 'all-versions': { type: 'boolean' }, version: { type: 'string' }, name: { type: 'string' } },
  async run(ctx, args) {
    const sub = requirePositional(args, 0, 'a subcommand (list, show, import or validate)', usage);
    switch (sub) {
      case 'list': {
        const sets = await ctx.client().call('constraintSets.list', { query: args.values.query as string | undefined, allVersions: args.values['all-versions'] === true });
        if (ctx.json) return ctx.out(JSON.stringify(sets, null, 2));
        if (!sets.length) return ctx.out('no constraint sets yet (import one: dlm-studio sets import <file.json>)');
        ctx.out(table(['id', 'name', 'version', 'constraints', 'kinds', 'created'], sets.map((s) => [s.id, s.name, `v${s.version}`, s.constraintCount, s.kinds.join(','), s.createdAt])));
        return;
      }
      case 'show': {
        const key = requirePositional(args, 1, 'a set name or id', usage);
        const version = intOption(args, 'version');
        const set = /^\d+$/.test(key) && version === undefined
          ? await ctx.client().call('constraintSets.get', { id: Number(key) })
          : await ctx.client().call('constraintSets.get', { name: key, version });
        ctx.out(JSON.stringify(ctx.json ? set : set.body, null, 2));
        return;
      }
      case 'import':
      case 'validate': {
        const file = requirePositional(args, 1, 'a constraint-set file', usage);
        const value = readJsonFile(file);
        let body;
        try {
          body = parseConstraintSet(value, file);
        } catch (e) {
          throw new CliError('INVALID_INPUT', (e as Error).message);
        }
        if (sub === 'validate') {
          ctx.out(ctx.json ? JSON.stringify({ valid: true, set: body }, null, 2) : `${file}: valid (${body.constraints.length} constraints)`);
          return;
        }
        const name = (args.values.name as string | undefined) ?? body.name ?? basename(file, extname(file));
        const saved = await ctx.client().call('constraintSets.save', { name, body });
        ctx.out(ctx.json ? JSON.stringify(saved, null, 2) : `saved "${saved.name}" v${saved.version} (id ${saved.id})`);
        return;
      }
      default:
        throw new CliError('USAGE', `unknown subcommand "${sub}"\n\n${usage}`);
    }
  },
};
