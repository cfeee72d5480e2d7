import { describe, expect, it } from 'vitest';
import { AempError, ProtocolError } from '../../../src/errors.js';
import { CHUNK_BYTES } from '../../../src/protocol/cbor-encode.js';
import { createFrameDecoder, createFrameEncoder } from '../../../src/protocol/frame-codec.js';
import { decodeChunks, toHex } from '../../fixtures/frames/decode.js';
import { chunkings, concat, hex } from '../../helpers/chunks.js';

const enc = createFrameEncoder('cbor');
/** The timestamp Perl sent in cbor-session (fb 41 da c0 97 7e 4a 47 cc). */
const T1 = Buffer.from('41dac0977e4a47cc', 'hex').readDoubleBE(0);

/** Decodes one hex frame in every chunking; all must give the same single message. */
function decode1(h: string): unknown[] {
  const bytes = hex(h);
  let first: unknown[] | undefined;
  for (const c of chunkings(bytes)) {
    const r = decodeChunks('cbor', c.chunks);
    if (r.error) throw r.error;
    expect(r.msgs.length, c.name).toBe(1);
    expect(r.buffered).toBe(0);
    if (first === undefined) first = r.msgs[0];
    else expect(r.msgs[0], c.name).toEqual(first);
  }
  return first!;
}

/** The error a single hex input produces (whole and byte by byte must agree on the code). */
function errorOf(h: string, opts?: { maxFrameBytes?: number; maxDepth?: number }): ProtocolError {
  const bytes = hex(h);
  const whole = decodeChunks('cbor', [bytes], opts);
  const bytewise = decodeChunks(
    'cbor',
    [...bytes].map((b) => Uint8Array.of(b)),
    opts,
  );
  expect(whole.error).toBeInstanceOf(ProtocolError);
  expect(bytewise.error).toBeInstanceOf(ProtocolError);
  expect(bytewise.error!.code).toBe(whole.error!.code);
  return whole.error as ProtocolError;
}

const encHex = (msg: readonly unknown[]): string => toHex(enc.encode(msg));

describe('CBOR decoder: protocol.md §14 examples', () => {
  it('byte-string and text-string g_global decode alike', () => {
    expect(decode1('82 40 48 67 5f 67 6c 6f 62 61 6c')).toEqual(['', 'g_global']);
    expect(decode1('82 60 68 67 5f 67 6c 6f 62 61 6c')).toEqual(['', 'g_global']);
  });

  it('g_slave, mon1 and an eval reply', () => {
    expect(
      decode1(
        '83 60 67 67 5f 73 6c 61 76 65 a1 62 27 6c a1 71 74 73 6e 6f 64 65 2f 51 37 63 58 32 6d 50 7a 39 4b 81 6e 31 32 37 2e 30 2e 30 2e 31 3a 34 30 34 31',
      ),
    ).toEqual(['', 'g_slave', { "'l": { 'tsnode/Q7cX2mPz9K': ['127.0.0.1:4041'] } }]);
    expect(decode1('83 60 64 6d 6f 6e 31 61 62')).toEqual(['', 'mon1', 'b']);
    expect(decode1('82 61 62 40')).toEqual(['b', '']);
  });
});

