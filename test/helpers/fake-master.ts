/**
 * A node whose only seed, and so its master, is a scripted fake: the node dials the fake, both
 * authenticate, and the fake says `g_global`. What the node answers is left to the caller.
 */
import type { ConfigureOptions } from '../../src/index.js';
import { FakeListener, type FakePeer, SECRET, WAIT_MS, within } from './fake-peer.js';
import { testNode } from './node.js';

export async function nodeWithFakeMaster(
  nodeid: string,
  masterId: string,
  opts: ConfigureOptions = {},
): Promise<{ node: ReturnType<typeof testNode>; master: FakePeer }> {
  const seed = await FakeListener.open();
  const node = testNode({ nodeid, secret: SECRET, binds: ['127.0.0.1:0'], seeds: [seed.addr], ...opts });
  await within(node.ready, WAIT_MS, 'the node to start');
  const master = await within(seed.accept(), WAIT_MS, 'the node to dial its seed');
  await master.handshake({ nodeId: masterId, secret: SECRET });
  master.send(['', 'g_global']);
  return { node, master };
}
