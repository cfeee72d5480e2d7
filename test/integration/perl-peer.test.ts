/**
 * Our node against a scripted peer that speaks like a Perl AnyEvent::MP 2.02 node on real
 * loopback TCP: handshakes in both directions, the node-port requests of
 * /work/shared/vectors/node-port-*.txt sent as Perl sends them (byte-string CBOR), remote
 * monitors both ways, connection loss, seeds, and JSON / mixed framing.
 */
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Node, NodeStatus } from '../../src/index.js';
import { VirtualClock } from '../../src/testing.js';
import {
  type FakeHandshakeOptions,
  FakeListener,
  FakePeer,
  fourLines,
  hmacToken,
  perlCbor,
  perlGreeting,
  perlNonce,
  SECRET,
  sha3Token,
  Text,
  WAIT_MS,
  within,
} from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const NODE_ID = 'ts-node';

type TestNode = ReturnType<typeof testNode>;

async function listeningNode(opts: Parameters<typeof testNode>[0] = {}): Promise<TestNode> {
  const node = testNode({ nodeid: NODE_ID, secret: SECRET, binds: ['127.0.0.1:0'], ...opts });
  await within(node.ready, WAIT_MS, 'the node to listen');
  return node;
}

/** The next up/down event for `id` (subscribed now; a miss rejects only when awaited). */
function status(node: Node, type: 'up' | 'down', id: string): Promise<NodeStatus> {
  const p = within(
    firstValueFrom(node.nodes$.pipe(filter((s) => s.type === type && s.node === id))),
    WAIT_MS,
    `${type} event for ${id}`,
  );
  p.catch(() => {});
  return p;
}

/** A fake Perl node that dialled our node and finished the handshake; resolves once we saw it up. */
async function perlDials(node: Node, o: Partial<FakeHandshakeOptions> = {}): Promise<FakePeer> {
  const nodeId = o.nodeId ?? 'fake';
  const up = status(node, 'up', nodeId);
  const fake = await FakePeer.dial(node.binds[0]!);
  const hs = await fake.handshake({ secret: SECRET, ...o, nodeId });
  expect(hs.tokenOk).toBe(true);
  await up;
  return fake;
}

