/**
 * Hostile and broken peers against our listening node over loopback TCP. For each one: our node
 * closes that connection, logs Perl's error text (spec/protocol.md §4–§5), never reports the
 * peer as up, and afterwards still completes a good handshake with another peer.
 */
import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/index.js';
import {
  FakePeer,
  fourLines,
  hmacToken,
  perlCbor,
  perlGreeting,
  perlNonce,
  SECRET,
  WAIT_MS,
  within,
} from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const NODE_ID = 'ts-node';

const subs: Subscription[] = [];
afterEach(() => {
  for (const s of subs.splice(0)) s.unsubscribe();
});

/** A listening node that records its up/down events. */
async function node(opts: Parameters<typeof testNode>[0] = {}) {
  const n = testNode({ nodeid: NODE_ID, secret: SECRET, binds: ['127.0.0.1:0'], ...opts });
  const events: NodeStatus[] = [];
  subs.push(n.nodes$.subscribe((e) => events.push(e)));
  await within(n.ready, WAIT_MS, 'the node to listen');
  return Object.assign(n, { statusLog: events });
}

type Node = Awaited<ReturnType<typeof node>>;

/** Waits for the log line `<peer address>: handshake failed: <text>`. */
async function handshakeFailure(n: Node, fake: FakePeer, text: string): Promise<void> {
  const label = fake.localAddr;
  const line = await within(
    n.logged(new RegExp(`^${escapeRe(label)}: handshake failed: `)),
    WAIT_MS,
    `log line for ${label}`,
  );
  expect(line.text).toBe(`${label}: handshake failed: ${text}`);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Reads our node's greeting lines (sent at once on connect). */
async function ourGreeting(fake: FakePeer): Promise<[string, string]> {
  return [await fake.readLine(), await fake.readLine()];
}

/** After a rejected peer: the connection is closed, nobody came up, and a good peer still works. */
async function stillServes(n: Node, fake: FakePeer, id = 'good'): Promise<void> {
  await fake.waitClosed();
  expect(n.statusLog).toEqual([]);
  const good = await FakePeer.dial(n.binds[0]!);
  const hs = await good.handshake({ nodeId: id, secret: SECRET });
  expect(hs.tokenOk).toBe(true);
  good.send(['', 'time', `${id}#ok`]);
  expect(await good.next()).toEqual(['ok', expect.any(Number)]);
  expect(n.upNodes()).toEqual([id]);
}

describe('greeting line 1', () => {
  it.each(['0', '2'])('version %s → closed, "version mismatch (we: 1, they: …)"', async (version) => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write(`${perlGreeting({ nodeId: 'fake', version, peeraddr: fake.peeraddr })}\n${perlNonce()}\n`);
    await ourGreeting(fake);
    await fake.waitClosed();
    // Rejected at the greeting: no auth line was sent.
    expect(fake.pending.length).toBe(0);
    await handshakeFailure(n, fake, `version mismatch (we: 1, they: ${version})`);
    await stillServes(n, fake);
  });

  it('our own node ID → closed, "I refuse to talk to myself"', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write(`${perlGreeting({ nodeId: NODE_ID, peeraddr: fake.peeraddr })}\n${perlNonce()}\n`);
    await ourGreeting(fake);
    await fake.waitClosed();
    expect(fake.pending.length).toBe(0);
    await handshakeFailure(n, fake, 'I refuse to talk to myself');
    await stillServes(n, fake);
  });

  it('an echo of our own greeting → closed (Perl checks the node ID before the echo: "I refuse to talk to myself")', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    const [l1, l2] = await ourGreeting(fake);
    fake.write(`${l1}\n${l2}\n`);
    await fake.waitClosed();
    expect(fake.pending.length).toBe(0);
    await handshakeFailure(n, fake, 'I refuse to talk to myself');
    await stillServes(n, fake);
  });

  it('another protocol name → closed, "unparsable greeting, expected \'aemp\', got …"', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write(
      `${perlGreeting({ nodeId: 'fake', proto: 'http', peeraddr: fake.peeraddr })}\n${perlNonce()}\n`,
    );
    await fake.waitClosed();
    await handshakeFailure(n, fake, "unparsable greeting, expected 'aemp', got 'http'");
    await stillServes(n, fake);
  });

  it('a second connection with an already connected node ID is closed; the first one stays', async () => {
    const n = await node();
    const first = await FakePeer.dial(n.binds[0]!);
    expect((await first.handshake({ nodeId: 'dup', secret: SECRET })).tokenOk).toBe(true);
    first.send(['', 'time', 'dup#t1']);
    expect(await first.next()).toEqual(['t1', expect.any(Number)]);

    const second = await FakePeer.dial(n.binds[0]!);
    second.write(`${perlGreeting({ nodeId: 'dup', peeraddr: second.peeraddr })}\n${perlNonce()}\n`);
    await second.waitClosed();
    await handshakeFailure(n, second, 'dup already connected, not connecting again.');
    first.send(['', 'time', 'dup#t2']);
    expect(await first.next()).toEqual(['t2', expect.any(Number)]);
    expect(n.statusLog).toEqual([{ type: 'up', node: 'dup' }]);
  });

  it('no common auth method (AUTHS=cleartext) → closed without an auth line', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write(
      `${perlGreeting({ nodeId: 'fake', auths: 'cleartext', peeraddr: fake.peeraddr })}\n${perlNonce()}\n`,
    );
    await ourGreeting(fake);
    await fake.waitClosed();
    expect(fake.pending.length).toBe(0);
    await handshakeFailure(n, fake, 'cleartext: no common auth type supported');
    await stillServes(n, fake);
  });

  it('no common framing (FRAMINGS=storable) → closed without an auth line', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write(
      `${perlGreeting({ nodeId: 'fake', framings: 'storable', peeraddr: fake.peeraddr })}\n${perlNonce()}\n`,
    );
    await ourGreeting(fake);
    await fake.waitClosed();
    expect(fake.pending.length).toBe(0);
    await handshakeFailure(n, fake, 'storable: no common framing method supported');
    await stillServes(n, fake);
  });

  it('a 5000-byte line → closed (4 KiB handshake line limit)', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write(`aemp;1;fake;hmac_sha3_512;cbor;pad=${'x'.repeat(5000)}\n`);
    await fake.waitClosed();
    const line = await within(n.logged(/handshake failed: /), WAIT_MS, 'log line');
    expect(line.text).toMatch(/handshake failed: handshake line too long/);
    await stillServes(n, fake);
  });
});

