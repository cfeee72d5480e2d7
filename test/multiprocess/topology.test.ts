/**
 * Who is connected to whom: a node restarted under the same node ID in a new process, and one
 * node dialled by five others at once.
 */
import { describe, expect, it } from 'vitest';
import { forkNode, startNode } from '../helpers/spawn-node.js';

describe('restart under the same node ID', () => {
  it('is reachable again through its new connection; old monitors fired once', async () => {
    const fixedId = `mp-fixed-${process.pid}`; // no trailing '/': not randomised
    const [hub, first] = await Promise.all([forkNode('hub'), forkNode('first')]);
    await hub.configure({ nodeid: 'mp-hub/' });
    await first.configure({ nodeid: fixedId, seeds: [hub.addr] });
    expect(first.id).toBe(fixedId);
    await Promise.all([hub.nodeEvent('up', fixedId), first.nodeEvent('up', hub.id)]);

    const old = await first.port('echo');
    const oldMon = await hub.mon(old);
    expect(await hub.cal(old, ['before'])).toEqual({ reply: ['before'] });

    const beforeRestart = hub.mark();
    await first.kill('SIGKILL');
    const fired = await hub.monFired(oldMon);
    expect(fired.reason.slice(0, 2)).toEqual(['transport_error', fixedId]);
    await hub.nodeEvent('down', fixedId, { from: beforeRestart });

    // A new process, a new listener port, the same node ID, dialling the hub again.
    const second = await startNode('second', { nodeid: fixedId, seeds: [hub.addr] });
    expect(second.id).toBe(fixedId);
    expect(second.pid).not.toBe(first.pid);
    await Promise.all([
      hub.nodeEvent('up', fixedId, { from: beforeRestart }),
      second.nodeEvent('up', hub.id),
    ]);
    expect(await hub.upNodes()).toEqual([fixedId]);

    const fresh = await second.port('echo');
    expect(await hub.cal(fresh, ['after'])).toEqual({ reply: ['after'] });
    const rec = await hub.port('record');
    await second.snd(rec, 'from the new incarnation');
    expect((await hub.received(rec)).src).toBe(fixedId);

    // The old port is gone: the new incarnation answers the mon1 for it.
    const again = await hub.mon(old);
    expect((await hub.monFired(again)).reason).toEqual([
      'no_such_port',
      'cannot monitor nonexistent port',
      old,
    ]);
    expect(hub.all('mon').filter((e) => e.mon === oldMon)).toHaveLength(1);
    expect(
      hub
        .all('node')
        .filter((e) => e.node === fixedId)
        .map((e) => e.type),
    ).toEqual(['up', 'down', 'up']);
  });
});

describe('one node dialled by five at once', () => {
  it('every dialler and the hub see the connections up', async () => {
    const [hub, ...leaves] = await Promise.all(['hub', 1, 2, 3, 4, 5].map((n) => forkNode(`${n}`)));
    await hub!.configure({ nodeid: 'mp-hub/' });
    // Configured together: the five seed dials reach the hub at about the same time.
    await Promise.all(leaves.map((l, i) => l.configure({ nodeid: `mp-leaf${i + 1}/`, seeds: [hub!.addr] })));
    await Promise.all(leaves.flatMap((l) => [l.nodeEvent('up', hub!.id), hub!.nodeEvent('up', l.id)]));

    const ids = leaves.map((l) => l.id);
    expect(new Set(ids).size).toBe(5);
    expect((await hub!.upNodes()).sort()).toEqual([...ids].sort());
    for (const l of leaves) expect(await l.upNodes()).toEqual([hub!.id]);

    // Exactly one up per dialler on the hub, no down anywhere.
    const hubNodes = hub!.all('node');
    expect(hubNodes.map((e) => e.type)).toEqual(['up', 'up', 'up', 'up', 'up']);
    expect(hubNodes.map((e) => e.node).sort()).toEqual([...ids].sort());
    for (const l of leaves) expect(l.all('node')).toEqual([{ event: 'node', type: 'up', node: hub!.id }]);

    // And messages flow on every connection, in both directions, concurrently.
    const echo = await hub!.port('echo');
    const replies = await Promise.all(leaves.map((l) => l.cal(echo, ['hi from', l.id])));
    expect(replies).toEqual(ids.map((id) => ({ reply: ['hi from', id] })));
  });
});
