import { defineConfig } from 'vitest/config';

// End-to-end: the built renderer in Debian's Chromium (Playwright) against the real services over the
// WebSocket test transport. Needs `npm run build` first.
export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
