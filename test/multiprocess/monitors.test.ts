/**
 * Kills and monitors across processes: remote kil, remote mon (kil0 / no_such_port / normal
 * kill), a peer process that is SIGKILLed, and connect failures (wrong secret, a handshake
 * that never completes).
 */
import { describe, expect, it } from 'vitest';
import type { ChildEvent } from '../helpers/node-ipc.js';
import { forkNode, type NodeProcess, startPair } from '../helpers/spawn-node.js';

type StallEvent = Extract<ChildEvent, { event: 'stall' }>;

/** Resolves once everything `from` sent to the echo port's node so far has been handled there. */
async function barrier(from: NodeProcess, echoOnPeer: string): Promise<void> {
  expect(await from.cal(echoOnPeer, ['barrier'])).toEqual({ reply: ['barrier'] });
}

describe('remote kil', () => {
  it('kills the remote port with the reason; its local and remote monitors see it', async () => {
    const [hub, leaf] = await startPair();
    const [victim, normal] = await Promise.all([leaf.port('silent'), leaf.port('silent')]);
    const local = await leaf.mon(victim);
    const remote = await hub.mon(victim);
    await hub.kil(victim, 'shutdown', { code: 7, why: 'ünïcode' });
    expect((await leaf.monFired(local)).reason).toEqual(['shutdown', { code: 7, why: 'ünïcode' }]);
    expect((await hub.monFired(remote)).reason).toEqual(['shutdown', { code: 7, why: 'ünïcode' }]);

    // Without a reason it is a normal kill: the local monitor gets [].
    const localNormal = await leaf.mon(normal);
    await hub.kil(normal);
    expect((await leaf.monFired(localNormal)).reason).toEqual([]);
  });
});

describe('remote mon', () => {
  it('gets the kill reason, no_such_port for a missing port, [] for a normal kill', async () => {
    const [hub, leaf] = await startPair();
    const [dies, victim, echo] = await Promise.all([
      leaf.port('die'),
      leaf.port('silent'),
      leaf.port('echo'),
    ]);

    const died = await hub.mon(dies);
    await hub.snd(dies, 'exploded');
    expect((await hub.monFired(died)).reason).toEqual(['die', 'exploded']);

    const missing = `${leaf.id}#not-a-port`;
    const noPort = await hub.mon(missing);
    expect((await hub.monFired(noPort)).reason).toEqual([
      'no_such_port',
      'cannot monitor nonexistent port',
      missing,
    ]);

    const normal = await hub.mon(victim);
    await barrier(hub, echo); // the mon1 is registered on the leaf before the leaf kills the port
    await leaf.kil(victim);
    expect((await hub.monFired(normal)).reason).toEqual([]);
    // Each monitor fired exactly once.
    expect(hub.all('mon').map((e) => e.mon)).toEqual([died, noPort, normal]);
  });
});

describe('a peer process dies', () => {
  it('SIGKILL: monitors of its ports fire with transport_error from the closed socket, nodes$ reports down', async () => {
    const [hub, leaf] = await startPair();
    const [p1, p2, echo] = await Promise.all([leaf.port('silent'), leaf.port('silent'), leaf.port('echo')]);
    const m1 = await hub.mon(p1);
    const m2 = await hub.mon(p2);
    await barrier(hub, echo);

    const t0 = performance.now();
    const dead = leaf.kill('SIGKILL');
    const [fired1, fired2] = await Promise.all([hub.monFired(m1), hub.monFired(m2)]);
    const detectedMs = performance.now() - t0;
    await dead;
    console.log(`SIGKILL of ${leaf.id} detected after ${detectedMs.toFixed(1)} ms`);

    expect(leaf.exitSignal).toBe('SIGKILL');
    expect(fired1.reason).toHaveLength(3);
    expect(fired1.reason.slice(0, 2)).toEqual(['transport_error', leaf.id]);
    // Found by the socket closing, not by a heartbeat or another deadline running out.
    expect(fired1.reason[2]).toEqual(expect.any(String));
    expect(fired1.reason[2]).not.toMatch(/timeout|timed out/i);
    expect(fired2.reason).toEqual(fired1.reason);
    const down = await hub.nodeEvent('down', leaf.id);
    expect(down.reason).toEqual(fired1.reason);
    expect(await hub.upNodes()).toEqual([]);
  });
});

describe('connect failures', () => {
  it('wrong secret: no connection; a monitor fires connect timeout after connect_interval', async () => {
    const [hub, intruder] = await Promise.all([forkNode('hub'), forkNode('intruder')]);
    await hub.configure({ nodeid: 'mp-hub/', connect_interval: 0.5 });
    await intruder.configure({
      nodeid: 'mp-intruder/',
      secret: 'not-the-shared-secret',
      seeds: [hub.addr],
      connect_interval: 0.5,
    });
    // The seed dial got the hub's greeting (so its address is known) and then failed auth: the
    // hub (accepting) closes without sending its own auth line, so the intruder sees the close.
    await Promise.all([
      intruder.logged(/handshake failed: connection closed by peer/),
      hub.logged(/handshake failed: .*shared secret mismatch/),
    ]);

    const target = await hub.port('silent');
    const m = await intruder.mon(target);
    const fired = await intruder.monFired(m, { timeoutMs: 5000 });
    // The connect_interval deadline ended it (when, is proven in virtual time:
    // test/unit/net/connect-timing.test.ts).
    console.log(`wrong secret: monitor fired after ${fired.ms.toFixed(0)} ms (connect_interval 0.5 s)`);
    expect(fired.reason).toEqual(['transport_error', hub.id, 'connect timeout']);

    expect(await intruder.upNodes()).toEqual([]);
    expect(await hub.upNodes()).toEqual([]);
    expect(intruder.all('node')).toEqual([]);
    expect(hub.all('node')).toEqual([]);
  });

  // The connect_interval deadline also runs while a seed dial to that node is mid-handshake.
  it('a monitor set while a handshake to that node hangs fires connect timeout', async () => {
    const phantomId = 'mp-phantom/stalled';
    const [staller, dialler] = await Promise.all([forkNode('staller'), forkNode('dialler')]);
    const addr = await staller.request({ cmd: 'stall', nodeId: phantomId });
    await dialler.configure({
      nodeid: 'mp-dialler/',
      seeds: [addr],
      connect_interval: 0.5,
      monitor_timeout: 3,
    });
    // The dialler's auth line (its 3rd line) proves it has read the phantom's greeting.
    await staller.waitFor((e): e is StallEvent => e.event === 'stall' && e.lines.length >= 3);

    const m = await dialler.mon(`${phantomId}#port`);
    // The connect_interval deadline ends it, as the reason says; without that deadline nothing
    // fires within the wait (the handshake's own limit, monitor_timeout, is 3 s and only logs).
    // When it fires is proven in virtual time (test/integration/perl-peer.test.ts).
    const fired = await dialler.monFired(m, { timeoutMs: 5000 });
    console.log(`stalled handshake: monitor fired after ${fired.ms.toFixed(0)} ms (connect_interval 0.5 s)`);
    expect(fired.reason).toEqual(['transport_error', phantomId, 'connect timeout']);
  });
});
