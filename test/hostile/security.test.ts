/**
 * Peers without the secret against a node in its own process (test/fixtures/hostile-node.ts):
 * whatever they send behind their auth line — messages to a live port, node-port requests that
 * relay, kill or evaluate — nothing is ever delivered, and the node stays responsive with
 * bounded memory while the same wrong secret is tried a thousand times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FakePeer,
  fourLines,
  hmacToken,
  perlCbor,
  perlGreeting,
  perlNonce,
  within,
} from '../helpers/fake-peer.js';
import { CHILD_SECRET, type HostileChild, mib, startChild } from '../helpers/hostile-child.js';

/** Frames an intruder sends right behind its auth line (as Perl sends its first frame). */
function smuggled(record: string): Buffer {
  const name = record.slice(record.indexOf('#') + 1);
  return Buffer.concat([
    perlCbor([name, 'smuggled']),
    perlCbor(['', 'snd', record, 'relayed']),
    perlCbor(['', 'kil1', name, 'killed by an intruder']),
    perlCbor(['', 'eval', 'process.exit(3)', record]),
    perlCbor(['', 'AnyEvent::MP::_spawn', 'x', 'Some::func']),
  ]);
}

let hub: HostileChild;
let goods = 0;

beforeAll(async () => {
  hub = await (await startChild('target', { shared: true })).configure({
    nodeid: 'sec-target',
    monitor_timeout: 2,
  });
});

afterAll(async () => {
  await hub?.kill();
});

/** A fresh record port and a good peer on the shared target node; `mark` starts the test's events. */
async function target(): Promise<{ record: string; good: FakePeer; goodId: string; mark: number }> {
  const mark = hub.mark();
  const record = await hub.request({ cmd: 'port', kind: 'record' });
  const goodId = `good${++goods}`;
  const good = await FakePeer.dial(hub.addr);
  await good.handshake({ nodeId: goodId, secret: CHILD_SECRET });
  await hub.nodeEvent('up', goodId, { from: mark });
  return { record, good, goodId, mark };
}

/** The record port is alive and took nothing but this probe from the good peer. */
async function onlyProbeDelivered(record: string, good: FakePeer, mark: number): Promise<void> {
  const probe = hub.mark();
  good.send([record.slice(record.indexOf('#') + 1), 'probe']);
  const got = await hub.received(record, { from: probe });
  expect(got.msg).toEqual(['probe']);
  const seen = hub.events.slice(mark).filter((e) => e.event === 'msg');
  expect(seen.map((m) => m.msg)).toEqual([['probe']]);
}

/** Nodes reported up since `mark`. */
function upsSince(mark: number): string[] {
  return hub.events
    .slice(mark)
    .filter((e) => e.event === 'node' && e.type === 'up')
    .map((e) => (e as { node: string }).node);
}

async function timeRoundTrip(good: FakePeer, goodId: string, tag: string): Promise<number> {
  const t0 = performance.now();
  good.send(['', 'time', `${goodId}#${tag}`]);
  expect(await good.next()).toEqual([tag, expect.any(Number)]);
  return performance.now() - t0;
}

