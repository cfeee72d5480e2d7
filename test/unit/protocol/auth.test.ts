import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AuthError } from '../../../src/errors.js';
import {
  type AuthContext,
  chooseSendAuth,
  chooseSendFraming,
  cleartextHex,
  expectedAuthData,
  hmacSha3_512Hex,
  isAuthMethod,
  isTlsClient,
  isUsableFraming,
  ownFirst,
  peerFirst,
  secretBytes,
  sendAuthData,
  sha3_512Hex,
  tokensEqual,
  verifyAuthData,
  wantTls,
} from '../../../src/protocol/auth.js';
import caps from '../../fixtures/handshake/captures.json' with { type: 'json' };

const SECRET = secretBytes(caps.secret);

function ctx(
  own: { line1: string; line2: string },
  peer: { line1: string; line2: string },
  extra: Partial<AuthContext> = {},
): AuthContext {
  return { own, peer, secret: SECRET, tls: false, ...extra };
}

function split(auth: string): [string, string, string] {
  const [m = '', d = '', f = ''] = auth.split(';');
  return [m, d, f];
}

describe('golden tokens of the captures (secret ref-secret-42)', () => {
  for (const c of caps.captures) {
    for (const [me, other] of [
      [c.a, c.b],
      [c.b, c.a],
    ] as const) {
      it(`${c.name}: ${me.nodeId} sends its captured token and accepts ${other.nodeId}'s`, () => {
        const [myMethod, myData] = split(me.auth);
        const [peerMethod, peerData] = split(other.auth);
        const context = ctx(me, other);
        expect(sendAuthData(myMethod, context)).toBe(myData);
        expect(verifyAuthData(peerMethod, peerData, context)).toBeUndefined();
        expect(expectedAuthData(peerMethod, context)).toBe(peerData);
      });
    }
    it(`${c.name}: a flipped byte is rejected`, () => {
      const [method, data] = split(c.b.auth);
      const flipped = (data[0] === '0' ? '1' : '0') + data.slice(1);
      const err = verifyAuthData(method, flipped, ctx(c.a, c.b));
      expect(err).toBeInstanceOf(AuthError);
      expect(err?.code).toBe('ERR_AUTH_FAILED');
      expect(err?.message).toBe('authentication failure/shared secret mismatch');
    });
  }

  it('cleartext token is the hex of the secret', () => {
    expect(cleartextHex(SECRET!)).toBe('7265662d7365637265742d3432');
    expect(cleartextHex(secretBytes('geheim')!)).toBe('67656865696d');
  });
});

describe('worked example of protocol.md §14', () => {
  const ts = {
    line1:
      'aemp;1;tsnode/Q7cX2mPz9K;hmac_sha3_512,cleartext;cbor,json;provider=TS-0.1;peeraddr=127.0.0.1:4040',
    line2: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BB',
  };
  const perl = {
    line1:
      'aemp;1;seed1;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;peeraddr=127.0.0.1:51234;provider=AE-2.02;mproto=1;gproto=1',
    line2: 'gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2+v8DB',
  };
  const secret = secretBytes('s3cr3t-example');
  const TS_HMAC =
    '9c5da3bd86a1194258606bbbf2498f1db0bec9c47de156a735a6b869cad20aff737cfa39da52eb1515b4fcdb955a2dbb695360fb51266a2197d9e5262489310d';
  const P_HMAC =
    '94ed305073a1665f1f71f801fdd01d3d5b2137f97c39c7b1497fe9699d6913414d6aaf6a64a24563ce4a2bae1c7e2b47ab89be9138f7b5d63881779112390f51';
  const TS_TLS =
    'd28755068c2b61fc6ec98e5b844c3c2a4da5521e9fdcd5874719c7f0c6437568397526b934e6b98396d45de46fd145c2eadc501996405604de696533bae960d1';
  const P_TLS =
    'cb1baac5661326bec3547aab16bf4bdcf103c22037e83e42dfa0b449e68704474b3291fe45861f3c8c1a19ddbe2619084906d5f34b7829a012d9fff60c79aa8b';

  it('hmac_sha3_512 both ways', () => {
    const tsSide = { own: ts, peer: perl, secret, tls: false };
    const perlSide = { own: perl, peer: ts, secret, tls: false };
    expect(sendAuthData('hmac_sha3_512', tsSide)).toBe(TS_HMAC);
    expect(sendAuthData('hmac_sha3_512', perlSide)).toBe(P_HMAC);
    expect(verifyAuthData('hmac_sha3_512', P_HMAC, tsSide)).toBeUndefined();
    expect(verifyAuthData('hmac_sha3_512', TS_HMAC, perlSide)).toBeUndefined();
  });

  it('tls_sha3_512 both ways (own lines first), only with TLS', () => {
    const tsSide = { own: ts, peer: perl, tls: true };
    const perlSide = { own: perl, peer: ts, tls: true };
    expect(sendAuthData('tls_sha3_512', tsSide)).toBe(TS_TLS);
    expect(sendAuthData('tls_sha3_512', perlSide)).toBe(P_TLS);
    expect(verifyAuthData('tls_sha3_512', P_TLS, tsSide)).toBeUndefined();
    expect(verifyAuthData('tls_sha3_512', TS_TLS, perlSide)).toBeUndefined();
    expect(verifyAuthData('tls_sha3_512', P_TLS, { ...tsSide, tls: false })?.code).toBe('ERR_AUTH_FAILED');
  });

  it('cleartext, negotiation and TLS role', () => {
    expect(sendAuthData('cleartext', { own: ts, peer: perl, secret, tls: false })).toBe(
      '7333637233742d6578616d706c65',
    );
    const perlAuths = ['tls_sha3_512', 'hmac_sha3_512', 'tls_anon', 'cleartext'];
    expect(chooseSendAuth(perlAuths, ['hmac_sha3_512', 'cleartext'], false)).toBe('hmac_sha3_512');
    expect(chooseSendFraming(['cbor', 'json', 'storable'], ['cbor', 'json'])).toBe('cbor');
    expect(chooseSendAuth(['hmac_sha3_512', 'cleartext'], ['tls_sha3_512', 'hmac_sha3_512'], false)).toBe(
      'hmac_sha3_512',
    );
    expect(isTlsClient(ts.line2, perl.line2)).toBe(true);
    expect(isTlsClient(perl.line2, ts.line2)).toBe(false);
  });

  it('OWN_FIRST / PEER_FIRST layout', () => {
    const dec = (b: Uint8Array) => new TextDecoder().decode(b);
    expect(dec(ownFirst(ts, perl))).toBe(`${ts.line1}\n${ts.line2}\n${perl.line1}\n${perl.line2}\n`);
    expect(dec(peerFirst(ts, perl))).toBe(`${perl.line1}\n${perl.line2}\n${ts.line1}\n${ts.line2}\n`);
  });
});

