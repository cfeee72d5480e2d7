/**
 * Data connections on the wire against a Perl-like node (test/helpers/fake-peer.ts), shapes as
 * in the captured 2.02 traffic (test/fixtures/dataconn-inbound.txt, s1 and s2): `_expect`, the
 * `snd` round trip, a second connection greeted `aemp-dataconn;…;dataconn_id=ID` without
 * `mproto`/`gproto`, Perl's plain `aemp` greeting accepted, then raw bytes; Perl's timeout kill
 * ends the observable with the DataConn reason.
 */
import type { Duplex } from 'node:stream';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { KilledError } from '../../src/index.js';
import { FakeListener, SECRET } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

async function perlSeed() {
  const listener = await FakeListener.open();
  const a = testNode({ nodeid: 'dcprobe', secret: SECRET, binds: ['127.0.0.1:0'], seeds: [listener.addr] });
  const link = await listener.accept();
  const up = firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'P')));
  expect((await link.handshake({ nodeId: 'P', secret: SECRET })).tokenOk).toBe(true);
  await up;
  return { a, listener, link };
}

describe('data connections against a Perl-like node', () => {
  it('sends _expect and the snd round trip, then dials with aemp-dataconn and streams raw bytes', async () => {
    const { a, listener, link } = await perlSeed();
    const got = deferred<Duplex>();
    const sub = a
      .dataConn$('P', { initFunc: 'main::dc_echo', initData: ['init-a', 42], timeout: 5 })
      .subscribe({ next: got.resolve });
    const expectMsg = await link.nextMatching((m) => m[1] === 'AnyEvent::MP::DataConn::_expect');
    const [, , id, caller, timeout, func, ...initData] = expectMsg;
    expect(expectMsg[0]).toBe('');
    expect(id).toMatch(/^.+@dcprobe$/);
    expect(caller).toMatch(/^dcprobe#/);
    expect([timeout, func, initData]).toEqual([5, 'main::dc_echo', ['init-a', 42]]);
    const snd = await link.nextMatching((m) => m[1] === 'snd');
    expect(snd).toEqual(['', 'snd', expect.stringMatching(/^dcprobe#/)]);
    // Perl relays the empty message back to the temporary port.
    link.send([String(snd[2]).slice('dcprobe#'.length)]);
    const dc = await listener.accept();
    const hs = await dc.handshake({ nodeId: 'P', secret: SECRET, afterAuth: Buffer.from('dc_echo ready\n') });
    expect(hs.tokenOk).toBe(true);
    expect(hs.theirGreeting.proto).toBe('aemp-dataconn');
    expect(hs.theirs[0]).toMatch(/^aemp-dataconn;1;dcprobe;/);
    expect(hs.theirGreeting.keys.get('dataconn_id')).toBe(id);
    expect(hs.theirGreeting.keys.has('mproto')).toBe(false);
    expect(hs.theirGreeting.keys.has('gproto')).toBe(false);
    const stream = await got.promise;
    const first = await new Promise<string>((r) => stream.once('data', (c: Buffer) => r(c.toString())));
    expect(first).toBe('dc_echo ready\n');
    stream.write(Buffer.from([0x00, 0xff, 0x80, 0x0a]));
    const echoed = await (async () => {
      for (;;) {
        if (dc.pending.length >= 4) return [...dc.pending.subarray(0, 4)];
        await new Promise<void>((r, rej) => {
          const t = setTimeout(
            () => rej(new Error('waiting for the raw bytes: nothing within 5000 ms')),
            5000,
          );
          dc.socket.once('data', () => {
            clearTimeout(t);
            setImmediate(r);
          });
        });
      }
    })();
    expect(echoed).toEqual([0x00, 0xff, 0x80, 0x0a]);
    sub.unsubscribe();
    await dc.waitClosed();
  });

  it("Perl's timeout kill of the caller port ends the observable with the DataConn reason", async () => {
    const { a, link } = await perlSeed();
    const failed = deferred<unknown>();
    const sub = a
      .dataConn$('P', { initFunc: 'main::dc_echo', timeout: 2 })
      .subscribe({ error: failed.resolve });
    const expectMsg = await link.nextMatching((m) => m[1] === 'AnyEvent::MP::DataConn::_expect');
    const callerName = String(expectMsg[3]).slice('dcprobe#'.length);
    // As captured: ["","kil1","k2","AnyEvent::MP::DataConn",null] (CBOR null).
    link.send(['', 'kil1', callerName, 'AnyEvent::MP::DataConn', null]);
    const err = (await Promise.race([
      failed.promise,
      new Promise((_, rej) =>
        setTimeout(() => rej(new Error('waiting for the kill error: nothing within 5000 ms')), 5000),
      ),
    ])) as KilledError;
    expect(err).toBeInstanceOf(KilledError);
    expect(err.reason).toEqual(['AnyEvent::MP::DataConn', null]);
    sub.unsubscribe();
  });
});
