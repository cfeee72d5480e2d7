import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AempError, AuthError, ProtocolError } from '../../../src/errors.js';
import { hmacSha3_512Hex, ownFirst, secretBytes } from '../../../src/protocol/auth.js';
import { MAX_LINE_BYTES } from '../../../src/protocol/constants.js';
import type { Greeting } from '../../../src/protocol/greeting.js';
import {
  createHandshake,
  type Handshake,
  type HandshakeOptions,
  type HandshakeSession,
  type HandshakeStep,
} from '../../../src/protocol/handshake.js';
import caps from '../../fixtures/handshake/captures.json' with { type: 'json' };
import reads from '../../fixtures/handshake/reads.json' with { type: 'json' };
import { chunkings, concat, hex } from '../../helpers/chunks.js';

const enc = (s: string) => new TextEncoder().encode(s);
const SECRET = caps.secret;
type Side = (typeof caps.captures)[number]['a'];

/** A handshake configured to replay one side of a capture. */
function replaying(side: Side, extra: Partial<HandshakeOptions> = {}): Handshake {
  return createHandshake({
    nodeId: side.nodeId,
    secret: SECRET,
    authOffer: side.authOffer,
    framings: side.framings as ('cbor' | 'json')[],
    greetingLine: side.line1,
    nonce: side.line2,
    ...extra,
  });
}

function feedAll(hs: Handshake, chunks: readonly Uint8Array[]): HandshakeStep[] {
  const steps: HandshakeStep[] = [];
  for (const c of chunks) {
    if (hs.state === 'done' || hs.state === 'failed') break;
    steps.push(...hs.feed(c));
  }
  return steps;
}

function expectFail(
  step: HandshakeStep | undefined,
  code: string,
  message: string,
  cls?: Function,
): AempError {
  expect(step?.kind).toBe('fail');
  const error = (step as { error: AempError }).error;
  expect(AempError.is(error)).toBe(true);
  expect(error.code).toBe(code);
  expect(error.message).toBe(message);
  if (cls) expect(error).toBeInstanceOf(cls);
  return error;
}

function session(step: HandshakeStep | undefined): HandshakeSession {
  expect(step?.kind).toBe('done');
  return (step as { session: HandshakeSession }).session;
}

describe('golden: replaying every captured handshake, both directions', () => {
  for (const c of caps.captures) {
    for (const [me, other] of [
      [c.a, c.b],
      [c.b, c.a],
    ] as const) {
      const peerBytes = enc(`${other.line1}\n${other.line2}\n${other.auth}\n`);
      for (const { name, chunks } of chunkings(peerBytes, 16)) {
        it(`${c.name}: ${me.nodeId} (${name})`, () => {
          const hs = replaying(me);
          expect(hs.start()).toBe(`${me.line1}\n${me.line2}\n`);
          const steps = feedAll(hs, chunks);
          expect(steps.map((s) => s.kind)).toEqual(['send', 'done']);
          expect(steps[0]).toEqual({ kind: 'send', text: `${me.auth}\n` });
          const s = session(steps[1]);
          const [peerMethod, , peerFraming] = other.auth.split(';');
          expect(s.peerNodeId).toBe(other.nodeId);
          expect(s.authMethod).toBe(peerMethod);
          expect(s.sendAuth).toBe(me.auth.split(';')[0]);
          expect(s.recvFraming).toBe(peerFraming);
          expect(s.sendFraming).toBe(me.auth.split(';')[2]);
          expect(s.tls).toBe(false);
          expect(s.untrusted).toBe(false);
          expect(s.peerGreeting.line).toBe(other.line1);
          expect(s.peerNonce).toBe(other.line2);
          expect(hs.takeRest().length).toBe(0);
        });
      }
    }
  }

  it('mixed-session: the client sends CBOR and decodes JSON, the seed the other way round', () => {
    const c = caps.captures.find((x) => x.name === 'mixed-session')!;
    const client = session(replaying(c.a).feed(enc(`${c.b.line1}\n${c.b.line2}\n${c.b.auth}\n`))[1]);
    expect([client.sendFraming, client.recvFraming]).toEqual(['cbor', 'json']);
    const seed = session(replaying(c.b).feed(enc(`${c.a.line1}\n${c.a.line2}\n${c.a.auth}\n`))[1]);
    expect([seed.sendFraming, seed.recvFraming]).toEqual(['json', 'cbor']);
  });

  it('raw-client-cleartext: the seed accepts the cleartext method', () => {
    const c = caps.captures.find((x) => x.name === 'raw-client-cleartext')!;
    const seed = session(replaying(c.b).feed(enc(`${c.a.line1}\n${c.a.line2}\n${c.a.auth}\n`))[1]);
    expect(seed.authMethod).toBe('cleartext');
    expect(seed.sendAuth).toBe('hmac_sha3_512');
  });
});

