/**
 * `dlm-studio serve-test`: the real services on a data dir, behind the WebSocket test transport on
 * 127.0.0.1. Prints one JSON line {url, token, connectUrl, dataDir} on stdout, then serves until SIGINT/SIGTERM.
 */
import { startWsTransport } from '../../transports/ws';
import { intOption, type CliCommand } from '../framework';

const usage = `usage: dlm-studio serve-test [--port <n>] [--token <t>] [--data-dir <dir>]

  Starts the WebSocket test transport (127.0.0.1 only, random token) on the real services and prints
  {"url", "token", "connectUrl", "dataDir"} as one JSON line. Used by the end-to-end tests.`;

export const serveTestCommand: CliCommand = {
  name: 'serve-test',
  summary: 'serve the real services over the local WebSocket test transport',
  usage,
  options: { port: { type: 'string' }, token: { type: 'string' } },
  async run(ctx, args) {
    const services = ctx.services();
    const transport = await startWsTransport({
      dispatcher: services.dispatcher,
      events: services.events,
      port: intOption(args, 'port') ?? 0,
      token: args.values.token as string | undefined,
    });
    ctx.out(JSON.stringify({ url: transport.url, token: transport.token, connectUrl: transport.connectUrl, dataDir: ctx.dataDir, engine: ctx.engine.engine ? 'available' : ctx.engine.reason }));
    ctx.err(`serving on ${transport.url} (data: ${ctx.dataDir}); stop with Ctrl-C`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await transport.close();
  },
};
