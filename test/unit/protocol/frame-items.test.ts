/**
 * The per-frame item cap (`maxFrameItems`) of both frame decoders: frames whose few bytes decode
 * to many values (empty strings in chunks, `[]`, `{}`, empty map keys, deep one-element nesting)
 * are refused with ERR_FRAME_TOO_LARGE once they hold more items than the cap, and decode when
 * they hold exactly the cap — fed whole, byte by byte, and split at every boundary.
 *
 * Items are counted alike in CBOR and JSON: the message array, every array element, every map
 * key and every map value, every tagged value, every chunk of an indefinite-length string.
 */
import { constants, PerformanceObserver, performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME_ITEMS, MAX_EXACT_BIGNUM_BYTES } from '../../../src/protocol/constants.js';
import { createFrameDecoder, type FrameDecoderOptions } from '../../../src/protocol/frame-codec.js';
import { decodeChunks } from '../../fixtures/frames/decode.js';
import { chunkings } from '../../helpers/chunks.js';
import { within } from '../../helpers/fake-peer.js';

const CAP = 64;

/** A full garbage collection now (`gc` of a fresh context, with V8's `--expose-gc` turned on). */
function forceGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** A CBOR head (major type, argument) in its shortest form. */
function head(major: number, n: number): Buffer {
  const m = major << 5;
  if (n < 24) return Buffer.of(m | n);
  if (n < 0x100) return Buffer.of(m | 24, n);
  if (n < 0x10000) return Buffer.of(m | 25, n >> 8, n & 0xff);
  const b = Buffer.alloc(5);
  b[0] = m | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

const rep = (hexUnit: string, k: number): Buffer => Buffer.from(hexUnit.repeat(k), 'hex');

/**
 * Attack frames holding exactly `items` items (each needs at least the few items its frame
 * shape starts with), with the message each decodes to.
 */
const cborAttacks: [string, (items: number) => Buffer, (items: number) => unknown[]][] = [
  [
    // [ (_ h'' h'' …) ]: 1 + 1 + chunks
    'indefinite byte string of empty chunks',
    (items) => Buffer.concat([Buffer.of(0x81, 0x5f), rep('40', items - 2), Buffer.of(0xff)]),
    () => [''],
  ],
  [
    'indefinite text string of one-byte chunks',
    (items) => Buffer.concat([Buffer.of(0x81, 0x7f), rep('6161', items - 2), Buffer.of(0xff)]),
    (items) => ['a'.repeat(items - 2)],
  ],
  [
    // [ [], [], … ]: 1 + elements
    'array of empty arrays',
    (items) => Buffer.concat([head(4, items - 1), rep('80', items - 1)]),
    (items) => Array.from({ length: items - 1 }, () => []),
  ],
  [
    'indefinite array of empty maps',
    (items) => Buffer.concat([Buffer.of(0x9f), rep('a0', items - 1), Buffer.of(0xff)]),
    (items) => Array.from({ length: items - 1 }, () => ({})),
  ],
  [
    // [ { h'': [], h'': [], … } ]: 1 + 1 + 2 per pair (odd counts: one more element)
    'map of many empty keys',
    (items) =>
      Buffer.concat([
        head(4, 1 + ((items - 2) % 2)),
        head(5, (items - 2) >> 1),
        rep('4080', (items - 2) >> 1),
        rep('00', (items - 2) % 2),
      ]),
    (items) => [{ '': [] }, ...(items % 2 ? [0] : [])],
  ],
  [
    'indefinite map of many empty keys',
    (items) =>
      Buffer.concat([
        head(4, 1 + ((items - 2) % 2)),
        Buffer.of(0xbf),
        rep('4040', (items - 2) >> 1),
        Buffer.of(0xff),
        rep('00', (items - 2) % 2),
      ]),
    (items) => [{ '': '' }, ...(items % 2 ? [0] : [])],
  ],
  [
    // [[[[…[0]…]]]]: one item per level
    'deep one-element nesting',
    (items) => Buffer.concat([rep('81', items - 1), Buffer.of(0)]),
    (items) => {
      let v: unknown = 0;
      for (let i = 1; i < items - 1; i++) v = [v];
      return [v];
    },
  ],
  [
    'a chain of tags',
    (items) => Buffer.concat([Buffer.of(0x81), rep('c6', items - 2), Buffer.of(0)]),
    () => [0],
  ],
];

const jsonAttacks: [string, (items: number) => Buffer, (items: number) => unknown[]][] = [
  [
    'array of empty arrays',
    (items) =>
      Buffer.from(
        `[${Array(items - 1)
          .fill('[]')
          .join(',')}]`,
      ),
    (items) => Array.from({ length: items - 1 }, () => []),
  ],
  [
    'array of empty objects, with whitespace',
    (items) =>
      Buffer.from(
        `[ ${Array(items - 1)
          .fill('{ }')
          .join(' , ')} ]`,
      ),
    (items) => Array.from({ length: items - 1 }, () => ({})),
  ],
  [
    'object of many empty keys',
    (items) =>
      Buffer.from(
        `[{${Array((items - 2) >> 1)
          .fill('"":0')
          .join(',')}}${(items - 2) % 2 ? ',1' : ''}]`,
      ),
    (items) => [{ '': 0 }, ...(items % 2 ? [1] : [])],
  ],
  [
    'deep one-element nesting',
    (items) => Buffer.from(`${'['.repeat(items - 1)}0${']'.repeat(items - 1)}`),
    (items) => {
      let v: unknown = 0;
      for (let i = 1; i < items - 1; i++) v = [v];
      return [v];
    },
  ],
  [
    'strings holding brackets and commas do not count',
    (items) =>
      Buffer.from(
        `["[,{:}]\\",",${Array(items - 2)
          .fill('0')
          .join(',')}]`,
      ),
    (items) => ['[,{:}]",', ...Array(items - 2).fill(0)],
  ],
];

function expectAtCap(
  format: 'cbor' | 'json',
  make: (items: number) => Buffer,
  value: (items: number) => unknown[],
  opts: FrameDecoderOptions,
): void {
  const cap = opts.maxFrameItems!;
  const ok = make(cap);
  const over = make(cap + 1);
  // Frames shorter than the cap cannot hold more items; these attacks are longer.
  expect(over.length).toBeGreaterThan(cap);
  for (const c of chunkings(ok)) {
    const r = decodeChunks(format, c.chunks, opts);
    expect(r.error, c.name).toBeNull();
    expect(r.msgs, c.name).toEqual([value(cap)]);
  }
  for (const c of chunkings(over)) {
    const r = decodeChunks(format, c.chunks, opts);
    expect(r.error?.code, c.name).toBe('ERR_FRAME_TOO_LARGE');
    expect(r.error?.message, c.name).toMatch(new RegExp(`frame holds more than ${cap} data items`));
    expect(r.msgs, c.name).toEqual([]);
  }
}

describe('maxFrameItems: CBOR', () => {
  it.each(cborAttacks)('%s: exactly the cap decodes, one more item is refused', (_w, make, value) => {
    expectAtCap('cbor', make, value, { maxFrameItems: CAP, maxDepth: 1000 });
  });

  it('a definite container announcing more items than the cap is refused at its head', () => {
    const dec = createFrameDecoder('cbor', { maxFrameItems: 1000 });
    // [ [ …1000 items announced, none sent yet
    expect(() => dec.push(Buffer.concat([Buffer.of(0x82, 0x00), head(4, 1000)]), () => {})).toThrow(
      expect.objectContaining({ code: 'ERR_FRAME_TOO_LARGE' }),
    );
    const maps = createFrameDecoder('cbor', { maxFrameItems: 1000 });
    expect(() => maps.push(Buffer.concat([Buffer.of(0x81), head(5, 500)]), () => {})).toThrow(
      expect.objectContaining({ code: 'ERR_FRAME_TOO_LARGE' }),
    );
  });

  it('the count is per frame: many frames just under the cap, back to back, all decode', () => {
    const frame = Buffer.concat([head(4, CAP - 1), rep('80', CAP - 1)]);
    const all = Buffer.concat(Array(5).fill(frame));
    for (const c of chunkings(all, 200)) {
      const r = decodeChunks('cbor', c.chunks, { maxFrameItems: CAP });
      expect(r.error, c.name).toBeNull();
      expect(r.msgs.length, c.name).toBe(5);
    }
  });

  it('frames before the one over the cap are delivered, then the decoder is dead', () => {
    const good = Buffer.of(0x81, 0x01);
    const bad = Buffer.concat([head(4, CAP), rep('80', CAP)]);
    for (const c of chunkings(Buffer.concat([good, good, bad, good]))) {
      const r = decodeChunks('cbor', c.chunks, { maxFrameItems: CAP });
      expect(r.msgs, c.name).toEqual([[1], [1]]);
      expect(r.error?.code, c.name).toBe('ERR_FRAME_TOO_LARGE');
    }
  });

  it('the default cap: 1,000,000 items decode, 1,000,001 do not (empty chunks, [], {}, empty keys)', () => {
    const n = DEFAULT_MAX_FRAME_ITEMS;
    const frames = [cborAttacks[0]!, cborAttacks[2]!, cborAttacks[3]!, cborAttacks[4]!];
    for (const [name, make] of frames) {
      for (const [items, ok] of [
        [n, true],
        [n + 1, false],
      ] as const) {
        const bytes = make(items);
        const half = bytes.length >> 1;
        for (const chunks of [[bytes], [bytes.subarray(0, half), bytes.subarray(half)]]) {
          const r = decodeChunks('cbor', chunks);
          expect(r.error?.code ?? null, `${name} ${items} in ${chunks.length}`).toBe(
            ok ? null : 'ERR_FRAME_TOO_LARGE',
          );
          expect(r.msgs.length).toBe(ok ? 1 : 0);
        }
      }
    }
  });

  it('empty chunks of an indefinite string allocate nothing per chunk', async () => {
    // 4 million empty chunks under a raised cap: the frame decodes to [""] without garbage to
    // collect (one Buffer per chunk would be hundreds of MB, and dozens of collections).
    const k = 4_000_000;
    const bytes = Buffer.concat([Buffer.of(0x81, 0x5f), Buffer.alloc(k, 0x40), Buffer.of(0xff)]);
    // Collections are reported to observers later, in order. A collection forced after the
    // decoding is the marker: once its report arrives, every earlier one has arrived too.
    let gcs = 0;
    let markedAt = Number.POSITIVE_INFINITY;
    let markerSeen!: () => void;
    const marker = new Promise<void>((resolve) => {
      markerSeen = resolve;
    });
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.startTime >= markedAt) {
          const { flags } = (e as unknown as { detail: { flags: number } }).detail;
          if (flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) markerSeen();
        } else gcs++;
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    for (const chunks of [[bytes], [bytes.subarray(0, 1 << 20), bytes.subarray(1 << 20)]]) {
      const r = decodeChunks('cbor', chunks, { maxFrameItems: k + 2 });
      expect(r.error).toBeNull();
      expect(r.msgs).toEqual([['']]);
    }
    markedAt = performance.now();
    forceGc();
    await within(marker, 5000, 'the report of the collection forced after decoding');
    obs.disconnect();
    expect(gcs).toBeLessThan(4);
  });
});