describe('CBOR decoder: strings and maps', () => {
  it('byte strings decode one character per byte (Latin-1, the Perl value), valid UTF-8 or not', () => {
    expect(decode1('81 47 e2 82 ac 75 72 6f 21')).toEqual(['\u00e2\u0082\u00acuro!']);
    expect(decode1('81 42 c3 a9')).toEqual(['\u00c3\u00a9']);
    expect(decode1('81 41 ff')).toEqual(['\u00ff']);
    expect(decode1('81 43 e9 74 e9')).toEqual(['été']);
    // long (non-fast-path) byte strings too
    const long = Buffer.concat([Buffer.from('x'.repeat(40)), Buffer.from([0xe9])]);
    expect(decode1(`81 58 29 ${long.toString('hex')}`)).toEqual([`${'x'.repeat(40)}é`]);
    expect(decode1('82 43 ef bf bd 58 14 ' + Buffer.from(`${'z'.repeat(17)}\ufffd`).toString('hex'))).toEqual(
      ['\u00ef\u00bf\u00bd', `${'z'.repeat(17)}\u00ef\u00bf\u00bd`],
    );
    expect(decode1('81 58 12 ' + Buffer.from('z'.repeat(17)).toString('hex') + 'ed')).toEqual([
      `${'z'.repeat(17)}\u00ed`,
    ]);
    const longUtf8 = Buffer.from(`${'y'.repeat(30)}€`);
    expect(decode1(`81 58 ${longUtf8.length.toString(16)} ${longUtf8.toString('hex')}`)).toEqual([
      longUtf8.toString('latin1'),
    ]);
  });

  it('text strings of every header width', () => {
    for (const n of [0, 1, 5, 15, 16, 17, 23, 24, 100, 255, 256, 70000]) {
      const s = 'abcdefghijklmnopqrstuvwxyz'.repeat(Math.ceil(n / 26) + 1).slice(0, n);
      const bytes = enc.encode([s]);
      expect(decodeChunks('cbor', [bytes]).msgs).toEqual([[s]]);
    }
    expect(decode1('81 66 e2 82 ac 75 72 6f')).toEqual(['€uro']);
    expect(decode1('81 64 f0 9f 98 80')).toEqual(['😀']);
  });

  it('short strings decode right however often they come and whatever shares their cache slot', () => {
    // Far more distinct short strings than the decoder keeps (4,096), between non-ASCII ones of
    // the same lengths: every slot is taken and reused. Each batch comes three times, as text,
    // as bytes (as Perl sends them) and as text again: a string is cached when it comes a
    // second time and handed out from the cache the third time, unless another took its slot.
    const strings: string[] = [];
    for (let i = 0; i < 12_000; i++) {
      const s = `${i.toString(36)}~${(i * 7919).toString(16)}`.slice(0, 2 + (i % 15));
      strings.push(s, `é${s}`.slice(0, s.length), s.toUpperCase(), `${s}z`);
    }
    // Strings alike in their first and last four bytes (one slot for all) and in their length.
    for (let i = 0; i < 400; i++) strings.push(`abcd${String(i % 200).padStart(4, '0')}wxyz`);
    const asBytes = (batch: string[]) =>
      Buffer.concat([
        Buffer.from([0x99, batch.length >> 8, batch.length & 0xff]),
        ...batch.map((s) => {
          const b = Buffer.from(s, 'latin1');
          return Buffer.concat([Buffer.from([0x40 | b.length]), b]);
        }),
      ]);
    for (const order of [strings, [...strings].reverse()]) {
      for (let i = 0; i < order.length; i += 500) {
        const batch = order.slice(i, i + 500);
        expect(decodeChunks('cbor', [enc.encode(batch)]).msgs).toEqual([batch]);
        expect(decodeChunks('cbor', [asBytes(batch)]).msgs).toEqual([batch]);
        expect(decodeChunks('cbor', [enc.encode(batch)]).msgs).toEqual([batch]);
      }
    }
  });

  it('invalid UTF-8 in a text string becomes U+FFFD instead of failing', () => {
    expect(decode1('81 62 61 ff')).toEqual(['a\ufffd']);
  });

  it('maps with byte-string keys (as Perl sends them) become plain objects', () => {
    const m = decode1('82 40 a2 41 6e a1 41 6d 80 42 6b 32 f6');
    expect(m).toEqual(['', { n: { m: [] }, k2: null }]);
    expect(Object.getPrototypeOf(m[1])).toBe(Object.prototype);
    expect(decode1('81 a1 58 20 ' + Buffer.from('k'.repeat(32)).toString('hex') + ' 01')).toEqual([
      { ['k'.repeat(32)]: 1 },
    ]);
  });

  it('numeric, boolean and null map keys are stringified; container keys are rejected', () => {
    expect(decode1('81 a3 01 02 20 03 f5 04')).toEqual([{ '1': 2, '-1': 3, true: 4 }]);
    expect(errorOf('81 a1 80 01').code).toBe('ERR_BAD_FRAME');
  });

  it('a "__proto__" key is an own property, not a prototype change', () => {
    const m = decode1(`81 a1 49 ${Buffer.from('__proto__').toString('hex')} a1 41 78 01`);
    const o = m[0] as Record<string, unknown>;
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(Object.keys(o)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(o, '__proto__')?.value).toEqual({ x: 1 });
  });
});

