/// <reference types="svelte" />
/// <reference types="vite/client" />
import type { PreloadApi } from '../src-main/api/client';

declare global {
  interface Window {
    /** Present only inside Electron (exposed by the preload script). */
    dlm?: PreloadApi;
  }
}
export {};
