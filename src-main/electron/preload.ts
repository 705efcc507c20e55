/**
 * Preload (sandboxed, CommonJS): exposes `window.dlm` with one named function per API call and one
 * subscription function for events. Never exposes ipcRenderer itself.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { CALL_NAME_LIST, EVENT_NAME_LIST, IPC_CALL_CHANNEL, IPC_EVENT_CHANNEL } from '../api/names';

type Listener = (event: { name: string; payload: unknown }) => void;

const calls = Object.freeze(
  Object.fromEntries(CALL_NAME_LIST.map((name) => [name, (input: unknown) => ipcRenderer.invoke(IPC_CALL_CHANNEL, name, input)])),
);

function subscribe(listener: Listener): () => void {
  if (typeof listener !== 'function') throw new TypeError('subscribe expects a function');
  const handler = (_event: IpcRendererEvent, message: unknown) => {
    const m = message as { name?: unknown; payload?: unknown } | null;
    if (m && typeof m.name === 'string' && (EVENT_NAME_LIST as readonly string[]).includes(m.name)) listener({ name: m.name, payload: m.payload });
  };
  ipcRenderer.on(IPC_EVENT_CHANNEL, handler);
  return () => {
    ipcRenderer.removeListener(IPC_EVENT_CHANNEL, handler);
  };
}

contextBridge.exposeInMainWorld('dlm', Object.freeze({ calls, subscribe }));