/** A `time` round trip: proves the connection is up and that nothing else came before it. */
async function timeRoundTrip(fake: FakePeer, name = 'rt'): Promise<void> {
  fake.send(['', 'time', `${fake.result!.own[0].split(';')[2]}#${name}`]);
  expect(await fake.next()).toEqual([name, expect.any(Number)]);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('the fake peer itself', () => {
  it('computes the tokens of the worked example in spec/protocol.md §14', () => {
    const ts: [string, string] = [
      'aemp;1;tsnode/Q7cX2mPz9K;hmac_sha3_512,cleartext;cbor,json;provider=TS-0.1;peeraddr=127.0.0.1:4040',
      Buffer.from(Array.from({ length: 66 }, (_, i) => i)).toString('base64'),
    ];
    const perl: [string, string] = [
      'aemp;1;seed1;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;peeraddr=127.0.0.1:51234;provider=AE-2.02;mproto=1;gproto=1',
      Buffer.from(Array.from({ length: 66 }, (_, i) => 0x80 + i)).toString('base64'),
    ];
    expect(ts[1]).toBe(
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BB',
    );
    const secret = 's3cr3t-example';
    expect(hmacToken(secret, fourLines(ts, perl))).toBe(
      '9c5da3bd86a1194258606bbbf2498f1db0bec9c47de156a735a6b869cad20aff737cfa39da52eb1515b4fcdb955a2dbb695360fb51266a2197d9e5262489310d',
    );
    expect(hmacToken(secret, fourLines(perl, ts))).toBe(
      '94ed305073a1665f1f71f801fdd01d3d5b2137f97c39c7b1497fe9699d6913414d6aaf6a64a24563ce4a2bae1c7e2b47ab89be9138f7b5d63881779112390f51',
    );
    expect(sha3Token(fourLines(ts, perl))).toBe(
      'd28755068c2b61fc6ec98e5b844c3c2a4da5521e9fdcd5874719c7f0c6437568397526b934e6b98396d45de46fd145c2eadc501996405604de696533bae960d1',
    );
  });

  it('encodes like CBOR::XS: byte strings, 40 for "", shortest exact floats, byte-string map keys', () => {
    const h = (v: unknown) => perlCbor(v).toString('hex');
    expect(h(['', 'g_global'])).toBe('824048675f676c6f62616c');
    expect(h(2.5)).toBe('fa40200000');
    expect(h(2 ** 64)).toBe('fa5f800000');
    expect(h(0.1 + 0.2)).toBe('fb3fd3333333333334');
    expect(h(18446744073709551615n)).toBe('1bffffffffffffffff');
    expect(h(-9223372036854775808n)).toBe('3b7fffffffffffffff');
    expect(h({ n: { m: [] } })).toBe('a1416ea1416d80');
    expect(h(new Text('euro'))).toBe('646575726f');
  });
});

describe('a Perl-style node dials our node', () => {
  it('handshake: our greeting and auth line look like a 2.02 node, our HMAC verifies independently', async () => {
    const node = await listeningNode();
    const up = status(node, 'up', 'fake');
    const fake = await FakePeer.dial(node.binds[0]!);
    const hs = await fake.handshake({ nodeId: 'fake', secret: SECRET });

    const g = hs.theirGreeting;
    expect(g.fields.slice(0, 5)).toEqual([
      'aemp',
      '1',
      NODE_ID,
      'tls_sha3_512,hmac_sha3_512,tls_anon,cleartext',
      'cbor,json',
    ]);
    expect(g.keys.get('mproto')).toBe('1');
    expect(g.keys.get('gproto')).toBe('1');
    expect(g.keys.get('provider')).toMatch(/\S/);
    // The accepting side reports the peer's socket address.
    expect(g.keys.get('peeraddr')).toBe(fake.localAddr);
    expect(g.keys.has('tls')).toBe(false);
    expect(hs.theirs[1]).toMatch(/^[A-Za-z0-9+/]{88}$/);

    expect(hs.theirAuth.method).toBe('hmac_sha3_512');
    expect(hs.theirAuth.token).toMatch(/^[0-9a-f]{128}$/);
    expect(hs.theirAuth.framing).toBe('cbor');
    expect(hs.tokenOk).toBe(true);

    expect(await up).toEqual({ type: 'up', node: 'fake' });
    expect(node.upNodes()).toEqual(['fake']);
    expect(node.nodeIsUp('fake')).toBe(true);
    await timeRoundTrip(fake);
  });

  it('frames that arrive in the same read as the auth line are not lost (Perl sends g_global there)', async () => {
    const node = await listeningNode();
    const fake = await FakePeer.dial(node.binds[0]!);
    await fake.handshake({
      nodeId: 'fake',
      secret: SECRET,
      afterAuth: Buffer.concat([perlCbor(['', 'g_global']), perlCbor(['', 'time', 'fake#early'])]),
    });
    expect(await fake.next()).toEqual(['early', expect.any(Number)]);
  });

  it('lines terminated by CR LF are accepted', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node, { eol: '\r\n' });
    await timeRoundTrip(fake);
  });

  it('a peer authenticating with cleartext (hex of the secret) is accepted, as Perl does', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node, { authMethod: 'cleartext' });
    await timeRoundTrip(fake);
  });

  it('Perl key order and unknown greeting keys do not matter', async () => {
    const node = await listeningNode();
    const line1 =
      'aemp;1;fake;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;' +
      'gproto=1;weird;x=y=z;peeraddr=127.0.0.1:4040;provider=AE-2.02;mproto=1';
    const fake = await perlDials(node, { line1 });
    await timeRoundTrip(fake);
  });
});