describe('golden: the captured socket reads, rest handed over', () => {
  it('node-port-json: ["","g_global"] arrives in the same read as the auth line', () => {
    const c = caps.captures.find((x) => x.name === 'node-port-json')!;
    const hs = replaying(c.a);
    const [greetingRead, authRead] = reads['node-port-json'].reads.map((r) => hex(r));
    expect(hs.feed(greetingRead!)).toEqual([{ kind: 'send', text: `${c.a.auth}\n` }]);
    const steps = hs.feed(authRead!);
    expect(session(steps[0]).recvFraming).toBe('json');
    expect(new TextDecoder().decode(hs.takeRest())).toBe('["","g_global"]');
  });

  it('node-port-json: the rest is intact for every split of the stream', () => {
    const c = caps.captures.find((x) => x.name === 'node-port-json')!;
    const bytes = concat(reads['node-port-json'].reads.map((r) => hex(r)));
    const rest = hex(reads['node-port-json'].rest);
    for (const { name, chunks } of chunkings(bytes)) {
      const hs = replaying(c.a);
      const after: Uint8Array[] = [];
      let done = false;
      for (const chunk of chunks) {
        if (done) {
          after.push(chunk);
          continue;
        }
        const steps = hs.feed(chunk);
        if (steps.some((s) => s.kind === 'done')) {
          done = true;
          after.push(hs.takeRest());
        }
      }
      expect(done, name).toBe(true);
      expect(concat(after), name).toEqual(rest);
    }
  });

  it('node-port-cbor: greeting, nonce and auth line in one read give send then done', () => {
    const c = caps.captures.find((x) => x.name === 'node-port-cbor')!;
    const hs = replaying(c.a);
    const [first] = reads['node-port-cbor'].reads.map((r) => hex(r));
    const steps = hs.feed(first!);
    expect(steps.map((s) => s.kind)).toEqual(['send', 'done']);
    expect(session(steps[1]).recvFraming).toBe('cbor');
    expect(hs.takeRest().length).toBe(0);
  });
});

describe('worked example of protocol.md §14', () => {
  const TS1 =
    'aemp;1;tsnode/Q7cX2mPz9K;hmac_sha3_512,cleartext;cbor,json;provider=TS-0.1;peeraddr=127.0.0.1:4040';
  const TS2 = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BB';
  const P1 =
    'aemp;1;seed1;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;peeraddr=127.0.0.1:51234;provider=AE-2.02;mproto=1;gproto=1';
  const P2 = 'gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2+v8DB';
  const TS_AUTH =
    'hmac_sha3_512;9c5da3bd86a1194258606bbbf2498f1db0bec9c47de156a735a6b869cad20aff737cfa39da52eb1515b4fcdb955a2dbb695360fb51266a2197d9e5262489310d;cbor';
  const P_AUTH =
    'hmac_sha3_512;94ed305073a1665f1f71f801fdd01d3d5b2137f97c39c7b1497fe9699d6913414d6aaf6a64a24563ce4a2bae1c7e2b47ab89be9138f7b5d63881779112390f51;cbor';

  const ts = (extra: Partial<HandshakeOptions> = {}) =>
    createHandshake({
      nodeId: 'tsnode/Q7cX2mPz9K',
      secret: 's3cr3t-example',
      authOffer: ['hmac_sha3_512', 'cleartext'],
      authAccept: ['hmac_sha3_512', 'cleartext'],
      framings: ['cbor', 'json'],
      greetingLine: TS1,
      nonce: TS2,
      ...extra,
    });

  it('the TS side sends the given HMAC line and accepts Perl’s', () => {
    const hs = ts();
    expect(hs.receive(P1)).toEqual({ kind: 'wait' });
    expect(hs.receive(P2)).toEqual({ kind: 'send', text: `${TS_AUTH}\n` });
    const s = session(hs.receive(P_AUTH));
    expect(s).toMatchObject({
      peerNodeId: 'seed1',
      sendFraming: 'cbor',
      recvFraming: 'cbor',
      sendAuth: 'hmac_sha3_512',
      authMethod: 'hmac_sha3_512',
      tls: false,
    });
    expect(s.peerGreeting.keys.get('provider')).toBe('AE-2.02');
  });

  it('a lazy TS offering only cleartext sends the hex secret', () => {
    const hs = ts({ authOffer: ['cleartext'] });
    hs.receive(P1);
    expect(hs.receive(P2)).toEqual({ kind: 'send', text: 'cleartext;7333637233742d6578616d706c65;cbor\n' });
  });

  it('with certificates on both sides the TS side is the TLS client', () => {
    const hs = ts({ hasCert: true, authOffer: ['tls_sha3_512', 'hmac_sha3_512'] });
    hs.receive(`${P1};tls=1.0`);
    expect(hs.receive(P2)).toEqual({ kind: 'startTls', client: true });
    expect(hs.state).toBe('tls');
    const sent = hs.tlsReady();
    expect(sent.kind).toBe('send');
    expect((sent as { text: string }).text).toMatch(/^tls_sha3_512;[0-9a-f]{128};cbor\n$/);
  });
});

// ---------------------------------------------------------------------------------------------
// Scripted single-sided runs

const PEER_ID = 'peer/1';
const PEER_NONCE = 'cGVlci1ub25jZS1wZWVyLW5vbmNlLXBlZXItbm9uY2U=';
const PERL_AUTHS = 'tls_sha3_512,hmac_sha3_512,tls_anon,cleartext';

function peerLine(
  fields: {
    proto?: string;
    version?: string;
    id?: string;
    auths?: string;
    framings?: string;
    rest?: string;
  } = {},
) {
  const line = [
    fields.proto ?? 'aemp',
    fields.version ?? '1',
    fields.id ?? PEER_ID,
    fields.auths ?? PERL_AUTHS,
    fields.framings ?? 'cbor,json,storable',
  ].join(';');
  return line + (fields.rest ?? ';provider=AE-2.02;mproto=1;gproto=1');
}

