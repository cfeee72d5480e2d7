/**
 * CBOR encoding of data-phase frames (protocol.md §8.1): ASCII and wide strings as text strings,
 * other strings of code points ≤ 0xFF as byte strings (see writeString), minimal heads, float32
 * when exact (-0 included), maps with string keys, no tags for byte strings.
 *
 * Encoding writes into a shared slab and returns views of it; a slab region is never rewritten, so
 * returned buffers stay valid (a view keeps its slab of at least 64 KiB alive).
 */
import { AempError } from '../errors.js';
import { type FastBuffer, HAS_FAST, TWO32 } from './cbor-buffer.js';
import type { FrameEncoder } from './frame-types.js';

const U64_MAX = 0xffffffffffffffffn;
// ---------------------------------------------------------------------------------------------
// Encoder. Shared slab; each encode/encodeBatch appends at `at` and returns a view of its bytes.

/** Same limit as Perl's CBOR::XS/JSON::XS max_depth: deeper data would be rejected by the peer. */
export const MAX_ENCODE_DEPTH = 512;
const SLAB = 64 * 1024;
/** Start a new slab rather than begin a message with less room than this. */
const SLAB_MIN_ROOM = 1024;
/** `encodeChunks` ends a chunk once it holds this many bytes. */
export const CHUNK_BYTES = 256 * 1024;

let out = Buffer.allocUnsafeSlow(SLAB) as FastBuffer;
let outView = new DataView(out.buffer, out.byteOffset, out.length);
let at = 0;
let begin = 0;
let busy = false;

function newSlab(size: number): void {
  out = Buffer.allocUnsafeSlow(size) as FastBuffer;
  outView = new DataView(out.buffer, out.byteOffset, out.length);
  at = 0;
}

function room(k: number): void {
  if (at + k > out.length) grow(k);
}

function grow(k: number): void {
  const used = at - begin;
  const next = Buffer.allocUnsafeSlow(Math.max(SLAB, (used + k) * 2)) as FastBuffer;
  out.copy(next, 0, begin, at);
  out = next;
  outView = new DataView(out.buffer, out.byteOffset, out.length);
  at = used;
  begin = 0;
}

function head(major: number, n: number): void {
  room(9);
  const m = major << 5;
  if (n < 24) out[at++] = m | n;
  else if (n < 0x100) {
    out[at] = m | 24;
    out[at + 1] = n;
    at += 2;
  } else if (n < 0x10000) {
    out[at] = m | 25;
    out[at + 1] = n >> 8;
    out[at + 2] = n & 0xff;
    at += 3;
  } else if (n < TWO32) {
    out[at] = m | 26;
    outView.setUint32(at + 1, n);
    at += 5;
  } else {
    out[at] = m | 27;
    outView.setUint32(at + 1, Math.floor(n / TWO32));
    outView.setUint32(at + 5, n >>> 0);
    at += 9;
  }
}

function head64(major: number, n: bigint): void {
  room(9);
  out[at] = (major << 5) | 27;
  outView.setBigUint64(at + 1, n);
  at += 9;
}

/**
 * Strings (protocol.md §8.1). A JS string is a string of code points, as a Perl string is; Perl
 * tells byte strings from text strings, JS cannot. So: ASCII → text string (major 3, the same
 * bytes either way); every other string whose characters are all ≤ 0xFF → byte string (major 2)
 * of those bytes, one per character, which is exactly what a Perl byte string is on the wire and
 * what the decoder makes of it; anything with a character above 0xFF → UTF-8 text string. Perl
 * reads all three back as the same characters, and a Perl byte string relayed through aemp goes
 * back byte for byte.
 */
function writeString(s: string): void {
  const n = s.length;
  if (n < 0x100) {
    // One byte per char as long as every char is ≤ 0xFF, so the header size is known up front.
    const hl = n < 24 ? 1 : 2;
    room(hl + n);
    let p = at + hl;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        writeShortLatin1(s, i, p, hl);
        return;
      }
      out[p++] = c;
    }
    if (hl === 1) out[at] = 0x60 | n;
    else {
      out[at] = 0x78;
      out[at + 1] = n;
    }
    at = p;
    return;
  }
  writeLongString(s);
}

