/**
 * Line splitter for the handshake phase (spec/protocol.md §2.3, §3).
 *
 * Lines end in LF or CR LF; the terminator is not part of the returned line. A line may be at
 * most `maxLineBytes` long *including* its terminator (Perl's 4 KiB handshake read limit). The
 * limit is enforced while bytes arrive, so an endless unterminated line never grows the buffer
 * beyond the limit.
 *
 * The caller decides how many lines it wants: `push(chunk, maxLines)` hands out at most that
 * many and keeps everything after them untouched. When the handshake is over (or TLS takes
 * over the socket) `takeRest()` returns the bytes received after the last line handed out, so
 * the next consumer (frame decoder, TLS layer) gets them without loss.
 */
import { ProtocolError } from '../errors.js';
import { MAX_LINE_BYTES } from './constants.js';

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = new Uint8Array(0);

export class LineDecoder {
  /** Storage; the unconsumed bytes are `buf[head, tail)`. */
  private buf: Uint8Array = EMPTY;
  private head = 0;
  private tail = 0;
  /** Offset up to which `buf` is known to hold no LF (avoids rescanning byte-by-byte input). */
  private scanned = 0;
  private failure: ProtocolError | undefined;
  private readonly text = new TextDecoder('utf-8');

  constructor(readonly maxLineBytes: number = MAX_LINE_BYTES) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1)
      throw new RangeError('maxLineBytes must be >= 1');
  }

  /** Number of bytes buffered and not yet handed out as lines. */
  get buffered(): number {
    return this.tail - this.head;
  }

  /**
   * Appends `chunk` and returns up to `maxLines` complete lines (terminator stripped, decoded as
   * UTF-8). Bytes after the last returned line stay buffered; call `push(new Uint8Array(0), n)`
   * to take further lines from the buffer, or `takeRest()` to hand them over.
   *
   * Throws ProtocolError `ERR_LINE_TOO_LONG` as soon as a line (terminator included) cannot fit
   * into `maxLineBytes`. The decoder stays failed afterwards.
   */
  push(chunk: Uint8Array, maxLines = Number.POSITIVE_INFINITY): string[] {
    if (this.failure) throw this.failure;
    this.append(chunk);
    const lines: string[] = [];
    while (lines.length < maxLines) {
      const lf = this.findLf();
      if (lf < 0) {
        if (this.tail - this.head >= this.maxLineBytes) {
          // Even a terminator arriving next would make the line longer than allowed.
          this.fail(this.tail - this.head);
        }
        break;
      }
      const length = lf + 1 - this.head;
      if (length > this.maxLineBytes) this.fail(length);
      const end = lf > this.head && this.buf[lf - 1] === CR ? lf - 1 : lf;
      lines.push(this.text.decode(this.buf.subarray(this.head, end)));
      this.head = lf + 1;
      this.scanned = this.head;
    }
    if (this.head === this.tail) this.reset();
    return lines;
  }

  /** Returns (a copy of) every buffered byte not handed out as a line and empties the buffer. */
  takeRest(): Uint8Array {
    const rest = this.buf.slice(this.head, this.tail);
    this.reset();
    return rest;
  }

  private fail(length: number): never {
    this.failure = new ProtocolError(
      'ERR_LINE_TOO_LONG',
      `handshake line too long (${length} bytes or more, limit ${this.maxLineBytes} including the terminator)`,
    );
    this.reset();
    throw this.failure;
  }

  private findLf(): number {
    const i = this.buf.subarray(this.scanned, this.tail).indexOf(LF);
    if (i < 0) {
      this.scanned = this.tail;
      return -1;
    }
    return this.scanned + i;
  }

  private append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const used = this.tail - this.head;
    if (this.tail + chunk.length > this.buf.length) {
      if (used + chunk.length <= this.buf.length && this.head > 0) {
        // Enough room once the consumed prefix is dropped.
        this.buf.copyWithin(0, this.head, this.tail);
      } else {
        const grown = new Uint8Array(Math.max(used + chunk.length, this.buf.length * 2, 256));
        grown.set(this.buf.subarray(this.head, this.tail));
        this.buf = grown;
      }
      this.scanned -= this.head;
      this.tail = used;
      this.head = 0;
    }
    this.buf.set(chunk, this.tail);
    this.tail += chunk.length;
  }

  private reset(): void {
    this.buf = EMPTY;
    this.head = 0;
    this.tail = 0;
    this.scanned = 0;
  }
}
