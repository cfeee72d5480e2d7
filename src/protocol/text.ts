/**
 * Strings and bytes (protocol.md §8.1). A string received from a Perl node is the Perl value: a
 * Perl byte string arrives as one character per byte (code points 0–255), in CBOR and JSON framing
 * alike, so relaying it returns it unchanged. When an application knows that the peer meant
 * UTF-8-encoded text (a Perl program that never decoded its input, for example), these helpers give
 * the other readings, and the way back.
 */
import { isUtf8 } from 'node:buffer';
import { AempError } from '../errors.js';

/** Any UTF-16 unit above 0xFF. */
const WIDE = /[\u0100-\uffff]/;
/** Any char above 0x7F. */
const NON_ASCII = /[\u0080-\uffff]/;

/**
 * The UTF-8 reading of a received byte string: `utf8Text('\xC3\xA9')` is `'é'`. Returned
 * unchanged when it is not a byte string of valid UTF-8 (ASCII, a char above 0xFF, invalid
 * bytes), like Perl's `utf8::decode`.
 */
export function utf8Text(s: string): string {
  if (!NON_ASCII.test(s) || WIDE.test(s)) return s;
  const b = Buffer.from(s, 'latin1');
  return isUtf8(b) ? b.toString('utf8') : s;
}

/**
 * The byte string holding the UTF-8 bytes of `s` (Perl's `utf8::encode`): `utf8Bytes('é')` is
 * `'\xC3\xA9'`. Sent to a Perl node, it arrives as those bytes, as a Perl program that reads and
 * writes UTF-8 without decoding it expects.
 */
export function utf8Bytes(s: string): string {
  return NON_ASCII.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}

/**
 * The bytes of a byte string (one byte per char). Throws `AempError` `ERR_BAD_ARGUMENT` for a
 * string with a char above 0xFF, which has no single-byte form (use `utf8Bytes` first).
 */
export function bytesOf(s: string): Buffer {
  if (WIDE.test(s)) throw new AempError('ERR_BAD_ARGUMENT', 'bytesOf: the string has a character above 0xFF');
  return Buffer.from(s, 'latin1');
}

/** The byte string of `bytes` (one char per byte), as a Perl node would receive them. */
export function byteString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}
