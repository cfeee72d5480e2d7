/**
 * Data-phase frame codecs (protocol.md §8–§9): after the handshake every message is one frame, an
 * array `[PORTNAME, …]`, serialised as CBOR or JSON and written back to back with no separator.
 *
 * Decoding — `createFrameDecoder(format, opts).push(chunk, onMessage)`:
 * - calls `onMessage` once per complete frame in the chunk(s), in order, synchronously; an incomplete
 *   tail is kept (`buffered` bytes) until a later chunk completes it. Frames may be split anywhere.
 * - on bad input it first delivers the complete frames before the bad one, then throws a
 *   `ProtocolError`: `ERR_BAD_FRAME` (malformed data, a top-level item that is not an array, nesting
 *   deeper than `maxDepth`, invalid UTF-8 in JSON, anything but whitespace between JSON texts) or
 *   `ERR_FRAME_TOO_LARGE` (as soon as a frame is known to be larger than `maxFrameBytes`: a
 *   complete frame that size, buffered bytes of an incomplete frame that already need more, or a
 *   CBOR length head announcing more; or a frame of more than `maxFrameItems` data items: CBOR
 *   counts while scanning and before allocating a container, JSON counts before `JSON.parse` in
 *   every frame longer than `maxFrameItems` bytes, as every item takes at least one byte).
 *   Whitespace between JSON texts is never buffered or counted.
 *   No other exception type escapes for bad input (a stack overflow while decoding becomes
 *   `ERR_BAD_FRAME`). After such a throw the decoder is dead: every later `push` throws again.
 * - if `onMessage` throws, that exception propagates unchanged; the decoder stays usable and keeps
 *   the undelivered bytes, which the next `push` decodes.
 * - decoded values never alias the chunk, so the caller may reuse chunk memory once push returns.
 * - `onMessage` may use other decoders, but calling `push` of the same decoder from its own
 *   `onMessage` throws `AempError` `ERR_BAD_ARGUMENT`.
 *
 * Value mapping (decode): CBOR byte strings and text strings → string (byte strings: one character
 * per byte, code points 0–255, which is the Perl value and what Perl's JSON framing sends for the
 * same string — Perl sends most strings as byte strings, map keys included; `utf8Text` in
 * text.ts gives the UTF-8 reading); maps → plain
 * objects with string keys; `null` → null, CBOR `undefined` → undefined; all float widths → number;
 * unknown tags are skipped. Integers: CBOR safe integers → number, 64-bit integers beyond
 * ±(2**53-1) and bignums → bigint (exact, and encoded back identically); JSON numbers are whatever
 * `JSON.parse` makes of them, except that integers beyond ±(2**53-1) are bigint (exact), as in CBOR.
 *
 * Encoding — `createFrameEncoder(format)`: `encode(msg)` returns one frame, `encodeBatch(msgs)`
 * all frames back to back in one buffer (one socket write per event-loop turn). Returned buffers
 * (Node Buffers) stay valid after later encode calls and are never written again by the encoder;
 * CBOR ones are views into a shared slab of at least 64 KiB, which they keep alive. CBOR: strings →
 * text strings, except that a non-ASCII string whose characters are all ≤ 0xFF → byte string of
 * those bytes (so a Perl byte string relayed through aemp goes back unchanged), -0 → float32,
 * plain objects → maps with text keys, Map → map, Uint8Array → byte string (no tag), safe
 * integers → minimal-length integers, other numbers → float32 when exact else float64, bigint →
 * 64-bit integer (bignum tag beyond), null/undefined/booleans → f6/f7/f5/f4, objects with
 * `toJSON` (e.g. Date) → their toJSON value, functions/symbols → null; nesting deeper than 512
 * levels (CBOR::XS's max_depth; also how cycles are caught) throws. JSON: `JSON.stringify`
 * (bigint written as digits; integral numbers beyond ±(2**53-1) in exponent form, `1e+20`, which
 * JSON::XS reads as the same float where 21 digits would be a string to it; NaN/±Infinity → null,
 * -0 → 0), no separator; cycles throw. Encode errors are `AempError`
 * `ERR_BAD_ARGUMENT`; the encoder stays usable after them.
 */
import { AempError } from '../errors.js';
import { createCborFrameDecoder } from './cbor-decode.js';
import { createCborFrameEncoder } from './cbor-encode.js';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_ITEMS, type FramingFormat } from './constants.js';
import type { FrameDecoder, FrameDecoderOptions, FrameEncoder, FrameLimits } from './frame-types.js';
import { createJsonFrameDecoder, createJsonFrameEncoder } from './json-codec.js';

export type { FrameDecoder, FrameDecoderOptions, FrameEncoder, FrameLimits } from './frame-types.js';

export const DEFAULT_MAX_DEPTH = 500;

export function createFrameDecoder(format: FramingFormat, opts?: FrameDecoderOptions): FrameDecoder {
  const limits: FrameLimits = {
    maxFrameBytes: opts?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    maxFrameItems: opts?.maxFrameItems ?? DEFAULT_MAX_FRAME_ITEMS,
    maxDepth: opts?.maxDepth ?? DEFAULT_MAX_DEPTH,
  };
  if (!(limits.maxFrameBytes > 0)) throw new AempError('ERR_BAD_ARGUMENT', 'maxFrameBytes must be positive');
  if (!(limits.maxFrameItems >= 1))
    throw new AempError('ERR_BAD_ARGUMENT', 'maxFrameItems must be at least 1');
  if (!(limits.maxDepth >= 1)) throw new AempError('ERR_BAD_ARGUMENT', 'maxDepth must be at least 1');
  switch (format) {
    case 'cbor':
      return createCborFrameDecoder(limits);
    case 'json':
      return createJsonFrameDecoder(limits);
    default:
      throw new AempError('ERR_BAD_ARGUMENT', `unknown framing format ${String(format)}`);
  }
}

export function createFrameEncoder(format: FramingFormat): FrameEncoder {
  switch (format) {
    case 'cbor':
      return createCborFrameEncoder();
    case 'json':
      return createJsonFrameEncoder();
    default:
      throw new AempError('ERR_BAD_ARGUMENT', `unknown framing format ${String(format)}`);
  }
}
