/** Where the studio keeps its data: one folder shared by the app and the CLI. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const APP_DIR_NAME = 'dlm-studio';

/**
 * `$DLM_STUDIO_DATA_DIR`, else the per-user application-data folder Electron would use for this app
 * (the app sets its userData to this same folder, so the CLI and the app open one database).
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.DLM_STUDIO_DATA_DIR) return resolve(env.DLM_STUDIO_DATA_DIR);
  if (platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), APP_DIR_NAME);
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', APP_DIR_NAME);
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), APP_DIR_NAME);
}
