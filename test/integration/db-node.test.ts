/**
 * `node.db` on in-process nodes over loopback TCP: the ways a node becomes global, the API
 * (guards, reg, validation, node stream events, close), and global nodes meshing through the
 * `'g` keepalive.
 */
import { filter, firstValueFrom, map, type Observable, Subscriber, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { AempError, Node, NodeEvent } from '../../src/index.js';
import type { DbChange } from '../../src/streams/db/family-watch.js';
import { testNode, turn } from '../helpers/node.js';
import { freePort } from '../helpers/ports.js';

const SECRET = 'db-node-test';
const WAIT_MS = 5000;

function within<T>(p: Promise<T>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** The first change of `family` on `node` whose entries satisfy `pred`. */
function seen(node: Node, family: string, pred: (e: Readonly<Record<string, unknown>>) => boolean) {
  const hit = node.db.mon$(family).pipe(
    filter((c) => pred(c.entries)),
    map((c) => c.entries),
  );
  return within(firstValueFrom(hit), `${family} on ${node.id}`);
}

/** `events(n, what)` resolves once `got` holds n entries; call `heard()` after each push. */
function tally(got: unknown[]) {
  let wake = () => {};
  return {
    heard: () => wake(),
    events: (n: number, what: string) =>
      within(
        new Promise<void>((resolve) => {
          wake = () => got.length >= n && resolve();
          wake();
        }),
        what,
      ),
  };
}

function up(node: Node, id: string) {
  return within(
    firstValueFrom(node.nodes$.pipe(filter((s) => s.type === 'up' && s.node === id))),
    `up ${id}`,
  );
}

async function listening(nodeid: string, opts: Record<string, unknown> = {}) {
  const n = testNode({ nodeid, secret: SECRET, binds: ['127.0.0.1:0'], ...opts });
  await within(n.ready, 'the node to listen');
  return n;
}

describe('becoming global', () => {
  it('an offline node is not global and has no master; its entries stay local', async () => {
    const n = testNode();
    await within(n.ready, 'the offline node to start');
    expect(n.db.isGlobal).toBe(false);
    expect(n.db.master).toBeUndefined();
    n.db.set('f', 'k', [1, 'two']);
    n.db.set('f', 'j');
    n.db.del('f', 'j', 'unknown');
    expect(n.db.own).toEqual({ "'l": { [n.id]: [] }, f: { k: [1, 'two'] } });
  });

  it('through the service: own master, own slave, announced in family g', async () => {
    const g = await listening('svc-g', { services: ['AnyEvent::MP::Global::'] });
    expect(g.db.isGlobal).toBe(true);
    expect(g.db.master).toBe('svc-g');
    expect(await within(firstValueFrom(g.db.family$("'g")), "family 'g")).toEqual({ 'svc-g': null });
    expect(await within(firstValueFrom(g.db.family$("'l")), "family 'l")).toEqual({
      'svc-g': [...g.binds],
    });
  });

  it('by finding itself in its own seed list', async () => {
    const port = await freePort();
    const self = `127.0.0.1:${port}`;
    const n = await listening('self-seed', { binds: [self], seeds: [self] });
    await within(n.logged(/refuse to talk to myself|master: self-seed/), 'the self dial');
    await seen(n, "'g", (e) => 'self-seed' in e);
    expect(n.db.isGlobal).toBe(true);
    expect(n.db.master).toBe('self-seed');
  });

  it('by receiving g_slave from a node that has it as seed', async () => {
    const a = await listening('plain-a');
    expect(a.db.isGlobal).toBe(false);
    const b = await listening('plain-b', { seeds: [a.binds[0]] });
    await seen(b, "'l", (e) => 'plain-a' in e && 'plain-b' in e);
    expect(a.db.isGlobal).toBe(true);
    expect(b.db.isGlobal).toBe(false);
    expect(b.db.master).toBe('plain-a');
  });
});

describe('the node.db API', () => {
  it('set returns a guard that deletes; reg deletes when the port dies', async () => {
    const g = await listening('api-g', { services: ['AnyEvent::MP::Global::'] });
    const n = await listening('api-n', { seeds: [g.binds[0]] });
    await seen(n, "'l", (e) => 'api-n' in e);
    const guard = n.db.set('svc', 'by-guard', 1);
    const p = n.port(() => {});
    n.db.reg('svc', p, { role: 'worker' });
    let inContext = '';
    const q = n.port(() => {
      inContext = n.self!;
      n.db.reg('svc');
    });
    n.snd(q, 'go');
    const all = await seen(g, 'svc', (e) => Object.keys(e).length === 3);
    expect(all).toEqual({ 'by-guard': 1, [p]: { role: 'worker' }, [inContext]: null });
    guard.dispose();
    n.kil(p);
    await seen(g, 'svc', (e) => Object.keys(e).length === 1);
    n.kil(q);
    await seen(g, 'svc', (e) => Object.keys(e).length === 0);
    expect(n.db.own).toEqual({ "'l": { 'api-n': [...n.binds] } });
  });

  it('reg of a port that does not exist leaves nothing behind', async () => {
    const n = testNode();
    n.db.reg('svc', 'test/#nope');
    await turn();
    expect(n.db.own.svc).toBeUndefined();
  });

  it('reg without a port outside port context, and empty names, are programmer errors', () => {
    const n = testNode();
    expect(() => n.db.reg('svc')).toThrow(TypeError);
    expect(() => n.db.set('', 'k')).toThrow(TypeError);
    expect(() => n.db.set('f', '')).toThrow(TypeError);
  });

  it("changes of monitored families are node stream events of type 'db'", async () => {
    const g = await listening('ev-g', { services: ['AnyEvent::MP::Global::'] });
    const events = firstValueFrom(
      (g as Observable<NodeEvent>).pipe(
        filter((e): e is Extract<NodeEvent, { type: 'db' }> => e.type === 'db' && e.family === 'ev'),
        take(2),
        toArray(),
      ),
    );
    const sub = g.db.mon$('ev').subscribe();
    g.db.set('ev', 'k', 1);
    const [first, second] = await within(events, 'db events');
    expect(first!.added).toEqual([]);
    expect({ ...second!.entries }).toEqual({ k: 1 });
    expect(second!.added).toEqual(['k']);
    sub.unsubscribe();
  });

  it('node stream subscribers that come and go: each one present hears the changes', async () => {
    const g = await listening('ev2-g', { services: ['AnyEvent::MP::Global::'] });
    const node$ = g as Observable<NodeEvent>;
    const dbValues = (n: number) =>
      firstValueFrom(
        node$.pipe(
          filter((e): e is Extract<NodeEvent, { type: 'db' }> => e.type === 'db' && e.family === 'ev2'),
          map((e) => e.get('k')),
          filter((v) => v !== undefined),
          take(n),
          toArray(),
        ),
      );
    const mon = g.db.mon$('ev2').subscribe();
    // A first subscriber that leaves before any change, then two at once, one leaving early.
    node$.subscribe().unsubscribe();
    const early = dbValues(1);
    const late = dbValues(2);
    g.db.set('ev2', 'k', 1);
    expect(await within(early, 'the first change on the node stream')).toEqual([1]);
    g.db.set('ev2', 'k', 2);
    expect(await within(late, 'two changes on the node stream')).toEqual([1, 2]);
    // None left, then one again.
    const again = dbValues(1);
    g.db.set('ev2', 'k', 3);
    expect(await within(again, 'a change after resubscribing')).toEqual([3]);
    mon.unsubscribe();
  });

  it('close completes monitors and fails pending queries (ERR_NODE_CLOSED); later ones likewise at once', async () => {
    const n = testNode();
    await within(n.ready, 'the node to start');
    const mon = firstValueFrom(n.db.mon$('f').pipe(toArray()));
    const query = firstValueFrom(n.db.keys$('f').pipe(toArray())).catch((e: unknown) => e);
    await within(n.close(), 'close of the node with a pending query');
    expect(await mon).toEqual([]);
    expect((await query) as AempError).toMatchObject({ code: 'ERR_NODE_CLOSED' });
    expect(
      await within(firstValueFrom(n.db.mon$('f').pipe(toArray())), 'mon$ after close to complete'),
    ).toEqual([]);
    const late = await within(firstValueFrom(n.db.family$('f')), 'family$ after close to fail').catch(
      (e: unknown) => e,
    );
    expect(late as AempError).toMatchObject({ code: 'ERR_NODE_CLOSED' });
  });

  it('a global node answers its own queries and monitors at once', async () => {
    const g = await listening('self-g', { services: ['AnyEvent::MP::Global::'] });
    g.db.set('f', 'a', 1);
    g.db.set('f', 'b', 2);
    expect(await within(firstValueFrom(g.db.family$('f')), 'family f')).toEqual({ a: 1, b: 2 });
    expect((await within(firstValueFrom(g.db.keys$('f')), 'keys of f')).sort()).toEqual(['a', 'b']);
    expect(await within(firstValueFrom(g.db.values$('nothing')), 'values of an empty family')).toEqual([]);
    const changes: DbChange[] = [];
    const sub = g.db.mon$('f').subscribe((c) => changes.push(c));
    g.db.del('f', 'a');
    expect(changes.map((c) => [c.added, c.deleted])).toEqual([
      [['a', 'b'], []],
      [[], ['a']],
    ]);
    sub.unsubscribe();
  });
  it('one subscriber object subscribed twice to a family hears each change twice, until it unsubscribes', async () => {
    const g = await listening('twice-g', { services: ['AnyEvent::MP::Global::'] });
    g.db.set('tw', 'a', 1);
    const got: string[] = [];
    const { heard, events } = tally(got);
    const s = new Subscriber<DbChange>({
      next: (c) => {
        got.push(`${c.added}|${c.changed}`);
        heard();
      },
      error: () => {},
      complete: () => {},
    });
    g.db.mon$('tw').subscribe(s);
    g.db.mon$('tw').subscribe(s);
    await events(2, 'both snapshots');
    g.db.set('tw', 'a', 2);
    await events(4, 'the change twice');
    expect(got).toEqual(['a|', 'a|', '|a', '|a']);
    // Both subscriptions end with the subscriber.
    s.unsubscribe();
    g.db.set('tw', 'b', 3);
    await turn();
    expect(got).toHaveLength(4);
  });
});

describe('changes on a slave', () => {
  it('go to the watch of their family however families take turns, and to a family watched anew', async () => {
    const g = await listening('turns-g', { services: ['AnyEvent::MP::Global::'] });
    const s = await listening('turns-s', { seeds: [g.binds[0]] });
    await seen(s, "'l", (e) => 'turns-g' in e && 'turns-s' in e);
    const got: string[] = [];
    const { heard, events } = tally(got);
    const listen = (family: string, who = family) =>
      s.db.mon$(family).subscribe((c) => {
        got.push(`${who} +${c.added} ~${c.changed} ${JSON.stringify(c.entries)}`);
        heard();
      });
    const a = listen('ta');
    const b = listen('tb');
    await events(2, 'both snapshots');
    g.db.set('ta', 'x', 1);
    g.db.set('tb', 'y', 2);
    g.db.set('tb', 'y', 3);
    g.db.set('ta', 'z', 4);
    g.db.set('ta', 'x', 5);
    await events(7, 'five changes');
    expect(got.slice(2).sort()).toEqual(
      [
        'ta +x ~ {"x":1}',
        'ta +z ~ {"x":1,"z":4}',
        'ta + ~x {"x":5,"z":4}',
        'tb +y ~ {"y":2}',
        'tb + ~y {"y":3}',
      ].sort(),
    );
    expect(got.filter((l) => l.startsWith('ta'))).toEqual([
      'ta + ~ {}',
      'ta +x ~ {"x":1}',
      'ta +z ~ {"x":1,"z":4}',
      'ta + ~x {"x":5,"z":4}',
    ]);
    // Every listener of ta leaves; the family is watched again by a new one, which gets the
    // master's entries and then their changes, while tb goes on.
    a.unsubscribe();
    got.length = 0;
    const again = listen('ta', 'ta again');
    await events(1, 'the new snapshot of ta');
    g.db.set('tb', 'w', 6);
    g.db.set('ta', 'v', 7);
    await events(3, 'a change of each family');
    expect(got.sort()).toEqual(
      ['ta again +x,z ~ {"x":5,"z":4}', 'ta again +v ~ {"x":5,"z":4,"v":7}', 'tb +w ~ {"y":3,"w":6}'].sort(),
    );
    again.unsubscribe();
    b.unsubscribe();
  });
});

describe('global nodes mesh through the g family', () => {
  it('two globals that do not seed each other connect through a third', async () => {
    const g1 = await listening('mesh-1', { services: ['AnyEvent::MP::Global::'] });
    const g2 = await listening('mesh-2', { services: ['AnyEvent::MP::Global::'], seeds: [g1.binds[0]] });
    const linked = up(g2, 'mesh-3');
    const g3 = await listening('mesh-3', { services: ['AnyEvent::MP::Global::'], seeds: [g1.binds[0]] });
    await linked;
    for (const g of [g1, g2, g3]) await seen(g, "'g", (e) => Object.keys(e).length === 3);
    expect(g2.upNodes().sort()).toEqual(['mesh-1', 'mesh-3']);
  });
});
