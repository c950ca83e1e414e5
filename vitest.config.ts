import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // One process per file: setns() switches a thread, so files never share one.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
