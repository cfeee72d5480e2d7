/**
 * Faults with real processes, beyond test/multiprocess/topology.test.ts (which covers a clean
 * SIGKILL + restart under the same node ID):
 *   - the old incarnation is frozen, not dead (SIGSTOP: its socket stays open), when the new
 *     one starts: the hub refuses the newcomer ("already connected") until heartbeats declare
 *     the old connection dead, then accepts it;
 *   - state the hub kept for the old incarnation (a remote monitor of a hub port) must not
 *     reach the new incarnation.
 */
import { describe, expect, it } from 'vitest';
import { FakePeer, within } from '../helpers/fake-peer.js';
import { CHILD_SECRET, startChild } from '../helpers/hostile-child.js';

const HB = { heartbeat_interval: 0.2, heartbeat_misses: 3, monitor_timeout: 2 };

describe('restart under the same node ID', () => {
  it('while the old process is frozen: refused as "already connected" until the heartbeat timeout, then up', async () => {
    const fixedId = `hostile-fixed-${process.pid}`;
    const [hub, first, second] = await Promise.all([
      startChild('hub'),
      startChild('first'),
      startChild('second'),
    ]);
    await hub.configure({ nodeid: 'hostile-hub', ...HB });
    await first.configure({ nodeid: fixedId, seeds: [hub.addr], ...HB });
    await Promise.all([hub.nodeEvent('up', fixedId), first.nodeEvent('up', hub.id)]);
    const oldPort = await first.request({ cmd: 'port', kind: 'echo' });
    const oldMon = await hub.request({ cmd: 'mon', port: oldPort });

    const mark = hub.mark();
    first.signal('SIGSTOP');
    const t0 = performance.now();
    await second.configure({ nodeid: fixedId, seeds: [hub.addr], ...HB });
    const refused = await hub.logged(/already connected, not connecting again/, { from: mark });
    const refusedMs = performance.now() - t0;
    const down = await hub.nodeEvent('down', fixedId, { from: mark, timeoutMs: 5000 });
    const downMs = performance.now() - t0;
    const up = await hub.nodeEvent('up', fixedId, { from: mark, timeoutMs: 8000 });
    const upMs = performance.now() - t0;
    await second.nodeEvent('up', hub.id);
    console.log(
      `frozen old incarnation: newcomer refused after ${refusedMs.toFixed(0)} ms, old one down after ` +
        `${downMs.toFixed(0)} ms (${JSON.stringify(down.reason)}), newcomer up after ${upMs.toFixed(0)} ms`,
    );
    expect(refused.text).toContain(`${fixedId} already connected`);
    expect(down.reason).toEqual(['transport_error', fixedId, 'heartbeat timeout']);
    expect(hub.events.indexOf(up)).toBeGreaterThan(hub.events.indexOf(down));
    // The monitor of the frozen incarnation's port fired exactly once, with the heartbeat reason.
    const fired = hub.all('mon').filter((m) => m.mon === oldMon);
    expect(fired.map((m) => m.reason)).toEqual([['transport_error', fixedId, 'heartbeat timeout']]);

    // The hub now talks to the new process: a fresh port answers, the old one is gone.
    const fresh = await second.request({ cmd: 'port', kind: 'echo' });
    expect(await hub.request({ cmd: 'cal', to: fresh, msg: ['hello'], timeoutMs: 3000 })).toEqual({
      reply: ['hello'],
    });
    const again = await hub.request({ cmd: 'mon', port: oldPort });
    const gone = await hub.waitFor(
      (e): e is Extract<typeof e, { event: 'mon' }> => e.event === 'mon' && e.mon === again,
    );
    expect(gone.reason).toEqual(['no_such_port', 'cannot monitor nonexistent port', oldPort]);
    await first.kill();
  });

  // Monitors a node set on our ports are forgotten when its connection is lost (as Perl drops
  // the node object): a new incarnation under the same node ID gets no kil0 for them.
  it('a remote monitor set by the old incarnation does not fire towards the new one', async () => {
    const hub = await (await startChild('hub')).configure({ nodeid: 'hostile-hub' });
    const port = await hub.request({ cmd: 'port', kind: 'silent' });
    const name = port.slice(port.indexOf('#') + 1);

    const old = await FakePeer.dial(hub.addr);
    await old.handshake({ nodeId: 'ghost', secret: CHILD_SECRET });
    old.send(['', 'mon1', name]);
    old.send(['', 'time', 'ghost#t1']);
    expect(await old.next()).toEqual(['t1', expect.any(Number)]);
    const mark = hub.mark();
    old.destroy();
    await hub.nodeEvent('down', 'ghost', { from: mark });

    const reborn = await FakePeer.dial(hub.addr);
    await reborn.handshake({ nodeId: 'ghost', secret: CHILD_SECRET });
    await hub.nodeEvent('up', 'ghost', { from: mark });
    await hub.request({ cmd: 'kil', port, reason: ['late'] });
    reborn.send(['', 'time', 'ghost#t2']);
    // The first frame the new incarnation gets must be its own reply, not a stale kil0.
    expect(await within(reborn.next(), 3000, 'reply')).toEqual(['t2', expect.any(Number)]);
  });
});
