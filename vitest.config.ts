import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Four tiers, each a vitest project (`vitest run --project <name>`):
 * - unit: no sockets, no child processes (test/setup-unit.ts refuses them), virtual time;
 * - integration: nodes and fake peers over loopback TCP, in the test's own process;
 * - multiprocess: child processes: node clusters, the CLI, examples, docs snippets, the packed package;
 * - hostile: attacks, fuzzing and load.
 * Test files run side by side (AEMP_TEST_WORKERS at once, default 3: much of their time is spent
 * waiting on sockets and child processes, so one more than the two cores of the development
 * machines keeps them busy). unit, integration and hostile run together first; multiprocess
 * follows on its own with one worker fewer, so that its child processes, which start with
 * deadlines, do not share the CPU with fuzzing and load, and so that its `aemp run` on the
 * default 127.0.0.1:4040 never meets the hostile tier's seed on that port.
 */
const workers = Number(process.env.AEMP_TEST_WORKERS) || 3;

export default defineConfig({
  // `import … from 'aemp'` in a test means the sources (as tsconfig.json's paths say), not dist/
  resolve: {
    alias: [{ find: /^aemp$/, replacement: fileURLToPath(new URL('src/index.ts', import.meta.url)) }],
  },
  test: {
    setupFiles: ['test/setup-secret-file.ts'],
    pool: 'forks',
    maxWorkers: workers,
    testTimeout: 20_000,
    hookTimeout: 20_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/setup-unit.ts'],
          // Unit test files share a worker's loaded modules (half the tier's time went into
          // loading them again per file): they leave nothing running behind them (no sockets, no
          // processes, test nodes closed after each test).
          isolate: false,
        },
      },
      {
        extends: true,
        test: { name: 'integration', include: ['test/integration/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'multiprocess',
          sequence: { groupOrder: 1 },
          maxWorkers: Math.max(1, workers - 1),
          include: [
            'test/multiprocess/**/*.test.ts',
            'test/cli/**/*.test.ts',
            'test/examples/**/*.test.ts',
            'test/docs/**/*.test.ts',
            'test/package/**/*.test.ts',
          ],
        },
      },
      {
        extends: true,
        test: { name: 'hostile', include: ['test/hostile/**/*.test.ts'] },
      },
    ],
  },
});