function local(extra: Partial<HandshakeOptions> = {}): Handshake {
  return createHandshake({
    nodeId: 'me/1',
    secret: SECRET,
    nonce: 'bG9jYWwtbm9uY2U=',
    peerAddr: '127.0.0.1:1',
    ...extra,
  });
}

/** The auth line the peer (with `peerL1`/`PEER_NONCE`) would send to `hs`. */
function peerAuth(hs: Handshake, peerL1: string, secret = SECRET, framing = 'cbor'): string {
  const data = hmacSha3_512Hex(
    secretBytes(secret)!,
    ownFirst({ line1: peerL1, line2: PEER_NONCE }, { line1: hs.ownGreeting, line2: hs.ownNonce }),
  );
  return `hmac_sha3_512;${data};${framing}`;
}

describe('handshake failures, in Perl’s order with Perl’s texts', () => {
  it('succeeds with the scripted peer (baseline)', () => {
    const hs = local();
    const l1 = peerLine();
    expect(hs.receive(l1)).toEqual({ kind: 'wait' });
    expect(hs.receive(PEER_NONCE).kind).toBe('send');
    const s = session(hs.receive(peerAuth(hs, l1)));
    expect(s.peerNodeId).toBe(PEER_ID);
    expect(s.peerGreeting.keys.get('mproto')).toBe('1');
  });

  it('wrong secret', () => {
    const hs = local();
    const l1 = peerLine();
    hs.receive(l1);
    hs.receive(PEER_NONCE);
    expectFail(
      hs.receive(peerAuth(hs, l1, 'another-secret')),
      'ERR_AUTH_FAILED',
      'authentication failure/shared secret mismatch',
      AuthError,
    );
    expect(hs.state).toBe('failed');
  });

  it.each(['0', '2', '', 'x'])('version %j', (v) => {
    const hs = local();
    expectFail(
      hs.receive(peerLine({ version: v })),
      'ERR_VERSION_MISMATCH',
      `version mismatch (we: 1, they: ${v})`,
      ProtocolError,
    );
  });

  it('version 1.0 is numerically 1 and accepted (Perl compares with !=)', () => {
    expect(local().receive(peerLine({ version: '1.0' }))).toEqual({ kind: 'wait' });
  });

  it('foreign protocol', () => {
    expectFail(
      local().receive(peerLine({ proto: 'http' })),
      'ERR_BAD_GREETING',
      "unparsable greeting, expected 'aemp', got 'http'",
      ProtocolError,
    );
    expectFail(local().receive(''), 'ERR_BAD_GREETING', "unparsable greeting, expected 'aemp', got ''");
  });

  it('the protocol check comes before the version check', () => {
    expectFail(
      local().receive(peerLine({ proto: 'GET / HTTP/1.1', version: '7' })),
      'ERR_BAD_GREETING',
      "unparsable greeting, expected 'aemp', got 'GET / HTTP/1.1'",
    );
  });

  it('aemp-<word> sub-protocols are recognised but not supported yet (data connections)', () => {
    expectFail(
      local().receive(peerLine({ proto: 'aemp-dataconn', rest: ';dataconn_id=b@x' })),
      'ERR_BAD_GREETING',
      'aemp-dataconn: sub-protocol not supported',
    );
    // The version check still comes first, as in Perl.
    expectFail(
      local().receive(peerLine({ proto: 'aemp-dataconn', version: '0' })),
      'ERR_VERSION_MISMATCH',
      'version mismatch (we: 1, they: 0)',
    );
  });

  it('own node ID', () => {
    expectFail(
      local().receive(peerLine({ id: 'me/1' })),
      'ERR_SELF_CONNECT',
      'I refuse to talk to myself',
      ProtocolError,
    );
  });

  it('already connected', () => {
    const asked: string[] = [];
    const hs = local({
      isConnected: (id) => {
        asked.push(id);
        return id === PEER_ID;
      },
    });
    expectFail(
      hs.receive(peerLine()),
      'ERR_ALREADY_CONNECTED',
      `${PEER_ID} already connected, not connecting again.`,
      ProtocolError,
    );
    expect(asked).toEqual([PEER_ID]);
  });

  it('empty node ID (an extra check; Perl would accept it)', () => {
    expectFail(
      local().receive(peerLine({ id: '' })),
      'ERR_BAD_GREETING',
      'unparsable greeting, empty node ID',
    );
  });

  it('an echoed greeting is refused as talking to myself (the node-ID check comes first, as in Perl)', () => {
    const hs = local();
    const [l1] = hs.start().split('\n');
    expectFail(hs.receive(l1!), 'ERR_SELF_CONNECT', 'I refuse to talk to myself');
  });

  it('echo check: both lines identical to ours', () => {
    // Our line 1 names another node ID than the one we check against, so only the echo check
    // can catch the replay.
    const own = peerLine({ id: 'relay' });
    const hs = local({ greetingLine: own });
    expect(hs.receive(own)).toEqual({ kind: 'wait' });
    expectFail(hs.receive(hs.ownNonce), 'ERR_ECHO', 'authentication error, echo attack?', AuthError);
  });

  it('same greeting line but a different nonce is no echo', () => {
    const own = peerLine({ id: 'relay' });
    const hs = local({ greetingLine: own });
    hs.receive(own);
    expect(hs.receive(PEER_NONCE).kind).toBe('send');
  });

  it('no common auth', () => {
    const hs = local();
    hs.receive(peerLine({ auths: 'cleartext,tls_anon' }));
    expectFail(
      hs.receive(PEER_NONCE),
      'ERR_NO_COMMON_AUTH',
      'cleartext,tls_anon: no common auth type supported',
      AuthError,
    );
  });

  it('no common auth: tls_* is not chosen without TLS', () => {
    const hs = local({ hasCert: true });
    hs.receive(peerLine({ auths: 'tls_sha3_512' }));
    expectFail(hs.receive(PEER_NONCE), 'ERR_NO_COMMON_AUTH', 'tls_sha3_512: no common auth type supported');
  });

  it('no common framing', () => {
    const hs = local({ framings: ['json'] });
    hs.receive(peerLine({ framings: 'cbor,storable' }));
    expectFail(
      hs.receive(PEER_NONCE),
      'ERR_NO_COMMON_FRAMING',
      'cbor,storable: no common framing method supported',
      ProtocolError,
    );
  });

  it('no common auth is reported before no common framing', () => {
    const hs = local();
    hs.receive(peerLine({ auths: 'x', framings: 'y' }));
    expectFail(hs.receive(PEER_NONCE), 'ERR_NO_COMMON_AUTH', 'x: no common auth type supported');
  });

  it('unsupported snd auth method: TLS on and the peer prefers hmac', () => {
    const hs = local({ hasCert: true, authOffer: ['tls_sha3_512', 'hmac_sha3_512'] });
    hs.receive(peerLine({ auths: 'hmac_sha3_512,tls_sha3_512', rest: ';tls=1.0' }));
    expectFail(
      hs.receive(PEER_NONCE),
      'ERR_UNSUPPORTED_AUTH',
      'hmac_sha3_512: fatal, selected unsupported snd auth method',
      AuthError,
    );
  });

  it('no TLS and no secret', () => {
    const hs = local({ secret: undefined });
    hs.receive(peerLine());
    expectFail(
      hs.receive(PEER_NONCE),
      'ERR_NO_CREDENTIALS',
      'unable to handshake TLS and no shared secret configured',
      AuthError,
    );
  });

  it('unsupported rcv auth method', () => {
    const hs = local();
    hs.receive(peerLine());
    hs.receive(PEER_NONCE);
    expectFail(
      hs.receive('hmac_md6_64_256;abcdef;cbor'),
      'ERR_UNSUPPORTED_AUTH',
      'hmac_md6_64_256: fatal, selected unsupported rcv auth method',
      AuthError,
    );
  });

  it('empty auth line', () => {
    const hs = local();
    hs.receive(peerLine());
    hs.receive(PEER_NONCE);
    expectFail(hs.receive(''), 'ERR_UNSUPPORTED_AUTH', ': fatal, selected unsupported rcv auth method');
  });

  it('tls_sha3_512 / tls_anon from the peer without TLS never verify', () => {
    for (const line of ['tls_anon;;cbor', 'tls_sha3_512;;cbor', 'tls_sha3_512;00;cbor']) {
      const hs = local();
      hs.receive(peerLine());
      hs.receive(PEER_NONCE);
      expectFail(hs.receive(line), 'ERR_AUTH_FAILED', 'authentication failure/shared secret mismatch');
    }
  });

  it('cleartext from the peer is accepted even if not in our auth_accept (like Perl)', () => {
    const hs = local({ authAccept: ['hmac_sha3_512'] });
    hs.receive(peerLine());
    hs.receive(PEER_NONCE);
    expect(session(hs.receive('cleartext;7265662d7365637265742d3432;json')).authMethod).toBe('cleartext');
  });

  it('unusable remote framing', () => {
    const l1 = peerLine();
    for (const [framing, text] of [
      ['storable', 'storable: unusable remote framing'],
      ['', ': unusable remote framing'],
    ]) {
      const hs = local();
      hs.receive(l1);
      hs.receive(PEER_NONCE);
      expectFail(
        hs.receive(peerAuth(hs, l1, SECRET, framing)),
        'ERR_NO_COMMON_FRAMING',
        text!,
        ProtocolError,
      );
    }
  });

  it('the auth check comes before the framing check', () => {
    const l1 = peerLine();
    const hs = local();
    hs.receive(l1);
    hs.receive(PEER_NONCE);
    expectFail(
      hs.receive(peerAuth(hs, l1, 'wrong', 'storable')),
      'ERR_AUTH_FAILED',
      'authentication failure/shared secret mismatch',
    );
  });

  it('extra fields in the auth line are ignored; the peer need not pick a framing from our list', () => {
    const l1 = peerLine();
    const hs = local({ framings: ['cbor'] });
    hs.receive(l1);
    hs.receive(PEER_NONCE);
    expect(session(hs.receive(`${peerAuth(hs, l1, SECRET, 'json')};extra;fields`)).recvFraming).toBe('json');
  });

  describe('oversized line (limit 4096 bytes including LF)', () => {
    /** A greeting padded to exactly `total` bytes including LF. */
    function padded(total: number): string {
      const base = `${peerLine()};pad=`;
      return base + 'p'.repeat(total - 1 - base.length);
    }

    it('4096 bytes incl. LF pass', () => {
      const line = padded(MAX_LINE_BYTES);
      expect(enc(`${line}\n`).length).toBe(4096);
      const hs = local();
      expect(hs.feed(enc(`${line}\n${PEER_NONCE}\n`)).map((s) => s.kind)).toEqual(['send']);
    });

    it('4097 bytes incl. LF fail', () => {
      const line = padded(MAX_LINE_BYTES + 1);
      const hs = local();
      const steps = hs.feed(enc(`${line}\n`));
      expect(steps.length).toBe(1);
      expect(steps[0]?.kind).toBe('fail');
      const error = (steps[0] as { error: AempError }).error;
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error.code).toBe('ERR_LINE_TOO_LONG');
      expect(error.message).toMatch(/line too long/);
      expect(hs.state).toBe('failed');
      // Later input gets the same failure.
      expect(hs.feed(enc('x\n'))).toEqual(steps);
    });

    it('an endless line fails before its end arrives', () => {
      const hs = local();
      const steps = hs.feed(new Uint8Array(MAX_LINE_BYTES).fill(0x61));
      expect(steps.map((s) => s.kind)).toEqual(['fail']);
    });

    it('the limit applies to the auth line too', () => {
      const hs = local();
      hs.feed(enc(`${peerLine()}\n${PEER_NONCE}\n`));
      expect(hs.feed(enc(`hmac_sha3_512;${'0'.repeat(5000)}`)).map((s) => s.kind)).toEqual(['fail']);
    });
  });

  it('after a failure every further line gets the same failure', () => {
    const hs = local();
    const first = hs.receive(peerLine({ version: '2' }));
    expect(hs.receive(PEER_NONCE)).toBe(first);
    expect(hs.feed(enc('more\n'))).toEqual([first]);
  });
});

