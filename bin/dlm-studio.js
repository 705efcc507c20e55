#!/usr/bin/env node
// The `dlm-studio` command: runs the built CLI (out/main/cli.js) in plain Node. Build first: npm run build.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const cli = fileURLToPath(new URL('../out/main/cli.js', import.meta.url));
if (!existsSync(cli)) {
  process.stderr.write(`error [NOT_BUILT]: ${cli} is missing; run \`npm run build\` first\n`);
  process.exit(1);
}
const { main } = await import(pathToFileURL(cli).href);
process.exitCode = await main(process.argv.slice(2));
