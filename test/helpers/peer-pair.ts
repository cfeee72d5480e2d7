/**
 * An attacker node and a victim node with the same secret, connected over loopback, for the
 * attack tests of authenticated peers: the attacker sends raw node-port frames (`flood`) and a
 * `time` round trip on the same connection (`roundTrip`) proves every frame before it was
 * handled (frames are handled in order).
 */
import { firstValueFrom, throwError, timeout } from 'rxjs';
import type { TcpNetwork } from '../../src/streams/net/tcp-network.js';
import { within as withinMs } from './fake-peer.js';
import { testNode } from './node.js';

export type TestNode = ReturnType<typeof testNode>;

/** How long one awaited step of these tests may take. */
export const PAIR_WAIT_MS = 20_000;

/** Resolves with `p`, or rejects naming `what` after `ms`. */
export const within = <T>(p: Promise<T>, what: string, ms = PAIR_WAIT_MS): Promise<T> =>
  withinMs(p, ms, what);

/** A `time` request to `victim` answered: every frame sent before it has been handled. */
export async function roundTrip(attacker: TestNode, victim: TestNode): Promise<void> {
  await firstValueFrom(
    attacker.cal$(victim.id, 'time').pipe(
      timeout({
        first: PAIR_WAIT_MS,
        with: () => throwError(() => new Error(`no answer to time from ${victim.id}`)),
      }),
    ),
  );
}

/** A victim node listening on loopback and an attacker connected to it with `secret`. */
export async function pair(
  secret: string,
  victimOpts: Record<string, unknown> = {},
): Promise<{ victim: TestNode; attacker: TestNode }> {
  const victim = testNode({ nodeid: 'victim', secret, binds: ['127.0.0.1:0'], ...victimOpts });
  await within(victim.ready, 'the victim to start');
  const attacker = testNode({ nodeid: 'attacker', secret, binds: ['127.0.0.1:0'] });
  await within(attacker.ready, 'the attacker to start');
  (attacker.network as TcpNetwork).addresses.set(victim.id, [...victim.binds]);
  await roundTrip(attacker, victim);
  return { victim, attacker };
}

/** Sends `["", …msg(i)]` frames straight to the victim, as a hostile peer would. */
export function flood(
  attacker: TestNode,
  victim: TestNode,
  count: number,
  msg: (i: number) => unknown[],
): void {
  const net = attacker.network as TcpNetwork;
  for (let i = 0; i < count; i++) net.send(victim.id, ['', ...msg(i)]);
}