describe('maxFrameItems: JSON', () => {
  it.each(jsonAttacks)('%s: exactly the cap decodes, one more item is refused', (_w, make, value) => {
    expectAtCap('json', make, value, { maxFrameItems: CAP, maxDepth: 1000 });
  });

  it('frames before the one over the cap are delivered, in the same chunk and across chunks', () => {
    const good = Buffer.from('[1]');
    const bad = Buffer.from(`[${Array(CAP).fill('[]').join(',')}]`);
    for (const c of chunkings(Buffer.concat([good, good, bad, good]))) {
      const r = decodeChunks('json', c.chunks, { maxFrameItems: CAP });
      expect(r.msgs, c.name).toEqual([[1], [1]]);
      expect(r.error?.code, c.name).toBe('ERR_FRAME_TOO_LARGE');
    }
  });

  it('a text no longer than the cap is not counted (it cannot hold more items than bytes)', () => {
    const text = Buffer.from(`[${Array(31).fill('0').join(',')}]`); // 63 bytes, 32 items
    expect(decodeChunks('json', [text], { maxFrameItems: 63 }).error).toBeNull();
    expect(decodeChunks('json', [text], { maxFrameItems: 31 }).error?.code).toBe('ERR_FRAME_TOO_LARGE');
  });

  it('the default cap: 1,000,000 items decode, 1,000,001 do not ([[],[],…])', () => {
    const n = DEFAULT_MAX_FRAME_ITEMS;
    for (const [name, make] of [jsonAttacks[0]!]) {
      for (const [items, ok] of [
        [n, true],
        [n + 1, false],
      ] as const) {
        const bytes = make(items);
        const half = bytes.length >> 1;
        for (const chunks of [[bytes], [bytes.subarray(0, half), bytes.subarray(half)]]) {
          const r = decodeChunks('json', chunks);
          expect(r.error?.code ?? null, `${name} ${items} in ${chunks.length}`).toBe(
            ok ? null : 'ERR_FRAME_TOO_LARGE',
          );
          expect(r.msgs.length).toBe(ok ? 1 : 0);
        }
      }
    }
  });
});