describe('auth line', () => {
  it('a wrong HMAC (one hex digit changed) → closed, "authentication failure/shared secret mismatch"', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    const hs = await fake.handshake({
      nodeId: 'fake',
      secret: SECRET,
      tamper: (t) => (t[0] === '0' ? '1' : '0') + t.slice(1),
    });
    // Our node (accepting) refuses ours and never sends its own token.
    expect(hs.authWithheld).toBe(true);
    await fake.waitClosed();
    expect(fake.pending.length).toBe(0);
    await handshakeFailure(n, fake, 'authentication failure/shared secret mismatch');
    await stillServes(n, fake);
  });

  it('another secret → closed, "authentication failure/shared secret mismatch"', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    const hs = await fake.handshake({ nodeId: 'fake', secret: 'not-the-secret' });
    expect(hs.tokenOk).toBe(false);
    await fake.waitClosed();
    await handshakeFailure(n, fake, 'authentication failure/shared secret mismatch');
    await stillServes(n, fake);
  });

  it('tls_sha3_512 without TLS → closed, "authentication failure/shared secret mismatch"', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    await fake.handshake({ nodeId: 'fake', secret: SECRET, authMethod: 'tls_sha3_512' });
    await fake.waitClosed();
    await handshakeFailure(n, fake, 'authentication failure/shared secret mismatch');
    await stillServes(n, fake);
  });

  it('an obsolete method (hmac_md6_64_256) → closed, "… selected unsupported rcv auth method"', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    await fake.handshake({ nodeId: 'fake', secret: SECRET, authMethod: 'hmac_md6_64_256' });
    await fake.waitClosed();
    await handshakeFailure(n, fake, 'hmac_md6_64_256: fatal, selected unsupported rcv auth method');
    await stillServes(n, fake);
  });

  it('a framing we cannot decode in the auth line → closed, "storable: unusable remote framing"', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    await fake.handshake({ nodeId: 'fake', secret: SECRET, sendFraming: 'storable' });
    await fake.waitClosed();
    await handshakeFailure(n, fake, 'storable: unusable remote framing');
    await stillServes(n, fake);
  });

  it('a node without secret and certificate cannot authenticate: "unable to handshake TLS and no shared secret configured"', async () => {
    const n = await node({ secret: undefined });
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write(`${perlGreeting({ nodeId: 'fake', peeraddr: fake.peeraddr })}\n${perlNonce()}\n`);
    await ourGreeting(fake);
    await fake.waitClosed();
    expect(fake.pending.length).toBe(0);
    await handshakeFailure(n, fake, 'unable to handshake TLS and no shared secret configured');
    expect(n.statusLog).toEqual([]);
  });
});

