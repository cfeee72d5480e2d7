/**
 * `observeNetwork` over loopback: three nodes (one global seed), each picture lists them with
 * their stats, link rates follow traffic, DB families show their entries, and a node that
 * closes is gone from the next pictures.
 */
import { filter, firstValueFrom, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { observeNetwork } from '../../src/streams/observe/network-view.js';
import type { NetworkSnapshot } from '../../src/streams/observe/snapshot.js';
import { FakePeer, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const secret = 'observe-network';
const WAIT = 20_000;

/** The first picture that satisfies `ok`. */
const until = (view: Observable<NetworkSnapshot>, ok: (s: NetworkSnapshot) => boolean, what: string) =>
  within(firstValueFrom(view.pipe(filter(ok))), WAIT, what);

async function threeNodes() {
  const g = testNode({
    nodeid: 'ov-g',
    secret,
    binds: ['127.0.0.1:0'],
    services: ['AnyEvent::MP::Global::'],
  });
  await within(g.ready, WAIT, 'the global node to start');
  const seeds = [...g.binds];
  const b = testNode({ nodeid: 'ov-b', secret, binds: ['127.0.0.1:0'], seeds });
  const c = testNode({ nodeid: 'ov-c', secret, binds: ['127.0.0.1:0'], seeds });
  await within(Promise.all([b.ready, c.ready]), WAIT, 'b and c to start');
  return { g, b, c };
}

describe('observeNetwork', () => {
  it('lists every node with its stats, rates that follow traffic, and the DB families', async () => {
    const { g, b, c } = await threeNodes();
    b.db.set('ov-family', 'key-1', { v: 1 });
    const view = observeNetwork(c, { intervalMs: 300 });

    const all = await until(
      view,
      (s) =>
        ['ov-g', 'ov-b', 'ov-c'].every((id) => s.nodes.some((n) => n.node === id && n.kind === 'aemp')) &&
        s.families.some((f) => f.family === 'ov-family'),
      'a picture with the three nodes answering and the family',
    );
    expect(all.observer).toBe('ov-c');
    const global = all.nodes.find((n) => n.node === 'ov-g')!;
    expect(global.global).toBe(true);
    expect(global.addresses).toEqual([...g.binds]);
    expect(all.nodes.find((n) => n.node === 'ov-b')!.global).toBe(false);
    expect(all.families.find((f) => f.family === 'ov-family')!.entries).toEqual([
      { key: 'key-1', value: { v: 1 } },
    ]);
    expect(all.families.find((f) => f.family === "'l")!.entries.map((e) => e.key)).toEqual(
      expect.arrayContaining(['ov-g', 'ov-b', 'ov-c']),
    );

    // Traffic from b to g: the link b → g shows a message rate out of b.
    const sink = g.port(() => {});
    const pump = setInterval(() => {
      for (let i = 0; i < 50; i++) b.snd(sink, 'tick', i);
    }, 5);
    try {
      const busy = await until(
        view,
        (s) => s.links.some((l) => l.from === 'ov-b' && l.to === 'ov-g' && l.msgRateOut > 100),
        'a picture with traffic on b → g',
      );
      const link = busy.links.find((l) => l.from === 'ov-b' && l.to === 'ov-g')!;
      expect(link.messagesOut).toBeGreaterThan(0);
      expect(link.byteRateOut).toBeGreaterThan(0);
      const back = busy.links.find((l) => l.from === 'ov-g' && l.to === 'ov-b');
      expect(back?.up).toBe(true);
    } finally {
      clearInterval(pump);
    }

    // b goes away: it disappears from the pictures.
    await within(b.close(), WAIT, 'close of b');
    const gone = await until(
      view,
      (s) => !s.nodes.some((n) => n.node === 'ov-b') && s.nodes.some((n) => n.node === 'ov-g'),
      'a picture without the closed node',
    );
    expect(gone.nodes.map((n) => n.node).sort()).toEqual(['ov-c', 'ov-g']);
  });

  it('shows a Perl node (greeting without aemp keys) without asking it for stats', async () => {
    const c = testNode({ nodeid: 'ov-p-obs', secret, binds: ['127.0.0.1:0'] });
    await within(c.ready, WAIT, 'the observer to start');
    const up = firstValueFrom(c.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'perl-node')));
    const perl = await within(FakePeer.dial(c.binds[0]!), WAIT, 'the Perl-style peer to connect');
    const hs = await perl.handshake({ nodeId: 'perl-node', secret });
    expect(hs.tokenOk).toBe(true);
    await within(up, WAIT, 'the Perl-style peer to be up');
    const view = observeNetwork(c, { intervalMs: 300, families: false });
    const seen = await until(
      view,
      (s) => s.nodes.some((n) => n.node === 'perl-node' && n.kind === 'perl'),
      'a picture with the Perl node',
    );
    expect(seen.links.some((l) => l.from === 'ov-p-obs' && l.to === 'perl-node' && l.up)).toBe(true);
    // A few more pictures; the Perl node was never sent the stats request.
    await until(view, () => true, 'one more picture');
    const got: unknown[][] = [];
    for (;;) {
      const m = await perl.next(200).catch(() => undefined);
      if (!m) break;
      got.push(m);
    }
    expect(got.some((m) => m[0] === '' && m[1] === 'aemp::stats')).toBe(false);
  });

  it('keeps a tail of the log records when asked', async () => {
    const { b, c } = await threeNodes();
    const view = observeNetwork(c, { intervalMs: 300, logs: true, families: false });
    const sub = view.subscribe();
    try {
      // The log catcher of c connects to b once b is listed; log until a picture shows it.
      const seen = until(
        view,
        (s) => s.logs.some((r) => r.node === 'ov-b' && r.message === 'hello from b'),
        'the log record of b in a picture',
      );
      const ticker = setInterval(() => b.log(LEVEL_INFO, 'hello from b'), 50);
      try {
        const s = await seen;
        expect(s.families).toEqual([]);
      } finally {
        clearInterval(ticker);
      }
    } finally {
      sub.unsubscribe();
    }
  });
});

const LEVEL_INFO = 7 as const;