describe('sendAuthData', () => {
  const own = { line1: 'aemp;1;a;x;cbor', line2: 'n1' };
  const peer = { line1: 'aemp;1;b;x;cbor', line2: 'n2' };

  it('with TLS only tls_anon and tls_sha3_512 can be sent', () => {
    expect(sendAuthData('tls_anon', ctx(own, peer, { tls: true }))).toBe('');
    const err = sendAuthData('hmac_sha3_512', ctx(own, peer, { tls: true }));
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe('ERR_UNSUPPORTED_AUTH');
    expect((err as AuthError).message).toBe('hmac_sha3_512: fatal, selected unsupported snd auth method');
  });

  it('without TLS a secret is needed, and tls_* cannot be sent', () => {
    expect((sendAuthData('tls_anon', ctx(own, peer)) as AuthError).message).toBe(
      'tls_anon: fatal, selected unsupported snd auth method',
    );
    const none = sendAuthData('hmac_sha3_512', ctx(own, peer, { secret: undefined })) as AuthError;
    expect(none.code).toBe('ERR_NO_CREDENTIALS');
    expect(none.message).toBe('unable to handshake TLS and no shared secret configured');
    expect(
      (sendAuthData('hmac_sha3_512', ctx(own, peer, { secret: new Uint8Array(0) })) as AuthError).code,
    ).toBe('ERR_NO_CREDENTIALS');
  });
});

describe('expectedAuthData / verifyAuthData', () => {
  const own = { line1: 'aemp;1;a;x;cbor', line2: 'n1' };
  const peer = { line1: 'aemp;1;b;x;cbor', line2: 'n2' };

  it('methods that cannot succeed here are unmatchable, unknown ones are unsupported', () => {
    expect(expectedAuthData('hmac_sha3_512', ctx(own, peer, { secret: undefined }))).toBeNull();
    expect(expectedAuthData('cleartext', ctx(own, peer, { secret: undefined }))).toBeNull();
    expect(expectedAuthData('tls_sha3_512', ctx(own, peer))).toBeNull();
    expect(expectedAuthData('tls_anon', ctx(own, peer))).toBeNull();
    expect(expectedAuthData('tls_anon', ctx(own, peer, { tls: true }))).toBe('');
    expect(expectedAuthData('hmac_md6_64_256', ctx(own, peer))).toBeUndefined();
    // Perl would accept `cleartext;;` without a secret (hex of undef is ""); we do not.
    expect(verifyAuthData('cleartext', '', ctx(own, peer, { secret: undefined }))?.code).toBe(
      'ERR_AUTH_FAILED',
    );
    expect(verifyAuthData('tls_anon', '', ctx(own, peer))?.code).toBe('ERR_AUTH_FAILED');
    expect(verifyAuthData('tls_anon', '', ctx(own, peer, { tls: true }))).toBeUndefined();
    const unknown = verifyAuthData('hmac_md6_64_256', 'x', ctx(own, peer));
    expect(unknown?.code).toBe('ERR_UNSUPPORTED_AUTH');
    expect(unknown?.message).toBe('hmac_md6_64_256: fatal, selected unsupported rcv auth method');
  });

  it('uppercase hex does not match (Perl compares strings)', () => {
    const good = expectedAuthData('hmac_sha3_512', ctx(own, peer)) as string;
    expect(verifyAuthData('hmac_sha3_512', good, ctx(own, peer))).toBeUndefined();
    expect(verifyAuthData('hmac_sha3_512', good.toUpperCase(), ctx(own, peer))?.code).toBe('ERR_AUTH_FAILED');
    expect(verifyAuthData('hmac_sha3_512', good.slice(1), ctx(own, peer))?.code).toBe('ERR_AUTH_FAILED');
  });
});