describe('intruders without the secret', () => {
  it('the same wrong secret 1,000 times: every try refused, nothing delivered, node responsive, memory flat', async () => {
    const { record, good, goodId, mark } = await target();
    await timeRoundTrip(good, goodId, 'warm');
    const before = await hub.request({ cmd: 'mem' });
    const TRIES = 1000;
    const PARALLEL = 25;
    let done = 0;
    let worstRtt = 0;
    const t0 = performance.now();
    const one = async (i: number) => {
      const fake = await FakePeer.dial(hub.addr);
      await fake.handshake({ nodeId: `intruder${i}`, secret: 'not-the-secret', afterAuth: smuggled(record) });
      await fake.waitClosed();
      done++;
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < TRIES) {
          const i = next++;
          await one(i);
          if (i % 100 === 99) worstRtt = Math.max(worstRtt, await timeRoundTrip(good, goodId, `rt${i}`));
        }
      }),
    );
    const ms = performance.now() - t0;
    const refusals = () =>
      hub
        .all('log')
        .filter((l) => l.text.endsWith('handshake failed: authentication failure/shared secret mismatch'));
    for (let i = 0; i < 50 && refusals().length < TRIES; i++) await new Promise((r) => setTimeout(r, 20));
    const after = await hub.request({ cmd: 'mem' });
    const sockets = await hub.request({ cmd: 'sockets' });
    console.log(
      `${TRIES} wrong-secret handshakes (${PARALLEL} at a time): ${ms.toFixed(0)} ms, ` +
        `${((TRIES / ms) * 1000).toFixed(0)}/s; worst good-peer round trip meanwhile ${worstRtt.toFixed(1)} ms; ` +
        `node heap ${mib(before.heapUsed)} → ${mib(after.heapUsed)} MiB, rss ${mib(before.rss)} → ${mib(after.rss)} MiB`,
    );
    expect(done).toBe(TRIES);
    expect(refusals()).toHaveLength(TRIES);
    expect(upsSince(mark)).toEqual([goodId]);
    expect(sockets.handshaking).toBe(0);
    expect(sockets.established).toBe(sockets.tcp);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * 1024 * 1024);
    expect(worstRtt).toBeLessThan(1000);
    expect(await hub.request({ cmd: 'upNodes' })).toContain(goodId);
    await onlyProbeDelivered(record, good, mark);
  }, 60_000);

  it('other ways in without the secret: all refused, nothing delivered', async () => {
    const { record, good, goodId, mark } = await target();
    const attempts: { what: string; run(fake: FakePeer): Promise<void>; reason: RegExp }[] = [
      {
        what: 'cleartext with a wrong secret',
        run: (f) =>
          f
            .handshake({
              nodeId: 'x1',
              secret: 'guess',
              authMethod: 'cleartext',
              afterAuth: smuggled(record),
            })
            .then(),
        reason: /authentication failure\/shared secret mismatch$/,
      },
      {
        what: 'tls_anon without TLS',
        run: (f) => f.handshake({ nodeId: 'x2', authMethod: 'tls_anon', afterAuth: smuggled(record) }).then(),
        reason: /handshake failed: ./,
      },
      {
        what: 'tls_sha3_512 without TLS (a hash anyone can compute)',
        run: (f) =>
          f.handshake({ nodeId: 'x3', authMethod: 'tls_sha3_512', afterAuth: smuggled(record) }).then(),
        reason: /authentication failure\/shared secret mismatch$/,
      },
      {
        what: 'an empty token',
        run: (f) =>
          f
            .handshake({ nodeId: 'x4', secret: CHILD_SECRET, tamper: () => '', afterAuth: smuggled(record) })
            .then(),
        reason: /authentication failure\/shared secret mismatch$/,
      },
      {
        what: 'no auth line, frames right after the greeting',
        run: async (f) => {
          f.write(`${perlGreeting({ nodeId: 'x5', peeraddr: f.peeraddr })}\n${perlNonce()}\n`);
          f.write(Buffer.concat([smuggled(record), Buffer.from('\n')]));
        },
        reason: /handshake failed: ./,
      },
    ];
    for (const a of attempts) {
      const fake = await FakePeer.dial(hub.addr);
      await a.run(fake);
      await within(fake.waitClosed(), 5000, a.what);
      const line = await hub.logged(
        new RegExp(`^${fake.localAddr.replace(/\./g, '\\.')}: handshake failed: `),
      );
      expect(line.text, a.what).toMatch(a.reason);
    }
    expect(upsSince(mark)).toEqual([goodId]);
    await onlyProbeDelivered(record, good, mark);
  });

  it('a replayed auth line from a sniffed session is refused (the node nonce differs)', async () => {
    const { record, good, mark } = await target();
    // A session the eavesdropper watched: greeting, nonce and auth line of a real member.
    const victim = await FakePeer.dial(hub.addr);
    const hs = await victim.handshake({ nodeId: 'victim', secret: CHILD_SECRET });
    const authLine = `hmac_sha3_512;${hmacToken(CHILD_SECRET, fourLines(hs.own, hs.theirs))};cbor`;
    await hub.nodeEvent('up', 'victim', { from: mark });
    const before = hub.mark();
    victim.destroy();
    await hub.nodeEvent('down', 'victim', { from: before });
    // The replay: the same three lines on a new connection.
    const thief = await FakePeer.dial(hub.addr);
    thief.write(`${hs.own[0]}\n${hs.own[1]}\n${authLine}\n`);
    thief.write(smuggled(record));
    await thief.waitClosed();
    const line = await hub.logged(
      new RegExp(`^${thief.localAddr.replace(/\./g, '\\.')}: handshake failed: `),
    );
    expect(line.text).toMatch(/authentication failure\/shared secret mismatch$/);
    expect(upsSince(before)).toEqual([]);
    await onlyProbeDelivered(record, good, mark);
  });

  it("a reflection (the node's greeting from a second connection sent back on the first) is refused", async () => {
    const { record, good, goodId, mark } = await target();
    const one = await FakePeer.dial(hub.addr);
    const two = await FakePeer.dial(hub.addr);
    const g1: [string, string] = [await one.readLine(), await one.readLine()];
    const g2: [string, string] = [await two.readLine(), await two.readLine()];
    one.write(`${g2[0]}\n${g2[1]}\n`);
    two.write(`${g1[0]}\n${g1[1]}\n`);
    await Promise.all([one.waitClosed(), two.waitClosed()]);
    for (const f of [one, two]) {
      const line = await hub.logged(new RegExp(`^${f.localAddr.replace(/\./g, '\\.')}: handshake failed: `));
      expect(line.text).toMatch(/I refuse to talk to myself$/);
    }
    expect(upsSince(mark)).toEqual([goodId]);
    await onlyProbeDelivered(record, good, mark);
  });
});
