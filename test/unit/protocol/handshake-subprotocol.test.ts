/**
 * Sub-protocol options of the handshake (spec/protocol.md §13): an accepting handshake switches
 * to `aemp-dataconn` only if told to accept it, skips the node-ID checks that only make sense
 * for a node link, and runs `onPeerVerified` after the peer's auth line verified and before our
 * held auth line is handed out; a throwing hook fails the handshake without our auth line.
 */
import { describe, expect, it } from 'vitest';
import { AempError, AuthError, ProtocolError } from '../../../src/errors.js';
import { hmacSha3_512Hex, ownFirst, secretBytes } from '../../../src/protocol/auth.js';
import type { Greeting } from '../../../src/protocol/greeting.js';
import {
  createHandshake,
  type Handshake,
  type HandshakeOptions,
  type HandshakeSession,
  type HandshakeStep,
} from '../../../src/protocol/handshake.js';

const enc = (s: string) => new TextEncoder().encode(s);
const SECRET = 'sub-protocol-secret';
const OWN_ID = 'me/1';
const PEER_ID = 'peer/1';
const PEER_NONCE = 'cGVlci1ub25jZS1wZWVyLW5vbmNlLXBlZXItbm9uY2U=';
const DATACONN = 'aemp-dataconn';

/** A data-connection greeting as a dialler writes it: no mproto/gproto, a dataconn_id. */
function dataConnLine(id = PEER_ID, rest = ';role=d;dataconn_id=7@peer/1'): string {
  return `${DATACONN};1;${id};tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json${rest}`;
}

/** An accepting handshake (holds its auth line until the peer's verified). */
function accepting(extra: Partial<HandshakeOptions> = {}): Handshake {
  return createHandshake({
    nodeId: OWN_ID,
    secret: SECRET,
    nonce: 'bG9jYWwtbm9uY2U=',
    peerAddr: '127.0.0.1:1',
    role: 'accepted',
    ...extra,
  });
}

/** The auth line a peer greeting with `peerL1` and PEER_NONCE sends to `hs`. */
function peerAuth(hs: Handshake, peerL1: string, secret = SECRET): string {
  const data = hmacSha3_512Hex(
    secretBytes(secret)!,
    ownFirst({ line1: peerL1, line2: PEER_NONCE }, { line1: hs.ownGreeting, line2: hs.ownNonce }),
  );
  return `hmac_sha3_512;${data};cbor`;
}

/** Feeds `text` in pieces of `size` bytes (all of it at once for Infinity). */
function feedIn(hs: Handshake, text: string, size: number): HandshakeStep[] {
  const bytes = enc(text);
  const steps: HandshakeStep[] = [];
  const step = Math.min(size, bytes.length);
  for (let i = 0; i < bytes.length; i += step) {
    if (hs.state === 'done' || hs.state === 'failed') break;
    steps.push(...hs.feed(bytes.subarray(i, i + step)));
  }
  return steps;
}

/** The whole peer side: greeting, nonce, auth line. */
function peerBytes(hs: Handshake, line1: string, secret = SECRET): string {
  return `${line1}\n${PEER_NONCE}\n${peerAuth(hs, line1, secret)}\n`;
}

function failure(steps: HandshakeStep[]): AempError {
  expect(steps.map((s) => s.kind)).toEqual(['fail']);
  return (steps[0] as { error: AempError }).error;
}

function session(step: HandshakeStep | undefined): HandshakeSession {
  expect(step?.kind).toBe('done');
  return (step as { session: HandshakeSession }).session;
}

const SIZES = [Number.POSITIVE_INFINITY, 1];

