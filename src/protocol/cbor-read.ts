/**
 * The CBOR reader of cbor-decode.ts: turns one complete data item into its JS value (the value
 * mapping and the item counting are described there).
 *
 * Its state lives at module level for speed and is valid only during one synchronous
 * `readItem` call; every call sets it afresh, so decoders may be used re-entrantly from
 * `onMessage` callbacks.
 */
import { ProtocolError } from '../errors.js';
import { EMPTY, type FastBuffer, HAS_FAST, TWO32 } from './cbor-buffer.js';
import { SHORT_MAX, shortString } from './cbor-short-strings.js';
import { MAX_EXACT_BIGNUM_BYTES } from './constants.js';

/** Thrown (not an Error: no stack capture) when the frame runs past the end of the bytes. */
export const INCOMPLETE: { readonly incomplete: true } = { incomplete: true };

let src: FastBuffer = EMPTY;

/**
 * Floats are read through one 8-byte scratch area instead of a DataView over each chunk: a
 * frame with a float (a time stamp, say) would otherwise allocate a view on every read.
 */
const F64 = new Float64Array(1);
const F32 = new Float32Array(F64.buffer, 0, 1);
const SCRATCH = new Uint8Array(F64.buffer);
/** True where typed arrays are little-endian (CBOR's numbers are big-endian). */
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The `n` bytes at `pos` into the scratch area in the platform's byte order. */
function scratch(n: number): void {
  if (LITTLE) for (let i = 0; i < n; i++) SCRATCH[i] = src[pos + n - 1 - i]!;
  else for (let i = 0; i < n; i++) SCRATCH[i] = src[pos + i]!;
}

/** The big-endian unsigned 32-bit integer at `at`. */
function u32(at: number): number {
  return src[at]! * 0x1000000 + ((src[at + 1]! << 16) | (src[at + 2]! << 8) | src[at + 3]!);
}
let pos = 0;
let end = 0;
let depth = 0;
let maxDepth = 500;
/** Data items of the frame so far (counted before they are read) and the most allowed. */
let items = 0;
let maxItems = 0;

function bad(msg: string): never {
  throw new ProtocolError('ERR_BAD_FRAME', `bad CBOR frame: ${msg}`);
}

function tooDeep(): never {
  return bad(`nested deeper than ${maxDepth} levels`);
}

function tooManyItems(): never {
  throw tooManyError(maxItems);
}

export function tooManyError(max: number): ProtocolError {
  return new ProtocolError('ERR_FRAME_TOO_LARGE', `CBOR frame holds more than ${max} data items`);
}

export function hex2(b: number): string {
  return b.toString(16).padStart(2, '0');
}

/**
 * Reads the data item at buf[start, stop) and returns it;
 * `readEnd()` then tells where it ended. Throws `INCOMPLETE` if the bytes end before the item does,
 * a `ProtocolError` for bad input or one over `depthLimit` levels or `itemLimit` data items (the
 * item itself counts as the first).
 */
export function readItem(
  buf: FastBuffer,
  start: number,
  stop: number,
  depthLimit: number,
  itemLimit: number,
): unknown {
  src = buf;
  pos = start;
  end = stop;
  depth = 0;
  maxDepth = depthLimit;
  items = 1;
  maxItems = itemLimit;
  return read();
}

/** Where the item `readItem` last read ended. */
export function readEnd(): number {
  return pos;
}

function read(): unknown {
  if (pos >= end) throw INCOMPLETE;
  const ib = src[pos++]!;
  const major = ib >> 5;
  let n = ib & 0x1f;
  if (n >= 24) {
    switch (n) {
      case 24:
        if (pos >= end) throw INCOMPLETE;
        n = src[pos++]!;
        break;
      case 25:
        if (pos + 2 > end) throw INCOMPLETE;
        n = (src[pos]! << 8) | src[pos + 1]!;
        pos += 2;
        if (major === 7) return half(n);
        break;
      case 26:
        if (pos + 4 > end) throw INCOMPLETE;
        if (major === 7) {
          scratch(4);
          pos += 4;
          return F32[0]!;
        }
        n = u32(pos);
        pos += 4;
        break;
      case 27:
        return read64(major);
      case 31:
        return readIndefinite(major);
      default:
        return bad(`reserved additional information in initial byte 0x${hex2(ib)}`);
    }
  }
  switch (major) {
    case 0:
      return n;
    case 1:
      return -1 - n;
    case 2:
      return readBytes(n);
    case 3:
      return readText(n);
    case 4:
      return readArray(n);
    case 5:
      return readMap(n);
    case 6:
      return readTagged(n);
    default:
      return simple(n);
  }
}

