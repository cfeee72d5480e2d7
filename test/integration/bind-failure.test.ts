/** A listener that cannot bind rejects `node.ready` (outside the embedded default's fallback). */
import { describe, expect, it } from 'vitest';
import { testNode } from '../helpers/node.js';
import { listening } from '../helpers/ports.js';

describe('bind failure', () => {
  it('an explicit bind that is in use rejects ready with ERR_BIND_FAILED', async () => {
    const { server: blocker, port } = await listening();
    try {
      const n = testNode({ binds: [`127.0.0.1:${port}`] });
      const err = await n.ready.catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('ERR_BIND_FAILED');
      expect((err as Error).message).toContain(`cannot listen on 127.0.0.1:${port}`);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
