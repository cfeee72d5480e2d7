/**
 * Replies can be far larger than the requests that ask for them: `g_db_values` (or `g_mon1`,
 * `g_db_family`) of a big family answers a request of a few bytes with the whole family. A
 * burst of such requests used to be encoded into one write however large (100 requests for a
 * 4 MiB family: one 400 MiB write against a limit of 8 MiB; with a 16 MiB family and 4,000
 * requests in one 80 KB read, 64 GB), before the send-buffer limit was looked at. Now a batch
 * is encoded only as far as the connection may hold it; past that the connection is closed.
 * Secure mode allows all of these requests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport } from '../../src/protocol/tcp-transport.js';
import { FakePeer, perlCbor, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const MIB = 1024 * 1024;

/** The largest single write (in bytes) any TCP transport of this process was asked to make. */
function watchWrites(): { largest(): number; restore(): void } {
  let largest = 0;
  const proto = TcpTransport.prototype;
  const { write, writeAll } = proto;
  proto.write = function (this: TcpTransport, data: string | Uint8Array, done?: () => void) {
    largest = Math.max(largest, data.length);
    return write.call(this, data, done);
  };
  proto.writeAll = function (this: TcpTransport, chunks: Uint8Array[], done?: () => void) {
    let n = 0;
    for (const c of chunks) n += c.length;
    largest = Math.max(largest, n);
    return writeAll.call(this, chunks, done);
  };
  return {
    largest: () => largest,
    restore() {
      proto.write = write;
      proto.writeAll = writeAll;
    },
  };
}

let watcher: ReturnType<typeof watchWrites> | undefined;
afterEach(() => {
  watcher?.restore();
  watcher = undefined;
});

describe('replies much larger than their requests', () => {
  for (const [tag, request] of [
    ['g_db_values', (i: number) => ['', 'g_db_values', 'big', `q${i}`]],
    ['g_mon1', () => ['', 'g_mon1', 'big']],
  ] as const) {
    it(`100 ${tag} requests for a 4 MiB family to a secure global node: no write beyond max_send_buffer_bytes (8 MiB), the requester is cut off`, async () => {
      const victim = testNode({
        nodeid: `amp-${tag}`,
        binds: ['127.0.0.1:0'],
        secret: SECRET,
        secure: true,
        max_send_buffer_bytes: 8 * MIB,
      });
      await within(victim.ready, WAIT_MS, 'the victim to listen');
      victim.db.becomeGlobal();
      const w = watchWrites();
      watcher = w;
      const attacker = await FakePeer.dial(victim.binds[0]!);
      await attacker.handshake({ nodeId: 'amp', secret: SECRET, sendFraming: 'cbor' });
      attacker.send(['', 'g_upd', 'big', { k: 'x'.repeat(4 * MIB) }]);
      const burst: Buffer[] = [];
      for (let i = 0; i < 100; i++) burst.push(perlCbor(request(i)));
      attacker.write(Buffer.concat(burst));
      await attacker.waitClosed();
      const line = await within(victim.logged(/send buffer overflow/), WAIT_MS, 'the overflow line');
      expect(line.text).toContain('connection to amp lost');
      expect(w.largest()).toBeLessThanOrEqual(8 * MIB);

      // A peer asking once is answered in full.
      const good = await FakePeer.dial(victim.binds[0]!);
      await good.handshake({ nodeId: 'amp-good', secret: SECRET, sendFraming: 'cbor' });
      good.send(['', 'g_upd', 'big', { k: 'y'.repeat(4 * MIB) }]);
      good.send(['', 'g_db_values', 'big', 'once']);
      const reply = await good.nextMatching((m) => m[0] === 'g_reply' || (m[0] === '' && m[1] === 'g_reply'));
      expect(JSON.stringify(reply).length).toBeGreaterThan(4 * MIB);
    }, 30_000);
  }
});
