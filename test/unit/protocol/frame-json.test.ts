import { describe, expect, it } from 'vitest';
import { AempError, ProtocolError } from '../../../src/errors.js';
import { createFrameDecoder, createFrameEncoder } from '../../../src/protocol/frame-codec.js';
import { bytesOf, decodeChunks } from '../../fixtures/frames/decode.js';
import { chunkings, concat } from '../../helpers/chunks.js';

const enc = createFrameEncoder('json');

/** Decodes `bytes` in every chunking; all must agree. */
function decodeAll(bytes: Uint8Array, opts?: { maxFrameBytes?: number; maxDepth?: number }) {
  const first = decodeChunks('json', [bytes], opts);
  for (const c of chunkings(bytes)) {
    const r = decodeChunks('json', c.chunks, opts);
    expect(r.msgs, c.name).toEqual(first.msgs);
    expect(r.error?.code, c.name).toBe(first.error?.code);
    if (!r.error) expect(r.buffered, c.name).toBe(first.buffered);
  }
  return first;
}

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

describe('JSON decoder: framing', () => {
  it('texts back to back with no separator', () => {
    const r = decodeAll(
      bytesOf('["","g_global"]["b","ping",123]["",{"a":[1,{"b":null}]},true,false,-1.5e3]'),
    );
    expect(r.error).toBeNull();
    expect(r.msgs).toEqual([
      ['', 'g_global'],
      ['b', 'ping', 123],
      ['', { a: [1, { b: null }] }, true, false, -1500],
    ]);
  });

  it('whitespace before, between and after texts (a keepalive) is skipped', () => {
    const r = decodeAll(bytesOf(' \n\t\r["a"]  \n ["b"]\n\n  \r\n'));
    expect(r.error).toBeNull();
    expect(r.msgs).toEqual([['a'], ['b']]);
    expect(r.buffered).toBe(0);
    const ka = decodeChunks('json', [bytesOf('\n'), bytesOf('   '), bytesOf('\n')]);
    expect(ka).toEqual({ msgs: [], error: null, buffered: 0 });
  });

  it('strings holding brackets, braces, quotes and backslashes', () => {
    const msgs = [
      ['a]"[}{', '\\', '\\"]', '"'],
      ['[', { ']': '}' }],
      ['\u0000\n\t\u2028', '\\\\'],
    ];
    const bytes = concat(msgs.map((m) => bytesOf(JSON.stringify(m))));
    const r = decodeAll(bytes);
    expect(r.error).toBeNull();
    expect(r.msgs).toEqual(msgs);
  });

  it('non-ASCII text, split anywhere, and several such texts in one chunk', () => {
    const msgs = [['€uro', '😀'], ['é', { ü: 'ß' }], ['x'], ['日本語', '😀😀', 'a'], ['\u00ff\u0100']];
    const r = decodeAll(concat(msgs.map((m) => bytesOf(JSON.stringify(m)))));
    expect(r.error).toBeNull();
    expect(r.msgs).toEqual(msgs);
  });

  it('incomplete texts are buffered', () => {
    const r = decodeChunks('json', [bytesOf('["a"]["b",')]);
    expect(r.msgs).toEqual([['a']]);
    expect(r.error).toBeNull();
    expect(r.buffered).toBe(5);
  });

  it('a large text in many chunks', () => {
    const big = ['big', Array.from({ length: 20000 }, (_, i) => ({ i, s: `€${'v'.repeat(i % 40)}"]` }))];
    const bytes = enc.encode(big);
    const dec = createFrameDecoder('json');
    const got: unknown[][] = [];
    for (let i = 0; i < bytes.length; i += 999) dec.push(bytes.subarray(i, i + 999), (m) => got.push(m));
    expect(got).toEqual([big]);
    expect(dec.buffered).toBe(0);
  });

  it('numbers: floats as JSON.parse reads them, integers beyond ±(2**53-1) exact as bigint', () => {
    const r = decodeChunks('json', [bytesOf('[1e+20,0.3,1.84467440737096e+19,18446744073709551615,-0]')]);
    expect(r.msgs).toEqual([[1e20, 0.3, 1.84467440737096e19, 18446744073709551615n, -0]]);
    const edges = decodeChunks('json', [
      bytesOf(
        '["n",9007199254740991,9007199254740992,9007199254740993,-9007199254740991,-9007199254740992,' +
          '-9223372036854775808,123456789012345678901234,"9007199254740993",{"9007199254740993":[9007199254740993]}]' +
          '["m",9007199254740993.0,9007199254740993e0]',
      ),
    ]);
    expect(edges.msgs).toEqual([
      [
        'n',
        9007199254740991,
        9007199254740992n,
        9007199254740993n,
        -9007199254740991,
        -9007199254740992n,
        -9223372036854775808n,
        123456789012345678901234n,
        '9007199254740993',
        { '9007199254740993': [9007199254740993n] },
      ],
      ['m', 9007199254740992, 9007199254740992],
    ]);
  });

  it('numbers are written so that JSON::XS reads back the same number', () => {
    const enc = createFrameEncoder('json');
    const text = (m: unknown[]): string => Buffer.from(enc.encode(m)).toString();
    // integral floats beyond 2**53 in exponent form (JSON::XS reads 21 digits as a string)
    expect(text([1e20, 2 ** 64, 1.84467440737096e19, -(2 ** 60), 2 ** 53, 1e21])).toBe(
      '[1e+20,1.8446744073709552e+19,1.84467440737096e+19,-1.152921504606847e+18,9.007199254740992e+15,1e+21]',
    );
    // safe integers and bigint as plain digits
    expect(
      text([9007199254740991, -9007199254740991, 18446744073709551615n, -9223372036854775808n, 5n]),
    ).toBe('[9007199254740991,-9007199254740991,18446744073709551615,-9223372036854775808,5]');
    // digits inside strings are left alone
    expect(text(['12345678901234567890', { '100000000000000000000': 1e20 }])).toBe(
      '["12345678901234567890",{"100000000000000000000":1e+20}]',
    );
  });

  it('when onMessage throws, the rest is delivered by the next push', () => {
    const dec = createFrameDecoder('json');
    const got: unknown[][] = [];
    let fail = true;
    const cb = (m: unknown[]): void => {
      if (m[0] === 2 && fail) {
        fail = false;
        throw new Error('handler failed');
      }
      got.push(m);
    };
    expect(() => dec.push(bytesOf('[1][2][3] [4'), cb)).toThrow('handler failed');
    dec.push(bytesOf(']'), cb);
    expect(got).toEqual([[1], [3], [4]]);
    // and when the partial text was the one being continued
    const dec2 = createFrameDecoder('json');
    const got2: unknown[][] = [];
    let fail2 = true;
    dec2.push(bytesOf('["a'), (m) => got2.push(m));
    expect(() =>
      dec2.push(bytesOf('"][5]'), (m) => {
        if (fail2) {
          fail2 = false;
          throw new Error('x');
        }
        got2.push(m);
      }),
    ).toThrow('x');
    dec2.push(new Uint8Array(0), (m) => got2.push(m));
    expect(got2).toEqual([[5]]);
  });
});

