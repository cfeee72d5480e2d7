/**
 * On-demand connects (spec/protocol.md §2.2): addresses are tried in order, the next one after
 * the spacing (connect_interval, at least 0.4 s), and the connect_interval deadline fails the
 * node with "connect timeout" when no try succeeds.
 */
import { createServer } from 'node:net';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { TcpNetwork } from '../../src/streams/net/tcp-network.js';
import { WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

/** A loopback port with nothing listening on it (bound, then released). */
async function deadAddress(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return `127.0.0.1:${port}`;
}

const network = (n: object) => (n as { network: TcpNetwork }).network;

describe('address iteration', () => {
  it('tries the next address after the spacing when the first one refuses', async () => {
    const b = testNode({ nodeid: 'iter-b', binds: ['127.0.0.1:0'], secret: 's' });
    await within(b.ready, WAIT_MS, 'b to listen');
    const echo = b.port((x: unknown, reply: string) => b.snd(reply, x));
    // spacing = max(0.4, min(ci, (mt - ci) / n)) = max(0.4, min(1, 0.3)) = 0.4 s; deadline 1 s.
    const a = testNode({
      nodeid: 'iter-a',
      binds: [],
      secret: 's',
      connect_interval: 1,
      monitor_timeout: 1.6,
    });
    await within(a.ready, WAIT_MS, 'a to start');
    network(a).addresses.set('iter-b', [await deadAddress(), b.binds[0]!]);
    // The spacing's timing is proven in virtual time (test/unit/net/connect-timing.test.ts).
    expect(await within(lastValueFrom(a.cal$(echo, 'hi')), WAIT_MS, 'the echo reply')).toEqual(['hi']);
  });

  it('fails with connect timeout when no address answers within connect_interval', async () => {
    const a = testNode({ nodeid: 'iter-lonely', binds: [], secret: 's', connect_interval: 0.5 });
    await within(a.ready, WAIT_MS, 'a to start');
    network(a).addresses.set('iter-nobody', [await deadAddress(), await deadAddress()]);
    expect(
      await within(
        firstValueFrom(a.mon$('iter-nobody#x')),
        WAIT_MS,
        'transport_error for a node with no reachable address',
      ),
    ).toEqual(['transport_error', 'iter-nobody', 'connect timeout']);
  });
});
