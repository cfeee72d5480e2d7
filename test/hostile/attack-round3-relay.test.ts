/**
 * A secure node does not pass node-port requests on to other nodes. `snd` relays and the reply
 * addresses of `time`, `can` and `aemp::stats` are the requester's choice; aimed at a third
 * node's node port they made the secure victim send requests of the attacker's making as its
 * own: `g_upd` and `g_global` to its master (deleting or replacing the victim's registrations
 * there, as the victim), `kil1`, `eval` or spawns to nodes that are not secure. Relays to
 * ordinary ports (the echo Perl's tests use) still work.
 */
import { firstValueFrom, throwError, timeout } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { EXPECT_REQUEST } from '../../src/streams/net/dataconn.js';
import type { TcpNetwork } from '../../src/streams/net/tcp-network.js';
import { deferred, testNode } from '../helpers/node.js';
import { flood, pair, roundTrip, within } from '../helpers/peer-pair.js';

const SECRET = 'attack-round3-relay-secret';

type TestNode = ReturnType<typeof testNode>;

/** A `time` call from `from` to `to` answered: everything `from` sent `to` before was handled. */
async function settled(from: TestNode, to: TestNode): Promise<void> {
  await firstValueFrom(
    from.cal$(to.id, 'time').pipe(
      timeout({
        first: 20_000,
        with: () => throwError(() => new Error(`no answer to time from ${to.id}`)),
      }),
    ),
  );
}

describe('a secure node relaying to the node port of another node', () => {
  it("snd relays and reply addresses naming a third node's node port are refused; the master keeps the victim's entries", async () => {
    const { victim, attacker } = await pair(SECRET, { secure: true });
    const master = testNode({ nodeid: 'relay-master', secret: SECRET, binds: ['127.0.0.1:0'] });
    await within(master.ready, 'the master to start');
    master.db.becomeGlobal();
    (victim.network as TcpNetwork).addresses.set(master.id, [...master.binds]);
    // The victim's own entry on the master.
    victim.network.send(master.id, ['', 'g_upd', 'svc', { [`${victim.id}#real`]: 1 }]);
    await settled(victim, master);
    const family = async () => within(firstValueFrom(master.db.family$('svc')), "the master's svc family");
    expect(await family()).toEqual({ [`${victim.id}#real`]: 1 });

    // Relayed: a deletion of the victim's entry, a forged entry, and g_global (which makes the
    // master forget everything the victim provided).
    flood(attacker, victim, 1, () => [
      'snd',
      master.id,
      'g_upd',
      'svc',
      { forged1: 1 },
      [`${victim.id}#real`],
    ]);
    flood(attacker, victim, 1, () => ['snd', `${master.id}#`, 'g_upd', 'svc', { forged2: 1 }]);
    flood(attacker, victim, 1, () => ['time', master.id, 'g_upd', 'svc', { forged3: 1 }]);
    flood(attacker, victim, 1, () => ['can', 'time', `${master.id}#`, 'g_upd', 'svc', { forged4: 1 }]);
    flood(attacker, victim, 1, () => ['snd', master.id, 'g_global']);
    await roundTrip(attacker, victim);
    await settled(victim, master);
    expect(await family()).toEqual({ [`${victim.id}#real`]: 1 });
    expect(victim.logs.some((l) => /node port of relay-master/.test(l.text))).toBe(true);

    // An ordinary port is still reached through the victim (the echo of Perl's tests).
    const got = deferred<unknown[]>();
    const port = attacker.port((...m: unknown[]) => got.resolve(m));
    flood(attacker, victim, 1, () => ['snd', port, 'echo']);
    expect(await within(got.promise, 'the echo')).toEqual(['echo']);

    // Back to the requester's own node port: passed on (it can only reach the requester).
    const back = deferred<unknown[]>();
    const backPort = attacker.port((...m: unknown[]) => back.resolve(m));
    flood(attacker, victim, 1, () => ['snd', attacker.id, 'snd', backPort, 'back']);
    expect(await within(back.promise, "the relay to the requester's own node port")).toEqual(['back']);
  }, 60_000);

  it("a refused data-connection request naming a third node's port does not make the secure node kill it", async () => {
    const { victim, attacker } = await pair(SECRET, { secure: true });
    const third = testNode({ nodeid: 'relay-third', secret: SECRET, binds: ['127.0.0.1:0'] });
    await within(third.ready, 'the third node to start');
    (victim.network as TcpNetwork).addresses.set(third.id, [...third.binds]);
    await settled(victim, third);
    const target = third.port(() => {});
    const own = attacker.port(() => {});
    const ownKilled = within(firstValueFrom(attacker.mon$(own)), "the refusal at the requester's own port");
    flood(attacker, victim, 1, () => [EXPECT_REQUEST, 'id1', target, 5, 'Some::init']);
    flood(attacker, victim, 1, () => [EXPECT_REQUEST, 'id2', own, 5, 'Some::init']);
    await roundTrip(attacker, victim);
    await settled(victim, third);
    expect(third.kernel.hasPort(target)).toBe(true);
    // The requester's own port still hears of the refusal.
    expect(await ownKilled).toEqual(['AnyEvent::MP::DataConn', 'remote execution not allowed']);
  }, 60_000);
});