/** Continues writeString at s[i] (the first non-ASCII char): a byte string unless a char is > 0xFF. */
function writeShortLatin1(s: string, i: number, p: number, hl: number): void {
  const n = s.length;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) {
      writeUtf8(s);
      return;
    }
    out[p++] = c;
  }
  if (hl === 1) out[at] = 0x40 | n;
  else {
    out[at] = 0x58;
    out[at + 1] = n;
  }
  at = p;
}

/** Any char above 0xFF (V8 tests this fast on its one-byte strings). */
const WIDE = /[\u0100-\uffff]/;

function writeLongString(s: string): void {
  const rel = at - begin; // grow() moves the message but keeps at - begin
  // As many UTF-8 bytes as chars: ASCII, done. Else rewrite as a byte string if it fits Latin-1.
  if (writeUtf8(s) === s.length || WIDE.test(s)) return;
  at = begin + rel;
  const n = s.length;
  head(2, n);
  room(n);
  at += HAS_FAST ? out.latin1Write(s, at, n) : out.write(s, at, n, 'latin1');
}

/** Writes s as a UTF-8 text string; returns its byte count. */
function writeUtf8(s: string): number {
  // Write the UTF-8 bytes once, after a head sized for the most they can be (3 per UTF-16 unit);
  // when the real length needs a shorter head, move the bytes back over the difference.
  const max = s.length * 3;
  const hlMax = headSize(max);
  room(Math.max(hlMax + max, 9)); // head() below needs 9 bytes of room at `at`, not a move
  const n = HAS_FAST ? out.utf8Write(s, at + hlMax, max) : out.write(s, at + hlMax, max, 'utf8');
  const hl = headSize(n);
  if (hl !== hlMax) out.copyWithin(at + hl, at + hlMax, at + hlMax + n);
  head(3, n);
  at += n;
  return n;
}

/** Bytes of a minimal head for the argument `n`. */
function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < TWO32 ? 5 : 9;
}

function writeNumber(v: number): void {
  if (Number.isSafeInteger(v)) {
    if (v > 0) head(0, v);
    else if (v < 0) head(1, -1 - v);
    else if (Object.is(v, -0)) {
      // -0 stays a float (fa 80000000), so that it comes back as -0.
      room(5);
      out[at] = 0xfa;
      outView.setFloat32(at + 1, v);
      at += 5;
    } else {
      room(1);
      out[at++] = 0;
    }
  } else if (Math.fround(v) === v) {
    room(5);
    out[at] = 0xfa;
    outView.setFloat32(at + 1, v);
    at += 5;
  } else {
    room(9);
    out[at] = 0xfb;
    outView.setFloat64(at + 1, v);
    at += 9;
  }
}

function writeBigInt(v: bigint): void {
  if (v >= 0n) {
    if (v <= BigInt(Number.MAX_SAFE_INTEGER)) head(0, Number(v));
    else if (v <= U64_MAX) head64(0, v);
    else writeBignum(2, v);
  } else {
    const n = -1n - v;
    if (n <= BigInt(Number.MAX_SAFE_INTEGER)) head(1, Number(n));
    else if (n <= U64_MAX) head64(1, n);
    else writeBignum(3, n);
  }
}

function writeBignum(tag: number, n: bigint): void {
  let h = n.toString(16);
  if (h.length & 1) h = `0${h}`;
  head(6, tag);
  const bytes = Buffer.from(h, 'hex');
  head(2, bytes.length);
  room(bytes.length);
  out.set(bytes, at);
  at += bytes.length;
}

function badValue(msg: string): AempError {
  return new AempError('ERR_BAD_ARGUMENT', `cannot encode message: ${msg}`);
}

