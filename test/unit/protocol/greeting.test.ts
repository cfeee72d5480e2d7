import { describe, expect, it } from 'vitest';
import { AempError } from '../../../src/errors.js';
import {
  buildGreeting,
  isSubProtocol,
  makeNonce,
  parseGreeting,
  perlInt,
  perlNumber,
  perlSplit,
} from '../../../src/protocol/greeting.js';
import caps from '../../fixtures/handshake/captures.json' with { type: 'json' };

function badArgument(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    expect(AempError.is(e) && e.code).toBe('ERR_BAD_ARGUMENT');
    return;
  }
  expect.fail('expected ERR_BAD_ARGUMENT');
}

describe('perlSplit', () => {
  it('behaves like split /;/', () => {
    expect(perlSplit('', ';')).toEqual([]);
    expect(perlSplit('a;b', ';')).toEqual(['a', 'b']);
    expect(perlSplit('a;;b;;', ';')).toEqual(['a', '', 'b']);
    expect(perlSplit(';a', ';')).toEqual(['', 'a']);
    expect(perlSplit(';;;', ';')).toEqual([]);
  });
});

describe('perlNumber / perlInt', () => {
  it.each([
    ['1', 1],
    ['1.0', 1],
    [' 1', 1],
    ['1 ', 1],
    ['+1', 1],
    ['1e0', 1],
    ['.1e1', 1],
    ['01', 1],
    ['1abc', 1],
    ['0', 0],
    ['2', 2],
    ['', 0],
    ['abc', 0],
    ['0x1', 0],
    ['-1', -1],
  ])('%j → %d', (s, n) => {
    expect(perlNumber(s)).toBe(n);
  });

  it('handles undefined, infinities and NaN', () => {
    expect(perlNumber(undefined)).toBe(0);
    expect(perlNumber('inf')).toBe(Number.POSITIVE_INFINITY);
    expect(perlNumber('-Infinity')).toBe(Number.NEGATIVE_INFINITY);
    expect(perlNumber('NaN')).toBeNaN();
  });

  it('int() truncates', () => {
    expect(perlInt('1.0')).toBe(1);
    expect(perlInt('1.9')).toBe(1);
    expect(perlInt('0.9')).toBe(0);
    expect(perlInt(undefined)).toBe(0);
  });
});

describe('parseGreeting', () => {
  const all = caps.captures.flatMap(
    (c) =>
      [
        [c.name, c.a],
        [c.name, c.b],
      ] as const,
  );

  for (const [name, side] of all) {
    it(`parses the captured greeting of ${side.nodeId} (${name})`, () => {
      const g = parseGreeting(side.line1);
      expect(g.line).toBe(side.line1);
      expect(g.proto).toBe('aemp');
      expect(g.version).toBe('1');
      expect(g.nodeId).toBe(side.nodeId);
      expect(g.authList.length).toBeGreaterThan(0);
      expect(g.auths).toBe(g.authList.join(','));
      expect(g.framings).toBe(g.framingList.join(','));
      expect(g.keys.get('provider')).toMatch(/./);
      if (side.nodeId === 'seed') {
        // Perl's hash order varies; the set of keys does not.
        expect(g.authList).toEqual(['tls_sha3_512', 'hmac_sha3_512', 'tls_anon', 'cleartext']);
        expect(g.framingList).toEqual(['cbor', 'json', 'storable']);
        expect(g.keys.get('provider')).toBe('AE-2.02');
        expect(g.keys.get('mproto')).toBe('1');
        expect(g.keys.get('gproto')).toBe('1');
        expect(g.keys.get('peeraddr')).toMatch(/^127\.0\.0\.1:\d+$/);
        expect(g.keys.has('tls')).toBe(false);
        expect([...g.keys.keys()].sort()).toEqual(['gproto', 'mproto', 'peeraddr', 'provider']);
      }
    });
  }

  it('tolerates missing fields, empty fields, odd pairs and duplicates like Perl', () => {
    const g = parseGreeting('aemp;1;n;a,,b,;json,cbor;x=1;=ignored;;bare;v=a=b;x=2;;;');
    expect(g.nodeId).toBe('n');
    expect(g.authList).toEqual(['a', '', 'b']);
    expect(g.framingList).toEqual(['json', 'cbor']);
    expect([...g.keys]).toEqual([
      ['x', '2'],
      ['bare', undefined],
      ['v', 'a=b'],
    ]);
    expect(g.keys.has('bare')).toBe(true);
  });

  it('gives empty strings for fields that are absent', () => {
    const g = parseGreeting('');
    expect([g.proto, g.version, g.nodeId, g.auths, g.framings]).toEqual(['', '', '', '', '']);
    expect(g.authList).toEqual([]);
    expect(g.keys.size).toBe(0);
    const h = parseGreeting('aemp;1;;;;;;');
    expect(h.nodeId).toBe('');
    expect(h.keys.size).toBe(0);
  });

  it('keeps an empty value distinct from a bare key', () => {
    const g = parseGreeting('aemp;1;n;a;b;k=;bare');
    expect(g.keys.get('k')).toBe('');
    expect(g.keys.get('bare')).toBeUndefined();
    expect(g.keys.has('bare')).toBe(true);
  });

  it('does not treat __proto__ specially', () => {
    const g = parseGreeting('aemp;1;n;a;b;__proto__=x;constructor');
    expect(g.keys.get('__proto__')).toBe('x');
    expect(g.keys.has('constructor')).toBe(true);
  });
});

describe('isSubProtocol', () => {
  it('matches ^aemp-\\w+$', () => {
    expect(isSubProtocol('aemp-dataconn')).toBe(true);
    expect(isSubProtocol('aemp-x_1')).toBe(true);
    expect(isSubProtocol('aemp')).toBe(false);
    expect(isSubProtocol('aemp-')).toBe(false);
    expect(isSubProtocol('aemp-a.b')).toBe(false);
    expect(isSubProtocol('xaemp-a')).toBe(false);
  });
});