function simple(n: number): unknown {
  switch (n) {
    case 20:
      return false;
    case 21:
      return true;
    case 22:
      return null;
    default:
      // 23 = undefined; unassigned simple values are passed on as undefined as well.
      return undefined;
  }
}

function half(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  let v: number;
  if (e === 0) v = m * 2 ** -24;
  else if (e === 31) v = m === 0 ? Number.POSITIVE_INFINITY : Number.NaN;
  else v = (m + 1024) * 2 ** (e - 25);
  return h & 0x8000 ? -v : v;
}

function read64(major: number): unknown {
  if (pos + 8 > end) throw INCOMPLETE;
  if (major === 7) {
    scratch(8);
    pos += 8;
    return F64[0]!;
  }
  const hi = u32(pos);
  const lo = u32(pos + 4);
  pos += 8;
  switch (major) {
    case 0:
      return hi < 0x200000 ? hi * TWO32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
    case 1:
      // -1 - n is a safe integer for n ≤ 2**53 - 2.
      if (hi < 0x1fffff || (hi === 0x1fffff && lo !== 0xffffffff)) return -1 - (hi * TWO32 + lo);
      return -1n - ((BigInt(hi) << 32n) | BigInt(lo));
    case 6:
      return readTagged(hi * TWO32 + lo);
    default:
      // A length of 2**32 or more can never be complete within any frame limit; the scanner
      // reports it as too large.
      if (hi !== 0) throw INCOMPLETE;
      switch (major) {
        case 2:
          return readBytes(lo);
        case 3:
          return readText(lo);
        case 4:
          return readArray(lo);
        default:
          return readMap(lo);
      }
  }
}

function utf8(buf: FastBuffer, start: number, stop: number): string {
  return HAS_FAST ? buf.utf8Slice(start, stop) : buf.toString('utf8', start, stop);
}

function latin1(buf: FastBuffer, start: number, stop: number): string {
  return HAS_FAST ? buf.latin1Slice(start, stop) : buf.toString('latin1', start, stop);
}

function readText(n: number): string {
  if (n > end - pos) throw INCOMPLETE;
  const p = pos;
  pos += n;
  if (n <= SHORT_MAX) {
    const s = shortString(src, p, n);
    if (s !== null) return s;
  }
  return utf8(src, p, pos);
}

function readBytes(n: number): string {
  if (n > end - pos) throw INCOMPLETE;
  const p = pos;
  pos += n;
  if (n <= SHORT_MAX) {
    const s = shortString(src, p, n);
    if (s !== null) return s;
  }
  return latin1(src, p, pos);
}

function readArray(n: number): unknown[] {
  // Every element takes at least one byte.
  if (n > end - pos) throw INCOMPLETE;
  if ((items += n) > maxItems) tooManyItems();
  if (++depth > maxDepth) tooDeep();
  const a = new Array<unknown>(n);
  for (let i = 0; i < n; i++) a[i] = read();
  depth--;
  return a;
}

function readMap(n: number): Record<string, unknown> {
  if (n > (end - pos) / 2) throw INCOMPLETE;
  if ((items += 2 * n) > maxItems) tooManyItems();
  if (++depth > maxDepth) tooDeep();
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) setKey(o, readKey(), read());
  depth--;
  return o;
}

function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

function readKey(): string {
  if (pos < end) {
    const ib = src[pos]!;
    // Short byte or text string: the common case.
    if (ib >= 0x40 && ib < 0x78 && (ib & 0x1f) < 24) {
      pos++;
      return ib < 0x60 ? readBytes(ib & 0x1f) : readText(ib & 0x1f);
    }
  }
  return toKey(read());
}

