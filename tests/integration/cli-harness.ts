/** The integration tests' way to call the dlm-studio command line: in this process, with its output captured. */
import { join } from 'node:path';
import { COMMANDS } from '../../src-main/cli/commands/index';
import { runCli } from '../../src-main/cli/framework';

export interface CapturedRun {
  code: number;
  out: string;
  err: string;
}

/** Run `argv` against a data folder under `dir` (dir/data); `extraArgs` go after it (e.g. --models). */
export async function runCliCaptured(
  argv: string[],
  o: { dir: string; bundledModelDirs: string[]; engine: Parameters<typeof runCli>[0]['engine']; extraArgs?: string[] },
): Promise<CapturedRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli({
    argv: [...argv, '--data-dir', join(o.dir, 'data'), ...(o.extraArgs ?? [])],
    commands: COMMANDS,
    bundledModelDirs: o.bundledModelDirs,
    engine: o.engine,
    app: { name: 'DLM Studio', version: 'test' },
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
