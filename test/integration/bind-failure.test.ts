/**
 * A listener that cannot be made rejects `node.ready` (outside the embedded default's
 * fallback) and is logged at error level; a node never runs without the listeners it was
 * configured with. An address that cannot be one is refused by configure() at once.
 */
import { describe, expect, it } from 'vitest';
import { AempError, ConfigError, LEVEL } from '../../src/index.js';
import { within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';
import { listening } from '../helpers/ports.js';

/** Deadline for a node to fail its start, and for the log line saying so. */
const WAIT = 10_000;

describe('bind failure', () => {
  it('an explicit bind that is in use rejects ready with ERR_BIND_FAILED', async () => {
    const { server: blocker, port } = await within(listening(), WAIT, 'a blocking listener');
    try {
      const n = testNode({ binds: [`127.0.0.1:${port}`] });
      const err = await within(
        n.ready.catch((e: unknown) => e),
        WAIT,
        'ready to reject',
      );
      expect((err as { code?: string }).code).toBe('ERR_BIND_FAILED');
      expect((err as Error).message).toContain(`cannot listen on 127.0.0.1:${port}`);
    } finally {
      await within(new Promise((r) => blocker.close(r)), WAIT, 'the blocking listener to close');
    }
  });

  it('a bind whose host name does not resolve rejects ready and is logged at error level', async () => {
    // .invalid never resolves (RFC 6761); the resolver's error code varies (ENOTFOUND, EAI_AGAIN)
    const n = testNode({ binds: ['127.0.0.1:*', 'nonsense.invalid'] });
    const err = await within(
      n.ready.catch((e: unknown) => e),
      WAIT,
      'ready to reject',
    );
    expect(AempError.is(err) && err.code).toBe('ERR_BIND_FAILED');
    expect((err as Error).message).toMatch(
      /^cannot listen on "nonsense\.invalid": cannot resolve "nonsense\.invalid": getaddrinfo [A-Z_]+ nonsense\.invalid$/,
    );
    const line = await within(n.logged(/failed to start/), WAIT, 'the failure to be logged');
    expect(line.level).toBe(LEVEL.error);
    expect(line.text).toBe(`node ${n.id} failed to start: ConnectionError: ${(err as Error).message}`);
  });

  it('four dotted numbers that are no IPv4 address: configure throws, no node is made', () => {
    expect(() => testNode({ binds: ['999.1.1.1:5'], profile: 'p' })).toThrow(ConfigError);
    expect(() => testNode({ binds: ['999.1.1.1:5'], profile: 'p' })).toThrow(
      'invalid configuration: key "binds" in profile "p": has an unparsable address "999.1.1.1:5" ' +
        '(not an IPv4 address), got ["999.1.1.1:5"] (set by configure arguments)',
    );
  });
});