describe('work per frame', () => {
  // Byte-by-byte shifting took about 40 s for a 256 KiB bignum; hex decoding is linear, and past
  // the exact limit nothing is converted. The test's own deadline catches a quadratic decoder,
  // without a wall-clock assertion.
  it('a bignum at the exact limit decodes to the right value; a longer one is infinite', () => {
    const n = MAX_EXACT_BIGNUM_BYTES;
    const digits = Buffer.alloc(n, 0xa5);
    digits[0] = 0x01;
    const expected = BigInt(`0x${digits.toString('hex')}`);
    // Leading zero bytes do not count.
    const padded = Buffer.concat([Buffer.alloc(16), digits]);
    for (const [tag, value] of [
      [0xc2, expected],
      [0xc3, -1n - expected],
    ] as const) {
      const bytes = Buffer.concat([Buffer.of(0x81, tag), head(2, padded.length), padded]);
      const r = decodeChunks('cbor', [bytes]);
      expect(r.error).toBeNull();
      expect(r.msgs[0]![0] === value).toBe(true);
    }
    // 256 KiB: converting it to decimal text would take most of a second.
    const big = Buffer.alloc(256 * 1024, 0xa5);
    for (const [tag, value] of [
      [0xc2, Infinity],
      [0xc3, -Infinity],
    ] as const) {
      const r = decodeChunks('cbor', [Buffer.concat([Buffer.of(0x81, tag), head(2, big.length), big])]);
      expect(r.error).toBeNull();
      expect(r.msgs[0]![0]).toBe(value);
    }
  });
});

describe('maxFrameItems: option', () => {
  it('must be at least 1', () => {
    expect(() => createFrameDecoder('cbor', { maxFrameItems: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }),
    );
  });
});
