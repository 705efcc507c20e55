/**
 * Electron IPC transport. Electron is injected (only src-main/electron/ imports it), so this file stays
 * testable in plain Node with a fake ipcMain.
 */
import type { IpcMain, IpcMainInvokeEvent, WebContents } from 'electron';
import type { Dispatcher, EventHub } from '../api/dispatch';
import type { Envelope } from '../api/errors';
import { IPC_CALL_CHANNEL, IPC_EVENT_CHANNEL } from '../api/names';

export interface IpcTransportOptions {
  ipcMain: Pick<IpcMain, 'handle' | 'removeHandler'>;
  dispatcher: Dispatcher;
  events: EventHub;
  /** Whether a frame URL belongs to the studio's renderer (e.g. starts with app://studio/). */
  isTrustedUrl(url: string): boolean;
  /** The web contents that receive events (the main window's). */
  targets(): Pick<WebContents, 'send' | 'isDestroyed' | 'mainFrame'>[];
}

type SenderEvent = Pick<IpcMainInvokeEvent, 'senderFrame' | 'sender'>;

/** Only the top frame of one of our windows, showing our own protocol, may call the services. */
export function senderIsTrusted(event: SenderEvent, options: Pick<IpcTransportOptions, 'isTrustedUrl' | 'targets'>): boolean {
  const frame = event.senderFrame;
  if (!frame) return false;
  let url: string;
  try {
    url = frame.url;
  } catch {
    return false;
  }
  if (!options.isTrustedUrl(url)) return false;
  return options.targets().some((t) => !t.isDestroyed() && t === (event.sender as unknown) && t.mainFrame === frame);
}

export function registerIpcTransport(options: IpcTransportOptions): () => void {
  options.ipcMain.handle(IPC_CALL_CHANNEL, async (event, method: unknown, input: unknown): Promise<Envelope<unknown>> => {
    if (!senderIsTrusted(event, options)) {
      return { ok: false, error: { code: 'FORBIDDEN_SENDER', message: 'IPC call refused: the sender is not the studio renderer' } };
    }
    return options.dispatcher.invoke(method, input);
  });
  const unsubscribe = options.events.on((e) => {
    for (const t of options.targets()) {
      if (t.isDestroyed()) continue;
      try {
        if (options.isTrustedUrl(t.mainFrame.url)) t.send(IPC_EVENT_CHANNEL, e);
      } catch {
        // window closing
      }
    }
  });
  return () => {
    unsubscribe();
    options.ipcMain.removeHandler(IPC_CALL_CHANNEL);
  };
}
