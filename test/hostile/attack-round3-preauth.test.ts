/**
 * A stranger holding every pending-handshake slot must not lock honest peers out. On loopback
 * every connection comes from 127.0.0.1, so the per-address cap is the one an attacker fills
 * first: 64 silent connections used to make the victim refuse every new connection from that
 * address (an honest node's dial included) until they timed out, and the attacker simply
 * opened new ones. Now a connection that has not sent its greeting line, or has waited a quarter
 * of the handshake time in all, makes room for a new one.
 */
import { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/streams/clock.js';
import type { TcpNetwork } from '../../src/streams/net/tcp-network.js';
import { SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const sockets = new Set<Socket>();
afterEach(() => {
  for (const s of sockets) s.destroy();
  sockets.clear();
});

const net = (n: object) => (n as { network: TcpNetwork }).network;

/** Pending connections of the victim whose greeting line was read. */
function greetedCount(n: object): number {
  const acceptor = (net(n) as unknown as { acceptor: { pendingConnections(): { greetedId?: string }[] } })
    .acceptor;
  return acceptor.pendingConnections().filter((c) => c.greetedId !== undefined).length;
}

/** Resolves once `pred()` holds, checking after every event-loop turn. */
function until(pred: () => boolean, what: string): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const check = () => (pred() ? resolve() : setImmediate(check));
      check();
    }),
    WAIT_MS,
    what,
  );
}

/** Opens `count` silent connections to `target`; resolves once the victim greeted each one. */
async function silent(target: string, count: number): Promise<Socket[]> {
  const i = target.lastIndexOf(':');
  const opened: Promise<Socket>[] = [];
  for (let k = 0; k < count; k++) {
    const s = new Socket();
    sockets.add(s);
    s.on('error', () => {});
    opened.push(
      new Promise<Socket>((resolve, reject) => {
        s.once('data', () => resolve(s));
        s.once('close', () => reject(new Error('refused')));
      }),
    );
    s.connect({ host: target.slice(0, i), port: Number(target.slice(i + 1)) });
  }
  return within(Promise.all(opened), WAIT_MS, `${count} silent connections to be greeted`);
}

/** A node `nodeid` from 127.0.0.1 dials `victim` and its message arrives. */
async function honestGetsIn(victim: ReturnType<typeof testNode>, nodeid: string): Promise<void> {
  const honest = testNode({ nodeid, binds: ['127.0.0.1:0'], secret: SECRET });
  await within(honest.ready, WAIT_MS, 'the honest node to listen');
  net(honest).addresses.set(victim.id, [victim.binds[0]!]);
  const got = deferred<unknown[]>();
  const inbox = victim.port((...m: unknown[]) => got.resolve(m));
  honest.snd(inbox, 'hello');
  expect(await within(got.promise, WAIT_MS, 'the honest message')).toEqual(['hello']);
}

describe('pending-handshake slots held by a stranger', () => {
  it('64 silent connections from 127.0.0.1 held for a while: an honest node from 127.0.0.1 still gets in', async () => {
    const clock = new VirtualClock();
    const victim = testNode({ nodeid: 'slots-victim', binds: ['127.0.0.1:0'], secret: SECRET, clock });
    await within(victim.ready, WAIT_MS, 'the victim to listen');
    const held = await silent(victim.binds[0]!, 64);
    expect(net(victim).pendingHandshakes).toBe(64);
    // The attacker's connections have waited two seconds (the handshake deadline is five).
    await clock.run(2000);
    expect(net(victim).pendingHandshakes).toBe(64);

    await honestGetsIn(victim, 'slots-honest');
    // The oldest of the attacker's connections made room; the cap still holds.
    await within(
      new Promise((resolve) => (held[0]!.closed ? resolve(undefined) : held[0]!.once('close', resolve))),
      WAIT_MS,
      "the attacker's oldest connection to be closed",
    );
    expect(net(victim).pendingHandshakes).toBeLessThanOrEqual(64);
    expect(victim.logs.some((l) => /a new one takes its place/.test(l.text))).toBe(true);
  }, 30_000);

  it('silent connections make room for a new one at once (an honest dial right after a flood gets in)', async () => {
    const victim = testNode({ nodeid: 'silent-victim', binds: ['127.0.0.1:0'], secret: SECRET });
    await within(victim.ready, WAIT_MS, 'the victim to listen');
    const held = await silent(victim.binds[0]!, 300);
    await honestGetsIn(victim, 'silent-honest');
    expect(net(victim).pendingHandshakes).toBeLessThanOrEqual(64);
    expect(held.filter((s) => !s.closed).length).toBeLessThanOrEqual(64);
  }, 30_000);

  it('handshakes in progress (greeted) keep their places against new connections for a quarter of handshake_timeout', async () => {
    const clock = new VirtualClock();
    const victim = testNode({ nodeid: 'burst-victim', binds: ['127.0.0.1:0'], secret: SECRET, clock });
    await within(victim.ready, WAIT_MS, 'the victim to listen');
    const greeted = await silent(victim.binds[0]!, 64);
    for (const [i, s] of greeted.entries()) s.write(`aemp;1;greeter${i};hmac_sha3_512;cbor\n`);
    await until(() => greetedCount(victim) === 64, 'every greeting to be read');
    await clock.run(1000);
    await expect(silent(victim.binds[0]!, 1)).rejects.toThrow('refused');
    expect(greeted.every((s) => !s.closed)).toBe(true);
    expect(net(victim).pendingHandshakes).toBe(64);
    // Past a quarter of the 5 s, the oldest of them makes room.
    await clock.run(300);
    const [fresh] = await silent(victim.binds[0]!, 1);
    expect(fresh!.closed).toBe(false);
    await within(
      new Promise((resolve) =>
        greeted[0]!.closed ? resolve(undefined) : greeted[0]!.once('close', resolve),
      ),
      WAIT_MS,
      'the oldest greeted connection to be closed',
    );
  }, 30_000);
});
