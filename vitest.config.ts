import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The stock-kernel stage runs its own suites inside a qemu guest (npm run test:stock-kernel).
    exclude: ['test/stock-kernel/**', 'node_modules/**'],
    globalSetup: ['test/global-setup.ts'],
    // One process per file: setns() switches a thread, so files never share one.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