describe('JSON decoder: bad input', () => {
  it('commas or other bytes between texts are ERR_BAD_FRAME after the texts before them', () => {
    for (const [input, before] of [
      ['["a"],["b"]', [['a']]],
      ['["a"] , ["b"]', [['a']]],
      ['["a"]x', [['a']]],
      ['["a"]["b"]]', [['a'], ['b']]],
      ['["a"]\u00a0["b"]', [['a']]],
      ['["a"]\u0000', [['a']]],
    ] as const) {
      const r = decodeAll(bytesOf(input));
      expect(r.msgs, input).toEqual(before);
      expect(r.error?.code, input).toBe('ERR_BAD_FRAME');
    }
  });

  it('a text that is not an array is ERR_BAD_FRAME', () => {
    for (const input of ['{"a":1}', '123', '"str"', 'null', 'true', ',', ']']) {
      const r = decodeAll(bytesOf(input));
      expect(r.msgs).toEqual([]);
      expect(r.error?.code, input).toBe('ERR_BAD_FRAME');
    }
    expect(decodeChunks('json', [bytesOf('{"a":1}')]).error?.message).toMatch(/not an array/);
  });

  it('malformed JSON inside a text', () => {
    for (const input of ['[1,]', '[}', '[{]}', '[1 2]', '["a\\x"]', '[tru]', '[01]', "['a']", '[NaN]']) {
      const r = decodeAll(bytesOf(`["ok"]${input}["after"]`));
      expect(r.msgs, input).toEqual([['ok']]);
      expect(r.error?.code, input).toBe('ERR_BAD_FRAME');
    }
  });

  it('invalid UTF-8 is ERR_BAD_FRAME, after the texts before it', () => {
    for (const bad of [
      [0xff],
      [0xc3],
      [0xe2, 0x82],
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf8, 0x88, 0x80, 0x80, 0x80],
    ]) {
      const bytes = concat([bytesOf('["ok"]["€"]["x'), Uint8Array.from(bad), bytesOf('"]["after"]')]);
      const r = decodeAll(bytes);
      expect(r.msgs).toEqual([['ok'], ['€']]);
      expect(r.error?.code).toBe('ERR_BAD_FRAME');
      expect(r.error?.message).toMatch(/UTF-8/);
    }
  });

  it('is dead after an error', () => {
    const dec = createFrameDecoder('json');
    expect(() => dec.push(bytesOf('[1],'), () => {})).toThrow(ProtocolError);
    expect(() => dec.push(bytesOf('[2]'), () => {})).toThrow(ProtocolError);
  });

  it('garbage never throws anything but ProtocolError', () => {
    let seed = 7;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed >> 8;
    };
    const alphabet = bytesOf('[]{}",:\\ 0123456789.-+eEtrufalsn\n€');
    for (let t = 0; t < 3000; t++) {
      const bytes = new Uint8Array(1 + (rnd() % 40));
      for (let i = 0; i < bytes.length; i++)
        bytes[i] = t % 3 === 0 ? rnd() & 0xff : alphabet[rnd() % alphabet.length]!;
      if (t % 2 === 0) bytes[0] = 0x5b;
      const r = decodeChunks('json', [bytes.subarray(0, 7), bytes.subarray(7)]);
      if (r.error) expect(r.error).toBeInstanceOf(ProtocolError);
    }
  });
});