describe('node-port requests in Perl byte-string CBOR (shapes of node-port-cbor.txt)', () => {
  it('time → [NAME, float seconds]', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const before = Date.now() / 1000;
    // ["","time","fake#r1"] exactly as Perl writes it: byte strings, "" as `40`.
    const request = Buffer.from('83' + '40' + '4474696d65' + '4766616b65237231', 'hex');
    expect(perlCbor(['', 'time', 'fake#r1'])).toEqual(request);
    fake.write(request);
    const { value, bytes } = await fake.nextFrame();
    const after = Date.now() / 1000;
    expect(value).toEqual(['r1', expect.any(Number)]);
    expect(value[1]).toBeGreaterThanOrEqual(before - 0.01);
    expect(value[1]).toBeLessThanOrEqual(after + 0.01);
    // A timestamp needs float64, as Perl's (`fb …`).
    expect(hex(bytes)).toMatch(/^82627231fb/);
  });

  it('eval → [NAME, "", result…]; a failure → [NAME, error text] without results', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    fake.send(['', 'eval', '20 + 22', 'fake#r4']);
    expect(await fake.next()).toEqual(['r4', '', 42]);
    fake.send(['', 'eval', "throw new Error('oops')", 'fake#r5']);
    expect(await fake.next()).toEqual(['r5', 'oops']);
    // Extra reply elements come before the error slot.
    fake.send(['', 'eval', '"two"', 'fake#r6', 'tag']);
    expect(await fake.next()).toEqual(['r6', 'tag', '', 'two']);
  });

  it('can → [NAME, extra…, bool]: known requests true, unknown false', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    fake.send(['', 'can', 'eval', 'fake#r2']);
    fake.send(['', 'can', 'no_such_request', 'fake#r3']);
    fake.send(['', 'can', 'time', 'fake#r3b', 'extra']);
    const truthy = (v: unknown) => v === true || v === '1' || v === 1;
    const falsy = (v: unknown) => v === false || v === '' || v === 0;
    const a = await fake.next();
    expect(a[0]).toBe('r2');
    expect(a).toHaveLength(2);
    expect(truthy(a[1])).toBe(true);
    const b = await fake.next();
    expect(b[0]).toBe('r3');
    expect(b).toHaveLength(2);
    expect(falsy(b[1])).toBe(true);
    const c = await fake.next();
    expect(c.slice(0, 2)).toEqual(['r3b', 'extra']);
    expect(c).toHaveLength(3);
    expect(truthy(c[2])).toBe(true);
  });

  it('snd relays back; Perl value encodings survive the round trip', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    fake.send(['', 'snd', 'fake#r8', 'relayed', 1, [2]]);
    expect(await fake.next()).toEqual(['r8', 'relayed', 1, [2]]);

    const values = [
      2.5, // float32 fa 40200000
      2 ** 64, // float32 fa 5f800000
      0.1 + 0.2, // float64
      18446744073709551615n, // 1b ffffffffffffffff
      -9223372036854775808n, // 3b 7fffffffffffffff
      '', // 40
      null, // f6
      true,
      false,
      { n: { m: [] } }, // map with byte-string keys: a1 41 6e a1 41 6d 80
      new Text('euro €'),
    ];
    const sent = perlCbor(['', 'snd', 'fake#r9', ...values]);
    expect(hex(sent)).toContain('a1416ea1416d80');
    fake.write(sent);
    const { value, bytes } = await fake.nextFrame();
    expect(value).toEqual([
      'r9',
      2.5,
      2 ** 64,
      0.1 + 0.2,
      18446744073709551615n,
      -9223372036854775808n,
      '',
      null,
      true,
      false,
      { n: { m: [] } },
      'euro €',
    ]);
    const h = hex(bytes);
    expect(h).toContain('fa40200000');
    expect(h).toContain('fa5f800000');
    expect(h).toContain('fb3fd3333333333334');
    expect(h).toContain('1bffffffffffffffff');
    expect(h).toContain('3b7fffffffffffffff');
    expect(h).toContain('f6f5f4');
  });

  it('a user message in byte strings reaches the named port with the sender as srcNode', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const got = deferred<{ msg: unknown[]; src: string | undefined }>();
    const port = node.port((...msg: unknown[]) => got.resolve({ msg, src: node.srcNode }));
    const name = port.split('#')[1]!;
    fake.send([name, 'test', 1690000000, 'x']);
    expect(await within(got.promise, WAIT_MS, 'delivery')).toEqual({
      msg: ['test', 1690000000, 'x'],
      src: 'fake',
    });
  });

  it('mon1 of a missing port → the exact kil0 no_such_port message with our node ID', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    fake.send(['', 'mon1', 'nosuchport']);
    expect(await fake.next()).toEqual([
      '',
      'kil0',
      'nosuchport',
      'no_such_port',
      'cannot monitor nonexistent port',
      `${NODE_ID}#nosuchport`,
    ]);
  });

  it('mon1 of a live port sends nothing; its error kill → kil0 with the reason', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const port = node.port(() => {});
    const name = port.split('#')[1]!;
    fake.send(['', 'mon1', name]);
    await timeRoundTrip(fake, 'after-mon1');
    node.kil(port, 'my_reason', 'detail');
    expect(await fake.next()).toEqual(['', 'kil0', name, 'my_reason', 'detail']);
  });

  it('mon1 of a live port, then a normal kill → kil0 without a reason', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const port = node.port(() => {});
    const name = port.split('#')[1]!;
    fake.send(['', 'mon1', name]);
    await timeRoundTrip(fake);
    node.kil(port);
    expect(await fake.next()).toEqual(['', 'kil0', name]);
  });

  it('mon0 drops the remote monitor: no kil0 when the port dies later', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const port = node.port(() => {});
    const name = port.split('#')[1]!;
    fake.send(['', 'mon1', name]);
    fake.send(['', 'mon0', name]);
    await timeRoundTrip(fake, 'after-mon0');
    const died = firstValueFrom(node.mon$(port));
    node.kil(port, 'gone');
    expect(await died).toEqual(['gone']);
    await timeRoundTrip(fake, 'after-kill');
  });

  it('kil1 kills the local port with the given reason (and tells the monitoring peer)', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const port = node.port(() => {});
    const name = port.split('#')[1]!;
    const died = firstValueFrom(node.mon$(port));
    fake.send(['', 'mon1', name]);
    fake.send(['', 'kil1', name, 'my_reason', 'detail']);
    expect(await within(died, WAIT_MS, 'local monitor')).toEqual(['my_reason', 'detail']);
    expect(await fake.next()).toEqual(['', 'kil0', name, 'my_reason', 'detail']);
  });

  it('CBOR forms the Perl decoder also accepts: indefinite lengths, tags, half floats, text strings', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const b = (h: string) => Buffer.from(h.replaceAll(' ', ''), 'hex');
    // ["","snd","fake#i1",1] as an indefinite-length array
    fake.write(Buffer.concat([b('9f 40 43736e64'), perlCbor('fake#i1'), b('01 ff')]));
    expect(await fake.next()).toEqual(['i1', 1]);
    // the same message behind the self-describe tag 55799
    fake.write(Buffer.concat([b('d9d9f7'), perlCbor(['', 'snd', 'fake#i2', 2])]));
    expect(await fake.next()).toEqual(['i2', 2]);
    // a half float (1.5) and an indefinite-length byte string ("ab" in two chunks)
    fake.write(Buffer.concat([b('85 40 43736e64'), perlCbor('fake#i3'), b('f93e00 5f 4161 4162 ff')]));
    expect(await fake.next()).toEqual(['i3', 1.5, 'ab']);
    // text strings throughout (what a non-Perl peer sends)
    fake.write(perlCbor([new Text(''), new Text('snd'), new Text('fake#i4'), new Text('t')]));
    expect(await fake.next()).toEqual(['i4', 't']);
  });

  it('[""], devnull, unknown ports and unknown functions are ignored; the connection stays up', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    fake.send(['']);
    fake.send(['', '']);
    fake.send(['', 'devnull', 'anything', 1]);
    fake.send(['nosuchport', 'hello']);
    fake.send(['', 'Some::Missing::func', 1]);
    fake.send(['', 'mon0', '']);
    // The first frame coming back is the reply to this request.
    await timeRoundTrip(fake, 'still-here');
    expect(fake.isClosed).toBe(false);
    expect(node.upNodes()).toEqual(['fake']);
  });
});