function writeValue(v: unknown, d: number): void {
  switch (typeof v) {
    case 'string':
      writeString(v);
      return;
    case 'number':
      writeNumber(v);
      return;
    case 'object':
      if (v === null) {
        room(1);
        out[at++] = 0xf6;
      } else writeObject(v, d);
      return;
    case 'boolean':
      room(1);
      out[at++] = v ? 0xf5 : 0xf4;
      return;
    case 'undefined':
      room(1);
      out[at++] = 0xf7;
      return;
    case 'bigint':
      writeBigInt(v);
      return;
    default:
      // functions and symbols have no wire form; JSON turns them into null in arrays too
      room(1);
      out[at++] = 0xf6;
  }
}

function writeObject(v: object, d: number): void {
  if (d >= MAX_ENCODE_DEPTH) throw badValue(`nested deeper than ${MAX_ENCODE_DEPTH} levels (cyclic?)`);
  if (Array.isArray(v)) {
    const n = v.length;
    head(4, n);
    for (let i = 0; i < n; i++) writeValue(v[i], d + 1);
    return;
  }
  if (v instanceof Uint8Array) {
    head(2, v.length);
    room(v.length);
    out.set(v, at);
    at += v.length;
    return;
  }
  if (v instanceof Map) {
    head(5, v.size);
    for (const [k, x] of v) {
      writeValue(k, d + 1);
      writeValue(x, d + 1);
    }
    return;
  }
  const proto = Object.getPrototypeOf(v);
  if (
    proto !== Object.prototype &&
    proto !== null &&
    typeof (v as { toJSON?: unknown }).toJSON === 'function'
  ) {
    writeValue((v as { toJSON(): unknown }).toJSON(), d);
    return;
  }
  const keys = Object.keys(v);
  const n = keys.length;
  head(5, n);
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    writeString(k);
    writeValue((v as Record<string, unknown>)[k], d + 1);
  }
}

function startMessage(): void {
  if (busy) throw badValue('encoder re-entered (from a toJSON method?)');
  if (out.length - at < SLAB_MIN_ROOM) newSlab(SLAB);
  begin = at;
  busy = true;
}

function encodeAll(msgs: readonly (readonly unknown[])[] | null, one: readonly unknown[] | null): Uint8Array {
  startMessage();
  try {
    if (one !== null) writeValue(one, 0);
    else for (const m of msgs!) writeValue(m, 0);
  } catch (e) {
    at = begin;
    throw e;
  } finally {
    busy = false;
  }
  // Views handed out are never written again: the next message starts at `at`.
  return out.subarray(begin, at);
}

/**
 * The frames of `msgs` in chunks of about CHUNK_BYTES (a larger frame is a chunk of its own):
 * a big batch is never copied into ever larger buffers, and each chunk after the first starts
 * in a slab with room for a whole chunk.
 */
function encodeChunks(msgs: readonly (readonly unknown[])[], maxBytes = Infinity): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  /** Bytes in `chunks`. */
  let pushed = 0;
  startMessage();
  try {
    for (const m of msgs) {
      writeValue(m, 0);
      if (at - begin >= CHUNK_BYTES) {
        chunks.push(out.subarray(begin, at));
        pushed += at - begin;
        if (out.length - at < CHUNK_BYTES) newSlab(2 * CHUNK_BYTES);
        begin = at;
      }
      if (pushed + at - begin > maxBytes) break;
    }
  } catch (e) {
    at = begin;
    throw e;
  } finally {
    busy = false;
  }
  if (at > begin || chunks.length === 0) chunks.push(out.subarray(begin, at));
  return chunks;
}

const cborEncoder: FrameEncoder = {
  encode(msg: readonly unknown[]): Uint8Array {
    return encodeAll(null, msg);
  },
  encodeBatch(msgs: readonly (readonly unknown[])[]): Uint8Array {
    return encodeAll(msgs, null);
  },
  encodeChunks,
};

export function createCborFrameEncoder(): FrameEncoder {
  return cborEncoder;
}
