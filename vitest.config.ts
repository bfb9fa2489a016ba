import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'kit/**/*.test.ts',
      'src/**/*.test.ts',
      'modules/**/*.test.ts',
      'adapters/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    // The fault and abuse suite runs on its own: npm run test:faults.
    exclude: ['test/faults/**', 'node_modules/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file gets its own database, so files may run side by side.
    fileParallelism: true,
  },
});