describe('seed hook and misuse', () => {
  it('onPeerGreeting sees the parsed greeting before the checks', () => {
    const seen: Greeting[] = [];
    const hs = local({ onPeerGreeting: (g) => seen.push(g) });
    expectFail(
      hs.receive(peerLine({ version: '0', rest: ';hb=2' })),
      'ERR_VERSION_MISMATCH',
      'version mismatch (we: 1, they: 0)',
    );
    expect(seen.length).toBe(1);
    expect(seen[0]?.nodeId).toBe(PEER_ID);
    expect(seen[0]?.keys.get('hb')).toBe('2');
  });

  it('a throwing hook fails the handshake', () => {
    const hs = local({
      onPeerGreeting: () => {
        throw new Error('boom');
      },
    });
    expectFail(hs.receive(peerLine()), 'ERR_BAD_GREETING', 'greeting hook failed: boom');
    const custom = new AuthError('ERR_AUTH_FAILED', 'not my seed');
    const hs2 = local({
      onPeerGreeting: () => {
        throw custom;
      },
    });
    expect(hs2.receive(peerLine())).toEqual({ kind: 'fail', error: custom });
  });

  it('rejects unsupported own framings and bad nonces at creation', () => {
    expect(() => createHandshake({ nodeId: 'a', framings: ['storable' as 'cbor'] })).toThrow(
      /unsupported own framing/,
    );
    expect(() => createHandshake({ nodeId: 'a', nonce: 'a\nb' })).toThrow(/nonce/);
  });

  it('builds the greeting from the options', () => {
    const hs = createHandshake({
      nodeId: 'me/1',
      hasCert: true,
      peerAddr: '10.0.0.1:4040',
      framings: ['json'],
      extraKeys: { hb: '2' },
    });
    expect(hs.ownGreeting).toBe(
      'aemp;1;me/1;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;json;provider=AEMP-TS-0.1;peeraddr=10.0.0.1:4040;mproto=1;gproto=1;tls=1.0;hb=2',
    );
    expect(hs.ownNonce).toMatch(/^[A-Za-z0-9+/]{88}$/);
    expect(hs.start()).toBe(`${hs.ownGreeting}\n${hs.ownNonce}\n`);
    expect(hs.state).toBe('greeting');
  });

  it('throws on driver misuse', () => {
    const hs = local();
    expect(() => hs.tlsReady()).toThrow(/tlsReady/);
    const l1 = peerLine();
    hs.receive(l1);
    hs.receive(PEER_NONCE);
    session(hs.receive(peerAuth(hs, l1)));
    expect(() => hs.receive('x')).toThrow(/completed/);
    expect(() => hs.feed(enc('x\n'))).toThrow(/done/);
  });
});

