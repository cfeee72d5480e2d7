/**
 * The CBOR frame codec against cbor-x as an independent reference implementation: whatever
 * our encoder writes, cbor-x reads back as the same value; whatever cbor-x writes (text or
 * byte strings, every float width, 64-bit integers), our decoder reads as the same value.
 */
import { Decoder, Encoder } from 'cbor-x';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFrameEncoder } from '../../../src/protocol/frame-codec.js';
import { decodeChunks, splitAt } from '../../fixtures/frames/decode.js';

const ours = createFrameEncoder('cbor');
const reference = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const referenceDecoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Values both sides map the same way (no -0: our encoder writes it as the integer 0). */
const leaf = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: false }).filter((d) => !Object.is(d, -0)),
  fc.boolean(),
  fc.constant(null),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, leaf, tie('arr'), tie('obj')),
  arr: fc.array(tie('v'), { maxLength: 5 }),
  obj: fc.dictionary(
    fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'),
    tie('v'),
    { maxKeys: 5 },
  ),
})).v;
const message = fc.array(value, { minLength: 1, maxLength: 6 });

/**
 * cbor-x reads every 8-byte integer head as a bigint; the value is the same number. A string
 * whose characters all fit in one byte, not all ASCII, is written as a byte string (as Perl
 * writes its byte strings), which cbor-x reads as a Buffer: the same characters, one per byte.
 */
const numbers = (v: unknown): unknown =>
  typeof v === 'bigint'
    ? Number(v)
    : v instanceof Uint8Array
      ? Buffer.from(v).toString('latin1')
      : Array.isArray(v)
        ? v.map(numbers)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, numbers(x)]))
          : v;

describe('CBOR codec against cbor-x', () => {
  it('cbor-x decodes what we encode to the same value', () => {
    fc.assert(
      fc.property(message, (msg) => {
        expect(numbers(referenceDecoder.decode(ours.encode(msg)))).toEqual(msg);
      }),
      // A string of one-byte characters beyond ASCII, deep inside: a byte string on the wire.
      { numRuns: 400, examples: [[[{ '': { '': ['\u0080', 'caf\u00e9'] } }, []]]] },
    );
  });

  it('we decode what cbor-x encodes, whole and in random chunks', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 5 }).chain((msgs) => {
          const bytes = Buffer.concat(msgs.map((m) => reference.encode(m)));
          const cuts = fc
            .uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: 10 })
            .map((c) => c.filter((x) => x < bytes.length).sort((a, b) => a - b));
          return fc.tuple(fc.constant(msgs), fc.constant(bytes), cuts);
        }),
        ([msgs, bytes, cuts]) => {
          const r = decodeChunks('cbor', splitAt(bytes, cuts));
          expect(r.error).toBeNull();
          expect(r.msgs).toEqual(msgs);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('byte strings from cbor-x (as Perl sends them) arrive as strings', () => {
    const perlish = [Buffer.from('port'), Buffer.from('ping'), 7, Buffer.from('héllo', 'utf8')];
    const r = decodeChunks('cbor', [reference.encode(perlish)]);
    // One character per byte (the Perl value): the UTF-8 bytes of é are two characters.
    expect(r.msgs).toEqual([['port', 'ping', 7, 'h\u00c3\u00a9llo']]);
  });

  it('64-bit integers beyond 2**53 round-trip exactly with cbor-x in both directions', () => {
    const big = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n];
    const fromUs = new Decoder({ useRecords: false, int64AsType: 'bigint' } as never).decode(
      ours.encode(['n', ...big]),
    ) as unknown[];
    expect(fromUs.slice(1).map((x) => BigInt(x as bigint))).toEqual(big);
    const r = decodeChunks('cbor', [reference.encode(['n', ...big])]);
    expect(r.msgs).toEqual([['n', ...big]]);
  });

  it('every float width cbor-x may write decodes to the same number', () => {
    for (const x of [0.5, 1.1, -2.75, 3.4028234663852886e38, 1e-300, Number.POSITIVE_INFINITY]) {
      const r = decodeChunks('cbor', [reference.encode(['f', x])]);
      expect(r.msgs).toEqual([['f', x]]);
    }
    // Half precision (f9) is never written by cbor-x: check it with a hand-made frame.
    const half = decodeChunks('cbor', [Buffer.from('826166f93c00', 'hex')]);
    expect(half.msgs).toEqual([['f', 1]]);
  });
});