describe('our node monitors ports on the Perl-style peer', () => {
  it('the first monitor sends ["","mon1",NAME] once; the peer\'s kil0 fires every monitor with its reason', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const a = deferred<unknown[]>();
    const b = deferred<unknown[]>();
    node.mon('fake#watched', (...r: unknown[]) => a.resolve(r));
    node.mon('fake#watched', (...r: unknown[]) => b.resolve(r));
    expect(await fake.next()).toEqual(['', 'mon1', 'watched']);
    fake.send(['', 'kil0', 'watched', 'bye']);
    expect(await within(a.promise, WAIT_MS, 'first monitor')).toEqual(['bye']);
    expect(await within(b.promise, WAIT_MS, 'second monitor')).toEqual(['bye']);
    // No second mon1 went out before.
    await timeRoundTrip(fake);
  });

  it('kil0 with the no_such_port triple reaches mon$', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const reason = firstValueFrom(node.mon$('fake#gone'));
    expect(await fake.next()).toEqual(['', 'mon1', 'gone']);
    fake.send(['', 'kil0', 'gone', 'no_such_port', 'cannot monitor nonexistent port', 'fake#gone']);
    expect(await within(reason, WAIT_MS, 'mon$')).toEqual([
      'no_such_port',
      'cannot monitor nonexistent port',
      'fake#gone',
    ]);
  });

  it('dropping the guard sends ["","mon0",NAME]', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const guard = node.mon('fake#watched2', () => {});
    expect(await fake.next()).toEqual(['', 'mon1', 'watched2']);
    guard.unsubscribe();
    expect(await fake.next()).toEqual(['', 'mon0', 'watched2']);
  });

  it('messages, kills and cal$ to ports on the peer go out as Perl expects', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    node.snd('fake#b', 'test', 1690000000);
    expect(await fake.next()).toEqual(['b', 'test', 1690000000]);
    node.kil('fake#b', 'custom_error', 'reason');
    expect(await fake.next()).toEqual(['', 'kil1', 'b', 'custom_error', 'reason']);
    node.sndOn('fake', 'fake#d', 'message sent successfully');
    expect(await fake.next()).toEqual(['', 'snd', 'fake#d', 'message sent successfully']);

    const reply = firstValueFrom(node.cal$('fake#svc', 'ping'));
    expect(await fake.next()).toEqual(['', 'mon1', 'svc']);
    const req = await fake.next();
    expect(req.slice(0, 2)).toEqual(['svc', 'ping']);
    const replyPort = req[2] as string;
    expect(replyPort.startsWith(`${NODE_ID}#`)).toBe(true);
    fake.send([replyPort.slice(NODE_ID.length + 1), 'pong', 2.5]);
    expect(await within(reply, WAIT_MS, 'cal$ reply')).toEqual(['pong', 2.5]);
    expect(await fake.next()).toEqual(['', 'mon0', 'svc']);
  });

  it('the peer closing the socket fires our monitors with transport_error and emits down', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const mon = deferred<unknown[]>();
    node.mon('fake#watched', (...r: unknown[]) => mon.resolve(r));
    const nodeMon = deferred<unknown[]>();
    node.mon('fake', (...r: unknown[]) => nodeMon.resolve(r));
    expect(await fake.next()).toEqual(['', 'mon1', 'watched']);
    const down = status(node, 'down', 'fake');
    fake.end();
    const ev = await down;
    const reason = await within(mon.promise, WAIT_MS, 'port monitor');
    expect(reason).toEqual(['transport_error', 'fake', expect.any(String)]);
    expect(ev).toEqual({ type: 'down', node: 'fake', reason });
    expect(await within(nodeMon.promise, WAIT_MS, 'node monitor')).toEqual(reason);
    expect(node.upNodes()).toEqual([]);
    expect(node.nodeIsUp('fake')).toBe(false);
    await fake.waitClosed();
  });

  it('after a reset by the peer the node accepts the same node ID again', async () => {
    const node = await listeningNode();
    const first = await perlDials(node);
    const down = status(node, 'down', 'fake');
    first.destroy();
    await down;
    const second = await perlDials(node);
    await timeRoundTrip(second);
  });
});