// ---------------------------------------------------------------------------------------------
// Two state machines talking to each other

interface RunResult {
  a: HandshakeStep[];
  b: HandshakeStep[];
  aFinal: HandshakeStep | undefined;
  bFinal: HandshakeStep | undefined;
}

/** Runs two handshakes against each other, delivering bytes in the given chunk size. */
function run(aOpts: HandshakeOptions, bOpts: HandshakeOptions, chunk = Number.POSITIVE_INFINITY): RunResult {
  const a = createHandshake(aOpts);
  const b = createHandshake(bOpts);
  const toA: Uint8Array[] = [];
  const toB: Uint8Array[] = [];
  const log: RunResult = { a: [], b: [], aFinal: undefined, bFinal: undefined };
  const send = (queue: Uint8Array[], text: string) => {
    const bytes = enc(text);
    for (let i = 0; i < bytes.length; i += Math.min(chunk, bytes.length))
      queue.push(bytes.subarray(i, i + chunk));
  };
  const handle = (hs: Handshake, steps: HandshakeStep[], out: Uint8Array[], mine: HandshakeStep[]) => {
    for (const step of steps) {
      mine.push(step);
      if (step.kind === 'send') send(out, step.text);
      if (step.kind === 'startTls') {
        // Nothing may follow the greeting in clear text.
        expect(hs.takeRest().length).toBe(0);
        const next = hs.tlsReady();
        mine.push(next);
        if (next.kind === 'send') send(out, next.text);
      }
    }
  };
  send(toB, a.start());
  send(toA, b.start());
  const active = (hs: Handshake) => hs.state !== 'done' && hs.state !== 'failed';
  while ((toA.length > 0 && active(a)) || (toB.length > 0 && active(b))) {
    const forB = toB.shift();
    if (forB && active(b)) handle(b, b.feed(forB), toA, log.b);
    const forA = toA.shift();
    if (forA && active(a)) handle(a, a.feed(forA), toB, log.a);
  }
  log.aFinal = log.a.at(-1);
  log.bFinal = log.b.at(-1);
  return log;
}

