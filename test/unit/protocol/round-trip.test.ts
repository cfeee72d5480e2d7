/**
 * Values through each framing that can carry them: encode → decode is the identity, and Perl's
 * own frames (shared/vectors, copied to test/fixtures/frames/perl-values.ts) decode to the Perl
 * value and encode back so that Perl reads the same value (protocol.md §8, design.md §7).
 * JSON cannot carry NaN or ±Infinity (JSON.stringify writes null; JSON::XS itself writes `nan` /
 * `inf`, which no JSON parser reads) nor -0 (written as 0; JSON::XS reads "-0" as the integer 0).
 */
import { describe, expect, it } from 'vitest';
import { createFrameDecoder, createFrameEncoder } from '../../../src/protocol/frame-codec.js';
import { byteString, bytesOf, utf8Bytes, utf8Text } from '../../../src/protocol/text.js';
import {
  PERL_CBOR_R6,
  PERL_CBOR_R6B,
  PERL_JSON_R6,
  PERL_JSON_R6B,
} from '../../fixtures/frames/perl-values.js';

type Fmt = 'cbor' | 'json';

function decodeAll(fmt: Fmt, bytes: Uint8Array): unknown[][] {
  const out: unknown[][] = [];
  createFrameDecoder(fmt).push(bytes, (m) => out.push(m));
  return out;
}

function roundTrip(fmt: Fmt, msg: unknown[]): unknown[] {
  const got = decodeAll(fmt, Buffer.from(createFrameEncoder(fmt).encode(msg)));
  expect(got).toHaveLength(1);
  return got[0]!;
}

const allBytes = byteString(Uint8Array.from({ length: 256 }, (_, i) => i));
const strings: string[] = [
  '',
  'ascii',
  allBytes,
  ...Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)),
  '\u00c3\u00a9', // Perl's 2-byte string "\xC3\xA9"
  'é',
  '€uro',
  '😀 non-BMP \u{10ffff}',
  `${'x'.repeat(300)}\u00e9`,
  `${'x'.repeat(300)}\u20ac`,
  `${allBytes}€`,
];

// Every CBOR integer width boundary, ±2**53±1, ±(2**64-1) and the 64-bit signed extremes.
const ints: (number | bigint)[] = [];
for (const b of [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1])
  ints.push(b, -1 - b, ...(b === 0 ? [] : [-b]));
ints.push(2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n), -(2n ** 53n) - 1n, 2n ** 64n - 1n, -(2n ** 64n));
ints.push(2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n, -(2n ** 64n) - 1n, 2n ** 100n);

const floats = [
  0.5,
  2.5,
  0.1 + 0.2,
  1 / 3,
  1e20,
  2 ** 64,
  1.84467440737096e19,
  1e300,
  5e-324,
  -1e20,
  1733489512.12345,
];
const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0];

const nested: unknown[] = [
  [],
  {},
  [[], {}, [[[]]]],
  { a: [1, { b: null }], '\u00c3\u00a9': 'k', '€': ['x'], '': true },
  [true, false, null],
  { deep: [{ x: [2n ** 64n - 1n, 1e20, allBytes] }] },
];

