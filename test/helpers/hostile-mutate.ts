/**
 * fast-check arbitraries that damage captured wire bytes: bit flips, byte overwrites,
 * truncations, insertions (random bytes or protocol-significant ones) and deletions, plus random
 * chunkings of the result. `firstChange` says where the damaged bytes first differ from the
 * original, so a test can expect everything before it to behave as before.
 */
import fc from 'fast-check';

export type Edit =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number };

/** Bytes that mean something to the decoders: LF, CR, ';', CBOR heads, JSON brackets, … */
const SIGNIFICANT = [
  0x0a, 0x0d, 0x3b, 0x2c, 0x3d, 0x22, 0x5b, 0x5d, 0x7b, 0x7d, 0x5c, 0x00, 0x80, 0x9f, 0xbf, 0xff, 0x1b, 0x1f,
  0x5b, 0x7b, 0x9b, 0xbb, 0xc0, 0xe0, 0xf0, 0xf8, 0xfe,
];

const insertion = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 16 }),
  fc.array(fc.constantFrom(...SIGNIFICANT), { minLength: 1, maxLength: 8 }).map((a) => Uint8Array.from(a)),
  // A CBOR head announcing a huge byte string / array, or deep nesting.
  fc.constantFrom(
    Uint8Array.from([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    Uint8Array.from([0x9b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]),
    new Uint8Array(600).fill(0x81),
    new Uint8Array(600).fill(0x5b),
  ),
);

export const edit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: insertion }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('delete' as const),
      at: fc.nat(),
      count: fc.integer({ min: 1, max: 8 }),
    }),
  },
);

export const edits = fc.array(edit, { minLength: 1, maxLength: 4 });

export interface Mutated {
  bytes: Uint8Array;
  /** Offset of the first byte that differs from the original (its length if it is a prefix). */
  firstChange: number;
}

/** Applies `list` to a copy of `original` (positions taken modulo the current length). */
export function mutate(original: Uint8Array, list: readonly Edit[]): Mutated {
  let b = Uint8Array.from(original);
  for (const e of list) {
    const n = b.length;
    switch (e.op) {
      case 'flip':
        if (n > 0) b[e.at % n]! ^= 1 << e.bit;
        break;
      case 'set':
        if (n > 0) b[e.at % n] = e.value;
        break;
      case 'truncate':
        b = b.slice(0, e.at % (n + 1));
        break;
      case 'insert': {
        const p = e.at % (n + 1);
        const out = new Uint8Array(n + e.bytes.length);
        out.set(b.subarray(0, p));
        out.set(e.bytes, p);
        out.set(b.subarray(p), p + e.bytes.length);
        b = out;
        break;
      }
      case 'delete': {
        if (n === 0) break;
        const p = e.at % n;
        b = Uint8Array.from([...b.subarray(0, p), ...b.subarray(p + e.count)]);
        break;
      }
    }
  }
  let firstChange = 0;
  while (firstChange < b.length && firstChange < original.length && b[firstChange] === original[firstChange])
    firstChange++;
  return { bytes: b, firstChange };
}

/** Where to cut a buffer into chunks, as millionths of its length (applied by `chunked`). */
export const chunking: fc.Arbitrary<number[]> = fc.uniqueArray(fc.integer({ min: 1, max: 999_999 }), {
  maxLength: 10,
});

/** Splits `bytes` at the given millionths of its length (empty chunks left out). */
export function chunked(bytes: Uint8Array, millionths: readonly number[]): Uint8Array[] {
  const at = [...new Set(millionths.map((m) => Math.floor((m * bytes.length) / 1_000_000)))].sort(
    (a, b) => a - b,
  );
  const out: Uint8Array[] = [];
  let p = 0;
  for (const c of at) {
    if (c <= p || c >= bytes.length) continue;
    out.push(bytes.subarray(p, c));
    p = c;
  }
  if (p < bytes.length) out.push(bytes.subarray(p));
  return out;
}