describe('CBOR decoder: numbers and simple values', () => {
  it('integers of every width', () => {
    expect(decode1('89 00 17 18 18 18 ff 19 01 00 1a 00 01 00 00 1a ff ff ff ff 20 3a ff ff ff ff')).toEqual([
      0, 23, 24, 255, 256, 65536, 4294967295, -1, -4294967296,
    ]);
  });

  it('64-bit integers: safe ones as numbers, the rest as bigint (never throws)', () => {
    expect(decode1('81 1b ff ff ff ff ff ff ff ff')).toEqual([18446744073709551615n]);
    expect(decode1('81 3b 7f ff ff ff ff ff ff ff')).toEqual([-9223372036854775808n]);
    expect(decode1('81 3b ff ff ff ff ff ff ff ff')).toEqual([-18446744073709551616n]);
    expect(decode1('81 1b 00 00 00 01 00 00 00 00')).toEqual([4294967296]);
    expect(decode1('81 3b 00 00 00 01 00 00 00 00')).toEqual([-4294967297]);
    expect(decode1('81 1b 00 1f ff ff ff ff ff ff')).toEqual([Number.MAX_SAFE_INTEGER]);
    expect(decode1('81 1b 00 20 00 00 00 00 00 00')).toEqual([2n ** 53n]);
    expect(decode1('81 3b 00 1f ff ff ff ff ff fe')).toEqual([Number.MIN_SAFE_INTEGER]);
    expect(decode1('81 3b 00 1f ff ff ff ff ff ff')).toEqual([-(2n ** 53n)]);
    expect(decode1('81 1b 00 00 00 00 00 00 00 05')).toEqual([5]);
  });

  it('bignum tags become integers', () => {
    expect(decode1('81 c2 49 01 00 00 00 00 00 00 00 00')).toEqual([2n ** 64n]);
    expect(decode1('81 c3 49 01 00 00 00 00 00 00 00 00')).toEqual([-1n - 2n ** 64n]);
    expect(decode1('81 c2 41 05')).toEqual([5]);
    expect(decode1('81 c2 40')).toEqual([0]);
  });

  it('half, single and double floats', () => {
    expect(decode1('88 f9 3c 00 f9 c0 00 f9 7c 00 f9 fc 00 f9 00 01 f9 7b ff f9 80 00 f9 35 55')).toEqual([
      1,
      -2,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      2 ** -24,
      65504,
      -0,
      0.333251953125,
    ]);
    expect(Number.isNaN(decode1('81 f9 7e 00')[0])).toBe(true);
    expect(decode1('83 fa 40 20 00 00 fa 5f 80 00 00 fa 7f 80 00 00')).toEqual([
      2.5,
      2 ** 64,
      Number.POSITIVE_INFINITY,
    ]);
    expect(
      decode1('83 fb 3f d3 33 33 33 33 33 34 fb 44 15 af 1d 78 b5 8c 40 fb 41 da c0 97 7e 4a 47 cc'),
    ).toEqual([0.1 + 0.2, 1e20, T1]);
  });

  it('simple values', () => {
    const m = decode1('86 f4 f5 f6 f7 e0 f8 ff');
    expect(m).toEqual([false, true, null, undefined, undefined, undefined]);
    expect(m.length).toBe(6);
    expect(1 in m).toBe(true);
  });
});

describe('CBOR decoder: indefinite lengths and tags', () => {
  it('indefinite arrays, maps and strings', () => {
    expect(decode1('9f 01 9f ff 82 02 03 ff')).toEqual([1, [], [2, 3]]);
    expect(decode1('82 bf 41 61 01 61 62 9f ff ff bf ff')).toEqual([{ a: 1, b: [] }, {}]);
    expect(decode1('82 5f 42 61 62 41 63 ff 7f 62 e2 82 62 ac 31 ff')).toEqual(['abc', '€1']);
    expect(decode1('81 5f ff')).toEqual(['']);
    expect(decode1('81 5f 41 e9 ff')).toEqual(['é']);
  });

  it('unknown tags are skipped and their value passed through', () => {
    expect(decode1('83 c1 1a 5f 5e 10 00 d8 20 63 61 62 63 db 00 00 00 01 00 00 00 00 01')).toEqual([
      1600000000,
      'abc',
      1,
    ]);
    // a tagged top-level array (e.g. the self-describe tag 55799)
    expect(decode1('d9 d9 f7 82 40 41 78')).toEqual(['', 'x']);
  });
});

