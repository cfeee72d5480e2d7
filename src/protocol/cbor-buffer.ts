/**
 * Node's Buffer has fast, undocumented slice/write methods; the CBOR codec uses them when they
 * exist and falls back to the documented ones otherwise.
 */

export interface FastBuffer extends Buffer {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number, length: number): number;
  latin1Write(s: string, offset: number, length: number): number;
}

export const HAS_FAST =
  typeof (Buffer.prototype as Partial<FastBuffer>).utf8Slice === 'function' &&
  typeof (Buffer.prototype as Partial<FastBuffer>).latin1Write === 'function';

export const EMPTY = Buffer.alloc(0) as FastBuffer;

/** 2**32, for splitting 64-bit heads into two 32-bit halves. */
export const TWO32 = 4294967296;

/** A Buffer view of `chunk` (no copy). */
export function asFast(chunk: Uint8Array): FastBuffer {
  return (
    Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  ) as FastBuffer;
}
