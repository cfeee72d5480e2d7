/**
 * The embedded default (no rc file): the first node on the machine becomes the seed on
 * 127.0.0.1:4040; a second one finds that address in use, listens on another loopback port
 * and joins the first. Needs 127.0.0.1:4040 free; skipped (with a message) when it is not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filter, firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testNode } from '../helpers/node.js';

const SEED = '127.0.0.1:4040';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port }, () => s.close(() => resolve(true)));
  });
}

const free = await portFree(4040);
if (!free) console.warn(`embedded-default test skipped: ${SEED} is in use on this machine`);

describe.skipIf(!free)('embedded default configuration', () => {
  const saved = process.env.AEMP_RC;
  const dir = mkdtempSync(join(tmpdir(), 'aemp-embedded-'));
  beforeAll(() => {
    process.env.AEMP_RC = join(dir, 'no-such-rc-file');
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.AEMP_RC;
    else process.env.AEMP_RC = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('first node is the seed on 4040; the next one falls back to another port and joins it', async () => {
    const noRc = { norc: false, binds: undefined };
    const seed = testNode({ ...noRc, nodeid: 'embedded-seed/' });
    await seed.ready;
    expect(seed.binds).toEqual([SEED]);

    const other = testNode({ ...noRc, nodeid: 'embedded-other/' });
    await other.ready;
    expect(other.binds).toHaveLength(1);
    expect(other.binds[0]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(other.binds[0]).not.toBe(SEED);
    expect(other.logs.some((l) => /cannot listen on 127\.0\.0\.1:4040.*instead/.test(l.text))).toBe(true);

    await firstValueFrom(other.nodes$.pipe(filter((e) => e.type === 'up' && e.node === seed.id)));
    expect(seed.nodeIsUp(other.id)).toBe(true);
  });

  it('an explicit bind that is in use still rejects ready', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    const a = blocker.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    try {
      const n = testNode({ binds: [`127.0.0.1:${port}`] });
      const err = await n.ready.catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('ERR_BIND_FAILED');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