describe('CBOR decoder: streaming', () => {
  const frames = [
    '82 40 48 67 5f 67 6c 6f 62 61 6c',
    '83 61 62 64 70 69 6e 67 18 7b',
    '84 40 45 67 5f 75 70 64 47 63 61 70 64 65 6d 6f a1 41 6b 41 76',
    '82 4a 37 7a 68 62 51 4e 4f 58 70 62 fb 41 da c0 97 7e 4a 47 cc',
    '9f 5f 41 61 41 62 ff bf 41 6b 9f 01 02 ff ff ff',
  ].map(hex);
  const expected = [
    ['', 'g_global'],
    ['b', 'ping', 123],
    ['', 'g_upd', 'capdemo', { k: 'v' }],
    ['7zhbQNOXpb', T1],
    ['ab', { k: [1, 2] }],
  ];

  it('delivers several frames per chunk and frames split across chunks, in order', () => {
    const all = concat(frames);
    for (const c of chunkings(all)) {
      const r = decodeChunks('cbor', c.chunks);
      expect(r.error, c.name).toBeNull();
      expect(r.msgs, c.name).toEqual(expected);
      expect(r.buffered).toBe(0);
    }
  });

  it('keeps an incomplete tail buffered without error', () => {
    const all = concat(frames);
    for (let cut = 1; cut < all.length; cut++) {
      const r = decodeChunks('cbor', [all.subarray(0, cut)]);
      expect(r.error).toBeNull();
      const delivered = r.msgs.length;
      const consumed = frames.slice(0, delivered).reduce((n, f) => n + f.length, 0);
      expect(r.buffered).toBe(cut - consumed);
      expect(r.msgs).toEqual(expected.slice(0, delivered));
    }
  });

  it('accepts plain Uint8Array views with an offset', () => {
    const backing = new Uint8Array(100);
    const f = frames[1]!;
    backing.set(f, 37);
    const r = decodeChunks('cbor', [backing.subarray(37, 37 + f.length)]);
    expect(r.msgs).toEqual([['b', 'ping', 123]]);
  });

  it('decoded values do not alias the pushed chunk', () => {
    const dec = createFrameDecoder('cbor');
    const chunk = Buffer.from(concat(frames));
    const got: unknown[][] = [];
    dec.push(chunk.subarray(0, 20), (m) => got.push(m));
    dec.push(chunk.subarray(20), (m) => got.push(m));
    chunk.fill(0);
    expect(got).toEqual(expected);
  });

  it('a large frame split into many chunks is decoded once it is complete', () => {
    const big = Array.from({ length: 20000 }, (_, i) => ['x', i, { k: 'v'.repeat(i % 50) }]);
    const bytes = enc.encode(['big', big]);
    const dec = createFrameDecoder('cbor');
    const got: unknown[][] = [];
    for (let i = 0; i < bytes.length; i += 1000) dec.push(bytes.subarray(i, i + 1000), (m) => got.push(m));
    expect(got).toEqual([['big', big]]);
    expect(dec.buffered).toBe(0);
  });

  it('onMessage may decode with another decoder, but not push into its own', () => {
    const all = concat(frames);
    const a = createFrameDecoder('cbor');
    const b = createFrameDecoder('cbor');
    const gotA: unknown[][] = [];
    const gotB: unknown[][] = [];
    const cbA = (m: unknown[]): void => {
      gotA.push(m);
      b.push(all.subarray(0, 15), (x) => gotB.push(x));
      b.push(all.subarray(15, 50), (x) => gotB.push(x));
      b.push(all.subarray(50), (x) => gotB.push(x));
    };
    a.push(all.subarray(0, 40), cbA);
    a.push(all.subarray(40), cbA);
    expect(gotA).toEqual(expected);
    expect(gotB).toEqual([...expected, ...expected, ...expected, ...expected, ...expected]);

    const c = createFrameDecoder('cbor');
    let inner: unknown;
    c.push(frames[0]!, () => {
      try {
        c.push(frames[1]!, () => {});
      } catch (e) {
        inner = e;
      }
    });
    expect(AempError.is(inner) && inner.code).toBe('ERR_BAD_ARGUMENT');
  });

  it('when onMessage throws, the exception propagates and the rest is delivered by the next push', () => {
    const dec = createFrameDecoder('cbor');
    const all = concat(frames);
    const got: unknown[][] = [];
    let throwAt = 1;
    const cb = (m: unknown[]): void => {
      if (got.length === throwAt) {
        throwAt = -1;
        throw new Error('handler failed');
      }
      got.push(m);
    };
    expect(() => dec.push(all.subarray(0, 30), cb)).toThrow('handler failed');
    throwAt = 2;
    expect(() => dec.push(all.subarray(30), cb)).toThrow('handler failed');
    expect(dec.buffered).toBe(frames[4]!.length);
    dec.push(new Uint8Array(0), cb);
    // the frames whose delivery threw are lost; everything else arrives in order
    expect(got).toEqual([expected[0], expected[2], expected[4]]);
    expect(dec.buffered).toBe(0);
  });
});

describe('CBOR decoder: bad input', () => {
  it('a non-array top-level item is ERR_BAD_FRAME', () => {
    for (const h of ['01', 'a0', '40', '60', 'f6', 'ff', '1c', 'c1 01']) {
      expect(errorOf(h).code, h).toBe('ERR_BAD_FRAME');
    }
    expect(errorOf('a1 41 61 01').message).toMatch(/not an array/);
  });

  it('malformed items are ERR_BAD_FRAME', () => {
    for (const h of [
      '82 01 ff',
      '81 1c',
      '81 3e',
      '81 fd',
      '81 1f',
      '81 3f',
      '81 df 01',
      '81 5f 61 61 ff',
      '81 5f 5f ff ff',
    ]) {
      expect(errorOf(h).code, h).toBe('ERR_BAD_FRAME');
    }
  });

  it('delivers the frames before a bad one, then throws, then stays dead', () => {
    const good = hex('82 61 62 01');
    const dec = createFrameDecoder('cbor');
    const got: unknown[][] = [];
    expect(() => dec.push(concat([good, good, hex('82 01 ff'), good]), (m) => got.push(m))).toThrow(
      ProtocolError,
    );
    expect(got).toEqual([
      ['b', 1],
      ['b', 1],
    ]);
    let again: unknown;
    try {
      dec.push(good, (m) => got.push(m));
    } catch (e) {
      again = e;
    }
    expect(again).toBeInstanceOf(ProtocolError);
    expect((again as ProtocolError).code).toBe('ERR_BAD_FRAME');
    expect(got.length).toBe(2);
  });

  it('truncated input is buffered, not an error', () => {
    const r = decodeChunks('cbor', [hex('83 61 62 64 70 69')]);
    expect(r.error).toBeNull();
    expect(r.msgs).toEqual([]);
    expect(r.buffered).toBe(6);
  });

  it('garbage never throws anything but ProtocolError', () => {
    let seed = 42;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed >> 8;
    };
    for (let t = 0; t < 3000; t++) {
      const bytes = new Uint8Array(1 + (rnd() % 64));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rnd() & 0xff;
      if (t % 2 === 0) bytes[0] = 0x80 | (rnd() & 0x1f); // start like an array to get deeper
      for (const chunks of [
        [bytes],
        [bytes.subarray(0, bytes.length >> 1), bytes.subarray(bytes.length >> 1)],
      ]) {
        const r = decodeChunks('cbor', chunks, { maxFrameBytes: 1 << 20 });
        if (r.error) expect(r.error).toBeInstanceOf(ProtocolError);
      }
    }
  });
});

