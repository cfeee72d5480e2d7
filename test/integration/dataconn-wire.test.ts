/**
 * Data connections on the wire against a Perl-like node (test/helpers/fake-peer.ts), shapes as
 * in the captured 2.02 traffic (test/fixtures/dataconn-inbound.txt, s1 and s2): `_expect`, the
 * `snd` round trip, a second connection greeted `aemp-dataconn;…;dataconn_id=ID` without
 * `mproto`/`gproto`, Perl's plain `aemp` greeting accepted, then raw bytes; Perl's timeout kill
 * ends the observable with the DataConn reason. The other way round, a Perl-like dialler (its
 * `aemp-dataconn` greeting in the captured key order, no `role` key, its auth line sent at once)
 * completes an `_expect` sent over P's message link, unless the aemp node has `strict_peers`.
 */
import type { Duplex } from 'node:stream';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { KilledError } from '../../src/index.js';
import { FakeListener, FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
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
    const stream = await within(got.promise, WAIT_MS, 'the data connection stream');
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

/** The greeting line of a Perl 2.02 data-connection dialler, key order as captured (no `role`). */
function perlDataConnLine(nodeId: string, peeraddr: string, dataconnId: string): string {
  return `aemp-dataconn;1;${nodeId};tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;provider=AE-2.02;peeraddr=${peeraddr};dataconn_id=${dataconnId}`;
}

/** The first `n` bytes that reach `stream` (a paused stream starts flowing here). */
function firstBytes(stream: Duplex, n: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  return within(
    new Promise<Buffer>((resolve) => {
      const onData = (c: Buffer) => {
        parts.push(c);
        have += c.length;
        if (have < n) return;
        stream.off('data', onData);
        resolve(Buffer.concat(parts));
      };
      stream.on('data', onData);
    }),
    WAIT_MS,
    what,
  );
}

/** The first `n` bytes the fake peer received after the handshake. */
async function fakeBytes(peer: FakePeer, n: number, what: string): Promise<Buffer> {
  const deadline = Date.now() + WAIT_MS;
  while (peer.pending.length < n) {
    if (peer.isClosed) throw new Error(`${what}: connection closed (${peer.closeText})`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await within(
      new Promise<void>((resolve) => {
        const done = () => {
          peer.socket.off('data', done);
          peer.socket.off('close', done);
          setImmediate(resolve);
        };
        peer.socket.on('data', done);
        peer.socket.on('close', done);
      }),
      left,
      what,
    );
  }
  return Buffer.from(peer.pending.subarray(0, n));
}

/**
 * An aemp node `b` with a Perl-like node P on its message link (P dialled; with `role`, P
 * states it, as a strict node demands), after P's `_expect` for `id` and the `snd` round trip.
 */
async function perlExpects(
  bOpts: { strict_peers?: boolean },
  id: string,
  role?: string,
): Promise<{ b: ReturnType<typeof testNode>; init: Promise<{ args: unknown[]; stream: Duplex }> }> {
  const b = testNode({ nodeid: 'dc-aemp', secret: SECRET, binds: ['127.0.0.1:0'], ...bOpts });
  await within(b.ready, WAIT_MS, 'the aemp node listening');
  const init = deferred<{ args: unknown[]; stream: Duplex }>();
  b.register('main::dc_recv', (...args: unknown[]) => {
    init.resolve({ args: args.slice(0, -1), stream: args[args.length - 1] as Duplex });
  });
  const up = firstValueFrom(b.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'P')));
  const link = await within(FakePeer.dial(b.binds[0]!), WAIT_MS, 'P dialling the aemp node');
  const hs = await link.handshake({ nodeId: 'P', secret: SECRET, ...(role !== undefined && { role }) });
  expect(hs.tokenOk).toBe(true);
  await within(up, WAIT_MS, 'the aemp node seeing P up');
  // As Perl's connect_to: _expect(ID, CALLERPORT, TIMEOUT, INITFUNC, INITDATA…), then a
  // `snd` to a port of its own, which the aemp node relays back once it took the expectation.
  link.send(['', 'AnyEvent::MP::DataConn::_expect', id, 'P#k1', 5, 'main::dc_recv', 'init1', 2]);
  link.send(['', 'snd', 'P#k2']);
  expect(await link.nextMatching((m) => m[0] === 'k2')).toEqual(['k2']);
  expect(b.dataConns.pending).toBe(1);
  return { b, init: init.promise };
}

