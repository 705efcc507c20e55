/** `dlm-studio models`: installed model bundles (invalid ones with their error) and execution providers. */
import { DEVICE_PREFERENCES } from '../../engine/types';
import { choiceOption, table, type CliCommand } from '../framework';

const usage = `usage: dlm-studio models [--device <pref>] [--json]

Lists model bundles (bundled and from --models folders; invalid ones with what is wrong) and probes the execution
providers on the default model's denoiser (--device picks the preference to probe, default auto).`;

export const modelsCommand: CliCommand = {
  name: 'models',
  summary: 'list model bundles and devices',
  usage,
  options: { device: { type: 'string' } },
  async run(ctx, args) {
    const pref = choiceOption(args, 'device', DEVICE_PREFERENCES) ?? 'auto';
    const client = ctx.client();
    const models = await client.call('models.list');
    let devices: Awaited<ReturnType<typeof client.call<'devices.probe'>>> | null = null;
    let deviceError: string | null = null;
    if (models.some((m) => !m.error)) {
      try {
        devices = await client.call('devices.probe', { preference: pref });
      } catch (e) {
        deviceError = (e as Error).message;
      }
    } else {
      deviceError = 'no valid model bundle to probe devices with';
    }
    if (ctx.json) {
      ctx.out(JSON.stringify({ models, devices, deviceError }, null, 2));
      return models.some((m) => !m.error) ? 0 : 1;
    }
    ctx.out('models:');
    ctx.out(models.length
      ? table(['id', 'version', 'kind', 'source', 'controls', 'scorer', 'status', 'path'], models.map((m) => [
        m.id, m.version, m.kind || '-', m.source, m.controls.join(',') || '-', m.hasScorer ? 'yes' : 'no', m.error ? `INVALID: ${m.error}` : 'ok', m.path,
      ]))
      : `  none found in ${ctx.modelDirs.join(', ')}`);
    ctx.out('');
    ctx.out(`devices (preference ${pref}):`);
    if (devices) {
      ctx.out(table(['provider', 'bundled', 'usable', 'note'], devices.probes.map((p) => [p.provider, p.bundled ? 'yes' : 'no', p.usable ? 'yes' : 'no', p.usable ? (p.provider === devices!.active ? 'active' : '') : p.reason ?? ''])));
      ctx.out(`active: ${devices.active}`);
    } else {
      ctx.out(`  ${deviceError}`);
    }
    return models.some((m) => !m.error) ? 0 : 1;
  },
};
