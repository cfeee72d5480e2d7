/** Property tests: encode → cut into random chunks → decode gives back the same messages. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/errors.js';
import { createFrameEncoder } from '../../../src/protocol/frame-codec.js';
import { decodeChunks, splitAt } from '../../fixtures/frames/decode.js';

const jsonLike = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' });
const message = fc.array(jsonLike, { maxLength: 6 });
const messages = fc.array(message, { minLength: 1, maxLength: 8 });

/** Random cut points of a buffer of length n. */
const cutsFor = (n: number) =>
  fc
    .uniqueArray(fc.integer({ min: 1, max: Math.max(1, n - 1) }), { maxLength: 12 })
    .map((c) => c.filter((x) => x < n).sort((a, b) => a - b));

/** JSON's view of a value: -0 becomes 0 (JSON has no negative zero). */
const normal = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

for (const format of ['cbor', 'json'] as const) {
  describe(`${format} round trip`, () => {
    const enc = createFrameEncoder(format);

    it('encodeBatch → random chunks → decode', () => {
      fc.assert(
        fc.property(
          messages.chain((msgs) => {
            const bytes = enc.encodeBatch(msgs);
            return fc.tuple(fc.constant(msgs), fc.constant(bytes), cutsFor(bytes.length));
          }),
          ([msgs, bytes, cuts]) => {
            const r = decodeChunks(format, splitAt(bytes, cuts));
            expect(r.error).toBeNull();
            expect(r.buffered).toBe(0);
            expect(normal(r.msgs)).toEqual(normal(msgs));
          },
        ),
        { numRuns: 300 },
      );
    });

    it('single encodes concatenated equal encodeBatch', () => {
      fc.assert(
        fc.property(messages, (msgs) => {
          const one = Buffer.concat(msgs.map((m) => Buffer.from(enc.encode(m))));
          expect(one.equals(Buffer.from(enc.encodeBatch(msgs)))).toBe(true);
        }),
        { numRuns: 100 },
      );
    });

    it('random bytes after valid frames: the valid frames arrive, errors are ProtocolErrors', () => {
      fc.assert(
        fc.property(messages, fc.uint8Array({ minLength: 1, maxLength: 64 }), (msgs, junk) => {
          const bytes = Buffer.concat([Buffer.from(enc.encodeBatch(msgs)), junk]);
          const r = decodeChunks(format, [bytes], { maxFrameBytes: 1 << 16 });
          if (r.error) expect(r.error).toBeInstanceOf(ProtocolError);
          expect(normal(r.msgs.slice(0, msgs.length))).toEqual(normal(msgs));
        }),
        { numRuns: 300 },
      );
    });
  });
}

describe('cbor integers', () => {
  const enc = createFrameEncoder('cbor');
  it('every integer in the 64-bit CBOR range round trips exactly (number when safe, else bigint)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }), (n) => {
        const r = decodeChunks('cbor', [enc.encode([n])]);
        const v = r.msgs[0]![0];
        if (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER))
          expect(v).toBe(Number(n));
        else expect(v).toBe(n);
      }),
      { numRuns: 500 },
    );
  });

  it('doubles round trip bit for bit', () => {
    fc.assert(
      fc.property(fc.double(), (d) => {
        const v = decodeChunks('cbor', [enc.encode([d])]).msgs[0]![0] as number;
        if (Number.isNaN(d)) expect(Number.isNaN(v)).toBe(true);
        else expect(Object.is(v, d === 0 ? 0 : d) || Object.is(v, d)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