function toKey(k: unknown): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean' || k == null) return String(k);
  return bad('map key is an array or a map');
}

function readTagged(tag: number): unknown {
  if (++items > maxItems) tooManyItems();
  if (++depth > maxDepth) tooDeep();
  let v: unknown;
  if ((tag === 2 || tag === 3) && pos < end && src[pos]! >= 0x40 && src[pos]! <= 0x5b)
    v = readBignum(tag === 3);
  else v = read();
  depth--;
  return v;
}

/** Reads the length of a definite-length string head at pos (major already checked). */
function readLength(): number {
  const info = src[pos++]! & 0x1f;
  if (info < 24) return info;
  const size = 1 << (info - 24);
  if (pos + size > end) throw INCOMPLETE;
  let n = 0;
  for (let i = 0; i < size; i++) n = n * 256 + src[pos + i]!;
  pos += size;
  return n;
}

function readBignum(negative: boolean): number | bigint {
  const n = readLength();
  if (n > end - pos) throw INCOMPLETE;
  if (n > MAX_EXACT_BIGNUM_BYTES) {
    let first = pos;
    while (first < pos + n && src[first] === 0) first++;
    if (pos + n - first > MAX_EXACT_BIGNUM_BYTES) {
      pos += n;
      return negative ? -Infinity : Infinity;
    }
  }
  let v = 0n;
  if (n <= 8) for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(src[pos + i]!);
  // Shifting byte by byte would copy the growing value each time (quadratic); hex is linear.
  else v = BigInt(`0x${src.toString('hex', pos, pos + n)}`);
  pos += n;
  if (negative) v = -1n - v;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function readIndefinite(major: number): unknown {
  switch (major) {
    case 2:
    case 3:
      return readChunked(major);
    case 4: {
      if (++depth > maxDepth) tooDeep();
      const a: unknown[] = [];
      for (;;) {
        if (pos >= end) throw INCOMPLETE;
        if (src[pos] === 0xff) {
          pos++;
          break;
        }
        if (++items > maxItems) tooManyItems();
        a.push(read());
      }
      depth--;
      return a;
    }
    case 5: {
      if (++depth > maxDepth) tooDeep();
      const o: Record<string, unknown> = {};
      for (;;) {
        if (pos >= end) throw INCOMPLETE;
        if (src[pos] === 0xff) {
          pos++;
          break;
        }
        if ((items += 2) > maxItems) tooManyItems();
        const k = readKey();
        setKey(o, k, read());
      }
      depth--;
      return o;
    }
    case 7:
      return bad('unexpected break (0xff)');
    default:
      return bad(`indefinite length is not allowed for major type ${major}`);
  }
}

/**
 * An indefinite-length string (major 2 or 3). One pass checks and counts the chunks and adds up
 * their lengths without allocating anything; a string of at most one non-empty chunk is then read
 * in place, any other is copied once into a buffer of its total length.
 */
function readChunked(major: number): string {
  const first = pos;
  let total = 0;
  let start = -1;
  let nonEmpty = 0;
  for (;;) {
    if (pos >= end) throw INCOMPLETE;
    const ib = src[pos]!;
    if (ib === 0xff) break;
    if (ib >> 5 !== major || (ib & 0x1f) > 27) bad('bad chunk in an indefinite-length string');
    if (++items > maxItems) tooManyItems();
    const n = readLength();
    if (n > end - pos) throw INCOMPLETE;
    if (n > 0) {
      if (nonEmpty++ === 0) start = pos;
      total += n;
    }
    pos += n;
  }
  const stop = pos++; // the break
  let buf = src;
  if (nonEmpty === 0) return '';
  if (nonEmpty > 1) {
    buf = Buffer.allocUnsafe(total) as FastBuffer;
    let at = 0;
    pos = first;
    while (pos < stop) {
      const n = readLength();
      if (n > 0) at += src.copy(buf, at, pos, pos + n);
      pos += n;
    }
    pos = stop + 1;
    start = 0;
  }
  return major === 3 ? utf8(buf, start, start + total) : latin1(buf, start, start + total);
}
