/**
 * `snd` to ports of other nodes, seen on the wire by fake peers: every arity (inline values and
 * the general path), the node port, runs to one port (whose place `snd` remembers) and a new
 * port every time, all arriving as `[PORTNAME, …message]` in the order sent.
 */
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

async function connectedPeer(n: ReturnType<typeof testNode>, id: string): Promise<FakePeer> {
  const up = firstValueFrom(n.nodes$.pipe(filter((e) => e.type === 'up' && e.node === id)));
  const peer = await FakePeer.dial(n.binds[0]!);
  expect((await peer.handshake({ nodeId: id, secret: SECRET })).tokenOk).toBe(true);
  await up;
  return peer;
}

describe('snd to remote ports', () => {
  it('sends [PORTNAME, …message] for every arity, to ports and to the node port, in order', async () => {
    const n = testNode({ nodeid: 'sender', secret: SECRET, binds: ['127.0.0.1:0'] });
    await within(n.ready, WAIT_MS, 'the node to listen');
    const a = await connectedPeer(n, 'peer-a');
    const b = await connectedPeer(n, 'peer-b');
    const expectA: unknown[][] = [];
    const expectB: unknown[][] = [];
    for (let arity = 0; arity <= 7; arity++) {
      const msg = Array.from({ length: arity }, (_, i) => (i === 0 ? `tag${arity}` : { i, arity }));
      n.snd('peer-a#p1', ...msg);
      expectA.push(['p1', ...msg]);
      n.snd('peer-b', ...msg);
      expectB.push(['', ...msg]);
      n.snd('peer-a#x#y', ...msg);
      expectA.push(['x#y', ...msg]);
    }
    // The same port many times in a row, then a new port each time, alternating peers.
    for (let i = 0; i < 500; i++) {
      n.snd('peer-b#same', 'same', i);
      expectB.push(['same', 'same', i]);
    }
    for (let round = 0; round < 2; round++)
      for (let i = 0; i < 1500; i++) {
        const to = i % 2 === 0 ? 'peer-a' : 'peer-b';
        n.snd(`${to}#port${i}`, 'n', i, round);
        (to === 'peer-a' ? expectA : expectB).push([`port${i}`, 'n', i, round]);
      }
    const got = async (peer: FakePeer, count: number) => {
      const out: unknown[][] = [];
      while (out.length < count) out.push(await peer.next());
      return out;
    };
    expect(await got(a, expectA.length)).toEqual(expectA);
    expect(await got(b, expectB.length)).toEqual(expectB);
    a.destroy();
    b.destroy();
  });

  it('a turn of sends bigger than one write chunk arrives whole and in order', async () => {
    const n = testNode({ nodeid: 'sender', secret: SECRET, binds: ['127.0.0.1:0'] });
    await within(n.ready, WAIT_MS, 'the node to listen');
    const peer = await connectedPeer(n, 'peer');
    const before = n.connectionStats().find((s) => s.node === 'peer')!.bytesOut;
    // About 3 MiB in one turn: a dozen 256 KiB chunks, one frame larger than a chunk among them.
    const sent: unknown[][] = [];
    for (let i = 0; i < 3000; i++) {
      const m = ['bulk', i, `${i}:`.padEnd(1000, 'x')];
      if (i === 1500) m.push('y'.repeat(600 * 1024));
      n.snd('peer#in', ...m);
      sent.push(['in', ...m]);
    }
    const received: unknown[][] = [];
    while (received.length < sent.length) received.push(await peer.next());
    expect(received).toEqual(sent);
    const after = n.connectionStats().find((s) => s.node === 'peer')!.bytesOut;
    expect(after - before).toBeGreaterThan(3000 * 1000 + 600 * 1024);
    peer.destroy();
  });
});
