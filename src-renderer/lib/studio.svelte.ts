/**
 * Shell state shared by every place (Svelte 5 runes): the API client, settings and theme, the active model and
 * device for the status bar, navigation, and notices. Places receive it through context (see App.svelte).
 */
import { getContext, setContext } from 'svelte';
import type { AppInfo, DeviceReport, ModelSummary, Settings } from '../../src-main/api/contract';
import { describeError, type StudioClient, type TransportKind } from './api';

export type PlaceId = 'compose' | 'generate' | 'library' | 'compare' | 'export' | 'settings';

export interface Notice {
  id: number;
  kind: 'info' | 'error';
  text: string;
}

export class Studio {
  place = $state<PlaceId>('compose');
  settings = $state<Settings | null>(null);
  info = $state<AppInfo | null>(null);
  models = $state<ModelSummary[]>([]);
  modelsError = $state<string | null>(null);
  device = $state<DeviceReport | null>(null);
  deviceError = $state<string | null>(null);
  /** The model chosen for generation (defaults to the first loadable one). */
  activeModelId = $state<string | null>(null);
  notices = $state<Notice[]>([]);
  /** A constraint set Compose should open (set by Library). */
  composeRequest = $state<{ id: number } | null>(null);
  private systemDark = $state(true);
  private nextNotice = 1;

  readonly activeModel = $derived(this.models.find((m) => m.id === this.activeModelId) ?? null);
  readonly theme = $derived<'dark' | 'light'>(
    this.settings?.theme === 'light' ? 'light' : this.settings?.theme === 'dark' ? 'dark' : this.systemDark ? 'dark' : 'light',
  );

  constructor(
    readonly client: StudioClient,
    readonly transport: TransportKind,
  ) {
    if (typeof matchMedia === 'function') {
      const mq = matchMedia('(prefers-color-scheme: dark)');
      this.systemDark = mq.matches;
      mq.addEventListener('change', (e) => (this.systemDark = e.matches));
    }
  }

  async load(): Promise<void> {
    const [info, settings] = await Promise.all([this.client.call('app.info'), this.client.call('settings.get')]);
    this.info = info;
    this.settings = settings;
    // the device probe runs in the engine worker, behind any run in progress: do not hold the window on it
    void this.refreshDevice();
    await this.refreshModels();
  }

  async refreshModels(): Promise<void> {
    try {
      this.models = await this.client.call('models.list');
      this.modelsError = null;
      if (!this.models.some((m) => m.id === this.activeModelId)) this.activeModelId = this.models.find((m) => !m.error)?.id ?? null;
    } catch (err) {
      this.models = [];
      this.activeModelId = null;
      this.modelsError = describeError(err);
    }
  }

  async refreshDevice(): Promise<void> {
    try {
      this.device = await this.client.call('devices.probe', { preference: this.settings?.defaultDevice });
      this.deviceError = null;
    } catch (err) {
      this.device = null;
      this.deviceError = describeError(err);
    }
  }

  async saveSettings(patch: Partial<Settings>): Promise<void> {
    this.settings = await this.client.call('settings.set', patch);
    if (patch.modelFolders) await this.refreshModels();
    if (patch.defaultDevice) await this.refreshDevice();
  }

  go(place: PlaceId): void {
    this.place = place;
  }

  openSetInCompose(id: number): void {
    this.composeRequest = { id };
    this.place = 'compose';
  }

  notify(text: string, kind: Notice['kind'] = 'info'): void {
    const notice = { id: this.nextNotice++, kind, text };
    this.notices = [...this.notices.slice(-3), notice];
    setTimeout(() => this.dismiss(notice.id), kind === 'error' ? 10000 : 4000);
  }

  fail(err: unknown): void {
    this.notify(describeError(err), 'error');
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }
}

const KEY = Symbol('studio');
export const provideStudio = (s: Studio) => setContext(KEY, s);
export const useStudio = (): Studio => getContext<Studio>(KEY);
