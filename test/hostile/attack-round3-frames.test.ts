/**
 * Incomplete frames are bounded per connection (`max_frame_bytes`) and, since an authenticated
 * peer can open a connection under each node ID it likes, for all connections together: an
 * attacker whose connections each held a frame just short of the limit, never finished, made
 * the victim keep max_connections × max_frame_bytes (4096 × 16 MiB by default). Past the total
 * (`max_total_send_buffer_bytes`, which bounds all connection buffers) the connection that adds
 * to it is closed.
 */
import { describe, expect, it } from 'vitest';
import { FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const KIB = 1024;

/** A CBOR frame head: an array of one byte string of `n` bytes (4-byte length). */
function head(n: number): Buffer {
  const b = Buffer.alloc(6);
  b[0] = 0x81;
  b[1] = 0x5a;
  b.writeUInt32BE(n, 2);
  return b;
}

describe('incomplete frames on many authenticated connections', () => {
  it('12 connections each holding 250 KiB of a frame never finished: the total stays under max_total_send_buffer_bytes (1 MiB)', async () => {
    const victim = testNode({
      nodeid: 'rb-victim',
      binds: ['127.0.0.1:0'],
      secret: SECRET,
      secure: true,
      max_frame_bytes: 256 * KIB,
      max_total_send_buffer_bytes: 1024 * KIB,
    });
    await within(victim.ready, WAIT_MS, 'the victim to listen');
    const peers: FakePeer[] = [];
    for (let i = 0; i < 12; i++) {
      const p = await FakePeer.dial(victim.binds[0]!);
      await p.handshake({ nodeId: `rb-${i}`, secret: SECRET, sendFraming: 'cbor' });
      peers.push(p);
    }
    for (const p of peers) p.write(Buffer.concat([head(256 * KIB - 16), Buffer.alloc(250 * KIB, 0x61)]));
    // About a quarter of them fit; the others are closed as their bytes arrive.
    let closed = 0;
    await within(
      new Promise<void>((resolve) => {
        for (const p of peers)
          void p.closed.then(() => {
            if (++closed === 8) resolve();
          });
      }),
      WAIT_MS,
      'eight of the twelve connections to be closed',
    );
    expect(victim.logs.some((l) => /incomplete frames of all connections/.test(l.text))).toBe(true);
    for (const p of peers) p.destroy();

    // A frame of the same size on its own is still delivered.
    const got = new Promise<unknown[]>((resolve) => {
      const port = victim.port((...m: unknown[]) => resolve(m));
      void FakePeer.dial(victim.binds[0]!).then(async (good) => {
        await good.handshake({ nodeId: 'rb-good', secret: SECRET, sendFraming: 'cbor' });
        good.send([port.slice(port.indexOf('#') + 1), 'x'.repeat(250 * KIB)]);
      });
    });
    expect((await within(got, WAIT_MS, 'the good frame'))[0]).toHaveLength(250 * KIB);
  }, 30_000);
});
