/**
 * The read-only stats request `["", "aemp::stats", REPLY…]` over loopback: a secure node
 * answers it (while refusing eval), the answer carries the node's own numbers and the counters
 * of its links, and the greeting of the connection tells our nodes from Perl's.
 */
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { StatsAnswer } from '../../src/streams/observe/stats-request.js';
import { STATS_REQUEST } from '../../src/streams/observe/stats-request.js';
import { within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const secret = 'observe-stats';
const WAIT = 20_000;

async function connectedPair(bOpts: Record<string, unknown> = {}) {
  const a = testNode({ nodeid: 'obs-a', secret, binds: ['127.0.0.1:0'] });
  await within(a.ready, WAIT, 'node a to start');
  const b = testNode({ nodeid: 'obs-b', secret, binds: ['127.0.0.1:0'], seeds: [...a.binds], ...bOpts });
  await within(b.ready, WAIT, 'node b to start');
  await within(
    firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'obs-b'))),
    WAIT,
    'b to connect to a',
  );
  return { a, b };
}

describe('the stats request', () => {
  it('a secure node answers it with its numbers and link counters, and refuses eval', async () => {
    const { a, b } = await connectedPair({ secure: true });
    // Some traffic from a to b first, so that the link counters are not zero.
    const all = deferred();
    let n = 0;
    const sink = b.port(() => {
      if (++n === 20) all.resolve();
    });
    for (let i = 0; i < 20; i++) a.snd(sink, 'x'.repeat(50));
    await within(all.promise, WAIT, '20 messages at b');
    b.db.set('obs-family', 'k1', 1);

    const [stats] = (await within(
      firstValueFrom(a.cal$(b.id, STATS_REQUEST)),
      WAIT,
      'the stats answer from the secure node',
    )) as [StatsAnswer];
    expect(stats).toMatchObject({ node: 'obs-b', kind: 'aemp', global: false });
    expect(stats.addresses).toEqual([...b.binds]);
    expect(stats.ports).toBeGreaterThanOrEqual(1);
    expect(stats.heapUsed).toBeGreaterThan(0);
    expect(stats.rss).toBeGreaterThan(0);
    expect(stats.loopDelayMs).toEqual({ p50: expect.any(Number), max: expect.any(Number) });
    expect(stats.db!.families).toBeGreaterThanOrEqual(2); // 'l and obs-family
    expect(stats.familyKeys).toContainEqual(['obs-family', 1]);
    expect(stats.heartbeatMisses).toBe(0);
    const link = stats.links!.find((l) => l.to === 'obs-a')!;
    expect(link).toMatchObject({ from: 'obs-b', up: true });
    expect(link.messagesIn).toBeGreaterThanOrEqual(20);
    expect(link.bytesIn).toBeGreaterThanOrEqual(20 * 50);

    // Secure mode still refuses code: eval gets no reply and is logged as refused.
    a.evalOn(
      b.id,
      '1 + 1',
      a.port(() => {}),
    );
    await within(b.logged(/remote execution not allowed \(eval\)/), WAIT, 'the eval refusal');
  });

  it("the peer's greeting tells an aemp node by its keys", async () => {
    const { a } = await connectedPair();
    const g = a.network.peerGreeting?.('obs-b');
    expect(g?.keys.has('tb')).toBe(true);
    expect(a.network.peerGreeting?.('nobody')).toBeUndefined();
  });
});
