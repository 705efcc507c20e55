/**
 * The `dlm-studio` command-line framework: global options, command registry, context (lazy services and an
 * in-process typed client), named errors and exit codes. Commands live in ./commands/ (one module each).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolve } from 'node:path';
import { defaultDataDir } from '../services/paths';
import type { StudioClient } from '../api/client';
import { ApiError, toApiError, type ErrorCode } from '../api/errors';
import { createStudioServices, type StudioServices } from '../services';
import type { EngineChoice } from '../services/engine-loader';
import { createInProcessClient } from '../transports/inproc';
import { MAX_CANDIDATES } from '../constraints/set';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CliContext {
  dataDir: string;
  /** Bundled model folders plus any --models folders. */
  modelDirs: string[];
  json: boolean;
  app: { name: string; version: string };
  out(text: string): void;
  /** Progress and diagnostics go to stderr so stdout stays machine-readable. */
  err(text: string): void;
  /** Services on the data dir (opened on first use, closed when the command ends). */
  services(): StudioServices;
  client(): StudioClient;
  engine: EngineChoice;
}

export interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
}

export interface CliCommand {
  name: string;
  summary: string;
  /** Full help text (usage line first). */
  usage: string;
  options?: OptionSpec;
  /** Return an exit code (default 0). A command that keeps running (serve-test) resolves when it stops. */
  run(ctx: CliContext, args: ParsedArgs): Promise<number | void>;
}

/** A usage error or a named failure; printed as `error [CODE]: message`. */
export class CliError extends Error {
  constructor(readonly code: ErrorCode | 'USAGE', message: string, readonly exitCode = code === 'USAGE' || code === 'INVALID_INPUT' ? 2 : 1) {
    super(message);
    this.name = 'CliError';
  }
}

