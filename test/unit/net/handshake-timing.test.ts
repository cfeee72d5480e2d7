/**
 * The handshake's limits and the close grace in virtual time: a raw in-memory peer that stalls
 * is cut off after `monitor_timeout` of silence; one that trickles a byte now and then, at the
 * `handshake_timeout` deadline; `close()` waits `CLOSE_GRACE_MS` for a connect still under way.
 */
import { describe, expect, it } from 'vitest';
import { CLOSE_GRACE_MS } from '../../../src/streams/net/tcp-network.js';
import { MemoryNetwork, type Transport, VirtualClock } from '../../../src/testing.js';
import { within } from '../../helpers/fake-peer.js';
import { network, node } from './memory-nodes.js';

const ADDR = '10.0.0.1:4040';

/** A raw peer dialled to `addr`: what it received, and whether (why) it was closed. */
function rawPeer(net: MemoryNetwork, addr: string) {
  const state = { got: '', closed: undefined as string | undefined };
  const t: Transport = net.host().dial(addr);
  t.open({
    data: (chunk) => {
      state.got += Buffer.from(chunk).toString('latin1');
    },
    closed: (reason) => {
      state.closed = reason;
    },
  });
  return { t, state };
}

/** Lets in-memory bytes move without moving the clock. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('handshake limits (virtual time)', () => {
  it('silence after half a greeting line: closed after monitor_timeout, "Connection timed out"', async () => {
    const net = new MemoryNetwork();
    const clock = new VirtualClock();
    const n = node(net.host(), clock, { nodeid: 'hs-n', binds: [ADDR], monitor_timeout: 1 });
    await within(n.ready, 1000, 'the node to listen');
    const { t, state } = rawPeer(net, ADDR);
    await turns();
    expect(state.got).toMatch(/^aemp;1;hs-n;/);
    t.write('aemp;1;slow;hmac_sha3');
    await turns();
    await clock.run(999);
    expect(state.closed).toBeUndefined();
    await clock.run(1);
    await turns();
    expect(state.closed).toBe('connection closed by peer');
    expect(n.logs.some((l) => /handshake failed: Connection timed out/.test(l.text))).toBe(true);
  });

  it('every byte restarts the silence limit; the whole handshake ends at handshake_timeout', async () => {
    const net = new MemoryNetwork();
    const clock = new VirtualClock();
    const n = node(net.host(), clock, {
      nodeid: 'hs-trickle',
      binds: [ADDR],
      monitor_timeout: 1,
      handshake_timeout: 5,
    });
    await within(n.ready, 1000, 'the node to listen');
    const { t, state } = rawPeer(net, ADDR);
    await turns();
    // One byte every 0.9 s: never a second of silence.
    for (let i = 0; i < 5; i++) {
      t.write('a');
      await turns();
      await clock.run(900);
      expect(state.closed).toBeUndefined();
    }
    // 4.5 s gone; the deadline is at 5 s.
    t.write('e');
    await turns();
    await clock.run(499);
    expect(state.closed).toBeUndefined();
    await clock.run(1);
    await turns();
    expect(state.closed).toBe('connection closed by peer');
    expect(n.logs.some((l) => /handshake not completed within 5 s/.test(l.text))).toBe(true);
  });
});

describe('close grace (virtual time)', () => {
  it('close() waits CLOSE_GRACE_MS for a connect under way, then drops its messages', async () => {
    const net = new MemoryNetwork();
    const FAR = '10.0.9.9:4040';
    net.blackhole(FAR);
    const clock = new VirtualClock();
    const n = node(net.host(), clock, { nodeid: 'grace-n', binds: [ADDR], connect_interval: 10 });
    await within(n.ready, 1000, 'the node to listen');
    network(n).addresses.set('grace-far', [FAR]);
    n.snd('grace-far#p', 'lost');
    let closed = false;
    const closing = n.close().then(() => (closed = true));
    await clock.run(CLOSE_GRACE_MS - 1);
    expect(closed).toBe(false);
    await clock.run(1);
    await within(closing, 1000, 'close() after the grace');
    expect(n.logs.some((l) => /grace-far: 1 message\(s\) dropped/.test(l.text))).toBe(true);
  });
});
