/**
 * Entry without credentials (issue 14, items 1, 2 and 5), each attack performed on loopback
 * against nodes in this process:
 *   - TLS: an intruder with a certificate our CA did not sign, in either TLS role and with
 *     either TLS auth method, is cut off right after the TLS handshake; `tls_anon` from a
 *     CA-signed certificate is still accepted and marked untrusted;
 *   - relay: an attacker that passes greeting and auth lines between two listening nodes of
 *     the same network is accepted by neither (both state the role `a`, and neither speaks
 *     first);
 *   - `strict_peers` refuses peers that do not state their role (Perl), in both directions;
 *   - a stranger that connects never gets an auth line (no HMAC to guess the secret from).
 * Whatever the intruder sends behind its auth line (a message to a live port, `snd`, `eval`)
 * must never arrive.
 */
import { readFileSync } from 'node:fs';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Node, NodeStatus } from '../../src/index.js';
import { listenTcp, TcpTransport } from '../../src/protocol/tcp-transport.js';
import { realClock } from '../../src/streams/clock.js';
import { Connection, type ConnectionEvents } from '../../src/streams/net/connection.js';
import {
  type FakeHandshakeOptions,
  type FakeHandshakeResult,
  FakeListener,
  FakePeer,
  perlCbor,
  perlGreeting,
  perlNonce,
  SECRET,
  WAIT_MS,
  within,
} from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const PEM = readFileSync(new URL('../fixtures/tls/aemp-cert.pem', import.meta.url), 'utf8');
const OTHER_PEM = readFileSync(new URL('../fixtures/tls/other-cert.pem', import.meta.url), 'utf8');

/** Nonces that make the intruder the TLS client ('!' sorts before all of Base64) or server. */
const AS_TLS_CLIENT = '!'.repeat(88);
const AS_TLS_SERVER = '~'.repeat(88);

/** Set by the intruder's `eval` if a node ever ran it. */
const EVAL_FLAG = '__aempIntruderEval';
const flags = globalThis as Record<string, unknown>;

const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  delete flags[EVAL_FLAG];
});

type TestNode = ReturnType<typeof testNode>;