describe('an accepting handshake not accepting aemp-dataconn', () => {
  for (const size of SIZES) {
    it(`refuses the greeting with the sub-protocol error, nothing sent (chunks of ${size})`, () => {
      for (const accept of [undefined, [], ['aemp-other']]) {
        const hs = accepting(accept === undefined ? {} : { acceptSubProtocols: accept });
        const line = dataConnLine();
        const steps = feedIn(hs, peerBytes(hs, line), size);
        const error = failure(steps);
        expect(error).toBeInstanceOf(ProtocolError);
        expect(error.code).toBe('ERR_BAD_GREETING');
        expect(error.message).toBe('aemp-dataconn: sub-protocol not supported');
        expect(hs.state).toBe('failed');
      }
    });
  }

  it('the version check still comes first', () => {
    const hs = accepting();
    const error = failure(hs.feed(enc(`${dataConnLine().replace(';1;', ';2;')}\n`)));
    expect(error.code).toBe('ERR_VERSION_MISMATCH');
  });
});

describe('an accepting handshake accepting aemp-dataconn', () => {
  for (const size of SIZES) {
    it(`switches to the sub-protocol and completes; our auth line only after the peer's (chunks of ${size})`, () => {
      const verified: Greeting[] = [];
      const hs = accepting({
        acceptSubProtocols: [DATACONN],
        onPeerVerified: (g) => verified.push(g),
      });
      const line = dataConnLine();
      const all = peerBytes(hs, line);
      const upToNonce = `${line}\n${PEER_NONCE}\n`;
      // Greeting and nonce alone: nothing to send, the hook not called yet.
      expect(feedIn(hs, upToNonce, size)).toEqual([]);
      expect(hs.state).toBe('auth');
      expect(verified).toEqual([]);
      const steps = feedIn(hs, all.slice(upToNonce.length), size);
      expect(steps.map((s) => s.kind)).toEqual(['send', 'done']);
      expect((steps[0] as { text: string }).text).toMatch(/^hmac_sha3_512;[0-9a-f]{128};cbor\n$/);
      expect(verified).toHaveLength(1);
      expect(verified[0]!.proto).toBe(DATACONN);
      expect(verified[0]!.keys.get('dataconn_id')).toBe('7@peer/1');
      const s = session(steps[1]);
      expect(s.protocol).toBe(DATACONN);
      expect(s.peerNodeId).toBe(PEER_ID);
      expect(s.peerGreeting.keys.get('dataconn_id')).toBe('7@peer/1');
    });
  }

  it('a plain aemp greeting on the same options is still a node link (protocol aemp)', () => {
    const hs = accepting({ acceptSubProtocols: [DATACONN] });
    const line = `aemp;1;${PEER_ID};hmac_sha3_512;cbor;mproto=1;gproto=1;role=d`;
    const steps = hs.feed(enc(peerBytes(hs, line)));
    expect(session(steps[1]).protocol).toBe('aemp');
  });

  it('skips the self-connect and already-connected checks, which a node link keeps', () => {
    const isConnected = (id: string) => id === PEER_ID || id === OWN_ID;
    // Our own node ID (a data connection to the own node) and a connected node are fine.
    for (const id of [OWN_ID, PEER_ID]) {
      const hs = accepting({ acceptSubProtocols: [DATACONN], isConnected });
      const line = dataConnLine(id);
      const steps = hs.feed(enc(peerBytes(hs, line)));
      expect(steps.map((s) => s.kind)).toEqual(['send', 'done']);
      expect(session(steps[1]).peerNodeId).toBe(id);
    }
    // The same peers greeting with `aemp` are refused as before.
    const self = accepting({ acceptSubProtocols: [DATACONN], isConnected });
    expect(failure(self.feed(enc(`aemp;1;${OWN_ID};hmac_sha3_512;cbor;role=d\n`))).code).toBe(
      'ERR_SELF_CONNECT',
    );
    const again = accepting({ acceptSubProtocols: [DATACONN], isConnected });
    expect(failure(again.feed(enc(`aemp;1;${PEER_ID};hmac_sha3_512;cbor;role=d\n`))).code).toBe(
      'ERR_ALREADY_CONNECTED',
    );
  });

  it('keeps the checks that are not about the node link: empty node ID, same role', () => {
    const empty = accepting({ acceptSubProtocols: [DATACONN] });
    expect(failure(empty.feed(enc(`${dataConnLine('')}\n`))).message).toBe(
      'unparsable greeting, empty node ID',
    );
    // A peer claiming to have accepted the connection too is a relay between two listeners.
    const relay = accepting({ acceptSubProtocols: [DATACONN] });
    const steps = relay.feed(enc(`${dataConnLine(PEER_ID, ';role=a;dataconn_id=7@peer/1')}\n`));
    expect(failure(steps)).toBeInstanceOf(AempError);
  });

  it('a wrong secret fails before the hook runs; no auth line', () => {
    let called = 0;
    const hs = accepting({ acceptSubProtocols: [DATACONN], onPeerVerified: () => called++ });
    const steps = hs.feed(enc(peerBytes(hs, dataConnLine(), 'not-the-secret')));
    const error = failure(steps);
    expect(error).toBeInstanceOf(AuthError);
    expect(called).toBe(0);
  });

  for (const size of SIZES) {
    it(`a throwing onPeerVerified fails the handshake without our auth line (chunks of ${size})`, () => {
      const hs = accepting({
        acceptSubProtocols: [DATACONN],
        onPeerVerified: () => {
          throw new Error('data connection refused: unknown dataconn_id 7@peer/1');
        },
      });
      const steps = feedIn(hs, peerBytes(hs, dataConnLine()), size);
      const error = failure(steps);
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error.code).toBe('ERR_BAD_GREETING');
      expect(error.message).toBe('data connection refused: unknown dataconn_id 7@peer/1');
      expect(hs.state).toBe('failed');
      // Every further line gets the same failure, still without an auth line.
      expect(hs.feed(enc('x\n'))).toEqual(steps);
    });
  }

  it('an AempError thrown by onPeerVerified is the failure as it is', () => {
    const thrown = new AuthError('ERR_AUTH_FAILED', 'not expected from this node');
    const hs = accepting({
      acceptSubProtocols: [DATACONN],
      onPeerVerified: () => {
        throw thrown;
      },
    });
    const steps = hs.feed(enc(peerBytes(hs, dataConnLine())));
    expect(failure(steps)).toBe(thrown);
  });
});