const A: HandshakeOptions = { nodeId: 'node-a', secret: 'shared', peerAddr: '127.0.0.1:2' };
const B: HandshakeOptions = { nodeId: 'node-b', secret: 'shared', peerAddr: '127.0.0.1:1' };

describe('two-sided runs', () => {
  for (const chunk of [Number.POSITIVE_INFINITY, 7, 1]) {
    it(`hmac_sha3_512 with CBOR (chunks of ${chunk})`, () => {
      const r = run(A, B, chunk);
      const sa = session(r.aFinal);
      const sb = session(r.bFinal);
      expect(sa).toMatchObject({
        peerNodeId: 'node-b',
        sendAuth: 'hmac_sha3_512',
        authMethod: 'hmac_sha3_512',
      });
      expect(sb).toMatchObject({
        peerNodeId: 'node-a',
        sendAuth: 'hmac_sha3_512',
        authMethod: 'hmac_sha3_512',
      });
      expect([sa.sendFraming, sa.recvFraming, sb.sendFraming, sb.recvFraming]).toEqual([
        'cbor',
        'cbor',
        'cbor',
        'cbor',
      ]);
      expect(sa.tls || sb.tls || sa.untrusted || sb.untrusted).toBe(false);
    });
  }

  it('cleartext: A offers only cleartext, B accepts it and answers with hmac', () => {
    const r = run({ ...A, authOffer: ['cleartext'] }, B);
    expect(session(r.bFinal).authMethod).toBe('cleartext');
    expect(session(r.aFinal).authMethod).toBe('hmac_sha3_512');
    expect(r.a.find((s) => s.kind === 'send')).toEqual({
      kind: 'send',
      text: 'cleartext;736861726564;cbor\n',
    });
  });

  it('json only', () => {
    const r = run({ ...A, framings: ['json'] }, B);
    const sa = session(r.aFinal);
    const sb = session(r.bFinal);
    expect([sa.sendFraming, sa.recvFraming, sb.sendFraming, sb.recvFraming]).toEqual([
      'json',
      'json',
      'json',
      'json',
    ]);
  });

  it('mixed: each side sends the first of the peer’s list', () => {
    const r = run({ ...A, framings: ['json', 'cbor'] }, { ...B, framings: ['cbor', 'json'] });
    const sa = session(r.aFinal);
    const sb = session(r.bFinal);
    expect([sa.sendFraming, sa.recvFraming]).toEqual(['cbor', 'json']);
    expect([sb.sendFraming, sb.recvFraming]).toEqual(['json', 'cbor']);
  });

  it('extension keys reach the peer', () => {
    const r = run({ ...A, extraKeys: { hb: '2' } }, B);
    expect(session(r.bFinal).peerGreeting.keys.get('hb')).toBe('2');
    expect(session(r.aFinal).peerGreeting.keys.has('hb')).toBe(false);
  });

  it('wrong secret fails on both sides', () => {
    const r = run(A, { ...B, secret: 'other' });
    expectFail(r.aFinal, 'ERR_AUTH_FAILED', 'authentication failure/shared secret mismatch');
    expectFail(r.bFinal, 'ERR_AUTH_FAILED', 'authentication failure/shared secret mismatch');
  });

  it('tls_sha3_512: both have a certificate, opposite roles, no secret needed', () => {
    const r = run({ ...A, secret: undefined, hasCert: true }, { ...B, secret: undefined, hasCert: true });
    const startA = r.a.find((s) => s.kind === 'startTls') as { client: boolean };
    const startB = r.b.find((s) => s.kind === 'startTls') as { client: boolean };
    expect(startA.client).toBe(!startB.client);
    const sa = session(r.aFinal);
    const sb = session(r.bFinal);
    expect(sa).toMatchObject({
      tls: true,
      sendAuth: 'tls_sha3_512',
      authMethod: 'tls_sha3_512',
      untrusted: false,
    });
    expect(sb).toMatchObject({ tls: true, sendAuth: 'tls_sha3_512', authMethod: 'tls_sha3_512' });
    expect(sa.tlsRole).toBe(startA.client ? 'client' : 'server');
    expect(sa.tlsRole).not.toBe(sb.tlsRole);
    expect(sa.tlsRole === 'client').toBe(sa.ownNonce < sb.ownNonce);
  });

  it('tls_anon: A offers only tls_anon, B marks A untrusted', () => {
    const r = run(
      { ...A, secret: undefined, hasCert: true, authOffer: ['tls_anon'] },
      { ...B, secret: undefined, hasCert: true },
    );
    expect(r.a).toContainEqual({ kind: 'send', text: 'tls_anon;;cbor\n' });
    const sb = session(r.bFinal);
    expect(sb).toMatchObject({ tls: true, authMethod: 'tls_anon', untrusted: true });
    expect(session(r.aFinal)).toMatchObject({
      tls: true,
      sendAuth: 'tls_anon',
      authMethod: 'tls_sha3_512',
      untrusted: false,
    });
  });

  it('only one side with a certificate: no TLS, the secret is used', () => {
    const r = run({ ...A, hasCert: true }, B);
    expect([...r.a, ...r.b].some((s) => s.kind === 'startTls')).toBe(false);
    expect(session(r.aFinal)).toMatchObject({ tls: false, authMethod: 'hmac_sha3_512' });
  });

  it('connecting to oneself', () => {
    const r = run(A, { ...B, nodeId: 'node-a' });
    expectFail(r.aFinal, 'ERR_SELF_CONNECT', 'I refuse to talk to myself');
    expectFail(r.bFinal, 'ERR_SELF_CONNECT', 'I refuse to talk to myself');
  });
});

