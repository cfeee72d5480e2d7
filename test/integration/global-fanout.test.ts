/**
 * A global node's `g_chg2` fan-out encodes the message once per framing and writes those bytes
 * to every monitor: each peer must still get exactly the frame it would get alone, in its own
 * framing, and a peer with more to read in the same turn gets everything in order.
 */
import { describe, expect, it } from 'vitest';
import { createFrameEncoder } from '../../src/protocol/frame-codec.js';
import { FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { globalTestNode } from '../helpers/node.js';

const NODE_ID = 'fanout-global';

/** A Perl-style slave in `framing`, monitoring `fam`, past its g_chg1. */
async function monitor(addr: string, nodeId: string, framing: 'cbor' | 'json'): Promise<FakePeer> {
  const fake = await FakePeer.dial(addr);
  const opts = framing === 'json' ? { framings: 'json', sendFraming: 'json' } : {};
  expect((await fake.handshake({ nodeId, secret: SECRET, ...opts })).tokenOk).toBe(true);
  expect(await fake.next()).toEqual(['', 'g_global']);
  fake.send(['', 'g_slave', {}]);
  fake.send(['', 'g_mon1', 'fam']);
  expect(await fake.next()).toEqual(['', 'g_chg1', 'fam', null]);
  return fake;
}

describe('g_chg2 to many monitors', () => {
  it('every monitor gets the frame of its own framing, byte for byte as encoded alone', async () => {
    const node = await globalTestNode(NODE_ID, SECRET);
    const addr = node.binds[0]!;
    const peers = [
      await monitor(addr, 'm1', 'cbor'),
      await monitor(addr, 'm2', 'json'),
      await monitor(addr, 'm3', 'cbor'),
      await monitor(addr, 'm4', 'json'),
    ];
    const value = { n: 1, s: 'text', list: [1.5, null, 'x'] };
    const want = ['', 'g_chg2', 'fam', { k: value }, []];
    node.db.set('fam', 'k', value);
    for (const [i, p] of peers.entries()) {
      const frame = await p.nextFrame();
      expect(frame.value).toEqual(want);
      const alone = Buffer.from(createFrameEncoder(i % 2 ? 'json' : 'cbor').encode(want));
      expect(frame.bytes.equals(alone)).toBe(true);
    }

    // m1 asks for something in the same turn as the change: its batch holds both, in order.
    peers[0]!.send(['', 'g_upd', 'fam', { own: 2 }]);
    peers[0]!.send(['', 'g_db_keys', 'fam', 'q1']);
    const fromM1 = ['', 'g_chg2', 'fam', { own: 2 }, []];
    expect(await peers[0]!.next()).toEqual(fromM1);
    const keys = await peers[0]!.next();
    expect(keys.slice(0, 3)).toEqual(['', 'g_reply', 'q1']);
    for (const p of peers.slice(1)) expect(await p.next()).toEqual(fromM1);
    await within(node.close(), WAIT_MS, 'the node to close');
  });
});