describe('CBOR decoder: limits', () => {
  it('delivers the frames before an oversized frame, then ERR_FRAME_TOO_LARGE', () => {
    const small = enc.encode(['a', 1]);
    const big = enc.encode(['b', 'x'.repeat(200)]);
    for (const c of chunkings(concat([small, small, big, small]))) {
      const r = decodeChunks('cbor', c.chunks, { maxFrameBytes: 100 });
      expect(r.error?.code, c.name).toBe('ERR_FRAME_TOO_LARGE');
      expect(r.msgs, c.name).toEqual([
        ['a', 1],
        ['a', 1],
      ]);
    }
  });

  it('a frame of exactly maxFrameBytes is fine', () => {
    const f = enc.encode(['x'.repeat(95)]);
    for (const c of chunkings(concat([f, f]))) {
      expect(decodeChunks('cbor', c.chunks, { maxFrameBytes: f.length }).error, c.name).toBeNull();
    }
    expect(decodeChunks('cbor', [f, f], { maxFrameBytes: f.length - 1 }).error?.code).toBe(
      'ERR_FRAME_TOO_LARGE',
    );
  });

  it('a length that announces an oversized frame fails before the bytes arrive', () => {
    expect(errorOf('82 40 5a 7f ff ff ff', { maxFrameBytes: 1 << 20 }).code).toBe('ERR_FRAME_TOO_LARGE');
    expect(errorOf('9b 00 00 00 01 00 00 00 00', { maxFrameBytes: 1 << 20 }).code).toBe(
      'ERR_FRAME_TOO_LARGE',
    );
    expect(errorOf('81 5b ff ff ff ff ff ff ff ff').code).toBe('ERR_FRAME_TOO_LARGE');
    expect(errorOf('81 bb 7f ff ff ff ff ff ff ff').code).toBe('ERR_FRAME_TOO_LARGE');
  });

  it('fails once the buffered bytes of an incomplete frame reach more than maxFrameBytes can hold', () => {
    const dec = createFrameDecoder('cbor', { maxFrameBytes: 1000 });
    const cb = (): void => {};
    dec.push(hex('9f'), cb);
    for (let i = 0; i < 998; i++) dec.push(hex('01'), cb);
    expect(dec.buffered).toBe(999);
    // 1000 bytes buffered and the frame still open: it needs at least 1001
    expect(() => dec.push(hex('01'), cb)).toThrow(expect.objectContaining({ code: 'ERR_FRAME_TOO_LARGE' }));
    // a frame of exactly 1000 bytes, byte by byte, is fine
    const ok = concat([hex('9f'), hex('01'.repeat(998)), hex('ff')]);
    const r = decodeChunks(
      'cbor',
      [...ok].map((b) => Uint8Array.of(b)),
      { maxFrameBytes: 1000 },
    );
    expect(r.error).toBeNull();
    expect(r.msgs[0]!.length).toBe(998);
  });

  it('deep nesting is ERR_BAD_FRAME, never a crash', () => {
    const deep = (n: number, open: string, leaf: string) => hex(open.repeat(n) + leaf);
    const cases = [deep(100_000, '81', '01'), deep(100_000, '9f', ''), deep(100_000, 'c6', '01')];
    for (const bytes of cases) {
      for (const chunks of [[bytes], [bytes.subarray(0, 5000), bytes.subarray(5000)]]) {
        const r = decodeChunks('cbor', chunks);
        expect(r.error).toBeInstanceOf(ProtocolError);
        expect(r.error!.code).toBe('ERR_BAD_FRAME');
      }
    }
    // nested maps
    const maps = hex('81' + 'a1 41 61'.replace(/ /g, '').repeat(100_000) + '01');
    expect(decodeChunks('cbor', [maps]).error?.code).toBe('ERR_BAD_FRAME');
  });

  it('nesting up to maxDepth is accepted, one more is not', () => {
    const nest = (n: number): Uint8Array => hex('81'.repeat(n) + '01');
    expect(decodeChunks('cbor', [nest(500)]).error).toBeNull();
    expect(decodeChunks('cbor', [nest(501)]).error?.code).toBe('ERR_BAD_FRAME');
    expect(decodeChunks('cbor', [nest(10)], { maxDepth: 10 }).error).toBeNull();
    expect(decodeChunks('cbor', [nest(11)], { maxDepth: 10 }).error?.code).toBe('ERR_BAD_FRAME');
    const split = nest(11);
    expect(
      decodeChunks('cbor', [split.subarray(0, 4), split.subarray(4)], { maxDepth: 10 }).error?.code,
    ).toBe('ERR_BAD_FRAME');
  });

  it('without a depth limit, a stack overflow still becomes a ProtocolError', () => {
    const bytes = hex('81'.repeat(200_000) + '01');
    for (const chunks of [[bytes], [bytes.subarray(0, 1000), bytes.subarray(1000)]]) {
      const r = decodeChunks('cbor', chunks, { maxDepth: Number.MAX_SAFE_INTEGER });
      expect(r.error).toBeInstanceOf(ProtocolError);
      expect(r.error!.code).toBe('ERR_BAD_FRAME');
    }
  });
});

