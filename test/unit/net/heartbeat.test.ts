/**
 * Heartbeats in virtual time (design.md §4): two nodes on an in-memory network, each on its own
 * clock. One of them stops (its transports freeze and its clock stands still, as a stopped
 * process); the other declares it down at its first beat after `heartbeat_interval ×
 * heartbeat_misses` of silence, not before.
 */
import { describe, expect, it } from 'vitest';
import { MemoryNetwork, VirtualClock } from '../../../src/testing.js';
import { network, node, nodeEvent } from './memory-nodes.js';

const HB = { heartbeat_interval: 1, heartbeat_misses: 3 };

async function pair(bOpts: Record<string, unknown> = HB) {
  const net = new MemoryNetwork();
  const clockA = new VirtualClock();
  const clockB = new VirtualClock();
  const hostB = net.host();
  const a = node(net.host(), clockA, { nodeid: 'hb-a', binds: ['10.0.0.1:4040'], ...HB });
  const b = node(hostB, clockB, { nodeid: 'hb-b', binds: ['10.0.0.2:4040'], ...bOpts });
  await Promise.all([a.ready, b.ready]);
  network(a).addresses.set('hb-b', ['10.0.0.2:4040']);
  a.snd('hb-b#nobody', 'hello');
  await nodeEvent(a, 'up', 'hb-b');
  return { a, b, hostB, clockA, clockB };
}

describe('heartbeat (virtual time)', () => {
  it('a stopped peer is down at the first beat after interval × misses of silence, not before', async () => {
    const { a, hostB, clockA } = await pair();
    let down: unknown;
    a.nodes$.subscribe((e) => {
      if (e.type === 'down') down = e;
    });
    hostB.freeze();
    // Beats at 1, 2 and 3 s: the silence is not longer than 3 × 1 s yet.
    await clockA.run(3999);
    expect(down).toBeUndefined();
    await clockA.run(1);
    expect(down).toEqual({
      type: 'down',
      node: 'hb-b',
      reason: ['transport_error', 'hb-b', 'heartbeat timeout'],
    });
  });

  it('an idle connection stays up for many intervals: both sides beat', async () => {
    const { a, b, clockA, clockB } = await pair();
    let down = false;
    a.nodes$.subscribe((e) => {
      if (e.type === 'down') down = true;
    });
    for (let i = 0; i < 100; i++) {
      await clockA.run(500);
      await clockB.run(500);
    }
    expect(down).toBe(false);
    expect(a.upNodes()).toEqual(['hb-b']);
    expect(b.upNodes()).toEqual(['hb-a']);
  });

  it('an idle side beats once every interval (its own beat does not count as traffic)', async () => {
    const { a, b, clockA, clockB } = await pair();
    const sent = () => a.connectionStats().find((c) => c.node === 'hb-b')!.messagesOut;
    const heard = () => b.connectionStats().find((c) => c.node === 'hb-a')!.messagesIn;
    const interval = async () => {
      await clockA.run(1000);
      await clockB.run(1000);
    };
    await interval(); // the first message (sent by pair()) arrives
    const [sent0, heard0] = [sent(), heard()];
    for (let i = 0; i < 10; i++) await interval();
    expect(sent() - sent0).toBe(10);
    expect(heard() - heard0).toBe(10);
  });

  it('a side that sends messages of its own adds no beats', async () => {
    const { a, clockA, clockB } = await pair();
    const sent = () => a.connectionStats().find((c) => c.node === 'hb-b')!.messagesOut;
    const sent0 = sent();
    for (let i = 0; i < 10; i++) {
      a.snd('hb-b#nobody', i);
      await clockA.run(1000);
      await clockB.run(1000);
    }
    expect(sent() - sent0).toBe(10);
  });

  it('a peer that does not advertise heartbeats is never timed out', async () => {
    const { a, hostB, clockA } = await pair({ heartbeat_interval: 0 });
    hostB.freeze();
    await clockA.run(60_000);
    expect(a.upNodes()).toEqual(['hb-b']);
    hostB.thaw();
  });
});