export const GLOBAL_OPTIONS: OptionSpec = {
  'data-dir': { type: 'string' },
  models: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export { defaultDataDir } from '../services/paths';

export interface RunCliOptions {
  argv: string[];
  commands: CliCommand[];
  bundledModelDirs: string[];
  engine: EngineChoice;
  app: { name: string; version: string };
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
}

export function formatHelp(commands: CliCommand[], app: { name: string; version: string }): string {
  const width = Math.max(4, ...commands.map((c) => c.name.length));
  return [
    `${app.name} ${app.version}: controllable text generation with diffusion language models`,
    '',
    'usage: dlm-studio <command> [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'help'.padEnd(width)}  this help, or a command's: dlm-studio help <command>`,
    '',
    'global options:',
    '  --data-dir <dir>   studio data folder (default: the app\'s, or $DLM_STUDIO_DATA_DIR)',
    '  --models <dir>     extra model-bundle folder (repeatable; a bundle whose id a bundled one has is listed, not used)',
    '  --json             machine-readable output',
    '  -h, --help         help for a command: dlm-studio <command> --help',
  ].join('\n');
}

/**
 * The command and its arguments. Global options may also come before the command (`dlm-studio --data-dir X runs
 * list`, as the help lists them apart); they are handed to the command with the rest.
 */
function splitCommand(argv: string[]): { name: string | undefined; rest: string[] } {
  const lead: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    const key = a.startsWith('--') ? a.slice(2).split('=')[0]! : '';
    const spec = key && key !== 'help' ? GLOBAL_OPTIONS[key] : undefined;
    if (!spec) break;
    lead.push(a);
    if (spec.type === 'string' && !a.includes('=') && i + 1 < argv.length) lead.push(argv[++i]!);
  }
  return { name: argv[i], rest: [...lead, ...argv.slice(i + 1)] };
}

export async function runCli(opts: RunCliOptions): Promise<number> {
  const out = opts.stdout ?? ((t: string) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'));
  const err = opts.stderr ?? ((t: string) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'));
  const { name, rest } = splitCommand(opts.argv);
  const help = () => formatHelp(opts.commands, opts.app);
  if (!name || name === '--help' || name === '-h') {
    out(help());
    return name ? 0 : 2;
  }
  if (name === 'help') {
    const target = rest[0] && !rest[0].startsWith('-') ? rest[0] : undefined;
    const cmd = target ? opts.commands.find((c) => c.name === target) : undefined;
    if (target && !cmd) {
      err(`error [USAGE]: unknown command "${target}" (commands: ${opts.commands.map((c) => c.name).join(', ')})`);
      return 2;
    }
    out(cmd ? cmd.usage : help());
    return 0;
  }
  if (name === '--version') {
    out(opts.app.version);
    return 0;
  }
  const command = opts.commands.find((c) => c.name === name);
  if (!command) {
    err(`error [USAGE]: unknown command "${name}" (commands: ${opts.commands.map((c) => c.name).join(', ')})`);
    return 2;
  }

  let services: StudioServices | null = null;
  try {
    let parsed: ParsedArgs;
    try {
      const r = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
      parsed = { positionals: r.positionals, values: r.values as ParsedArgs['values'] };
    } catch (e) {
      throw new CliError('USAGE', `${(e as Error).message.replace(/\. To specify a positional.*$/, '')}\n\n${command.usage}`);
    }
    if (parsed.values.help) {
      out(command.usage);
      return 0;
    }
    const dataDir = typeof parsed.values['data-dir'] === 'string' ? resolve(parsed.values['data-dir']) : defaultDataDir(opts.env);
    const extraModels = ((parsed.values.models as string[] | undefined) ?? []).map((d) => resolve(d));
    const ctx: CliContext = {
      dataDir,
      modelDirs: [...opts.bundledModelDirs, ...extraModels],
      json: parsed.values.json === true,
      app: opts.app,
      // (void: a command that returns what out() returned must not turn it into an exit code)
      out: (t) => void out(t),
      err: (t) => void err(t),
      engine: opts.engine,
      services() {
        services ??= createStudioServices({
          dataDir,
          modelDirs: ctx.modelDirs,
          engine: opts.engine.engine,
          engineUnavailableReason: opts.engine.reason,
          app: opts.app,
        });
        return services;
      },
      client() {
        return createInProcessClient(ctx.services());
      },
    };
    const code = await command.run(ctx, parsed);
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    if (e instanceof CliError) {
      err(`error [${e.code}]: ${e.message}`);
      return e.exitCode;
    }
    const api = e instanceof ApiError ? e : toApiError(e);
    err(`error [${api.code}]: ${api.message}`);
    return api.code === 'INVALID_INPUT' ? 2 : 1;
  } finally {
    if (services) await (services as StudioServices).close();
  }
}

/** Plain-text table for terminal output. */
export function table(header: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function requirePositional(args: ParsedArgs, index: number, what: string, usage: string): string {
  const v = args.positionals[index];
  if (v === undefined || v === '') throw new CliError('USAGE', `missing ${what}\n\n${usage}`);
  return v;
}

/** A string option limited to `choices`; undefined when absent. */
export function choiceOption<T extends string>(args: ParsedArgs, name: string, choices: readonly T[]): T | undefined {
  const v = args.values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) throw new CliError('INVALID_INPUT', `--${name} must be one of ${choices.join(', ')} (got ${JSON.stringify(v)})`);
  return v as T;
}

/** --candidates (sampler.candidates): 1 to MAX_CANDIDATES, undefined when not given. */
export function candidatesOption(args: ParsedArgs): number | undefined {
  const n = intOption(args, 'candidates');
  if (n !== undefined && (n < 1 || n > MAX_CANDIDATES)) throw new CliError('INVALID_INPUT', `--candidates must be from 1 to ${MAX_CANDIDATES} (got ${n})`);
  return n;
}

/** --accept-at (sampler.accept_at), on generate and eval: a probability in (0, 1]. */
export function acceptAtOption(args: ParsedArgs): number | undefined {
  const v = args.values['accept-at'];
  if (v === undefined) return undefined;
  const p = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !(p > 0 && p <= 1)) throw new CliError('INVALID_INPUT', `--accept-at must be a number above 0 and at most 1 (got ${JSON.stringify(v)})`);
  return p;
}

export function intOption(args: ParsedArgs, name: string): number | undefined {
  const v = args.values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new CliError('INVALID_INPUT', `--${name} must be a non-negative integer (got ${JSON.stringify(v)})`);
  return n;
}
