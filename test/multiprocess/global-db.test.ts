/**
 * The distributed database across processes: three global seed nodes and five ordinary nodes,
 * each in its own process on loopback TCP. Registrations reach every node; a killed node's
 * entries vanish everywhere; a killed master's slaves fail over and their entries come back;
 * a node known only from the database is reachable by its ID; a late monitor starts with a
 * full snapshot. Every wait is for an event, with a deadline.
 */
import { describe, expect, it } from 'vitest';
import type { ChildEvent } from '../helpers/node-ipc.js';
import { forkNode, type NodeProcess } from '../helpers/spawn-node.js';

type DbEvent = Extract<ChildEvent, { event: 'db' }>;

function dbMon(n: NodeProcess, family: string): Promise<number> {
  return n.request({ cmd: 'dbMon', family });
}

/** The first change of monitor `mon` (from event index `from`) that satisfies `pred`. */
function dbEvent(
  n: NodeProcess,
  mon: number,
  pred: (e: DbEvent) => boolean,
  opts: { from?: number; timeoutMs?: number } = {},
): Promise<DbEvent> {
  return n.waitFor((e): e is DbEvent => e.event === 'db' && e.mon === mon && pred(e), opts);
}

const sameKeys = (entries: Record<string, unknown>, keys: readonly string[]) =>
  Object.keys(entries).sort().join(' ') === [...keys].sort().join(' ');

describe('global database: 3 global seeds, 5 ordinary nodes', () => {
  it('registrations everywhere, node loss, master failover, g_find, late snapshots', async () => {
    const procs = await Promise.all(['g1', 'g2', 'g3', 'n1', 'n2', 'n3', 'n4', 'n5'].map((n) => forkNode(n)));
    const [g1, g2, g3, ...ns] = procs as [NodeProcess, NodeProcess, NodeProcess, ...NodeProcess[]];
    const global = { services: ['AnyEvent::MP::Global::'] };
    // The seed graph is connected (g2 → g1, g3 → g1, g2); the 'g keepalive completes the mesh.
    await g1.configure({ nodeid: 'mp-g1/', ...global });
    await g2.configure({ nodeid: 'mp-g2/', seeds: [g1.addr], ...global });
    await g3.configure({ nodeid: 'mp-g3/', seeds: [g1.addr, g2.addr], ...global });
    const seeds = [g1.addr, g2.addr, g3.addr];
    await Promise.all(ns.map((n) => n.configure({ nodeid: `mp-${n.name}/`, seeds })));

    const svc = new Map<NodeProcess, number>();
    const listeners = new Map<NodeProcess, number>();
    for (const n of procs) {
      svc.set(n, await dbMon(n, 'svc'));
      listeners.set(n, await dbMon(n, "'l"));
    }
    const ports = new Map<NodeProcess, string>();
    await Promise.all(
      ns.map(async (n) => {
        const p = await n.port('echo');
        ports.set(n, p);
        await n.request({ cmd: 'dbSet', family: 'info', subkey: n.id, value: { name: n.name } });
        await n.request({ cmd: 'dbReg', family: 'svc', port: p, value: n.name });
      }),
    );

    // Every node sees every registration and every node's listeners.
    const allPorts = [...ports.values()];
    const ids = procs.map((n) => n.id);
    await Promise.all(
      procs.flatMap((n) => [
        dbEvent(n, svc.get(n)!, (e) => sameKeys(e.entries, allPorts)),
        dbEvent(n, listeners.get(n)!, (e) => sameKeys(e.entries, ids)),
      ]),
    );
    const last = (n: NodeProcess, mon: number) =>
      n
        .all('db')
        .filter((e) => e.mon === mon)
        .at(-1)!;
    for (const n of procs) {
      expect(last(n, svc.get(n)!).entries).toEqual(
        Object.fromEntries(ns.map((o) => [ports.get(o)!, o.name])),
      );
      expect(last(n, listeners.get(n)!).entries).toEqual(
        Object.fromEntries(procs.map((o) => [o.id, o.binds])),
      );
    }
    for (const g of [g1, g2, g3]) expect((await g.request({ cmd: 'dbInfo' })).global).toBe(true);
    for (const n of ns) {
      const info = await n.request({ cmd: 'dbInfo' });
      expect(info.global).toBe(false);
      expect([g1.id, g2.id, g3.id]).toContain(info.master);
    }

    // SIGKILL an ordinary node: its entries vanish for every subscriber within 2 s.
    const victim = ns[4]!;
    const gonePort = ports.get(victim)!;
    const survivors = procs.filter((n) => n !== victim);
    const marks = new Map(survivors.map((n) => [n, n.mark()]));
    await victim.kill('SIGKILL');
    await Promise.all(
      survivors.flatMap((n) => [
        dbEvent(n, svc.get(n)!, (e) => e.deleted.includes(gonePort), {
          from: marks.get(n)!,
          timeoutMs: 2000,
        }),
        dbEvent(n, listeners.get(n)!, (e) => e.deleted.includes(victim.id), {
          from: marks.get(n)!,
          timeoutMs: 2000,
        }),
      ]),
    );

    // SIGKILL the master of some slaves: they fail over, re-register, and everything comes back.
    const slaves = ns.slice(0, 4);
    const masters = await Promise.all(slaves.map(async (n) => (await n.request({ cmd: 'dbInfo' })).master));
    const count = (g: NodeProcess) => masters.filter((m) => m === g.id).length;
    const dead = [g1, g2, g3].reduce((a, b) => (count(b) > count(a) ? b : a));
    const orphans = slaves.filter((_, i) => masters[i] === dead.id);
    expect(orphans.length).toBeGreaterThan(0);
    const rest = survivors.filter((n) => n !== dead);
    for (const n of rest) marks.set(n, n.mark());
    await dead.kill('SIGKILL');
    const livePorts = slaves.map((n) => ports.get(n)!);
    const liveIds = rest.map((n) => n.id);
    await Promise.all(
      rest.flatMap((n) => [
        dbEvent(n, svc.get(n)!, (e) => sameKeys(e.entries, livePorts), { from: marks.get(n)! }),
        dbEvent(n, listeners.get(n)!, (e) => sameKeys(e.entries, liveIds), { from: marks.get(n)! }),
      ]),
    );
    for (const n of orphans) {
      const info = await n.request({ cmd: 'dbInfo' });
      expect(info.master).not.toBe(dead.id);
      expect([g1.id, g2.id, g3.id]).toContain(info.master);
      expect(Object.keys(info.own).sort()).toEqual(["'l", 'info', 'svc']);
    }

    // A node known only through the database is reachable by its ID (g_find to the master).
    const [a, b] = [slaves[0]!, slaves[1]!];
    expect(await a.upNodes()).not.toContain(b.id);
    expect(await a.cal(ports.get(b)!, ['found you'])).toEqual({ reply: ['found you'] });
    expect(await a.upNodes()).toContain(b.id);

    // Late subscribers start with a full snapshot: a second monitor of a monitored family,
    // and the first monitor of a family set long ago.
    const c = slaves[2]!;
    const second = await dbMon(c, 'svc');
    const snap = await dbEvent(c, second, () => true);
    expect([...snap.added].sort()).toEqual([...livePorts].sort());
    expect(snap.changed).toEqual([]);
    expect(snap.deleted).toEqual([]);
    const info = await dbMon(c, 'info');
    const first = await dbEvent(c, info, () => true);
    expect(first.entries).toEqual(Object.fromEntries(slaves.map((n) => [n.id, { name: n.name }])));
    expect([...first.added].sort()).toEqual(slaves.map((n) => n.id).sort());
  });
});
