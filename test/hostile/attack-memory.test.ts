/**
 * An authenticated peer must not grow a node's memory without bound through its messages
 * (issue 14, item 7). Each test is an attack over real loopback connections: an attacking node
 * with the shared secret floods a victim node with requests, then a `time` round trip on the
 * same connection (frames are handled in order) proves everything before it was handled, and
 * the victim's tables are counted through its internal `sizes()` hooks.
 *
 * The peer table of the network layer is not covered here (see the connection tests).
 */
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { MAX_MONITORED_FAMILIES } from '../../src/streams/db/global-service.js';
import { MAX_KEPT_NODES } from '../../src/streams/db/keepalive.js';
import { MAX_PENDING_FINDS } from '../../src/streams/db/node-db.js';
import { flood, pair, roundTrip, within } from '../helpers/peer-pair.js';
import { freePort } from '../helpers/ports.js';

const SECRET = 'attack-memory-secret';

describe('an authenticated peer cannot grow a node without bound', () => {
  it('g_db_keys / g_db_values for 50k distinct families leave no family behind on a global node', async () => {
    const { victim, attacker } = await pair(SECRET);
    victim.db.becomeGlobal();
    await roundTrip(attacker, victim);
    const before = victim.db.sizes().global!.families;
    flood(attacker, victim, 50_000, (i) => [i % 2 ? 'g_db_keys' : 'g_db_values', `fam${i}`, `q${i}`]);
    await roundTrip(attacker, victim);
    expect(victim.db.sizes().global!.families).toBe(before);
    // A family with entries is still answered as before.
    const guard = victim.db.set('real', 'k', 1);
    flood(attacker, victim, 1, () => ['g_db_keys', 'real', 'last']);
    await roundTrip(attacker, victim);
    expect(victim.db.sizes().global!.families).toBe(before + 1);
    guard.dispose();
  }, 60_000);

  it(`g_mon1 for many families registers at most ${MAX_MONITORED_FAMILIES} per node`, async () => {
    const { victim, attacker } = await pair(SECRET);
    victim.db.becomeGlobal();
    await roundTrip(attacker, victim);
    // The global node itself monitors 'g (its keepalive).
    const base = victim.db.sizes().global!.monitoredFamilies;
    const count = MAX_MONITORED_FAMILIES + 3000;
    flood(attacker, victim, count, (i) => ['g_mon1', `watched${i}`]);
    // A family name of 100k characters is not registered either.
    flood(attacker, victim, 1, () => ['g_mon1', 'n'.repeat(100_000)]);
    await roundTrip(attacker, victim);
    const sizes = victim.db.sizes().global!;
    expect(sizes.monitoredFamilies).toBe(base + MAX_MONITORED_FAMILIES);
    expect(sizes.monitors).toBeLessThanOrEqual(base + MAX_MONITORED_FAMILIES);
    // The refusals are logged, a few of them.
    expect(victim.logs.filter((l) => l.text.startsWith('ignoring g_mon1')).length).toBeLessThanOrEqual(5);
    // Monitoring ends with the connection: the tables empty again.
    const gone = firstValueFrom(
      victim.nodes$.pipe(filter((e) => e.type === 'down' && e.node === attacker.id)),
    );
    await within(attacker.close(), 'close of the attacker');
    await within(gone, 'the victim to see the attacker go');
    expect(victim.db.sizes().global!.monitoredFamilies).toBe(base);
  }, 60_000);

  it("a relay to the victim's own node port counts as the relaying peer's request, not the node's own", async () => {
    const { victim, attacker } = await pair(SECRET);
    victim.db.becomeGlobal();
    await roundTrip(attacker, victim);
    const base = victim.db.sizes().global!.monitoredFamilies;
    const own = `${victim.id}#`;
    // Relayed once, and through a chain of relays: both would otherwise be the node's own
    // monitors, which never end.
    flood(attacker, victim, 1, () => ['snd', own, 'g_mon1', 'relayed-once']);
    flood(attacker, victim, 1, () => ['snd', own, 'snd', own, 'snd', own, 'g_mon1', 'relayed-chain']);
    await roundTrip(attacker, victim);
    await roundTrip(attacker, victim);
    expect(victim.db.sizes().global!.monitoredFamilies).toBe(base + 2);
    const gone = firstValueFrom(
      victim.nodes$.pipe(filter((e) => e.type === 'down' && e.node === attacker.id)),
    );
    await within(attacker.close(), 'close of the attacker');
    await within(gone, 'the victim to see the attacker go');
    expect(victim.db.sizes().global!.monitoredFamilies).toBe(base);
  }, 60_000);

  it(`made-up 'g entries make a global node keep at most ${MAX_KEPT_NODES} nodes connected`, async () => {
    const { victim, attacker } = await pair(SECRET);
    victim.db.becomeGlobal();
    await roundTrip(attacker, victim);
    const set: Record<string, null> = {};
    for (let i = 0; i < 2000; i++) set[`ghost-global-${i}`] = null;
    flood(attacker, victim, 1, () => ['g_upd', "'g", set]);
    await roundTrip(attacker, victim);
    expect(victim.db.sizes().global!.keptNodes).toBeLessThanOrEqual(MAX_KEPT_NODES);
  }, 60_000);

  it(`relayed sends to unknown nodes leave at most ${MAX_PENDING_FINDS} address lookups waiting`, async () => {
    // The victim has a seed that never answers: no master, so nothing answers its g_find. Its
    // connect deadline is short, so that every wave of relayed sends to made-up nodes starts
    // new lookups once the previous wave's connects failed.
    const deadSeed = `127.0.0.1:${await freePort()}`;
    const { victim, attacker } = await pair(SECRET, { seeds: [deadSeed], connect_interval: 0.3 });
    for (let wave = 0; wave < 3; wave++) {
      const ids = Array.from({ length: 900 }, (_, i) => `ghost${wave}-${i}`);
      flood(attacker, victim, ids.length, (i) => ['snd', `${ids[i]}#p`, 'x']);
      await roundTrip(attacker, victim);
      // The wave's connects all fail together (same deadline): wait for the last one.
      await within(
        firstValueFrom(victim.mon$(`${ids[ids.length - 1]}#p`)),
        `the connect to ${ids.at(-1)} to fail`,
      );
    }
    const sizes = victim.db.sizes();
    expect(sizes.findWaiters).toBeLessThanOrEqual(MAX_PENDING_FINDS);
    expect(sizes.pendingFinds).toBeLessThanOrEqual(MAX_PENDING_FINDS);
  }, 60_000);

  it('mon1 for nonexistent ports stores nothing and answers kil0; mon1 on a real port counts once', async () => {
    const { victim, attacker } = await pair(SECRET, { secure: true });
    const kil0 = new Promise<unknown[]>((resolve) => {
      const orig = victim.network.send.bind(victim.network);
      let seen = 0;
      victim.network.send = (node: string, msg: unknown[]) => {
        if (msg[1] === 'kil0' && ++seen === 20_000) resolve(msg);
        orig(node, msg);
      };
    });
    flood(attacker, victim, 20_000, (i) => ['mon1', `nope${i}`]);
    const port = victim.port(() => {});
    const name = port.slice(port.indexOf('#') + 1);
    flood(attacker, victim, 1000, () => ['mon1', name]);
    await roundTrip(attacker, victim);
    expect((await within(kil0, 'the 20000th kil0'))[3]).toBe('no_such_port');
    expect(victim.kernel.remoteMonitorCount).toBe(1);
  }, 60_000);
});