describe('JSON decoder: limits', () => {
  it('delivers the texts before an oversized text, then ERR_FRAME_TOO_LARGE', () => {
    const bytes = bytesOf(`["a"] ["b"]["${'x'.repeat(200)}"]["c"]`);
    for (const c of chunkings(bytes)) {
      const r = decodeChunks('json', c.chunks, { maxFrameBytes: 100 });
      expect(r.msgs, c.name).toEqual([['a'], ['b']]);
      expect(r.error?.code, c.name).toBe('ERR_FRAME_TOO_LARGE');
    }
  });

  it('a text of exactly maxFrameBytes is fine; whitespace is not counted', () => {
    const t = `["${'x'.repeat(96)}"]`;
    expect(t.length).toBe(100);
    const r = decodeAll(bytesOf(`${t}   \n   ${t}`), { maxFrameBytes: 100 });
    expect(r.error).toBeNull();
    expect(r.msgs.length).toBe(2);
  });

  it('deep nesting is ERR_BAD_FRAME, never a crash', () => {
    for (const input of [
      '['.repeat(100_000),
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      `[${'{"a":'.repeat(100_000)}`,
    ]) {
      const bytes = bytesOf(input);
      for (const chunks of [[bytes], [bytes.subarray(0, 3000), bytes.subarray(3000)]]) {
        const r = decodeChunks('json', chunks);
        expect(r.error).toBeInstanceOf(ProtocolError);
        expect(r.error!.code).toBe('ERR_BAD_FRAME');
      }
    }
    const nest = (n: number): Uint8Array => bytesOf('['.repeat(n) + ']'.repeat(n));
    expect(decodeChunks('json', [nest(500)]).error).toBeNull();
    expect(decodeChunks('json', [nest(501)]).error?.code).toBe('ERR_BAD_FRAME');
    expect(decodeChunks('json', [nest(3)], { maxDepth: 3 }).error).toBeNull();
    expect(decodeChunks('json', [nest(4)], { maxDepth: 3 }).error?.code).toBe('ERR_BAD_FRAME');
  });
});

describe('JSON encoder', () => {
  it('matches the §14 g_slave JSON exactly, no separator', () => {
    const m = ['', 'g_slave', { "'l": { 'tsnode/Q7cX2mPz9K': ['127.0.0.1:4041'] } }];
    expect(text(enc.encode(m))).toBe('["","g_slave",{"\'l":{"tsnode/Q7cX2mPz9K":["127.0.0.1:4041"]}}]');
    expect(text(enc.encodeBatch([m, ['b', 1]]))).toBe(`${text(enc.encode(m))}["b",1]`);
    expect(enc.encodeBatch([]).length).toBe(0);
    expect(enc.encodeChunks([m, ['b', 1]]).map(text)).toEqual([text(enc.encodeBatch([m, ['b', 1]]))]);
  });

  it('writes UTF-8 and bigints as digits', () => {
    expect([...enc.encode(['€'])]).toEqual([0x5b, 0x22, 0xe2, 0x82, 0xac, 0x22, 0x5d]);
    expect(text(enc.encode(['x', 18446744073709551615n, { n: -9223372036854775808n }, 'aemp-bigint:']))).toBe(
      '["x",18446744073709551615,{"n":-9223372036854775808},"aemp-bigint:"]',
    );
  });

  it('rejects cyclic values with ERR_BAD_ARGUMENT', () => {
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    let err: unknown;
    try {
      enc.encode(cyclic);
    } catch (e) {
      err = e;
    }
    expect(AempError.is(err) && err.code).toBe('ERR_BAD_ARGUMENT');
  });

  it('round trips', () => {
    const msgs = [
      ['', 'kil0', 'b', 'die', 'oops at x line 5.\n'],
      ['c', 1690000000.123, null, true, { k: [1, 'v'] }],
    ];
    expect(decodeChunks('json', [enc.encodeBatch(msgs)]).msgs).toEqual(msgs);
  });
});
