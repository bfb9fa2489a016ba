import { defineConfig } from 'vitest/config';

/** `npm run test:faults`: crashes, outages, a soak and abuse, one file at a time (they start processes and measure). */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
