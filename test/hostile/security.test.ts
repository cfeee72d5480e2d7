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

/**
 * Ends the node's log rate-limit intervals (failed handshakes are limited per remote address,
 * and every intruder here dials from 127.0.0.1): what was suppressed so far is summed up in a
 * line now, and the next failures are logged one by one again (up to the burst). The reply
 * comes after every log line the node wrote before it, so lines for connections the node has
 * closed are all in `hub.events` once this resolves (the node logs a failed handshake in the
 * same turn in which it closes the socket).
 */
async function flushLogs(): Promise<void> {
  await hub.request({ cmd: 'flushLogs' });
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The node's `handshake failed` line for the connection `fake` made, which the node has closed
 * (the caller reset the log budget before this connection, so the line is not suppressed).
 */
async function failureLine(fake: FakePeer, from: number, what: string): Promise<string> {
  await flushLogs();
  const re = new RegExp(`^${escapeRe(fake.localAddr)}: handshake failed: `);
  const hit = hub.events.slice(from).find((e) => e.event === 'log' && re.test(e.text));
  expect(hit, `a logged handshake failure for ${what} (${fake.localAddr})`).toBeDefined();
  return (hit as { text: string }).text;
}

/** A fresh record port and a good peer on the shared target node; `mark` starts the test's events. */
async function target(): Promise<{ record: string; good: FakePeer; goodId: string; mark: number }> {
  // Each test gets its own budget of logged failures (earlier tests used up the burst).
  await flushLogs();
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
    // Below the default caps on pending handshakes (64 per address, 256 in all): every intruder
    // dials from 127.0.0.1, and a try ends (its slot freed) before the next one of its lane.
    const PARALLEL = 25;
    const logMark = hub.mark();
    let intruderHost = '';
    let done = 0;
    let worstRtt = 0;
    /** The most intruder tries that ended while one round trip of the good peer was under way. */
    let mostOvertaking = 0;
    const t0 = performance.now();
    const one = async (i: number) => {
      const fake = await FakePeer.dial(hub.addr);
      intruderHost = fake.localAddr.slice(0, fake.localAddr.lastIndexOf(':'));
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
          if (i % 100 === 99) {
            const doneBefore = done;
            worstRtt = Math.max(worstRtt, await timeRoundTrip(good, goodId, `rt${i}`));
            mostOvertaking = Math.max(mostOvertaking, done - doneBefore);
          }
        }
      }),
    );
    const ms = performance.now() - t0;
    // Every try ended with the node closing the socket (done), and the node logged or counted
    // the failure in the same turn. Failed handshakes are rate-limited per address: a few lines
    // per interval, the rest summed up when the interval ends. Ending it now brings the last
    // summary; shown lines plus summed-up counts must make exactly TRIES.
    await flushLogs();
    const failures = hub.events
      .slice(logMark)
      .flatMap((e) => (e.event === 'log' && /^[^ ]+: handshake failed: /.test(e.text) ? [e.text] : []));
    const summed = hub.events.slice(logMark).flatMap((e) => {
      if (e.event !== 'log') return [];
      const m =
        /^failed incoming handshakes from ([^ ]+): (\d+) more line\(s\) like the above suppressed /.exec(
          e.text,
        );
      return m ? [{ from: m[1]!, count: Number(m[2]) }] : [];
    });
    const refused = failures.length + summed.reduce((sum, x) => sum + x.count, 0);
    const after = await hub.request({ cmd: 'mem' });
    const sockets = await hub.request({ cmd: 'sockets' });
    console.log(
      `${TRIES} wrong-secret handshakes (${PARALLEL} at a time): ${ms.toFixed(0)} ms, ` +
        `${((TRIES / ms) * 1000).toFixed(0)}/s; worst good-peer round trip meanwhile ${worstRtt.toFixed(1)} ms ` +
        `(at most ${mostOvertaking} tries ended during one); ` +
        `node heap ${mib(before.heapUsed)} → ${mib(after.heapUsed)} MiB, rss ${mib(before.rss)} → ${mib(after.rss)} MiB`,
    );
    expect(done).toBe(TRIES);
    // The lines shown all name the wrong secret; the counted ones are from the intruders' address.
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures)
      expect(f).toMatch(/: handshake failed: authentication failure\/shared secret mismatch$/);
    for (const x of summed) expect(x.from).toBe(intruderHost);
    expect(refused).toBe(TRIES);
    expect(upsSince(mark)).toEqual([goodId]);
    expect(sockets.handshaking).toBe(0);
    expect(sockets.established).toBe(sockets.tcp);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * 1024 * 1024);
    // The good peer is served between the intruders, not after them: while one of its round
    // trips was under way, the other lanes finished at most a try or two each.
    expect(mostOvertaking).toBeLessThanOrEqual(2 * PARALLEL);
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
      await flushLogs(); // a fresh budget: this attempt's failure is logged, not just counted
      const from = hub.mark();
      const fake = await FakePeer.dial(hub.addr);
      await a.run(fake);
      await within(fake.waitClosed(), 5000, a.what);
      expect(await failureLine(fake, from, a.what), a.what).toMatch(a.reason);
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
    expect(await failureLine(thief, before, 'the replay')).toMatch(
      /authentication failure\/shared secret mismatch$/,
    );
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
    for (const f of [one, two])
      expect(await failureLine(f, mark, 'a reflected greeting')).toMatch(/I refuse to talk to myself$/);
    expect(upsSince(mark)).toEqual([goodId]);
    await onlyProbeDelivered(record, good, mark);
  });
});