describe('a Perl 2.02 data-connection dialler reaching an aemp node', () => {
  it('is accepted without a role key: the init function gets the stream and the init data, bytes pass both ways', async () => {
    const { b, init } = await perlExpects({}, 'd@P');
    const dc = await within(FakePeer.dial(b.binds[0]!), WAIT_MS, 'the data connection to the aemp node');
    const line1 = perlDataConnLine('P', dc.peeraddr, 'd@P');
    // Perl sends its auth line without waiting for ours, early bytes in the same write.
    const hs = await dc.handshake({
      nodeId: 'P',
      secret: SECRET,
      line1,
      afterAuth: Buffer.from('hello aemp\n'),
    });
    expect(hs.own[0]).not.toMatch(/(^|;)role=/);
    expect(hs.authWithheld).toBe(false);
    expect(hs.tokenOk).toBe(true);
    // The aemp node greets with its ordinary `aemp` line, which a Perl dialler accepts.
    expect(hs.theirGreeting.proto).toBe('aemp');
    expect(hs.theirGreeting.nodeId).toBe('dc-aemp');
    const { args, stream } = await within(init, WAIT_MS, 'main::dc_recv called with the stream');
    expect(args).toEqual(['init1', 2]);
    expect(b.dataConns.pending).toBe(0);
    const binary = Buffer.from([0x00, 0xff, 0x80, 0x0a]);
    const early = firstBytes(stream, 'hello aemp\n'.length + binary.length, 'bytes from the Perl dialler');
    dc.write(binary);
    expect(await early).toEqual(Buffer.concat([Buffer.from('hello aemp\n'), binary]));
    stream.write(Buffer.from([0x0a, 0x80, 0xff, 0x00, 0x41]));
    expect(await fakeBytes(dc, 5, 'bytes from the aemp init function')).toEqual(
      Buffer.from([0x0a, 0x80, 0xff, 0x00, 0x41]),
    );
    // Either side ends the stream by closing the socket.
    stream.end();
    await dc.waitClosed();
  });

  it('is refused by a node with strict_peers: the role-less greeting fails, no auth line, the expectation stays', async () => {
    const { b, init } = await perlExpects({ strict_peers: true }, 'd@P', 'd');
    const dc = await within(FakePeer.dial(b.binds[0]!), WAIT_MS, 'the data connection to the aemp node');
    const hs = await dc.handshake({
      nodeId: 'P',
      secret: SECRET,
      line1: perlDataConnLine('P', dc.peeraddr, 'd@P'),
    });
    expect(hs.authWithheld).toBe(true);
    await dc.waitClosed();
    await within(b.logged(/does not state its connection role/), WAIT_MS, 'the strict_peers refusal logged');
    expect(b.dataConns.pending).toBe(1);
    // The same dialler stating its role gets through: the refusal was about the missing key.
    const ok = await within(FakePeer.dial(b.binds[0]!), WAIT_MS, 'the second data connection');
    const hs2 = await ok.handshake({
      nodeId: 'P',
      secret: SECRET,
      line1: `${perlDataConnLine('P', ok.peeraddr, 'd@P')};role=d`,
    });
    expect(hs2.tokenOk).toBe(true);
    const { args } = await within(init, WAIT_MS, 'main::dc_recv called with the stream');
    expect(args).toEqual(['init1', 2]);
  });
});
