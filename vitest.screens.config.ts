import { defineConfig } from 'vitest/config';

// README screenshots on the REAL model bundles in models/ (`npm run screens:readme`): the files end in
// .screens.ts, so neither `npm test` nor `npm run test:e2e` (tests/e2e/**/*.test.ts) runs them. Needs the build.
export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.screens.ts'],
    environment: 'node',
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 180_000,
  },
});
