import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

const root = import.meta.dirname;

export default defineConfig({
  // Main process bundle: `index` is Electron's main process, `cli` the plain-Node command line (bin/dlm-studio.js runs out/main/cli.js);
  // dependencies (better-sqlite3, onnxruntime-node, ws, zod, ...) stay external and load from node_modules.
  main: {
    build: {
      outDir: resolve(root, 'out/main'),
      target: 'node20',
      rolldownOptions: {
        input: {
          index: resolve(root, 'src-main/electron/main.ts'),
          cli: resolve(root, 'src-main/cli/main.ts'),
          // the engine's inference worker thread; createEngine looks for it beside itself
          'engine-worker': resolve(root, 'src-main/engine/worker.ts'),
        },
        // shared chunks stay in out/main/ too, so code in them finds engine-worker.js beside itself
        output: { format: 'es', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
      },
    },
  },
  // Sandboxed preloads cannot be ES modules: build CommonJS, everything bundled in one file.
  preload: {
    build: {
      outDir: resolve(root, 'out/preload'),
      rolldownOptions: {
        input: { index: resolve(root, 'src-main/electron/preload.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(root, 'src-renderer'),
    base: './',
    plugins: [svelte()],
    build: {
      outDir: resolve(root, 'out/renderer'),
      emptyOutDir: true,
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      rolldownOptions: { input: resolve(root, 'src-renderer/index.html') },
    },
  },
});
