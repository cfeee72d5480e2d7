/**
 * The global database on the wire, against a scripted Perl-style peer on loopback TCP:
 * - our node as a global (seed) node answering a slave with the shapes the Perl 2.02 seed
 *   produced in /work/shared/vectors/node-port-{cbor,json}.txt (steps i1–i9, ix1, the "nofam"
 *   and "fam" steps and step y), in both framings;
 * - our node as an ordinary node talking to a Perl-style master: registration, g_upd shapes,
 *   queries, db_mon, g_find, and failover to the next seed with re-sent requests.
 */
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Node } from '../../src/index.js';
import type { DbChange } from '../../src/streams/db/family-watch.js';
import { FakeListener, FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { globalTestNode, testNode } from '../helpers/node.js';

const NODE_ID = 'ts-global';

/** Proves the connection is up and that our node sent nothing before the reply. */
async function quiet(fake: FakePeer, name = 'sync'): Promise<void> {
  fake.send(['', 'time', `${fake.result!.own[0].split(';')[2]}#${name}`]);
  expect(await fake.next()).toEqual([name, expect.any(Number)]);
}

/** Records a family's changes; `until` waits (with a deadline) for one that matches. */
function watch(node: Node, family: string) {
  const events: DbChange[] = [];
  const waiters = new Set<() => void>();
  node.db.mon$(family).subscribe((c) => {
    events.push(c);
    for (const w of [...waiters]) w();
  });
  const until = (pred: (c: DbChange) => boolean, what: string): Promise<DbChange> => {
    let seen = 0;
    const p = new Promise<DbChange>((resolve) => {
      const check = () => {
        for (; seen < events.length; seen++) {
          if (pred(events[seen]!)) {
            waiters.delete(check);
            resolve(events[seen]!);
            return;
          }
        }
      };
      waiters.add(check);
      check();
    });
    return within(p, WAIT_MS, what);
  };
  return { events, until };
}

const plain = (c: DbChange) => ({
  entries: { ...c.entries },
  added: [...c.added].sort(),
  changed: [...c.changed].sort(),
  deleted: [...c.deleted],
});

describe.each(['cbor', 'json'] as const)('our node as a global node, a Perl-style slave (%s)', (framing) => {
  it('answers g_slave, g_upd, g_db_*, g_mon1/g_mon0, g_find like the Perl seed', async () => {
    const node = await globalTestNode(NODE_ID, SECRET);
    expect(node.db.isGlobal).toBe(true);
    expect(node.db.master).toBe(NODE_ID);
    const fake = await FakePeer.dial(node.binds[0]!);
    const opts = framing === 'json' ? { framings: 'json', sendFraming: 'json' } : {};
    expect((await fake.handshake({ nodeId: 'probe', secret: SECRET, ...opts })).tokenOk).toBe(true);
    expect(fake.recvFraming).toBe(framing);

    // step 0: unprompted, only g_global
    expect(await fake.next()).toEqual(['', 'g_global']);
    await quiet(fake, 's0');
    // i1, i2: no reply
    fake.send(['', 'g_slave', { "'l": { probe: ['127.0.0.1:1'] } }]);
    fake.send(['', 'g_upd', 'fam', { a: 1, b: 'x' }]);
    await quiet(fake, 'i2');
    // i3–i5
    fake.send(['', 'g_db_family', 'fam', 'q1']);
    expect(await fake.next()).toEqual(['', 'g_reply', 'q1', { a: 1, b: 'x' }]);
    fake.send(['', 'g_db_keys', 'fam', 'q2']);
    const keys = await fake.next();
    expect(keys.slice(0, 3)).toEqual(['', 'g_reply', 'q2']);
    expect([...(keys[3] as string[])].sort()).toEqual(['a', 'b']);
    fake.send(['', 'g_db_values', 'fam', 'q3']);
    const values = await fake.next();
    expect(values.slice(0, 3)).toEqual(['', 'g_reply', 'q3']);
    expect((values[3] as unknown[]).map(String).sort()).toEqual(['1', 'x']);
    // i6–i8
    fake.send(['', 'g_mon1', 'fam']);
    expect(await fake.next()).toEqual(['', 'g_chg1', 'fam', { a: 1, b: 'x' }]);
    fake.send(['', 'g_upd', 'fam', { c: 3 }, ['a']]);
    expect(await fake.next()).toEqual(['', 'g_chg2', 'fam', { c: 3 }, ['a']]);
    fake.send(['', 'g_mon0', 'fam']);
    await quiet(fake, 'i8');
    // i9, ix1
    fake.send(['', 'g_find', NODE_ID]);
    expect(await fake.next()).toEqual(['', 'g_found', NODE_ID, [...node.binds]]);
    fake.send(['', 'g_find', 'probe']);
    expect(await fake.next()).toEqual(['', 'g_found', 'probe', ['127.0.0.1:1']]);
    fake.send(['', 'g_find', 'no-such-node']);
    expect(await fake.next()).toEqual(['', 'g_found', 'no-such-node', null]);
    // nofam: null, and still null after g_db_keys/g_db_values: Perl autovivifies the family
    // there (then {}), we store nothing on reads (a peer could fill the table with them).
    fake.send(['', 'g_db_family', 'nofam', 'q4']);
    expect(await fake.next()).toEqual(['', 'g_reply', 'q4', {}]);
    fake.send(['', 'g_mon1', 'nofam']);
    expect(await fake.next()).toEqual(['', 'g_chg1', 'nofam', null]);
    fake.send(['', 'g_mon0', 'nofam']);
    fake.send(['', 'g_db_keys', 'nofam', 'q5']);
    expect(await fake.next()).toEqual(['', 'g_reply', 'q5', []]);
    fake.send(['', 'g_db_values', 'nofam', 'q6']);
    expect(await fake.next()).toEqual(['', 'g_reply', 'q6', []]);
    fake.send(['', 'g_mon1', 'nofam']);
    expect(await fake.next()).toEqual(['', 'g_chg1', 'nofam', null]);
    fake.send(['', 'g_mon0', 'nofam']);
    // fam: no g_chg2 after g_mon0; delete-only → SET {}; no DEL element → DEL []
    fake.send(['', 'g_upd', 'fam', { d: 4 }]);
    await quiet(fake, 'f1');
    fake.send(['', 'g_mon1', 'fam']);
    expect(await fake.next()).toEqual(['', 'g_chg1', 'fam', { d: 4, b: 'x', c: 3 }]);
    fake.send(['', 'g_upd', 'fam', null, ['b']]);
    expect(await fake.next()).toEqual(['', 'g_chg2', 'fam', {}, ['b']]);
    fake.send(['', 'g_upd', 'fam', { b: 'y' }]);
    expect(await fake.next()).toEqual(['', 'g_chg2', 'fam', { b: 'y' }, []]);
    fake.send(['', 'g_mon0', 'fam']);
    await quiet(fake, 'f2');

    // step y: the probe announces itself as global, then updates as a slave
    fake.send(['', 'g_global']);
    expect(await fake.next()).toEqual(['', 'g_upd', "'g", { probe: null }, []]);
    expect(await fake.next()).toEqual([
      '',
      'g_set',
      { "'l": { [NODE_ID]: [...node.binds] }, "'g": { probe: null, [NODE_ID]: null } },
    ]);
    fake.send(['', 'g_slave', {}]);
    fake.send(['', 'g_upd', 'gfam', { k: 'v' }]);
    expect(await fake.next()).toEqual(['', 'g_upd', 'gfam', { k: 'v' }, []]);
    fake.send(['', 'g_upd', 'gfam', null, ['k']]);
    expect(await fake.next()).toEqual(['', 'g_upd', 'gfam', {}, ['k']]);
    await quiet(fake, 'y');
  });
});

describe('our node as a global node: connection loss and other globals', () => {
  it("a slave's entries vanish when it disconnects; monitors and other globals are told", async () => {
    const node = await globalTestNode(NODE_ID, SECRET);
    const svc = watch(node, 'svc');
    await svc.until((c) => c.added.length === 0, 'the first (empty) snapshot');
    const slave = await FakePeer.dial(node.binds[0]!);
    await slave.handshake({ nodeId: 'slave', secret: SECRET });
    expect(await slave.next()).toEqual(['', 'g_global']);
    const other = await FakePeer.dial(node.binds[0]!);
    await other.handshake({ nodeId: 'other-global', secret: SECRET });
    expect(await other.next()).toEqual(['', 'g_global']);
    other.send(['', 'g_global']);
    expect(await other.next()).toEqual(['', 'g_upd', "'g", { 'other-global': null }, []]);
    expect((await other.next()).slice(0, 2)).toEqual(['', 'g_set']);
    other.send(['', 'g_set', { "'l": { 'other-global': ['127.0.0.1:2'] }, svc: { remote: 1 } }]);
    // Its listener entry is mirrored into our own entries and so forwarded (as Perl does).
    expect(await other.next()).toEqual(['', 'g_upd', "'l", { 'other-global': ['127.0.0.1:2'] }, []]);
    await svc.until((c) => c.added.includes('remote'), 'the entry of the other global');

    slave.send(['', 'g_slave', { "'l": { slave: ['127.0.0.1:3'] }, svc: { mine: 2 } }]);
    expect(await other.next()).toEqual(['', 'g_upd', "'l", { slave: ['127.0.0.1:3'] }, []]);
    expect(await other.next()).toEqual(['', 'g_upd', 'svc', { mine: 2 }, []]);
    expect(await within(firstValueFrom(node.db.family$('svc')), WAIT_MS, 'family svc')).toEqual({
      remote: 1,
      mine: 2,
    });

    slave.destroy();
    const deletes = [await other.next(), await other.next()];
    expect(deletes).toContainEqual(['', 'g_upd', "'l", {}, ['slave']]);
    expect(deletes).toContainEqual(['', 'g_upd', 'svc', {}, ['mine']]);
    const d = await svc.until((c) => c.deleted.includes('mine'), 'the slave entry deleted');
    expect(plain(d)).toEqual({ entries: { remote: 1 }, added: [], changed: [], deleted: ['mine'] });

    // The other global goes: everything it provided goes with it.
    other.destroy();
    const g = await svc.until((c) => c.deleted.includes('remote'), 'the global entry deleted');
    expect({ ...g.entries }).toEqual({});
    expect(await within(firstValueFrom(node.db.keys$("'g")), WAIT_MS, "keys of 'g")).toEqual([NODE_ID]);
    expect(await within(firstValueFrom(node.db.keys$("'l")), WAIT_MS, "keys of 'l")).toEqual([NODE_ID]);
  });
});

describe('our node as an ordinary node, a Perl-style master', () => {
  async function attached(seedCount = 1) {
    const seeds = await Promise.all(Array.from({ length: seedCount }, () => FakeListener.open()));
    const node = testNode({
      nodeid: 'ts-slave',
      secret: SECRET,
      binds: ['127.0.0.1:0'],
      seeds: seeds.map((s) => s.addr),
    });
    await within(node.ready, WAIT_MS, 'the node to start');
    const fakes = await Promise.all(
      seeds.map(async (s, i) => {
        const f = await s.accept();
        await f.handshake({ nodeId: `seed${i + 1}`, secret: SECRET });
        f.send(['', 'g_global']);
        expect(await f.next()).toEqual(['', 'g_slave']);
        return f;
      }),
    );
    return { node, fakes };
  }

  it('registers with g_slave LOCAL_DB, sends db_set/db_del as Perl does, answers nothing twice', async () => {
    const { node, fakes } = await attached();
    const [master] = fakes;
    expect(await master!.next()).toEqual(['', 'g_slave', { "'l": { 'ts-slave': [...node.binds] } }]);
    expect(node.db.master).toBe('seed1');
    node.db.set('fam', 'k', { deep: [1] });
    expect(await master!.next()).toEqual(['', 'g_upd', 'fam', { k: { deep: [1] } }]);
    node.db.set('fam', 'k', { deep: [1] }); // same value: nothing
    node.db.set('fam', 'n'); // missing value = null
    expect(await master!.next()).toEqual(['', 'g_upd', 'fam', { n: null }]);
    node.db.del('fam', 'k', 'not-mine');
    expect(await master!.next()).toEqual(['', 'g_upd', 'fam', null, ['k']]);
    node.db.del('fam', 'k');
    const guard = node.db.set('fam', 'g', 1);
    expect(await master!.next()).toEqual(['', 'g_upd', 'fam', { g: 1 }]);
    guard.dispose();
    expect(await master!.next()).toEqual(['', 'g_upd', 'fam', null, ['g']]);
    await quiet(master!);
    expect(node.db.own).toEqual({ "'l": { 'ts-slave': [...node.binds] }, fam: { n: null } });
  });

  it('queries get magic-increment IDs and complete on g_reply', async () => {
    const { node, fakes } = await attached();
    const [master] = fakes;
    await master!.next();
    const fam = firstValueFrom(node.db.family$('fam'));
    const keys = firstValueFrom(node.db.keys$('fam'));
    const values = firstValueFrom(node.db.values$('fam'));
    expect(await master!.next()).toEqual(['', 'g_db_family', 'fam', 'b']);
    expect(await master!.next()).toEqual(['', 'g_db_keys', 'fam', 'c']);
    expect(await master!.next()).toEqual(['', 'g_db_values', 'fam', 'd']);
    master!.send(['', 'g_reply', 'd', [1]]);
    master!.send(['', 'g_reply', 'b', { x: 1 }]);
    master!.send(['', 'g_reply', 'c', ['x']]);
    expect(await fam).toEqual({ x: 1 });
    expect(await keys).toEqual(['x']);
    expect(await values).toEqual([1]);
  });

  it('db_mon: g_mon1 once, g_chg1 diff, g_chg2, only from the master, late subscriber snapshot, g_mon0', async () => {
    const { node, fakes } = await attached();
    const [master] = fakes;
    await master!.next();
    const a: DbChange[] = [];
    const subA = node.db.mon$('fam').subscribe((c) => a.push(c));
    expect(await master!.next()).toEqual(['', 'g_mon1', 'fam']);
    master!.send(['', 'g_chg1', 'fam', null]);
    master!.send(['', 'g_chg2', 'fam', { x: 1, y: 2 }, []]);
    master!.send(['', 'g_chg2', 'fam', { x: 3 }, ['y', 'zz']]);
    await quiet(master!, 'm1');
    expect(a.map(plain)).toEqual([
      { entries: {}, added: [], changed: [], deleted: [] },
      { entries: { x: 1, y: 2 }, added: ['x', 'y'], changed: [], deleted: [] },
      { entries: { x: 3 }, added: [], changed: ['x'], deleted: ['y', 'zz'] },
    ]);
    // A node that is not the master is not listened to.
    const intruder = await FakePeer.dial(node.binds[0]!);
    await intruder.handshake({ nodeId: 'intruder', secret: SECRET });
    intruder.send(['', 'g_chg2', 'fam', { evil: 1 }, []]);
    intruder.send(['', 'g_chg1', 'fam', {}]);
    await quiet(intruder, 'i');
    // A second subscriber: no traffic, the mirror on the next turn, everything added.
    const b = await within(firstValueFrom(node.db.mon$('fam')), WAIT_MS, 'the first mon$ snapshot of fam');
    expect(plain(b)).toEqual({ entries: { x: 3 }, added: ['x'], changed: [], deleted: [] });
    expect(a).toHaveLength(3);
    subA.unsubscribe();
    expect(await master!.next()).toEqual(['', 'g_mon0', 'fam']);
  });

  it('g_find once per node; null → "no known address"; an address → dialled', async () => {
    const { node, fakes } = await attached();
    const [master] = fakes;
    await master!.next();
    const r1 = firstValueFrom(node.mon$('elsewhere#p1'));
    node.snd('elsewhere#p2', 'hello');
    expect(await master!.next()).toEqual(['', 'g_find', 'elsewhere']);
    master!.send(['', 'g_found', 'elsewhere', null]);
    expect(await within(r1, WAIT_MS, 'monitor')).toEqual([
      'transport_error',
      'elsewhere',
      'no known address',
    ]);

    const target = await FakeListener.open();
    node.snd('target#p', 'hi');
    expect(await master!.next()).toEqual(['', 'g_find', 'target']);
    master!.send(['', 'g_found', 'target', [target.addr]]);
    const conn = await target.accept();
    await conn.handshake({ nodeId: 'target', secret: SECRET });
    expect(await conn.nextMatching((m) => m[0] === 'p')).toEqual(['p', 'hi']);
  });

  it('failover: the next seed becomes master and gets LOCAL_DB and every pending request', async () => {
    const { node, fakes } = await attached(2);
    // Both seeds are up; the first to come up became the master and got the registration.
    const masterIndex = node.db.master === 'seed1' ? 0 : 1;
    const master = fakes[masterIndex]!;
    const other = fakes[1 - masterIndex]!;
    expect(await master.next()).toEqual(['', 'g_slave', { "'l": { 'ts-slave': [...node.binds] } }]);
    await quiet(other, 'not-master');
    const events: DbChange[] = [];
    const sub = node.db.mon$('fam').subscribe((c) => events.push(c));
    const query = firstValueFrom(node.db.keys$('fam'));
    node.db.set('fam', 'mine', 1);
    expect(await master.next()).toEqual(['', 'g_mon1', 'fam']);
    expect(await master.next()).toEqual(['', 'g_db_keys', 'fam', 'b']);
    expect(await master.next()).toEqual(['', 'g_upd', 'fam', { mine: 1 }]);
    master.send(['', 'g_chg1', 'fam', { old: 1, mine: 1 }]);
    await quiet(master, 'before');
    master.destroy();
    expect(await other.next()).toEqual([
      '',
      'g_slave',
      { "'l": { 'ts-slave': [...node.binds] }, fam: { mine: 1 } },
    ]);
    const resent = [await other.next(), await other.next()];
    expect(resent).toContainEqual(['', 'g_mon1', 'fam']);
    expect(resent).toContainEqual(['', 'g_db_keys', 'fam', 'b']);
    expect(node.db.master).toBe(`seed${2 - masterIndex}`);
    other.send(['', 'g_reply', 'b', ['mine']]);
    expect(await query).toEqual(['mine']);
    other.send(['', 'g_chg1', 'fam', { mine: 1, fresh: 2 }]);
    await quiet(other, 'after');
    expect(events.map(plain).at(-1)).toEqual({
      entries: { mine: 1, fresh: 2 },
      added: ['fresh'],
      changed: ['mine'],
      deleted: ['old'],
    });
    // The old master's snapshot had `old`; the new one has not: the diff deletes it.
    sub.unsubscribe();
    expect(await other.next()).toEqual(['', 'g_mon0', 'fam']);
  });
});