describe('round trip: every value through every framing that carries it', () => {
  for (const fmt of ['cbor', 'json'] as const) {
    it(`${fmt}: strings (every byte 0–255, non-BMP, long, mixed) come back unchanged`, () => {
      expect(roundTrip(fmt, ['s', ...strings])).toEqual(['s', ...strings]);
    });

    it(`${fmt}: integers at every CBOR width, ±2**53±1, ±(2**64-1) exact`, () => {
      const got = roundTrip(fmt, ['i', ...ints]);
      expect(got).toEqual(['i', ...ints]);
      // bigint exactly where CBOR makes one (beyond ±(2**53-1)), number elsewhere
      for (let k = 0; k < ints.length; k++) expect(typeof got[k + 1]).toBe(typeof ints[k]);
    });

    it(`${fmt}: floats, incl. 1e20 and 2**64, keep their value`, () => {
      expect(roundTrip(fmt, ['f', ...floats])).toEqual(['f', ...floats]);
    });

    it(`${fmt}: nested arrays and maps, empty containers, booleans, null`, () => {
      expect(roundTrip(fmt, ['n', ...nested])).toEqual(['n', ...nested]);
    });
  }

  it('cbor: NaN, ±Infinity and -0 come back; json writes null, null, null and 0', () => {
    const got = roundTrip('cbor', ['x', ...special]);
    expect(Number.isNaN(got[1])).toBe(true);
    expect(got.slice(2, 4)).toEqual([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    expect(Object.is(got[4], -0)).toBe(true);
    expect(Buffer.from(createFrameEncoder('json').encode(['x', ...special])).toString()).toBe(
      '["x",null,null,null,0]',
    );
  });

  it('the two framings agree on what a Perl byte string is', () => {
    // Perl's "\xC3\xA9": CBOR byte string c3 a9; JSON "Ã©" (its two code points, UTF-8 encoded)
    const cbor = decodeAll('cbor', Buffer.from('824178' + '42c3a9', 'hex'))[0];
    const json = decodeAll('json', Buffer.from('["x","\u00c3\u00a9"]', 'utf8'))[0];
    expect(cbor).toEqual(['x', '\u00c3\u00a9']);
    expect(json).toEqual(cbor);
    // and CBOR sends it back as the same byte string
    expect(Buffer.from(createFrameEncoder('cbor').encode(cbor!)).toString('hex')).toBe('826178' + '42c3a9');
  });
});

describe('round trip: frames captured from Perl 2.02', () => {
  it('CBOR replies decode to the Perl values and encode back to the same values and numbers', () => {
    const r6 = decodeAll('cbor', Buffer.from(PERL_CBOR_R6, 'hex'))[0]!;
    expect(r6).toEqual(['r6', '', 1, 'two', [3], { k: 'v' }, null, 2.5, 1e20, -7]);
    const r6b = decodeAll('cbor', Buffer.from(PERL_CBOR_R6B, 'hex'))[0]!;
    expect(r6b).toEqual([
      'r6b',
      '',
      0.1 + 0.2,
      1 / 3,
      2 ** 64,
      18446744073709551615n,
      -9223372036854775808n,
      '10',
      '5',
      '5',
      '1',
      '',
    ]);
    for (const [msg, perlHex] of [
      [r6, PERL_CBOR_R6],
      [r6b, PERL_CBOR_R6B],
    ] as const) {
      const ours = Buffer.from(createFrameEncoder('cbor').encode(msg)).toString('hex');
      expect(decodeAll('cbor', Buffer.from(ours, 'hex'))).toEqual([msg]);
      // numbers go out in Perl's own encoding (float32 2.5 and 2**64, float64 1e20, 64-bit ints)
      for (const n of [
        'fa40200000',
        'fb4415af1d78b58c40',
        'fa5f800000',
        '1bffffffffffffffff',
        '3b7fffffffffffffff',
      ])
        expect(ours.includes(n)).toBe(perlHex.includes(n));
    }
  });

  it('JSON replies come back byte for byte (1e+20, 1.84467440737096e+19, 64-bit integers)', () => {
    for (const text of [PERL_JSON_R6, PERL_JSON_R6B]) {
      const msgs = decodeAll('json', Buffer.from(text));
      expect(Buffer.from(createFrameEncoder('json').encode(msgs[0]!)).toString()).toBe(text);
    }
    const r6b = decodeAll('json', Buffer.from(PERL_JSON_R6B))[0]!;
    expect(r6b.slice(4, 7)).toEqual([1.84467440737096e19, 18446744073709551615n, -9223372036854775808n]);
  });
});

describe('byte-string helpers', () => {
  it('utf8Text reads a byte string as UTF-8, and leaves anything else alone', () => {
    expect(utf8Text('\u00c3\u00a9')).toBe('é');
    expect(utf8Text('\u00e2\u0082\u00acuro')).toBe('€uro');
    expect(utf8Text('plain')).toBe('plain');
    expect(utf8Text('\u00e9t\u00e9')).toBe('\u00e9t\u00e9'); // not valid UTF-8
    expect(utf8Text('€')).toBe('€'); // already text
  });

  it('utf8Bytes, bytesOf and byteString', () => {
    expect(utf8Bytes('é€')).toBe('\u00c3\u00a9\u00e2\u0082\u00ac');
    expect(utf8Text(utf8Bytes('😀 é'))).toBe('😀 é');
    expect([...bytesOf('\u00c3\u00a9')]).toEqual([0xc3, 0xa9]);
    expect(byteString(bytesOf(allBytes))).toBe(allBytes);
    expect(() => bytesOf('€')).toThrow(/above 0xFF/);
    // what utf8Bytes makes goes out as a CBOR byte string of the UTF-8 bytes
    expect(Buffer.from(createFrameEncoder('cbor').encode(['x', utf8Bytes('é')])).toString('hex')).toBe(
      '826178' + '42c3a9',
    );
  });
});
