/**
 * Attacks before authentication, over real loopback sockets (issue 14, items 3 and 4).
 *
 * - A greeting is only a claim: a connection that merely names node B must not stop the victim
 *   from dialling B, and its `;tb=1` must not make the victim close or fail its own dial to B.
 * - Unauthenticated connections are limited: at most `max_pending_handshakes` node-wide and
 *   `max_pending_handshakes_per_address` from one address are held; one over a cap takes the
 *   place of the oldest that has not greeted (attack-round3-preauth.test.ts), else it is
 *   closed at once; `max_connections` caps everything (our own dials make room by closing the
 *   newest pending incoming connection), and every handshake ends after `handshake_timeout`.
 *   Established peers and the node's own new dials keep working meanwhile.
 */
import { Socket } from 'node:net';
import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/index.js';
import { LEVEL } from '../../src/streams/log/log.js';
import type { TcpNetwork } from '../../src/streams/net/tcp-network.js';
import { FakePeer, perlGreeting, perlNonce, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const subs: Subscription[] = [];
const sockets = new Set<Socket>();
afterEach(() => {
  for (const s of subs.splice(0)) s.unsubscribe();
  for (const s of sockets) s.destroy();
  sockets.clear();
});

const net = (n: object) => (n as { network: TcpNetwork }).network;

/** Resolves once `pred()` holds, checking after every event-loop turn; rejects after `ms`. */
function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const check = () => {
        if (pred()) resolve();
        else if (!done) setImmediate(check);
      };
      let done = false;
      setTimeout(() => {
        done = true;
      }, ms).unref();
      check();
    }),
    ms,
    what,
  );
}

type Listening = ReturnType<typeof testNode>;

/** A listening node on loopback with the test secret. */
async function listening(nodeid: string, opts: Parameters<typeof testNode>[0] = {}): Promise<Listening> {
  const n = testNode({ nodeid, binds: ['127.0.0.1:0'], secret: SECRET, ...opts });
  await within(n.ready, WAIT_MS, 'the node to listen');
  return n;
}

/** A port on `n` whose first message resolves the returned promise. */
function inbox(n: Listening): { port: string; first: Promise<unknown[]> } {
  const d = deferred<unknown[]>();
  const port = n.port((...m: unknown[]) => d.resolve(m));
  return { port, first: d.promise };
}

function statusLog(n: Listening): NodeStatus[] {
  const events: NodeStatus[] = [];
  subs.push(n.nodes$.subscribe((e) => events.push(e)));
  return events;
}

describe('a greeting claiming another node ID (item 3)', () => {
  it.each([
    ['without tb', ''],
    ['with ;tb=1', ';tb=1'],
  ])(
    '%s: the victim (larger ID) still dials the real node and keeps its dial; the claimer stays connected',
    async (_what, extra) => {
      const b = await listening('bb-real');
      const v = await listening('zz-victim', { handshake_timeout: 30 });
      const events = statusLog(v);
      net(v).addresses.set('bb-real', [b.binds[0]!]);
      const { port, first } = inbox(b);

      const attacker = await FakePeer.dial(v.binds[0]!);
      attacker.write(
        `${perlGreeting({ nodeId: 'bb-real', peeraddr: attacker.peeraddr })}${extra}\n${perlNonce()}\n`,
      );
      await until(() => net(v).handshakesClaiming('bb-real') === 1, WAIT_MS, 'the victim to read the claim');

      v.snd(port, 'hello');
      expect(await within(first, WAIT_MS, 'the message at the real node')).toEqual(['hello']);
      // Delivered over the victim's own dial, never replaced or failed; the claimer is untouched.
      expect(events).toEqual([{ type: 'up', node: 'bb-real' }]);
      expect(v.logs.filter((l) => /simultaneous|connect timeout/.test(l.text))).toEqual([]);
      expect(attacker.isClosed).toBe(false);
      expect(net(v).handshakesClaiming('bb-real')).toBe(1);
    },
  );

  it('with ;tb=1 against a victim with the smaller ID: the real node is reached, only the claimer loses', async () => {
    const b = await listening('mm-real');
    const v = await listening('aa-victim', { handshake_timeout: 30 });
    const events = statusLog(v);
    net(v).addresses.set('mm-real', [b.binds[0]!]);
    const { port, first } = inbox(b);

    const attacker = await FakePeer.dial(v.binds[0]!);
    attacker.write(
      `${perlGreeting({ nodeId: 'mm-real', peeraddr: attacker.peeraddr })};tb=1\n${perlNonce()}\n`,
    );
    await until(() => net(v).handshakesClaiming('mm-real') === 1, WAIT_MS, 'the victim to read the claim');

    v.snd(port, 'hello');
    expect(await within(first, WAIT_MS, 'the message at the real node')).toEqual(['hello']);
    expect(events).toEqual([{ type: 'up', node: 'mm-real' }]);
    // The victim's dial was greeted by the real node: the incoming claim is the tie-break loser.
    await attacker.waitClosed();
  });
});

/** Outcome of one raw connection: our node sent its greeting (held) or closed it first. */
type Outcome = 'held' | 'refused';

interface Flood {
  outcomes: Promise<Outcome[]>;
  /** Resolves when every held connection was closed by the victim. */
  allClosed: () => Promise<void>;
  byAddress: Map<string, Outcome[]>;
}