describe('connection lifecycle', () => {
  it('a second handshake that completes while a connection exists replaces it ("switched connections")', async () => {
    const node = await listeningNode();
    const events: NodeStatus[] = [];
    const sub = node.nodes$.subscribe((e) => events.push(e));
    const first = await FakePeer.dial(node.binds[0]!);
    const second = await FakePeer.dial(node.binds[0]!);
    // Both pass the greeting check before either has authenticated.
    const greeted = [deferred(), deferred()];
    const bothGreeted = Promise.all(greeted.map((d) => d.promise));
    const mon = deferred<unknown[]>();
    const h1 = first.handshake({
      nodeId: 'dup',
      secret: SECRET,
      beforeAuth: async () => {
        greeted[0]!.resolve();
        await bothGreeted;
      },
    });
    const up1 = status(node, 'up', 'dup');
    const h2 = second.handshake({
      nodeId: 'dup',
      secret: SECRET,
      beforeAuth: async () => {
        greeted[1]!.resolve();
        await bothGreeted;
        await h1;
        await up1;
        node.mon('dup#p', (...r: unknown[]) => mon.resolve(r));
        expect(await first.next()).toEqual(['', 'mon1', 'p']);
      },
    });
    expect((await h1).tokenOk).toBe(true);
    expect((await h2).tokenOk).toBe(true);
    expect(await within(mon.promise, WAIT_MS, 'monitor')).toEqual([
      'transport_error',
      'dup',
      'switched connections',
    ]);
    await first.waitClosed();
    second.send(['', 'time', 'dup#t']);
    expect(await second.next()).toEqual(['t', expect.any(Number)]);
    sub.unsubscribe();
    expect(events).toEqual([
      { type: 'up', node: 'dup' },
      { type: 'down', node: 'dup', reason: ['transport_error', 'dup', 'switched connections'] },
      { type: 'up', node: 'dup' },
    ]);
  });

  it('closing our node closes the connection; nothing is sent as a goodbye', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    await timeRoundTrip(fake);
    await within(node.close(), WAIT_MS, 'close of the node with the peer connected');
    await fake.waitClosed();
    expect(fake.pending.length).toBe(0);
  });

  it('a peer that monitored our port and went away gets no kil0, and the node carries on', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node);
    const port = node.port(() => {});
    fake.send(['', 'mon1', port.split('#')[1]!]);
    await timeRoundTrip(fake);
    const down = status(node, 'down', 'fake');
    fake.destroy();
    await down;
    const died = firstValueFrom(node.mon$(port));
    node.kil(port, 'late');
    expect(await died).toEqual(['late']);
    const again = await perlDials(node);
    await timeRoundTrip(again);
  });
});