describe('stalling peers (monitor_timeout: 1)', () => {
  it('half a greeting line, then silence → closed after about 1 s, "Connection timed out"', async () => {
    const n = await node({ monitor_timeout: 1 });
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write('aemp;1;slow;hmac_sha3');
    // The limit's timing is proven in virtual time (test/unit/net/handshake-timing.test.ts).
    await fake.waitClosed(4000);
    await handshakeFailure(n, fake, 'Connection timed out');
    await stillServes(n, fake);
  });

  it('a full greeting but no auth line → closed after about 1 s', async () => {
    const n = await node({ monitor_timeout: 1 });
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write(`${perlGreeting({ nodeId: 'slow', peeraddr: fake.peeraddr })}\n${perlNonce()}\n`);
    await ourGreeting(fake);
    await fake.waitClosed(4000);
    // Our node (accepting) holds its auth line until the peer's verified.
    expect(fake.pending.length).toBe(0);
    await handshakeFailure(n, fake, 'Connection timed out');
    await stillServes(n, fake);
  });

  it('no read timeout once the handshake is done', async () => {
    const n = await node({ monitor_timeout: 1 });
    const fake = await FakePeer.dial(n.binds[0]!);
    await fake.handshake({ nodeId: 'quiet', secret: SECRET });
    // Wait longer than monitor_timeout for something that never comes: the connection stays.
    await expect(fake.waitClosed(1600)).rejects.toThrow(/nothing within/);
    fake.send(['', 'time', 'quiet#t']);
    expect(await fake.next()).toEqual(['t', expect.any(Number)]);
  });
});

describe('garbage after the handshake', () => {
  it.each([
    ['invalid CBOR (reserved additional info 28)', Buffer.from([0x1c])],
    ['a CBOR break byte at the top level', Buffer.from([0xff])],
    ['a top-level CBOR item that is not an array', Buffer.from([0x01])],
  ])('%s → connection closed, peer down, node alive', async (_what, garbage) => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    await fake.handshake({ nodeId: 'bad', secret: SECRET });
    await within(
      new Promise<void>((resolve) => {
        if (n.statusLog.length > 0) resolve();
        else subs.push(n.nodes$.subscribe(() => resolve()));
      }),
      WAIT_MS,
      'up event',
    );
    fake.write(Buffer.concat([perlCbor(['', 'devnull']), garbage]));
    await fake.waitClosed();
    const line = await within(n.logged(/^connection to bad lost: /), WAIT_MS, 'log line');
    expect(line.text).toMatch(/^connection to bad lost: protocol error: /);
    expect(n.statusLog).toEqual([
      { type: 'up', node: 'bad' },
      {
        type: 'down',
        node: 'bad',
        reason: ['transport_error', 'bad', expect.stringMatching(/^protocol error: /)],
      },
    ]);
    n.statusLog.length = 0;
    await stillServes(n, fake);
  });

  it('a frame larger than max_frame_bytes → connection closed, node alive', async () => {
    const n = await node({ max_frame_bytes: 1024 });
    const fake = await FakePeer.dial(n.binds[0]!);
    await fake.handshake({ nodeId: 'big', secret: SECRET });
    fake.send(['', 'devnull', 'x'.repeat(900)]);
    fake.send(['', 'devnull', 'x'.repeat(2000)]);
    await fake.waitClosed();
    await within(n.logged(/^connection to big lost: protocol error: /), WAIT_MS, 'log line');
    n.statusLog.length = 0;
    await stillServes(n, fake);
  });

  it('invalid JSON from a JSON peer → connection closed, node alive', async () => {
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    await fake.handshake({ nodeId: 'badjson', secret: SECRET, framings: 'json' });
    fake.write('["","devnull"]x');
    await fake.waitClosed();
    await within(n.logged(/^connection to badjson lost: protocol error: /), WAIT_MS, 'log line');
    n.statusLog.length = 0;
    await stillServes(n, fake);
  });

  it('a peer that sends its auth line for a token computed over the wrong line order is rejected', async () => {
    // The HMAC covers the sender's lines first; a peer hashing ours first must fail.
    const n = await node();
    const fake = await FakePeer.dial(n.binds[0]!);
    const line1 = perlGreeting({ nodeId: 'order', peeraddr: fake.peeraddr });
    const nonce = perlNonce();
    fake.write(`${line1}\n${nonce}\n`);
    const theirs = await ourGreeting(fake);
    fake.write(`hmac_sha3_512;${hmacToken(SECRET, fourLines(theirs, [line1, nonce]))};cbor\n`);
    await fake.waitClosed();
    await handshakeFailure(n, fake, 'authentication failure/shared secret mismatch');
    await stillServes(n, fake);
  });
});