describe('CBOR encoder', () => {
  it('matches the §14 g_slave and mon1 bytes exactly', () => {
    expect(encHex(['', 'g_slave', { "'l": { 'tsnode/Q7cX2mPz9K': ['127.0.0.1:4041'] } }])).toBe(
      toHex(
        hex(
          '83 60 67 67 5f 73 6c 61 76 65 a1 62 27 6c a1 71 74 73 6e 6f 64 65 2f 51 37 63 58 32 6d 50 7a 39 4b 81 6e 31 32 37 2e 30 2e 30 2e 31 3a 34 30 34 31',
        ),
      ),
    );
    expect(encHex(['', 'mon1', 'b'])).toBe('8360646d6f6e316162');
    expect(encHex(['', 'g_global'])).toBe('826068675f676c6f62616c');
  });

  it('integers use the shortest head', () => {
    expect(encHex([0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER])).toBe(
      '8a' +
        '00' +
        '17' +
        '1818' +
        '18ff' +
        '190100' +
        '19ffff' +
        '1a00010000' +
        '1affffffff' +
        '1b0000000100000000' +
        '1b001fffffffffffff',
    );
    expect(encHex([-1, -24, -25, -256, -257, Number.MIN_SAFE_INTEGER])).toBe(
      '86' + '20' + '37' + '3818' + '38ff' + '390100' + '3b001ffffffffffffe',
    );
  });

  it('floats: float32 when exact (like CBOR::XS), else float64', () => {
    expect(encHex([2.5, 2 ** 64, 0.1, 1e20, 0.1 + 0.2])).toBe(
      '85' + 'fa40200000' + 'fa5f800000' + 'fb3fb999999999999a' + 'fb4415af1d78b58c40' + 'fb3fd3333333333334',
    );
    expect(encHex([Number.POSITIVE_INFINITY, Number.NaN, -0.5])).toBe(
      '83fa7f800000fb7ff8000000000000fabf000000',
    );
  });

  it('bigint: 64-bit heads, bignum tags beyond', () => {
    expect(encHex([18446744073709551615n, -9223372036854775808n, 5n, -5n])).toBe(
      '84' + '1bffffffffffffffff' + '3b7fffffffffffffff' + '05' + '24',
    );
    expect(encHex([2n ** 64n, -1n - 2n ** 64n])).toBe(
      '82' + 'c249010000000000000000' + 'c349010000000000000000',
    );
  });

  it('strings: ASCII and wide ones are UTF-8 text strings, Latin-1 ones byte strings; minimal heads', () => {
    expect(encHex(['€uro', '😀', '\ud800'])).toBe('83' + '66e282ac75726f' + '64f09f9880' + '63efbfbd');
    for (const [n, headHex] of [
      [23, '77'],
      [24, '7818'],
      [255, '78ff'],
      [256, '790100'],
      [65536, '7a00010000'],
    ] as const) {
      expect(encHex(['a'.repeat(n)]).slice(2, 2 + headHex.length)).toBe(headHex);
    }
    // Latin-1 (non-ASCII, every char ≤ 0xFF) near the fast-path limits: byte strings, one byte a char
    for (const n of [20, 23, 24, 100, 254, 255, 256, 300, 70000]) {
      const s = `${'a'.repeat(n - 1)}é`;
      const h = encHex([s]);
      const expectedHead =
        n < 24
          ? (0x40 + n).toString(16)
          : n < 256
            ? `58${n.toString(16)}`
            : n < 65536
              ? `59${n.toString(16).padStart(4, '0')}`
              : `5a${n.toString(16).padStart(8, '0')}`;
      expect(h.slice(2, 2 + expectedHead.length)).toBe(expectedHead);
      expect(h.length).toBe(2 + expectedHead.length + 2 * n);
      expect(h.endsWith('e9')).toBe(true);
      expect(decodeChunks('cbor', [hex(h)]).msgs).toEqual([[s]]);
    }
    // a char above 0xFF anywhere (even after Latin-1 ones): UTF-8 text string
    for (const n of [20, 23, 24, 100, 254, 255, 256, 300]) {
      const s = `${'a'.repeat(n - 2)}é€`;
      const h = encHex([s]);
      const bytes = Buffer.byteLength(s);
      const expectedHead =
        bytes < 24
          ? (0x60 + bytes).toString(16)
          : bytes < 256
            ? `78${bytes.toString(16)}`
            : `79${bytes.toString(16).padStart(4, '0')}`;
      expect(h.slice(2, 2 + expectedHead.length)).toBe(expectedHead);
      expect(decodeChunks('cbor', [hex(h)]).msgs).toEqual([[s]]);
    }
  });

  it('other values: null, undefined, booleans, Uint8Array, Map, Date, nested objects', () => {
    expect(encHex([null, undefined, true, false])).toBe('84f6f7f5f4');
    expect(encHex([Uint8Array.of(1, 2, 3), new Map<unknown, unknown>([['a', 1]])])).toBe(
      '82' + '43010203' + 'a1616101',
    );
    expect(encHex([new Date(0)])).toBe(
      '81' + '78' + '18' + Buffer.from('1970-01-01T00:00:00.000Z').toString('hex'),
    );
    expect(encHex([{ b: 1, a: [] }])).toBe('81a2616201616180');
    expect(encHex([() => 1, Symbol('x')])).toBe('82f6f6');
  });

  it('never emits cbor-x records, shared structures or tags for repeated shapes', () => {
    for (let i = 0; i < 100; i++) {
      const h = encHex([{ a: i, b: 'x' }]);
      expect(h.startsWith('81a2')).toBe(true);
    }
  });

  it('encodeBatch writes the frames back to back into one buffer', () => {
    const msgs = [['', 'g_global'], ['b', 'ping', 1], [{ x: [1.5] }]];
    const batch = enc.encodeBatch(msgs);
    expect(toHex(batch)).toBe(msgs.map(encHex).join(''));
    expect(decodeChunks('cbor', [batch]).msgs).toEqual(msgs);
    expect(enc.encodeBatch([]).length).toBe(0);
  });

  it('encodeChunks: the same bytes as encodeBatch, in chunks of about CHUNK_BYTES', () => {
    const small = [
      ['', 'g_global'],
      ['b', 'ping', 1],
    ];
    expect(enc.encodeChunks(small).map(toHex)).toEqual([toHex(enc.encodeBatch(small))]);
    expect(enc.encodeChunks([]).map((c) => c.length)).toEqual([0]);
    // 3000 frames of about 1 KiB, one frame larger than a chunk, then small ones again.
    const msgs: unknown[][] = [];
    for (let i = 0; i < 3000; i++) msgs.push(['sink', 'ping', i, 'é'.repeat(i % 7) + 'x'.repeat(1000)]);
    msgs.push(['big', 'z'.repeat(CHUNK_BYTES * 2)]);
    for (let i = 0; i < 100; i++) msgs.push(['after', i]);
    const chunks = enc.encodeChunks(msgs);
    const batch = Buffer.from(enc.encodeBatch(msgs));
    expect(Buffer.concat(chunks).equals(batch)).toBe(true);
    expect(chunks.length).toBeGreaterThan(10);
    const largest = toHex(enc.encode(msgs[3000]!)).length / 2;
    for (const c of chunks) expect(c.length).toBeLessThan(CHUNK_BYTES + largest);
    expect(chunks.filter((c) => c.length > 2 * CHUNK_BYTES)).toHaveLength(1);
    expect(decodeChunks('cbor', chunks).msgs).toEqual(msgs);
  });

  it('strings of every length, ASCII or not, encode right wherever they fall in a slab', () => {
    // Short non-ASCII strings take the general path; it must leave room for the head even at
    // the very end of a slab. Encode enough to cross several slab boundaries at every offset.
    const pieces = ['é', 'ü', '€', '😀', 'a'];
    // Batches, because each lone encode starts with at least 1 KiB of room.
    for (const maxLen of [3, 40, 301]) {
      const msgs: unknown[][] = [];
      for (let i = 0; i < 20_000; i++) {
        const len = i % maxLen;
        msgs.push(['s', Array.from({ length: len }, (_, k) => pieces[(i + k) % pieces.length]).join(''), i]);
      }
      expect(decodeChunks('cbor', [enc.encodeBatch(msgs)]).msgs).toEqual(msgs);
      expect(decodeChunks('cbor', enc.encodeChunks(msgs)).msgs).toEqual(msgs);
    }
    // A one-character non-ASCII string right at the end of the buffer, at every offset.
    for (let pad = 0; pad < 16; pad++) {
      const msgs: unknown[][] = [['pad', 'x'.repeat(pad)]];
      for (let i = 0; i < 30_000; i++) msgs.push(['é']);
      expect(decodeChunks('cbor', [enc.encodeBatch(msgs)]).msgs).toEqual(msgs);
    }
  });

  it('returned buffers stay valid after later encodes (across slab changes)', () => {
    const first = enc.encode(['first', 1]);
    const firstHex = toHex(first);
    const kept: [Uint8Array, string][] = [];
    for (let i = 0; i < 50_000; i++) {
      const m = ['m', i, 'y'.repeat(i % 300)];
      const b = enc.encode(m);
      if (i % 997 === 0) kept.push([b, toHex(b)]);
    }
    enc.encode(['big', 'z'.repeat(300_000)]);
    expect(toHex(first)).toBe(firstHex);
    for (const [b, h] of kept) expect(toHex(b)).toBe(h);
  });

  it('rejects too-deep and cyclic values with ERR_BAD_ARGUMENT and stays usable', () => {
    let deep: unknown[] = [1];
    for (let i = 0; i < 600; i++) deep = [deep];
    const cyclic: unknown[] = ['a'];
    cyclic.push(cyclic);
    for (const bad of [deep, cyclic]) {
      let err: unknown;
      try {
        enc.encode(bad);
      } catch (e) {
        err = e;
      }
      expect(AempError.is(err)).toBe(true);
      expect((err as AempError).code).toBe('ERR_BAD_ARGUMENT');
    }
    expect(encHex(['', 'mon1', 'b'])).toBe('8360646d6f6e316162');
    expect(toHex(enc.encodeBatch([['a'], ['b']]))).toBe('816161' + '816162');
  });

  it('round trips what Perl sent (node-port step k), bigints included', () => {
    const perl = hex(
      '8a 63 72 31 37 65 61 73 63 69 69 66 e2 82 ac 75 72 6f fb 3f b9 99 99 99 99 99 9a 1b 00 00 00 01 00 00 00 00 3b 00 00 00 01 00 00 00 00 f5 f4 f6 a1 41 6e a1 41 6d 80',
    );
    const m = decodeChunks('cbor', [perl]).msgs[0]!;
    expect(m).toEqual([
      'r17',
      'ascii',
      '€uro',
      0.1,
      4294967296,
      -4294967297,
      true,
      false,
      null,
      { n: { m: [] } },
    ]);
    // byte for byte, except that our map keys are text strings
    expect(encHex(m)).toBe(toHex(perl).replace('a1416ea1416d80', 'a1616ea1616d80'));
    const extremes = ['x', 18446744073709551615n, -9223372036854775808n];
    expect(decodeChunks('cbor', [enc.encode(extremes)]).msgs).toEqual([extremes]);
  });
});

