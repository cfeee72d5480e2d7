import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Four tiers, each a vitest project (`vitest run --project <name>`):
 * - unit: no sockets, no child processes (test/setup-unit.ts refuses them), virtual time;
 * - integration: nodes and fake peers over loopback TCP, in the test's own process;
 * - multiprocess: child processes: node clusters, the CLI, examples, docs snippets, the packed package;
 * - hostile: attacks, fuzzing and load.
 * The tiers run side by side in one pool of workers (AEMP_TEST_WORKERS, default 3): much of their
 * time is spent waiting on sockets and child processes, so one worker more than the two cores of
 * the development machines keeps them busy without starving the child processes of CPU.
 */
export default defineConfig({
  // `import … from 'aemp'` in a test means the sources (as tsconfig.json's paths say), not dist/
  resolve: {
    alias: [{ find: /^aemp$/, replacement: fileURLToPath(new URL('src/index.ts', import.meta.url)) }],
  },
  test: {
    setupFiles: ['test/setup-secret-file.ts'],
    pool: 'forks',
    maxWorkers: Number(process.env.AEMP_TEST_WORKERS) || 3,
    testTimeout: 20_000,
    hookTimeout: 20_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/setup-unit.ts'],
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