describe('our node dials a Perl-style seed', () => {
  it('dials the seed, sends its greeting with the dialled peeraddr, asks it to be global with g_slave', async () => {
    const seed = await FakeListener.open();
    const node = testNode({ nodeid: NODE_ID, secret: SECRET, binds: ['127.0.0.1:0'], seeds: [seed.addr] });
    const up = status(node, 'up', 'seed');
    const fake = await seed.accept();
    const hs = await fake.handshake({
      nodeId: 'seed',
      secret: SECRET,
      afterAuth: perlCbor(['', 'g_global']),
    });
    expect(hs.tokenOk).toBe(true);
    expect(hs.theirGreeting.nodeId).toBe(NODE_ID);
    expect(hs.theirGreeting.keys.get('peeraddr')).toBe(seed.addr);
    await up;
    expect(await fake.next()).toEqual(['', 'g_slave']);
    // The seed is the first connected seed node, so it becomes the master: the whole local DB.
    expect(await fake.next()).toEqual(['', 'g_slave', { "'l": { [NODE_ID]: [...node.binds] } }]);
    fake.send(['', 'time', 'seed#t']);
    expect(await fake.next()).toEqual(['t', expect.any(Number)]);
  });

  it('re-dials the seed after the connection is lost', async () => {
    const seed = await FakeListener.open();
    const node = testNode({ nodeid: NODE_ID, secret: SECRET, binds: ['127.0.0.1:0'], seeds: [seed.addr] });
    const first = await seed.accept();
    await first.handshake({ nodeId: 'seed', secret: SECRET });
    expect(await first.next()).toEqual(['', 'g_slave']);
    const down = status(node, 'down', 'seed');
    first.end();
    await down;
    const up = status(node, 'up', 'seed');
    const second = await seed.accept(WAIT_MS);
    expect((await second.handshake({ nodeId: 'seed', secret: SECRET })).tokenOk).toBe(true);
    await up;
    expect(await second.next()).toEqual(['', 'g_slave']);
  });

  it('messages to the seed node sent while its handshake runs are queued and flushed in order', async () => {
    const seed = await FakeListener.open();
    const node = testNode({ nodeid: NODE_ID, secret: SECRET, binds: ['127.0.0.1:0'], seeds: [seed.addr] });
    const fake = await seed.accept();
    const up = status(node, 'up', 'seed');
    await fake.handshake({
      nodeId: 'seed',
      secret: SECRET,
      beforeAuth: () => {
        // The seed's node ID is known from its greeting; the connection is not up yet.
        expect(node.nodeIsUp('seed')).not.toBe(true);
        node.snd('seed#early', 1);
        node.snd('seed#early', 2);
      },
    });
    await up;
    const got = [await fake.next(), await fake.next(), await fake.next(), await fake.next()];
    expect(got).toContainEqual(['', 'g_slave']);
    expect(got.filter((m) => m[0] === 'early')).toEqual([
      ['early', 1],
      ['early', 2],
    ]);
  });
  // Was a bug (connect() returned before setting the deadline while a seed dial was mid-handshake), fixed in 23ebe5f.
  it('a monitor of a port on a seed whose handshake stalls fires "connect timeout" after connect_interval', async () => {
    const seed = await FakeListener.open();
    const clock = new VirtualClock();
    const node = testNode({
      clock,
      nodeid: NODE_ID,
      secret: SECRET,
      binds: ['127.0.0.1:0'],
      seeds: [seed.addr],
      connect_interval: 0.5,
      monitor_timeout: 3,
    });
    const fake = await seed.accept();
    // Greeting and nonce, then silence: no auth line ever comes.
    fake.write(`${perlGreeting({ nodeId: 'stall', peeraddr: fake.peeraddr })}\n${perlNonce()}\n`);
    for (let i = 0; i < 3; i++) await fake.readLine(); // our greeting, nonce and auth line
    let fired: unknown[] | undefined;
    node.mon('stall#x', (...r: unknown[]) => {
      fired = r;
    });
    // Perl (and spec/protocol.md §2.2): the first queued message starts a connect_interval
    // deadline (0.5 s, in the node's virtual time).
    await clock.run(499);
    expect(fired).toBeUndefined();
    await clock.run(1);
    expect(fired).toEqual(['transport_error', 'stall', 'connect timeout']);
  });
});

