/**
 * The cluster benchmark (bench/cluster.ts) end to end at its smallest: 6 nodes, one global
 * node, a few rounds. Its figures for aemp and for the relay must both show the algorithm's
 * count of N messages per db.set, and every figure has its relay counterpart.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { within } from '../helpers/fake-peer.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('cluster benchmark', () => {
  it('measures 6 nodes and their relay: N messages per set on both sides', async () => {
    const out = await within(
      new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          ['--import', 'tsx', join(root, 'bench', 'cluster.ts'), '--quick'],
          {
            cwd: root,
            env: { ...process.env, BENCH_SIZES: '6', BENCH_GLOBALS: '1', BENCH_ROUNDS: '10' },
            maxBuffer: 16 << 20,
          },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
        ),
      ),
      50_000,
      'bench/cluster.ts with 6 nodes',
    );
    const lines = out.trimEnd().split('\n');
    const figures = JSON.parse(lines.at(-1)!) as Record<string, number>;
    expect(figures.db_n6_g1_msgs_per_set).toBe(6);
    expect(figures.ceiling_db_n6_g1_msgs_per_set).toBe(6);
    for (const [k, v] of Object.entries(figures)) {
      expect(v, k).toBeGreaterThan(0);
      if (!k.startsWith('ceiling_')) expect(figures[`ceiling_${k}`], `ceiling of ${k}`).toBeGreaterThan(0);
    }
    expect(out).toContain('Global database, N nodes with G global nodes');
  }, 60_000);
});
