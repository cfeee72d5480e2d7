/**
 * Golden data: every frame captured from real AnyEvent::MP 2.02 nodes (test/fixtures/frames, copied
 * from shared/vectors) decodes to the recorded value — fed whole, byte by byte, split at every
 * boundary, and in the chunks the bytes really arrived in.
 */
import { describe, expect, it } from 'vitest';
import { createFrameEncoder } from '../../../src/protocol/frame-codec.js';
import { decodeChunks, toHex } from '../../fixtures/frames/decode.js';
import { goldenStreams, mismatch, parseRecorded } from '../../fixtures/frames/vectors.js';
import { chunkings, concat } from '../../helpers/chunks.js';

const streams = goldenStreams();

function check(got: unknown[][], expected: unknown[], perlFloats: boolean): void {
  expect(got.length).toBe(expected.length);
  for (let k = 0; k < expected.length; k++) {
    const d = mismatch(got[k], expected[k], perlFloats, `msg[${k}]`);
    if (d !== null) expect.fail(d);
  }
}

describe('golden captures', () => {
  it('are all loaded', () => {
    expect(streams.length).toBe(14);
    const frames = streams.reduce((n, s) => n + s.frames.length, 0);
    expect(frames).toBeGreaterThan(250);
    for (const s of streams) expect(concat(s.frames.map((f) => f.bytes))).toEqual(s.stream);
  });

  for (const s of streams) {
    describe(s.name, () => {
      const expected = s.frames.map((f) => parseRecorded(f.value));

      it(`decodes every ${s.format} frame alone, in every chunking`, () => {
        s.frames.forEach((f, k) => {
          for (const c of chunkings(f.bytes)) {
            const r = decodeChunks(s.format, c.chunks);
            expect(r.error, `frame ${k} ${c.name}`).toBeNull();
            expect(r.buffered).toBe(0);
            check(r.msgs, [expected[k]], s.perlFloats);
          }
        });
      });

      it('decodes the whole stream in every chunking', () => {
        for (const c of chunkings(s.stream)) {
          const r = decodeChunks(s.format, c.chunks);
          expect(r.error, c.name).toBeNull();
          expect(r.buffered).toBe(0);
          check(r.msgs, expected, s.perlFloats);
        }
      });

      it('decodes the stream in the chunks it arrived in', () => {
        const r = decodeChunks(s.format, s.arrival);
        expect(r.error).toBeNull();
        check(r.msgs, expected, s.perlFloats);
      });
    });
  }
});

describe('golden captures: exact value types', () => {
  const perl = streams.find((s) => s.name === 'node-port-cbor.txt S>P')!;
  const decoded = decodeChunks('cbor', [perl.stream]).msgs;

  it('64-bit extremes become bigint, floats stay numbers (step c2)', () => {
    const m = decoded.find((x) => x[0] === 'r6b')!;
    expect(m).toEqual([
      'r6b',
      '',
      0.30000000000000004,
      0.3333333333333333,
      2 ** 64,
      18446744073709551615n,
      -9223372036854775808n,
      '10',
      '5',
      '5',
      '1',
      '',
    ]);
  });

  it('byte-string map keys become plain object keys', () => {
    const m = decoded.find((x) => x[0] === 'r6')!;
    expect(m).toEqual(['r6', '', 1, 'two', [3], { k: 'v' }, null, 2.5, 1e20, -7]);
    expect(Object.getPrototypeOf(m[5])).toBe(Object.prototype);
  });
});

describe('golden captures: our encoder', () => {
  // The probe that recorded node-port-cbor.txt sends CBOR text strings; wherever a frame holds no
  // byte string our encoder must produce the same bytes.
  const probe = streams.find((s) => s.name === 'node-port-cbor.txt P>S')!;
  const enc = createFrameEncoder('cbor');

  it('re-encodes the text-string frames of the CBOR probe byte for byte', () => {
    let compared = 0;
    for (const f of probe.frames) {
      const r = decodeChunks('cbor', [f.bytes]);
      if (containsByteString(f.bytes)) continue;
      expect(toHex(enc.encode(r.msgs[0]!)), f.value).toBe(toHex(f.bytes));
      compared++;
    }
    expect(compared).toBeGreaterThan(40);
  });

  it('re-encodes the JSON probe frames byte for byte', () => {
    const json = streams.find((s) => s.name === 'node-port-json.txt P>S')!;
    const jenc = createFrameEncoder('json');
    for (const f of json.frames) {
      const r = decodeChunks('json', [f.bytes]);
      expect(Buffer.from(jenc.encode(r.msgs[0]!)).toString('utf8')).toBe(
        Buffer.from(f.bytes).toString('utf8'),
      );
    }
  });
});

/** True if the CBOR item sequence holds a byte string (walks heads; bytes are well formed). */
function containsByteString(b: Uint8Array): boolean {
  let p = 0;
  const len = (): number => {
    const info = b[p]! & 0x1f;
    p++;
    if (info < 24) return info;
    const size = 1 << (info - 24);
    let n = 0;
    for (let i = 0; i < size; i++) n = n * 256 + b[p + i]!;
    p += size;
    return n;
  };
  while (p < b.length) {
    const major = b[p]! >> 5;
    if (major === 2) return true;
    const n = len();
    if (major === 3) p += n;
  }
  return false;
}
