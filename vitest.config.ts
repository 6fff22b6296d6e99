import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{schemas,projections,replay,services,bench}/**/*.spec.ts'],
    // engine tests (Kafka, chdb, chromium) start real processes: give them room, and never run
    // two engine-heavy files on the 2 cores at once more than needed
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