// ---------------------------------------------------------------------------------------------
// Robustness

describe('arbitrary input never throws', () => {
  const capturedLines = caps.captures.flatMap((c) => [c.a.line1, c.b.line1]);

  /** A captured greeting with random edits applied to its fields. */
  const mutatedGreeting = fc
    .tuple(
      fc.constantFrom(...capturedLines),
      fc.array(
        fc.tuple(
          fc.nat(),
          fc.oneof(fc.constantFrom(';', '=', ',', '', '1', '0', 'aemp', 'tls=1.0', 'me/1', '\r')),
          fc.nat(3),
        ),
        { maxLength: 6 },
      ),
    )
    .map(([line, edits]) => {
      let s = line;
      for (const [pos, insert, del] of edits) {
        const p = pos % (s.length + 1);
        s = s.slice(0, p) + insert + s.slice(p + del);
      }
      return s;
    });

  const anyLine = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.string({ unit: 'binary', maxLength: 100 }),
    mutatedGreeting,
  );

  it('receive(): random and mutated greeting lines only ever give wait/send/startTls/fail', () => {
    fc.assert(
      fc.property(anyLine, anyLine, fc.boolean(), fc.boolean(), (l1, l2, hasCert, secret) => {
        const hs = local({
          hasCert,
          secret: secret ? SECRET : undefined,
          isConnected: (id) => id === 'busy',
        });
        const s1 = hs.receive(l1);
        expect(['wait', 'fail']).toContain(s1.kind);
        const s2 = hs.receive(l2);
        expect(['wait', 'send', 'startTls', 'fail']).toContain(s2.kind);
        if (s1.kind === 'fail') expect(s2).toBe(s1);
        if (s2.kind === 'fail') expect(AempError.is(s2.error)).toBe(true);
        if (s2.kind === 'startTls') expect(hs.tlsReady().kind).toBe('send');
        if (hs.state === 'auth') {
          const s3 = hs.receive(l1);
          expect(['done', 'fail']).toContain(s3.kind);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('feed(): random bytes only ever give send/startTls/done/fail steps', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 600 }),
            mutatedGreeting.map((s) => enc(`${s}\n`)),
          ),
          { maxLength: 6 },
        ),
        (chunks) => {
          const hs = local();
          for (const c of chunks) {
            if (hs.state === 'done' || hs.state === 'tls') break;
            for (const step of hs.feed(c)) expect(['send', 'startTls', 'done', 'fail']).toContain(step.kind);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Connection roles (relay protection) and the accepting side's auth order

describe('connection roles and auth order', () => {
  const D: HandshakeOptions = { ...A, role: 'dialled' };
  const ACC: HandshakeOptions = { ...B, role: 'accepted' };
  const kinds = (steps: HandshakeStep[]) => steps.map((s) => s.kind);

  it('each side states its role in the greeting', () => {
    expect(createHandshake(D).ownGreeting).toMatch(/;role=d(;|$)/);
    expect(createHandshake(ACC).ownGreeting).toMatch(/;role=a(;|$)/);
    expect(createHandshake(A).ownGreeting).not.toMatch(/;role=/);
  });

  it('the accepting side sends nothing until the dialler proved the secret, then its auth line before done', () => {
    const d = createHandshake(D);
    const acc = createHandshake(ACC);
    expect(acc.feed(enc(d.start()))).toEqual([]);
    expect(acc.state).toBe('auth');
    const dSteps = d.feed(enc(acc.start()));
    expect(kinds(dSteps)).toEqual(['send']);
    const accSteps = acc.feed(enc((dSteps[0] as { text: string }).text));
    expect(kinds(accSteps)).toEqual(['send', 'done']);
    expect((accSteps[0] as { text: string }).text).toMatch(/^hmac_sha3_512;[0-9a-f]{128};cbor\n$/);
    expect(session(d.feed(enc((accSteps[0] as { text: string }).text))[0])).toMatchObject({
      peerNodeId: 'node-b',
    });
    expect(session(accSteps[1])).toMatchObject({ peerNodeId: 'node-a', authMethod: 'hmac_sha3_512' });
  });

  it('greeting, nonce and auth line in one read: send, then done, rest intact', () => {
    const d = createHandshake(D);
    const acc = createHandshake(ACC);
    const dAuth = (d.feed(enc(acc.start()))[0] as { text: string }).text;
    const steps = acc.feed(enc(`${d.start()}${dAuth}FRAME`));
    expect(kinds(steps)).toEqual(['send', 'done']);
    expect(new TextDecoder().decode(acc.takeRest())).toBe('FRAME');
  });

  for (const chunk of [Number.POSITIVE_INFINITY, 5, 1]) {
    it(`dialled ↔ accepted succeeds fed in chunks of ${chunk}`, () => {
      const r = run(D, ACC, chunk);
      expect(session(r.aFinal).peerNodeId).toBe('node-b');
      expect(session(r.bFinal).peerNodeId).toBe('node-a');
      // The acceptor's only send comes right before its done.
      expect(kinds(r.b)).toEqual(['send', 'done']);
    });
  }

  it('a wrong secret from the dialler: the acceptor fails without ever sending a token', () => {
    const r = run({ ...D, secret: 'guess' }, ACC);
    expect(kinds(r.b)).toEqual(['fail']);
    expectFail(r.bFinal, 'ERR_AUTH_FAILED', 'authentication failure/shared secret mismatch');
  });

  it('an acceptor with TLS waits after tlsReady() and sends inside TLS after the peer’s line', () => {
    const tlsOpts = { secret: undefined, hasCert: true };
    const r = run({ ...D, ...tlsOpts }, { ...ACC, ...tlsOpts });
    expect(kinds(r.b)).toEqual(['startTls', 'wait', 'send', 'done']);
    expect(session(r.bFinal)).toMatchObject({ tls: true, authMethod: 'tls_sha3_512' });
    expect(session(r.aFinal)).toMatchObject({ tls: true, authMethod: 'tls_sha3_512' });
  });

  it('two accepting sides (a relay between two listeners) both refuse the same role', () => {
    const r = run({ ...A, role: 'accepted' }, ACC);
    const text = 'peer claims the same connection role as ours (relayed handshake?)';
    expectFail(r.aFinal, 'ERR_AUTH_FAILED', text, AuthError);
    expectFail(r.bFinal, 'ERR_AUTH_FAILED', text, AuthError);
    expect([...r.a, ...r.b].some((s) => s.kind === 'send')).toBe(false);
  });

  it('two dialling sides refuse each other too', () => {
    const r = run(D, { ...B, role: 'dialled' });
    expectFail(
      r.aFinal,
      'ERR_AUTH_FAILED',
      'peer claims the same connection role as ours (relayed handshake?)',
    );
    expectFail(
      r.bFinal,
      'ERR_AUTH_FAILED',
      'peer claims the same connection role as ours (relayed handshake?)',
    );
  });

  it('a role value other than d/a is refused (quoted, cut short)', () => {
    expectFail(
      local({ role: 'accepted' }).receiveAll(peerLine({ rest: ';role=x;provider=AE-2.02' }))[0],
      'ERR_BAD_GREETING',
      'peer states an invalid connection role "x"',
      ProtocolError,
    );
    expectFail(
      local({ role: 'dialled' }).receiveAll(peerLine({ rest: ';role' }))[0],
      'ERR_BAD_GREETING',
      'peer states an invalid connection role ""',
    );
    const long = `\u001b[2J${'y'.repeat(100)}`;
    const step = local().receiveAll(peerLine({ rest: `;role=${long}` }))[0];
    expect(step?.kind).toBe('fail');
    expect((step as { error: AempError }).error.message).toBe(
      `peer states an invalid connection role ${JSON.stringify(`${long.slice(0, 32)}…`)}`,
    );
  });

  it('a peer without a role (Perl) is accepted, in both roles', () => {
    for (const role of ['dialled', 'accepted'] as const) {
      const hs = local({ role });
      const l1 = peerLine();
      expect(hs.receiveAll(l1)).toEqual([]);
      const afterNonce = hs.receiveAll(PEER_NONCE);
      expect(kinds(afterNonce)).toEqual(role === 'dialled' ? ['send'] : []);
      const steps = hs.receiveAll(peerAuth(hs, l1));
      expect(kinds(steps)).toEqual(role === 'dialled' ? ['done'] : ['send', 'done']);
    }
  });

  it('strict_peers: a peer without a role is refused, one with the opposite role accepted', () => {
    for (const role of ['dialled', 'accepted', undefined] as const) {
      expectFail(
        local({ role, strictPeers: true }).receiveAll(peerLine())[0],
        'ERR_BAD_GREETING',
        'peer does not state its connection role (strict_peers)',
        ProtocolError,
      );
    }
    const hs = local({ role: 'accepted', strictPeers: true });
    expect(hs.receiveAll(peerLine({ rest: ';provider=AEMP-TS-0.1;role=d' }))).toEqual([]);
    expect(hs.state).toBe('nonce');
  });

  it('the Perl checks come first (own node ID before the role)', () => {
    expectFail(
      local({ role: 'accepted' }).receiveAll(peerLine({ id: 'me/1', rest: ';role=a' }))[0],
      'ERR_SELF_CONNECT',
      'I refuse to talk to myself',
    );
  });

  it('receive() is refused on an accepting handshake (its last line gives two steps)', () => {
    expect(() => local({ role: 'accepted' }).receive(peerLine())).toThrow(/receiveAll/);
    expect(local({ role: 'dialled' }).receive(peerLine())).toEqual({ kind: 'wait' });
  });

  it('feed(): random bytes into an accepting handshake only ever give send/done/fail, a send only before done', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }), (chunks) => {
        const hs = local({ role: 'accepted' });
        const all: HandshakeStep[] = [];
        for (const c of chunks) {
          if (hs.state === 'done' || hs.state === 'tls') break;
          all.push(...hs.feed(c));
        }
        const i = all.findIndex((s) => s.kind === 'send');
        if (i >= 0) expect(all[i + 1]?.kind).toBe('done');
      }),
      { numRuns: 300 },
    );
  });
});