describe('framing', () => {
  it('JSON-only peer: our auth line says json, we write JSON texts back to back and decode its back-to-back texts', async () => {
    const node = await listeningNode();
    const up = status(node, 'up', 'jfake');
    const fake = await FakePeer.dial(node.binds[0]!);
    const hs = await fake.handshake({ nodeId: 'jfake', secret: SECRET, framings: 'json' });
    expect(hs.tokenOk).toBe(true);
    expect(hs.theirAuth.framing).toBe('json');
    expect(fake.sendFraming).toBe('json');
    await up;
    // Two texts in one write, no separator, as JSON::XS writes them.
    fake.write('["","time","jfake#r1"]["","snd","jfake#r2","x",{"k":[1,2.5,null]}]');
    const a = await fake.nextFrame();
    expect(a.value).toEqual(['r1', expect.any(Number)]);
    expect(a.bytes.toString()).toMatch(/^\["r1",\d+(\.\d+)?\]$/);
    const b = await fake.nextFrame();
    expect(b.value).toEqual(['r2', 'x', { k: [1, 2.5, null] }]);
    // A text split across writes.
    fake.write('["","snd","jfake#r3",');
    await completeSplitText(fake, 'between');
  });

  it('JSON: whitespace between texts (a keepalive) is accepted', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node, { nodeId: 'jfake', framings: 'json' });
    fake.write(' \n\t');
    fake.write('["","snd","jfake#w1",1] \n ["","snd","jfake#w2",2]\n');
    expect(await fake.next()).toEqual(['w1', 1]);
    expect(await fake.next()).toEqual(['w2', 2]);
  });

  it('mixed: the peer sends CBOR but wants JSON (it lists json first)', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node, { nodeId: 'mfake', framings: 'json,cbor', sendFraming: 'cbor' });
    expect(fake.result!.theirAuth.framing).toBe('json');
    expect(fake.recvFraming).toBe('json');
    fake.send(['', 'snd', 'mfake#r1', 'x', 2.5]);
    const { value, bytes } = await fake.nextFrame();
    expect(value).toEqual(['r1', 'x', 2.5]);
    expect(bytes.toString()).toBe('["r1","x",2.5]');
  });

  it('mixed the other way: the peer sends JSON, we send CBOR', async () => {
    const node = await listeningNode();
    const fake = await perlDials(node, { nodeId: 'mfake2', framings: 'cbor,json', sendFraming: 'json' });
    expect(fake.result!.theirAuth.framing).toBe('cbor');
    fake.send(['', 'snd', 'mfake2#r1', 'x']);
    const { value, bytes } = await fake.nextFrame();
    expect(value).toEqual(['r1', 'x']);
    expect(bytes[0]).toBe(0x82);
  });
});

/** With half a JSON text pending on the wire: completes it and checks the relay answers. */
async function completeSplitText(fake: FakePeer, tag: string): Promise<void> {
  fake.write(`"${tag}"]`);
  expect(await fake.next()).toEqual(['r3', tag]);
}