describe('buildGreeting', () => {
  it('writes the fixed fields and the keys in a fixed order', () => {
    expect(
      buildGreeting({
        nodeId: 'ts1',
        auths: ['tls_sha3_512', 'hmac_sha3_512', 'tls_anon', 'cleartext'],
        framings: ['cbor', 'json'],
        peerAddr: '127.0.0.1:4040',
      }),
    ).toBe(
      'aemp;1;ts1;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json;provider=AEMP-TS-0.1;peeraddr=127.0.0.1:4040;mproto=1;gproto=1',
    );
  });

  it('reproduces the worked example of protocol.md §14 (plus mproto/gproto)', () => {
    const line = buildGreeting({
      nodeId: 'tsnode/Q7cX2mPz9K',
      auths: ['hmac_sha3_512', 'cleartext'],
      framings: ['cbor', 'json'],
      provider: 'TS-0.1',
      peerAddr: '127.0.0.1:4040',
    });
    expect(line).toBe(
      'aemp;1;tsnode/Q7cX2mPz9K;hmac_sha3_512,cleartext;cbor,json;provider=TS-0.1;peeraddr=127.0.0.1:4040;mproto=1;gproto=1',
    );
  });

  it('adds tls=1.0 only with a certificate, then the extension keys', () => {
    const base = { nodeId: 'n', auths: ['hmac_sha3_512'], framings: ['json'] };
    expect(buildGreeting(base)).toBe('aemp;1;n;hmac_sha3_512;json;provider=AEMP-TS-0.1;mproto=1;gproto=1');
    expect(buildGreeting({ ...base, tls: true, extraKeys: { hb: '2' } })).toBe(
      'aemp;1;n;hmac_sha3_512;json;provider=AEMP-TS-0.1;mproto=1;gproto=1;tls=1.0;hb=2',
    );
    expect(
      buildGreeting({
        ...base,
        extraKeys: [
          ['flag', undefined],
          ['provider', 'X'],
        ],
      }),
    ).toBe('aemp;1;n;hmac_sha3_512;json;provider=X;mproto=1;gproto=1;flag');
  });

  it('states the connection role (role=d / role=a) after tls, before the extension keys', () => {
    const base = { nodeId: 'n', auths: ['hmac_sha3_512'], framings: ['json'] };
    expect(buildGreeting({ ...base, tls: true, role: 'dialled', extraKeys: { hb: '2' } })).toBe(
      'aemp;1;n;hmac_sha3_512;json;provider=AEMP-TS-0.1;mproto=1;gproto=1;tls=1.0;role=d;hb=2',
    );
    expect(parseGreeting(buildGreeting({ ...base, role: 'accepted' })).keys.get('role')).toBe('a');
  });

  it('round-trips through parseGreeting', () => {
    const line = buildGreeting({
      nodeId: 'node/1',
      auths: ['hmac_sha3_512', 'cleartext'],
      framings: ['json', 'cbor'],
      peerAddr: '[::1]:4040',
      tls: true,
      extraKeys: { hb: '2', odd: 'a=b' },
    });
    const g = parseGreeting(line);
    expect(g.nodeId).toBe('node/1');
    expect(g.authList).toEqual(['hmac_sha3_512', 'cleartext']);
    expect(g.framingList).toEqual(['json', 'cbor']);
    expect(Object.fromEntries(g.keys)).toEqual({
      provider: 'AEMP-TS-0.1',
      peeraddr: '[::1]:4040',
      mproto: '1',
      gproto: '1',
      tls: '1.0',
      hb: '2',
      odd: 'a=b',
    });
  });

  it('rejects values that would break the line format', () => {
    const base = { nodeId: 'n', auths: ['hmac_sha3_512'], framings: ['json'] };
    badArgument(() => buildGreeting({ ...base, nodeId: 'a;b' }));
    badArgument(() => buildGreeting({ ...base, nodeId: 'a\nb' }));
    badArgument(() => buildGreeting({ ...base, nodeId: '' }));
    badArgument(() => buildGreeting({ ...base, auths: ['a,b'] }));
    badArgument(() => buildGreeting({ ...base, framings: [''] }));
    badArgument(() => buildGreeting({ ...base, extraKeys: { 'a=b': '1' } }));
    badArgument(() => buildGreeting({ ...base, extraKeys: { '': '1' } }));
    badArgument(() => buildGreeting({ ...base, extraKeys: { k: 'x;y' } }));
    badArgument(() => buildGreeting({ ...base, peerAddr: 'x\r' }));
    badArgument(() => buildGreeting({ ...base, extraKeys: { big: 'x'.repeat(4096) } }));
  });
});

describe('makeNonce', () => {
  it('is Base64 of 66 random bytes: 88 characters, no padding', () => {
    const a = makeNonce();
    const b = makeNonce();
    expect(a).toMatch(/^[A-Za-z0-9+/]{88}$/);
    expect(Buffer.from(a, 'base64').length).toBe(66);
    expect(a).not.toBe(b);
  });

  it('allows more bytes, refuses fewer than 32', () => {
    expect(Buffer.from(makeNonce(96), 'base64').length).toBe(96);
    badArgument(() => makeNonce(31));
  });

  it('matches the fixed nonces of protocol.md §14', () => {
    const own = Buffer.from(Array.from({ length: 66 }, (_, i) => i)).toString('base64');
    const peer = Buffer.from(Array.from({ length: 66 }, (_, i) => 0x80 + i)).toString('base64');
    expect(own).toBe(
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BB',
    );
    expect(peer).toBe(
      'gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2+v8DB',
    );
  });
});