describe('CBOR decoding reads floats and wide integers from the buffer at hand', () => {
  // The reader keeps the buffer it reads at module level, and floats and wide heads are read
  // from it: it must follow every change of buffer (another decoder used from onMessage, a
  // chunk after the last, a frame completed in the decoder's own buffer).
  const a = enc.encode(['p', 1.5, 2 ** 40, -(2 ** 33)]);
  const b = enc.encode(['q', 3.25, 0xfffffff0, 1e300]);
  /** a, b, a, b as decoded. */
  const abab = [
    ['p', 1.5, 2 ** 40, -(2 ** 33)],
    ['q', 3.25, 0xfffffff0, 1e300],
    ['p', 1.5, 2 ** 40, -(2 ** 33)],
    ['q', 3.25, 0xfffffff0, 1e300],
  ];

  it('follows the buffer when another decoder runs from onMessage', () => {
    const outer = createFrameDecoder('cbor');
    const inner = createFrameDecoder('cbor');
    const got: unknown[][] = [];
    outer.push(concat([a, a]), (m) => {
      got.push(m);
      inner.push(Buffer.from(b), (n) => got.push(n));
    });
    expect(got).toEqual(abab);
  });

  it('follows the buffer from chunk to chunk and into a frame completed from held bytes', () => {
    const d = createFrameDecoder('cbor');
    const got: unknown[][] = [];
    const all = concat([a, b, a]);
    // Split inside the second frame: its start is held, then completed by the next chunk.
    const cut = a.length + 5;
    d.push(all.subarray(0, cut), (m) => got.push(m));
    d.push(Buffer.from(all.subarray(cut)), (m) => got.push(m));
    d.push(Buffer.from(b), (m) => got.push(m));
    expect(got).toEqual(abab);
  });
});