/** A listening node; resolves once it is bound. */
async function listening(nodeid: string, opts: Record<string, unknown> = {}): Promise<TestNode> {
  const node = testNode({ nodeid, binds: ['127.0.0.1:0'], ...opts });
  await within(node.ready, WAIT_MS, `node ${nodeid} ready`);
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

/** Every up event the node emits from now on. */
function ups(node: Node): string[] {
  const seen: string[] = [];
  node.nodes$.subscribe((s) => {
    if (s.type === 'up') seen.push(s.node);
  });
  return seen;
}

/**
 * A live port that records what reaches it. `settle()` sends it a local marker and resolves
 * with everything that arrived before the marker.
 */
function recorder(node: Node): { id: string; settle(): Promise<unknown[][]> } {
  const got: unknown[][] = [];
  let marked = deferred();
  const MARK = 'local marker';
  const id = node.port((...args: unknown[]) => {
    if (args[0] === MARK) marked.resolve();
    else got.push(args);
  });
  return {
    id,
    async settle() {
      marked = deferred();
      node.snd(id, MARK);
      await within(marked.promise, WAIT_MS, 'the local marker at the record port');
      return got;
    },
  };
}

/** Frames an intruder sends right behind its auth line: a message, a relay, code to run. */
function smuggled(record: string): Buffer {
  const name = record.slice(record.indexOf('#') + 1);
  return Buffer.concat([
    perlCbor([name, 'smuggled']),
    perlCbor(['', 'snd', record, 'relayed']),
    perlCbor(['', 'eval', `globalThis.${EVAL_FLAG} = true`, record]),
  ]);
}

/** Runs the fake's handshake; a close by our node on the way counts as a refusal. */
async function attempt(fake: FakePeer, o: FakeHandshakeOptions): Promise<FakeHandshakeResult | Error> {
  return fake.handshake(o).catch((e: Error) => e);
}

/** Nothing the intruder sent arrived and no code ran. */
async function nothingDelivered(rec: { settle(): Promise<unknown[][]> }): Promise<void> {
  expect(await rec.settle()).toEqual([]);
  expect(flags[EVAL_FLAG]).toBeUndefined();
}

/** The node's log line for a refused handshake. */
async function refusal(node: TestNode, re: RegExp): Promise<string> {
  const line = await within(node.logged(re), WAIT_MS, `log line ${re}`);
  return line.text;
}

// ---------------------------------------------------------------------------------------------

describe('TLS: only certificates signed by our CA get in', () => {
  for (const [role, nonce] of [
    ['client', AS_TLS_CLIENT],
    ['server', AS_TLS_SERVER],
  ] as const) {
    for (const authMethod of ['tls_sha3_512', 'tls_anon']) {
      it(`an intruder with a self-signed certificate as TLS ${role} (${authMethod}) against a cert-only node is cut off`, async () => {
        const node = await listening('tls-target', { cert: PEM });
        const rec = recorder(node);
        const seen = ups(node);
        const up = status(node, 'up', 'intruder');
        const intruder = await FakePeer.dial(node.binds[0]!);
        const hs = await attempt(intruder, {
          nodeId: 'intruder',
          cert: OTHER_PEM,
          tlsAnyPeer: true,
          nonce,
          authMethod,
          afterAuth: smuggled(rec.id),
        });
        const outcome = await within(
          Promise.race([intruder.closed.then(() => 'closed'), up.then(() => 'up')]),
          WAIT_MS,
          'the node closing the intruder’s connection or taking it',
        );
        expect(outcome).toBe('closed');
        if (!(hs instanceof Error)) {
          expect(hs.tlsClient).toBe(role === 'client');
          expect(hs.authWithheld).toBe(true);
        }
        const text = await refusal(node, /handshake failed: /);
        expect(text).toMatch(
          /^127\.0\.0\.1:\d+: handshake failed: TLS peer certificate rejected: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/,
        );
        await nothingDelivered(rec);
        expect(seen).toEqual([]);
        expect(node.upNodes()).toEqual([]);
      });
    }
  }

  it('the node as TLS client refuses a server certificate our CA did not sign', async () => {
    const listener = await FakeListener.open();
    // The intruder poses as the node's seed: the node dials it.
    const node = testNode({ nodeid: 'tls-dialler', cert: PEM, seeds: [listener.addr] });
    const fake = await listener.accept();
    // The fake's nonce sorts after ours: our node is the TLS client.
    const hs = await attempt(fake, {
      nodeId: 'intruder',
      cert: OTHER_PEM,
      tlsAnyPeer: true,
      nonce: AS_TLS_SERVER,
    });
    expect(hs).toBeInstanceOf(Error);
    await fake.waitClosed();
    expect(await refusal(node, /TLS peer certificate rejected/)).toMatch(
      /handshake failed: TLS peer certificate rejected: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/,
    );
    expect(node.upNodes()).toEqual([]);
  });

  it('tls_anon from a CA-signed certificate is accepted (whichever TLS role)', async () => {
    const node = await listening('tls-anon-target', { cert: PEM });
    for (const [i, nonce] of [AS_TLS_CLIENT, AS_TLS_SERVER].entries()) {
      const id = `anon${i}`;
      const up = status(node, 'up', id);
      const peer = await FakePeer.dial(node.binds[0]!);
      const hs = await peer.handshake({ nodeId: id, cert: PEM, nonce, authMethod: 'tls_anon' });
      expect(hs.tokenOk).toBe(true);
      await up;
      peer.send(['', 'time', `${id}#t`]);
      expect(await peer.next()).toEqual(['t', expect.any(Number)]);
    }
  });

  it('a connection authenticated with tls_anon is marked untrusted', async () => {
    const established = deferred<Connection>();
    const closed = deferred<string>();
    const events: ConnectionEvents = {
      established: (c) => established.resolve(c),
      message: () => {},
      closed: (_c, reason) => closed.resolve(reason),
    };
    const { server, bound } = await listenTcp('127.0.0.1:0', (socket) => {
      new Connection(
        new TcpTransport(socket),
        {
          handshake: { nodeId: 'conn-node', hasCert: true, role: 'accepted' },
          clock: realClock,
          certPem: PEM,
          handshakeTimeoutMs: WAIT_MS,
          handshakeDeadlineMs: WAIT_MS,
          maxFrameBytes: 1 << 20,
          maxSendBufferBytes: 1 << 20,
          label: 'anon',
          outgoing: false,
          heartbeatInterval: 0,
          heartbeatMisses: 0,
        },
        events,
      );
    });
    servers.push(server);
    const peer = await FakePeer.dial(bound);
    const hs = await peer.handshake({
      nodeId: 'anon',
      cert: PEM,
      nonce: AS_TLS_CLIENT,
      authMethod: 'tls_anon',
    });
    expect(hs.tokenOk).toBe(true);
    const conn = await within(
      Promise.race([established.promise, closed.promise.then((r) => Promise.reject(new Error(r)))]),
      WAIT_MS,
      'the connection to be established',
    );
    expect(conn.session).toMatchObject({ tls: true, authMethod: 'tls_anon', untrusted: true });
    conn.close('test over');
  });
});

// ---------------------------------------------------------------------------------------------

describe('relay between two listening nodes', () => {
  it('an attacker passing lines between N and M is accepted by neither; nothing sent as M arrives', async () => {
    const n = await listening('relay-n', { secret: SECRET });
    const m = await listening('relay-m', { secret: SECRET });
    const rec = recorder(n);
    const seenN = ups(n);
    const seenM = ups(m);
    const mUpAtN = status(n, 'up', 'relay-m');
    const toN = await FakePeer.dial(n.binds[0]!);
    const toM = await FakePeer.dial(m.binds[0]!);
    // Each node greets first; the attacker hands each greeting to the other node.
    const nLines = [await toN.readLine(), await toN.readLine()];
    const mLines = [await toM.readLine(), await toM.readLine()];
    toM.write(`${nLines.join('\n')}\n`);
    toN.write(`${mLines.join('\n')}\n`);
    // Then the auth lines, if any node hands one out.
    const [nAuth, mAuth] = await Promise.all([
      toN.readLine().catch(() => undefined),
      toM.readLine().catch(() => undefined),
    ]);
    if (mAuth !== undefined) toN.write(`${mAuth}\n`);
    if (nAuth !== undefined) toM.write(`${nAuth}\n`);
    // Frames "from M" to N (M would name cbor in its auth line).
    toN.write(smuggled(rec.id));
    const outcome = await within(
      Promise.race([toN.closed.then(() => 'closed'), mUpAtN.then(() => 'up')]),
      WAIT_MS,
      'N closing the relayed connection or taking it as M',
    );
    expect(outcome).toBe('closed');
    await toM.waitClosed();
    expect([nAuth, mAuth]).toEqual([undefined, undefined]);
    const same = /handshake failed: peer claims the same connection role as ours \(relayed handshake\?\)$/;
    expect(await refusal(n, same)).toMatch(/^127\.0\.0\.1:\d+: /);
    expect(await refusal(m, same)).toMatch(/^127\.0\.0\.1:\d+: /);
    await nothingDelivered(rec);
    expect(seenN).toEqual([]);
    expect(seenM).toEqual([]);
  });

  it('the two nodes still connect to each other directly', async () => {
    const n = await listening('direct-n', { secret: SECRET });
    const m = testNode({ nodeid: 'direct-m', secret: SECRET, binds: ['127.0.0.1:0'], seeds: [n.binds[0]!] });
    await Promise.all([status(n, 'up', 'direct-m'), status(m, 'up', 'direct-n')]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('strict_peers', () => {
  const STRICT = 'handshake failed: peer does not state its connection role (strict_peers)';

  it('refuses a Perl-like peer (no role) that dials it', async () => {
    const node = await listening('strict-target', { secret: SECRET, strict_peers: true });
    const rec = recorder(node);
    const seen = ups(node);
    const perl = await FakePeer.dial(node.binds[0]!);
    const hs = await attempt(perl, { nodeId: 'perl', secret: SECRET, afterAuth: smuggled(rec.id) });
    await perl.waitClosed();
    if (!(hs instanceof Error)) expect(hs.authWithheld).toBe(true);
    expect(await refusal(node, /handshake failed: /)).toContain(STRICT);
    await nothingDelivered(rec);
    expect(seen).toEqual([]);
  });

  it('refuses a Perl-like peer (no role) that it dials', async () => {
    const listener = await FakeListener.open();
    const node = testNode({
      nodeid: 'strict-dialler',
      secret: SECRET,
      strict_peers: true,
      seeds: [listener.addr],
    });
    const perl = await listener.accept();
    expect(await attempt(perl, { nodeId: 'perl', secret: SECRET })).toBeInstanceOf(Error);
    await perl.waitClosed();
    expect(await refusal(node, /handshake failed: /)).toContain(STRICT);
    expect(node.upNodes()).toEqual([]);
  });

  it('accepts an aemp node in both directions', async () => {
    const strict = await listening('strict-a', { secret: SECRET, strict_peers: true });
    const dialler = testNode({ nodeid: 'plain-b', secret: SECRET, seeds: [strict.binds[0]!] });
    await Promise.all([status(strict, 'up', 'plain-b'), status(dialler, 'up', 'strict-a')]);
    const other = await listening('plain-c', { secret: SECRET });
    const strictDialler = testNode({
      nodeid: 'strict-d',
      secret: SECRET,
      strict_peers: true,
      seeds: [other.binds[0]!],
    });
    await Promise.all([status(other, 'up', 'strict-d'), status(strictDialler, 'up', 'plain-c')]);
  });

  it('without strict_peers a Perl-like peer is accepted in both directions', async () => {
    const node = await listening('lenient', { secret: SECRET });
    const perl = await FakePeer.dial(node.binds[0]!);
    expect((await perl.handshake({ nodeId: 'perl-in', secret: SECRET })).tokenOk).toBe(true);
    perl.send(['', 'time', 'perl-in#t']);
    expect(await perl.next()).toEqual(['t', expect.any(Number)]);

    const listener = await FakeListener.open();
    const dialler = testNode({ nodeid: 'lenient-dialler', secret: SECRET, seeds: [listener.addr] });
    const up = status(dialler, 'up', 'perl-out');
    const out = await listener.accept();
    expect((await out.handshake({ nodeId: 'perl-out', secret: SECRET })).tokenOk).toBe(true);
    await up;
    expect(await out.next()).toEqual(['', 'g_slave']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a stranger gets no token to guess the secret from', () => {
  /** Connects and sends a Perl greeting; returns the stranger after it read ours. */
  async function stranger(node: TestNode, role?: string): Promise<FakePeer> {
    const s = await FakePeer.dial(node.binds[0]!);
    s.write(
      `${perlGreeting({ nodeId: 'stranger', peeraddr: s.peeraddr, ...(role !== undefined && { role }) })}\n${perlNonce()}\n`,
    );
    await s.readLine();
    await s.readLine();
    return s;
  }

  it('greeting and nonce, then silence: closed at the handshake deadline, no auth line ever', async () => {
    const node = await listening('weak-1', { secret: 'letmein', monitor_timeout: 1, handshake_timeout: 1 });
    const s = await stranger(node);
    await s.waitClosed();
    expect(s.pending.toString('utf8')).toBe('');
  });

  it('a wrong auth line: closed, no auth line ever', async () => {
    const node = await listening('weak-2', { secret: 'letmein' });
    for (const role of [undefined, 'd']) {
      const s = await stranger(node, role);
      s.writeLine(`hmac_sha3_512;${'0'.repeat(128)};cbor`);
      await s.waitClosed();
      expect(s.pending.toString('utf8')).toBe('');
      expect(await refusal(node, /authentication failure\/shared secret mismatch/)).toMatch(
        /handshake failed/,
      );
    }
  });
});
