/**
 * Keeps every test away from the real `~/.aemp-secret`: nodes on the embedded default (no rc
 * file) read or create their per-user secret in a temporary directory of this test file's
 * worker instead. Child processes started by the tests inherit it, so the `aemp` commands of
 * one test file share one secret, as one user's do.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

if (!process.env.AEMP_SECRET_FILE) {
  const dir = mkdtempSync(join(tmpdir(), 'aemp-secret-'));
  process.env.AEMP_SECRET_FILE = join(dir, 'secret');
  afterAll(() => {
    if (process.env.AEMP_SECRET_FILE === join(dir, 'secret')) delete process.env.AEMP_SECRET_FILE;
    rmSync(dir, { recursive: true, force: true });
  });
}
