/**
 * Electron main process: a thin shell. It serves the renderer from the app:// protocol, locks the window
 * down, and connects the renderer to the services over IPC. All logic lives in src-main/services.
 */
import { app, BrowserWindow, ipcMain, protocol, session } from 'electron';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStudioServices, type StudioServices } from '../services';
import { defaultEngine } from '../services/engine-loader';
import { defaultDataDir } from '../services/paths';
import { useSqliteBinding } from '../store/db';
import { registerIpcTransport } from '../transports/ipc';
import { rendererProtocolHandler } from './protocol';
import { APP_ENTRY, APP_HOST, APP_SCHEME, isTrustedUrl } from './security';

const here = fileURLToPath(new URL('.', import.meta.url));
const rendererDir = join(here, '..', 'renderer');
const preloadPath = join(here, '..', 'preload', 'index.cjs');
/** The window's own session (not the default one): permissions, protocol and preload are set on it. */
const STUDIO_PARTITION = 'persist:studio';

protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
app.enableSandbox();
// one data folder for the app and the CLI (also where Electron keeps its own profile data)
app.setPath('userData', defaultDataDir());

// In development (npm start) better-sqlite3 comes from an Electron-ABI build made by bin/start.mjs; a packaged
// app has node_modules rebuilt for Electron by electron-builder.
const devBinding = join(here, '..', 'native', `electron-${process.versions.electron}`, 'better_sqlite3.node');
if (!app.isPackaged && existsSync(devBinding)) useSqliteBinding(devBinding);

let services: StudioServices | null = null;
let mainWindow: BrowserWindow | null = null;

// One app instance per user: a second launch focuses the existing window instead of opening the data folder twice.
const primary = app.requestSingleInstanceLock();
if (!primary) app.quit();
app.on('second-instance', () => {
  if (!mainWindow || mainWindow.isDestroyed()) return;
  if (mainWindow.isMinimized()) mainWindow.restore();
  mainWindow.focus();
});

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'DLM Studio',
    webPreferences: {
      // The preload is registered on this session for app://studio/* only (see whenReady), so it never
      // runs in any other origin even if one were ever loaded.
      partition: STUDIO_PARTITION,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      safeDialogs: true,
      spellcheck: false,
      disableBlinkFeatures: 'Auxclick',
    },
  });
  win.once('ready-to-show', () => win.show());
  void win.loadURL(APP_ENTRY);
  return win;
}

// Navigation, new windows and webviews are blocked for every web contents the app ever creates.
app.on('web-contents-created', (_event, contents) => {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
});

app.on('window-all-closed', () => {
  app.quit();
});

app.on('before-quit', (event) => {
  if (!services) return;
  event.preventDefault();
  const s = services;
  services = null;
  void s.close().finally(() => app.quit());
});

void app.whenReady().then(() => {
  if (!primary) return;
  for (const ses of [session.defaultSession, session.fromPartition(STUDIO_PARTITION)]) {
    // deny by default: the studio needs no camera, microphone, notifications, geolocation, ...
    ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
    ses.setPermissionCheckHandler(() => false);
    ses.setDevicePermissionHandler(() => false);
    // every response in the session carries the policy (the app:// handler sets the same header)
    ses.webRequest.onHeadersReceived((details, callback) => {
      callback({
        responseHeaders: {
          ...details.responseHeaders,
          'Content-Security-Policy': ["default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"],
        },
      });
    });
  }
  const studioSession = session.fromPartition(STUDIO_PARTITION);
  studioSession.protocol.handle(APP_SCHEME, rendererProtocolHandler(rendererDir));
  studioSession.registerPreloadScript({ type: 'frame', id: 'dlm-studio-preload', filePath: preloadPath, matches: [`${APP_SCHEME}://${APP_HOST}/*`] });

  const modelsRoot = app.isPackaged ? join(process.resourcesPath, 'models') : join(app.getAppPath(), 'models');
  const choice = defaultEngine();
  services = createStudioServices({
    dataDir: defaultDataDir(),
    modelDirs: [modelsRoot],
    engine: choice.engine,
    engineUnavailableReason: choice.reason,
    app: { name: 'DLM Studio', version: app.getVersion() },
  });
  registerIpcTransport({
    ipcMain,
    dispatcher: services.dispatcher,
    events: services.events,
    isTrustedUrl,
    targets: () => (mainWindow && !mainWindow.isDestroyed() ? [mainWindow.webContents] : []),
  });
  mainWindow = createWindow();
  mainWindow.on('closed', () => {
    mainWindow = null;
  });
});