describe('a dialled data connection against an accepting handshake', () => {
  for (const size of SIZES) {
    it(`both sides end with protocol aemp-dataconn (chunks of ${size})`, () => {
      const dialler = createHandshake({
        nodeId: 'node-a',
        secret: SECRET,
        role: 'dialled',
        subProtocol: DATACONN,
        extraKeys: { dataconn_id: '1@node-a' },
      });
      const seen: string[] = [];
      const listener = createHandshake({
        nodeId: 'node-b',
        secret: SECRET,
        role: 'accepted',
        acceptSubProtocols: [DATACONN],
        isConnected: () => true,
        onPeerVerified: (g) => seen.push(g.keys.get('dataconn_id') ?? ''),
      });
      expect(dialler.ownGreeting.split(';')[0]).toBe(DATACONN);
      expect(dialler.ownGreeting).not.toMatch(/;(mproto|gproto)=/);
      // Dialler: greeting, nonce, then its auth line at once (it does not hold it back).
      const toListener = dialler.start();
      const toDialler = listener.start();
      const dSteps = feedIn(dialler, toDialler, size);
      expect(dSteps.map((s) => s.kind)).toEqual(['send']);
      const lSteps = feedIn(listener, toListener + (dSteps[0] as { text: string }).text, size);
      expect(lSteps.map((s) => s.kind)).toEqual(['send', 'done']);
      expect(seen).toEqual(['1@node-a']);
      const dDone = feedIn(dialler, (lSteps[0] as { text: string }).text, size);
      expect(session(dDone[0]).protocol).toBe(DATACONN);
      expect(session(lSteps[1]).protocol).toBe(DATACONN);
      expect(session(lSteps[1]).peerNodeId).toBe('node-a');
    });
  }
});