describe('hash primitives: the portable and the OpenSSL implementation agree', () => {
  it('HMAC-SHA3-512 and SHA3-512 for random keys (also longer than the 72-byte block) and data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 300 }), (key, data) => {
        const portable = hmacSha3_512Hex(key, data, false);
        expect(portable).toBe(createHmac('sha3-512', key).update(data).digest('hex'));
        expect(hmacSha3_512Hex(key, data, true)).toBe(portable);
        expect(hmacSha3_512Hex(key, data)).toBe(portable);
        const digest = sha3_512Hex(data, false);
        expect(digest).toBe(createHash('sha3-512').update(data).digest('hex'));
        expect(sha3_512Hex(data, true)).toBe(digest);
        expect(sha3_512Hex(data)).toBe(digest);
      }),
      { numRuns: 200 },
    );
  });
});

describe('tokensEqual', () => {
  it('compares exactly', () => {
    expect(tokensEqual('abc', 'abc')).toBe(true);
    expect(tokensEqual('', '')).toBe(true);
    expect(tokensEqual('abc', 'abd')).toBe(false);
    expect(tokensEqual('abc', 'abcd')).toBe(false);
    expect(tokensEqual('', 'a')).toBe(false);
  });
});

describe('negotiation helpers', () => {
  it('chooseSendAuth walks the peer list, skipping tls_* without TLS', () => {
    const perl = ['tls_sha3_512', 'hmac_sha3_512', 'tls_anon', 'cleartext'];
    expect(chooseSendAuth(perl, ['tls_sha3_512', 'hmac_sha3_512'], false)).toBe('hmac_sha3_512');
    expect(chooseSendAuth(perl, ['tls_sha3_512', 'hmac_sha3_512'], true)).toBe('tls_sha3_512');
    expect(chooseSendAuth(perl, ['hmac_sha3_512', 'tls_anon'], true)).toBe('hmac_sha3_512');
    expect(chooseSendAuth(perl, ['tls_anon'], false)).toBeUndefined();
    expect(chooseSendAuth(perl, ['cleartext'], false)).toBe('cleartext');
    expect(chooseSendAuth(['cleartext'], ['tls_sha3_512', 'hmac_sha3_512'], true)).toBeUndefined();
    expect(chooseSendAuth([], ['hmac_sha3_512'], true)).toBeUndefined();
  });

  it('chooseSendFraming walks the peer list', () => {
    expect(chooseSendFraming(['json', 'cbor'], ['cbor', 'json'])).toBe('json');
    expect(chooseSendFraming(['storable', 'cbor'], ['json', 'cbor'])).toBe('cbor');
    expect(chooseSendFraming(['storable'], ['cbor', 'json'])).toBeUndefined();
  });

  it('wantTls needs an own certificate and int(peer tls) == 1', () => {
    expect(wantTls(true, '1.0')).toBe(true);
    expect(wantTls(true, '1')).toBe(true);
    expect(wantTls(true, '1.9')).toBe(true);
    expect(wantTls(true, '2')).toBe(false);
    expect(wantTls(true, '0.5')).toBe(false);
    expect(wantTls(true, 'yes')).toBe(false);
    expect(wantTls(true, undefined)).toBe(false);
    expect(wantTls(false, '1.0')).toBe(false);
  });

  it('isTlsClient compares the nonce lines byte-wise', () => {
    expect(isTlsClient('A', 'a')).toBe(true);
    expect(isTlsClient('a', 'A')).toBe(false);
    expect(isTlsClient('ab', 'abc')).toBe(true);
    expect(isTlsClient('x', 'x')).toBe(false);
    expect(isTlsClient('z', 'ä')).toBe(true);
  });

  it('name predicates and secret conversion', () => {
    expect(isAuthMethod('tls_anon')).toBe(true);
    expect(isAuthMethod('hmac_md6_64_256')).toBe(false);
    expect(isUsableFraming('cbor')).toBe(true);
    expect(isUsableFraming('storable')).toBe(false);
    expect(secretBytes('')).toBeUndefined();
    expect(secretBytes(undefined)).toBeUndefined();
    expect(secretBytes(new Uint8Array([1]))).toEqual(new Uint8Array([1]));
  });
});