/** Opens `perAddress` silent connections to `target` from each of `from` (127.0.0.x). */
function flood(target: string, from: readonly string[], perAddress: number, ms = 10_000): Flood {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const byAddress = new Map<string, Outcome[]>();
  const closes: Promise<void>[] = [];
  const all: Promise<Outcome>[] = [];
  for (const local of from) {
    const list: Outcome[] = [];
    byAddress.set(local, list);
    for (let i = 0; i < perAddress; i++) {
      const s = new Socket();
      sockets.add(s);
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
      closes.push(closed);
      s.on('error', () => {});
      const outcome = new Promise<Outcome>((resolve) => {
        s.once('data', () => resolve('held'));
        void closed.then(() => resolve('refused'));
      }).then((o) => {
        list.push(o);
        return o;
      });
      all.push(outcome);
      s.connect({ host, port, localAddress: local });
    }
  }
  return {
    outcomes: within(Promise.all(all), ms, `the outcome of ${all.length} flood connections`),
    allClosed: () =>
      within(
        Promise.all(closes).then(() => undefined),
        ms,
        'every flood connection to close',
      ),
    byAddress,
  };
}

const count = (list: Outcome[], o: Outcome) => list.filter((x) => x === o).length;

describe('limits on unauthenticated connections (item 4)', () => {
  it('600 silent connections from 15 addresses: at most max_pending_handshakes (100) held, at most 30 per address; peers keep working', async () => {
    const v = await listening('flood-victim', {
      max_pending_handshakes: 100,
      max_pending_handshakes_per_address: 30,
      handshake_timeout: 60,
    });
    const good = await listening('flood-good');
    const fresh = await listening('flood-new');
    // An established peer before the flood.
    const atVictim = inbox(v);
    net(good).addresses.set('flood-victim', [v.binds[0]!]);
    good.snd(atVictim.port, 'before');
    expect(await within(atVictim.first, WAIT_MS, 'the message before the flood')).toEqual(['before']);

    const from = Array.from({ length: 15 }, (_, i) => `127.0.0.${i + 2}`);
    const f = flood(v.binds[0]!, from, 40);
    const outcomes = await f.outcomes;
    // Silent connections over a cap make room for newer ones: the victim holds at most the caps.
    const held = net(v).pendingHandshakes;
    const perAddress = (net(v) as unknown as { acceptor: { pendingFrom: Map<string, number> } }).acceptor
      .pendingFrom;
    console.log(`flood: ${outcomes.length} connections, ${held} held at the end`);
    expect(held).toBeLessThanOrEqual(100);
    expect(held).toBeGreaterThan(0);
    for (const [addr, n] of perAddress) expect(n, addr).toBeLessThanOrEqual(30);

    // During the flood (every pending slot taken): the established peer and a new own dial work.
    const again = inbox(v);
    good.snd(again.port, 'during');
    expect(await within(again.first, WAIT_MS, 'the established peer during the flood')).toEqual(['during']);
    const atFresh = inbox(fresh);
    net(v).addresses.set('flood-new', [fresh.binds[0]!]);
    v.snd(atFresh.port, 'dialled');
    expect(await within(atFresh.first, WAIT_MS, 'the victim’s new dial during the flood')).toEqual([
      'dialled',
    ]);

    // Refusals are logged at info level through the rate limit: a few lines and a count, not one per connection.
    const lines = v.logs.filter((l) =>
      /incoming connection (refused|closed before authentication)/.test(l.text),
    );
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan((outcomes.length - held) / 10);
    expect(lines.every((l) => l.level === LEVEL.info)).toBe(true);
  }, 30_000);

  it('silent connections are closed by handshake_timeout (1 s), not monitor_timeout (30 s)', async () => {
    const v = await listening('deadline-victim', { handshake_timeout: 1, monitor_timeout: 30 });
    const f = flood(v.binds[0]!, ['127.0.0.1'], 20, 8000);
    expect(count(await f.outcomes, 'held')).toBe(20);
    await f.allClosed();
    await until(() => net(v).pendingHandshakes === 0, WAIT_MS, 'no handshake pending');
    // A few lines name the failures; the rest are counted, not logged one by one.
    expect(v.logs.filter((l) => /handshake failed/.test(l.text)).length).toBeLessThanOrEqual(5);
    // And the node accepts again.
    const after = flood(v.binds[0]!, ['127.0.0.1'], 1);
    expect(await after.outcomes).toEqual(['held']);
  });

  it('max_connections (12): the 13th incoming connection is refused; an own dial closes the newest pending one instead', async () => {
    const v = await listening('cap-victim', {
      max_connections: 12,
      max_pending_handshakes: 50,
      handshake_timeout: 60,
    });
    const fresh = await listening('cap-new');
    const f = flood(v.binds[0]!, ['127.0.0.1'], 12);
    expect(count(await f.outcomes, 'held')).toBe(12);
    const extra = flood(v.binds[0]!, ['127.0.0.2'], 1);
    expect(await extra.outcomes).toEqual(['refused']);
    expect(net(v).openConnections).toBe(12);

    const atFresh = inbox(fresh);
    net(v).addresses.set('cap-new', [fresh.binds[0]!]);
    v.snd(atFresh.port, 'dialled');
    expect(await within(atFresh.first, WAIT_MS, 'the victim’s own dial at the cap')).toEqual(['dialled']);
    expect(net(v).pendingHandshakes).toBe(11);
    expect(net(v).openConnections).toBe(12);
  });
});
