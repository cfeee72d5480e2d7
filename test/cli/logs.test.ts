/**
 * `aemp logs LEVEL` against a node run by `aemp run`: the node's records arrive as escaped
 * lines, and SIGINT ends the command with exit status 0.
 */
import { describe, expect, it } from 'vitest';
import { aemp, cleanUpAfter, runNode, WAIT_MS } from './helpers.js';

cleanUpAfter('all');

describe('aemp logs', () => {
  it('prints the records of the network and ends cleanly on SIGINT', async () => {
    const srv = await runNode();
    const proc = aemp(['logs', '9'], { AEMP_RC: srv.rc });
    // srv's own note on attaching the catcher is its first record.
    const m = await proc.waitOut(
      /^\S+ debug AnyEvent::MP::LogCatcher: \[(srv\/[^\]+-]+)[^\]]*\] starting to propagate log messages to aemp\//m,
      WAIT_MS,
    );
    expect(m[1]).toBe(srv.id);
    proc.child.kill('SIGINT');
    expect(await proc.exited(WAIT_MS)).toBe(0);
    expect(proc.err()).toBe('');
  });

  it('refuses a level outside 1…9', async () => {
    const proc = aemp(['logs', '12']);
    expect(await proc.exited(WAIT_MS)).not.toBe(0);
    expect(proc.err()).toMatch(/expected a level from 1 \(fatal\) to 9 \(trace\)/);
  });
});
