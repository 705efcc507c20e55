/**
 * Entry of the `dlm-studio` command line (plain Node; built to out/main/cli.js, started by bin/dlm-studio.js).
 */
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { defaultEngine } from '../services/engine-loader';
import { COMMANDS } from './commands';
import { runCli } from './framework';

// out/main/cli.js and src-main/cli/main.ts both sit two folders below the project root
const root = fileURLToPath(new URL('../../', import.meta.url));

function appInfo(): { name: string; version: string } {
  try {
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version?: string };
    return { name: 'DLM Studio', version: pkg.version ?? '0.0.0' };
  } catch {
    return { name: 'DLM Studio', version: '0.0.0' };
  }
}

export async function main(argv: string[]): Promise<number> {
  const app = appInfo();
  return runCli({ argv, commands: COMMANDS, bundledModelDirs: [`${root}models`], engine: defaultEngine(), app });
}

const invokedDirectly = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (invokedDirectly || process.env.DLM_STUDIO_CLI_MAIN === '1') {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`error [INTERNAL]: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
