/**
 * Data connections inside TLS (spec/protocol.md §13 with §5 step 6): two nodes sharing the test
 * certificate get a data connection whose stream is the TLS socket, bytes intact both ways; an
 * intruder whose certificate our CA did not sign is refused even when it names a dataconn_id
 * that is really expected, and the expectation stays for the real dialler.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Node } from '../../src/index.js';
import { expectDataConn, open, readAll } from '../helpers/dataconn.js';
import { type FakeHandshakeResult, FakePeer, WAIT_MS, within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const PEM = readFileSync(new URL('../fixtures/tls/aemp-cert.pem', import.meta.url), 'utf8');
const OTHER_PEM = readFileSync(new URL('../fixtures/tls/other-cert.pem', import.meta.url), 'utf8');

/** Nonces that sort before / after any base64 nonce of ours: the fake is TLS client / server. */
const AS_TLS_CLIENT = '!'.repeat(88);
const AS_TLS_SERVER = '~'.repeat(88);

/** Node `b` listening, node `a` knowing it as its seed, both with the shared certificate only. */
async function tlsPair() {
  const b = testNode({ nodeid: 'dct-b', binds: ['127.0.0.1:0'], cert: PEM });
  await within(b.ready, WAIT_MS, 'b ready');
  const a = testNode({ nodeid: 'dct-a', binds: ['127.0.0.1:0'], seeds: [b.binds[0]!], cert: PEM });
  const up = firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'dct-b')));
  await within(a.ready, WAIT_MS, 'a ready');
  await within(up, WAIT_MS, 'a connected to b over TLS');
  return { a, b };
}

function initReceiver(node: Node, name: string) {
  const calls = deferred<Duplex>();
  node.register(name, (...args: unknown[]) => {
    calls.resolve(args[args.length - 1] as Duplex);
  });
  return calls.promise;
}

/** Both ends are TLS sockets with a negotiated protocol; bytes pass intact both ways. */
async function checkTlsStreams(local: Duplex, far: Duplex): Promise<void> {
  for (const s of [local, far]) {
    expect(s).toBeInstanceOf(TLSSocket);
    expect((s as TLSSocket).encrypted).toBe(true);
    expect((s as TLSSocket).getProtocol()).toMatch(/^TLSv1\.[23]$/);
  }
  const there = randomBytes(300_000);
  const back = randomBytes(200_000);
  const gotThere = readAll(far);
  const gotBack = readAll(local);
  local.end(there);
  far.end(back);
  expect((await within(gotThere, WAIT_MS, 'bytes a→b')).equals(there)).toBe(true);
  expect((await within(gotBack, WAIT_MS, 'bytes b→a')).equals(back)).toBe(true);
}

describe('data connections over TLS', () => {
  it('the stream on both ends is the TLS socket; bytes pass intact both ways', async () => {
    const { a, b } = await tlsPair();
    const remote = initReceiver(b, 'Test::recv');
    const { stream, sub } = open(a.dataConn$('dct-b', { initFunc: 'Test::recv', timeout: 5 }));
    const local = await within(stream, WAIT_MS, 'the local stream');
    const far = await within(remote, WAIT_MS, 'the init function call on b');
    try {
      await checkTlsStreams(local, far);
    } finally {
      sub.unsubscribe();
      far.destroy();
    }
  });

  for (const [role, nonce] of [
    ['client', AS_TLS_CLIENT],
    ['server', AS_TLS_SERVER],
  ] as const) {
    it(`an intruder with a foreign certificate as TLS ${role}, naming an expected dataconn_id, is refused`, async () => {
      const { b } = await tlsPair();
      const calls: unknown[] = [];
      b.register('Test::recv', (...args: unknown[]) => calls.push(args));
      // `a` announced a data connection: the ID below is really expected, from `dct-a`.
      expectDataConn(b, 'dct-a', 'k@dct-a');
      expect(b.dataConns.pending).toBe(1);
      const intruder = await FakePeer.dial(b.binds[0]!);
      const hs: FakeHandshakeResult | Error = await intruder
        .handshake({
          nodeId: 'dct-a',
          nonce,
          cert: OTHER_PEM,
          tlsAnyPeer: true,
          line1:
            'aemp-dataconn;1;dct-a;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json;' +
            'tls=1.0;role=d;dataconn_id=k@dct-a',
        })
        .catch((e: Error) => e);
      await within(intruder.closed, WAIT_MS, 'b closing the intruder’s connection');
      if (!(hs instanceof Error)) {
        expect(hs.tlsClient).toBe(role === 'client');
        expect(hs.authWithheld).toBe(true);
      }
      const line = await within(
        b.logged(/TLS peer certificate rejected/),
        WAIT_MS,
        'the log line of the refused handshake',
      );
      expect(line.text).toMatch(
        /handshake failed: TLS peer certificate rejected: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/,
      );
      // Nothing was handed to the init function and the expectation still waits for `a`.
      expect(calls).toEqual([]);
      expect(b.dataConns.pending).toBe(1);
    });
  }
});
