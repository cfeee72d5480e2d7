/**
 * Messages a node queues for a node it is still connecting to are bounded in bytes, not only in
 * number: an authenticated peer relaying large messages (`snd`, allowed in secure mode too) to
 * a node that takes its time to answer must not make the victim hold them all.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ITEM_BYTES, MAX_WALKED_ITEMS, messageSize } from '../../src/streams/net/message-size.js';
import { flood, pair, roundTrip } from '../helpers/peer-pair.js';

const SECRET = 'attack-round3-queue-secret';
const MIB = 1024 * 1024;

/** A TCP listener that accepts and never says a word (a node that is slow to answer). */
async function silentListener(): Promise<{ server: Server; address: string; close(): void }> {
  const held: Socket[] = [];
  const server = createServer((s) => {
    s.on('error', () => {});
    held.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    server,
    address: `127.0.0.1:${port}`,
    close() {
      for (const s of held) s.destroy();
      server.close();
    },
  };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('messages queued for a node that is still connecting', () => {
  it('relayed 1 MiB messages to a node that does not answer: the victim holds at most max_send_buffer_bytes of them', async () => {
    const silent = await silentListener();
    cleanups.push(() => silent.close());
    const limit = 8 * MIB;
    const { victim, attacker } = await pair(SECRET, {
      secure: true,
      connect_interval: 60,
      max_send_buffer_bytes: limit,
    });
    victim.db.becomeGlobal();
    await roundTrip(attacker, victim);
    // The attacker points a made-up node at the silent listener, then relays through the victim.
    flood(attacker, victim, 1, () => ['g_upd', "'l", { ghost: [silent.address] }]);
    const big = 'x'.repeat(MIB);
    flood(attacker, victim, 40, (i) => ['snd', `ghost#p${i}`, big]);
    await roundTrip(attacker, victim);
    const queued = victim.network.stats().find((s) => s.node === 'ghost')?.queued ?? 0;
    expect(queued * MIB).toBeLessThanOrEqual(limit);
  }, 60_000);

  it('to several such nodes: all queues together hold at most max_total_send_buffer_bytes', async () => {
    const silent = await silentListener();
    cleanups.push(() => silent.close());
    const { victim, attacker } = await pair(SECRET, {
      secure: true,
      connect_interval: 60,
      max_send_buffer_bytes: 8 * MIB,
      max_total_send_buffer_bytes: 12 * MIB,
    });
    victim.db.becomeGlobal();
    await roundTrip(attacker, victim);
    const ghosts = ['ghost1', 'ghost2', 'ghost3', 'ghost4'];
    flood(attacker, victim, 1, () => [
      'g_upd',
      "'l",
      Object.fromEntries(ghosts.map((g) => [g, [silent.address]])),
    ]);
    const big = 'y'.repeat(MIB);
    flood(attacker, victim, 40, (i) => ['snd', `${ghosts[i % 4]}#p`, big]);
    await roundTrip(attacker, victim);
    const queued = victim.network.stats().reduce((n, s) => n + s.queued, 0);
    expect(queued * MIB).toBeLessThanOrEqual(12 * MIB);
    // The first ones were kept.
    expect(queued).toBeGreaterThan(0);
  }, 60_000);
});

describe('messageSize', () => {
  it('counts characters, bytes and values; stops past the limit', () => {
    expect(messageSize(['p', 'abc'], 1e9)).toBe(3 * ITEM_BYTES + 4);
    expect(messageSize([new Uint8Array(100)], 1e9)).toBe(2 * ITEM_BYTES + 100);
    expect(messageSize([{ key: 'v' }], 1e9)).toBe(3 * ITEM_BYTES + 4);
    expect(messageSize(['x'.repeat(1000), 'y'.repeat(1000)], 500)).toBeGreaterThan(500);
  });

  it('a million levels deep, a value that refers to itself, a huge sparse array: all end', () => {
    let deep: unknown[] = [];
    for (let i = 0; i < 1_000_000; i++) deep = [deep];
    expect(messageSize(deep, 1e12)).toBe(1_000_001 * ITEM_BYTES);
    const loop: unknown[] = ['a'];
    loop.push(loop);
    expect(messageSize(loop, 1e12)).toBeGreaterThanOrEqual(MAX_WALKED_ITEMS * ITEM_BYTES);
    expect(messageSize([new Array(2 ** 31)], 1e9)).toBeGreaterThan(1e9);
  });

  it('a value that throws when looked at ends the walk instead of the send', () => {
    const hostile = {
      get boom(): never {
        throw new Error('boom');
      },
    };
    expect(messageSize(['p', 'abc', hostile], 1e9)).toBeGreaterThanOrEqual(ITEM_BYTES);
  });
});
