/**
 * CBOR decoding of data-phase frames (protocol.md §8.1): one CBOR data item per message, back to
 * back.
 *
 * A hand-written reader specialised for what Perl's CBOR::XS sends, so no fix-up pass over
 * another decoder's output is needed:
 * - byte strings (major 2) become JS strings of one character per byte (Latin-1, code points
 *   0–255): that is the Perl value, so a relay through aemp returns it unchanged (protocol.md §8.1;
 *   `utf8Text` in text.ts gives the UTF-8 reading); text strings (major 3) become strings (invalid
 *   UTF-8 → U+FFFD); maps become plain objects with string keys (byte/text
 *   string keys, numbers stringified); `f6` → null, `f7` → undefined; half/single/double floats;
 *   indefinite-length strings/arrays/maps; tags are skipped (the tagged value passes through),
 *   except bignums (tags 2/3), which become integers.
 * - integers: safe integers (|n| ≤ 2**53-1) are numbers; larger 64-bit integers (`1b …`/`3b …`) and
 *   bignums are `bigint`, so Perl's 64-bit IV/UV values survive a round trip unchanged.
 *
 * The reader (cbor-read.ts) works on the chunk handed to `push` directly; only the incomplete tail of a chunk is
 * copied. A tail is tracked by a resumable structural scanner, so a large frame arriving in many
 * chunks is scanned once (not re-parsed per chunk) and decoded once it is complete.
 *
 * What one frame may cost is bounded: its bytes (`maxFrameBytes`), its nesting (`maxDepth`) and its
 * data items (`maxFrameItems`). Reader and scanner count items the same way — a definite array or
 * map adds its elements (twice its pairs) when its head is read, before anything is allocated; an
 * element of an indefinite container, a tagged value and a string chunk add one each — so a frame
 * of a few bytes per item (`[]`, `{}`, empty keys, empty chunks) cannot grow the heap beyond the
 * cap. Indefinite-length strings allocate nothing per chunk.
 */
import { ProtocolError } from '../errors.js';
import { asFast, EMPTY, type FastBuffer } from './cbor-buffer.js';
import { hex2, INCOMPLETE, readEnd, readItem, tooManyError } from './cbor-read.js';
import { PendingFrameDecoder } from './frame-decoder-base.js';
import type { FrameDecoder, FrameLimits } from './frame-types.js';

const MIN_APPEND = 4096;

class CborFrameDecoder extends PendingFrameDecoder<FastBuffer> {
  // pend[0, pendLen) always starts at a frame boundary.
  /** Scanner state over pend: position of the next item head and open containers' remaining items (-1 = indefinite). */
  private scanPos = 0;
  private readonly stack: number[] = [];
  /** Items of the frame counted by the scan so far (the message array is the first). */
  private scanItems = 1;

  constructor(limits: FrameLimits) {
    super(limits, EMPTY);
  }

  protected decode(chunk: Uint8Array, onMessage: (msg: unknown[]) => void): void {
    const buf = asFast(chunk);
    const len = buf.length;
    let off = 0;
    // Finish the frame(s) held from earlier chunks. Invariant: the tail of pend is buf[0, off).
    while (this.pendLen > 0) {
      let r = this.scan();
      while (r < 0) {
        if (off >= len) {
          if (this.pendLen > this.maxFrameBytes) throw this.tooLarge(this.pendLen);
          return;
        }
        const take = Math.min(len - off, Math.max(-r - this.pendLen, MIN_APPEND));
        this.append(buf, off, off + take);
        off += take;
        r = this.scan();
      }
      const msg = this.decodeAt(this.pend, 0, r);
      const leftover = this.pendLen - r;
      if (leftover <= off) {
        this.pendLen = 0;
        off -= leftover;
      } else {
        this.pend.copyWithin(0, r, this.pendLen);
        this.pendLen = leftover;
      }
      this.resetScan();
      try {
        onMessage(msg);
      } catch (e) {
        this.append(buf, off, len);
        throw e;
      }
    }
    if (off < len) this.run(buf, off, onMessage);
  }

  /** Fast path: decodes frames straight from buf; pend is empty. */
  private run(buf: FastBuffer, off: number, onMessage: (msg: unknown[]) => void): void {
    const len = buf.length;
    const md = this.maxDepth;
    const mi = this.maxFrameItems;
    const maxBytes = this.maxFrameBytes;
    let start = off;
    while (start < len) {
      const ib = buf[start]!;
      if (ib >> 5 !== 4 && ib >> 5 !== 6) throw this.fail(notArray(ib));
      let msg: unknown;
      try {
        msg = readItem(buf, start, len, md, mi);
      } catch (e) {
        if (e === INCOMPLETE) {
          this.append(buf, start, len);
          this.resetScan();
          const r = this.scan(); // detects garbage, nesting and oversize early
          if (r >= 0)
            throw this.fail(new ProtocolError('ERR_BAD_FRAME', 'bad CBOR frame: internal scan mismatch'));
          if (this.pendLen > maxBytes) throw this.tooLarge(this.pendLen);
          return;
        }
        throw this.fail(e);
      }
      const stop = readEnd();
      if (stop - start > maxBytes) throw this.tooLarge(stop - start);
      if (!Array.isArray(msg)) throw this.fail(notArray(ib));
      start = stop;
      try {
        onMessage(msg);
      } catch (e) {
        this.append(buf, start, len);
        this.resetScan();
        throw e;
      }
    }
  }

  /** Decodes the complete frame buf[start, stop). */
  private decodeAt(buf: FastBuffer, start: number, stop: number): unknown[] {
    let msg: unknown;
    try {
      msg = readItem(buf, start, stop, this.maxDepth, this.maxFrameItems);
    } catch (e) {
      throw this.fail(e === INCOMPLETE ? new ProtocolError('ERR_BAD_FRAME', 'bad CBOR frame: truncated') : e);
    }
    if (readEnd() !== stop)
      throw this.fail(new ProtocolError('ERR_BAD_FRAME', 'bad CBOR frame: internal scan mismatch'));
    if (!Array.isArray(msg)) throw this.fail(notArray(buf[start]!));
    return msg;
  }

  private resetScan(): void {
    this.scanPos = 0;
    this.scanItems = 1;
    this.stack.length = 0;
    if (this.pendLen === 0 && this.pend.length > 1 << 20) this.pend = EMPTY; // drop big buffers
  }

  /**
   * Advances the structural scan of the frame at pend[0]. Returns the frame's end offset when it
   * is complete, else -(minimum total number of bytes needed). Throws on malformed structure,
   * too-deep nesting, or a frame that cannot fit in maxFrameBytes.
   */
  private scan(): number {
    const b = this.pend;
    const n = this.pendLen;
    const st = this.stack;
    const maxItems = this.maxFrameItems;
    let p = this.scanPos;
    let items = this.scanItems;
    for (;;) {
      if (p >= n) return this.needMore(p, p + 1, items);
      const ib = b[p]!;
      if (ib === 0xff) {
        if (st.length === 0 || st[st.length - 1] !== -1) throw this.fail(bad0('unexpected break (0xff)'));
        st.pop();
        p++;
      } else {
        const major = ib >> 5;
        const info = ib & 0x1f;
        if (p === 0 && major !== 4 && major !== 6) throw this.fail(notArray(ib));
        // Items are counted as the reader counts them: an item of an indefinite-length container
        // when its head is consumed, the items of a definite one when the container opens.
        const own = st.length > 0 && st[st.length - 1] === -1 ? 1 : 0;
        if (info === 31) {
          if (major < 2 || major > 5)
            throw this.fail(bad0(`indefinite length is not allowed for major type ${major}`));
          if ((items += own) > maxItems) throw this.tooManyItems();
          this.open(st, -1);
          p++;
          continue;
        }
        if (info > 27) throw this.fail(bad0(`reserved additional information in initial byte 0x${hex2(ib)}`));
        let hl = 1;
        let len = info;
        if (info >= 24) {
          hl = 1 + (1 << (info - 24));
          if (p + hl > n) return this.needMore(p, p + hl, items);
          len = 0;
          for (let i = 1; i < hl; i++) len = len * 256 + b[p + i]!;
        }
        switch (major) {
          case 2:
          case 3: {
            const stop = p + hl + len;
            if (stop > this.maxFrameBytes) throw this.tooLarge(stop);
            if (stop > n) return this.needMore(p, stop, items);
            if ((items += own) > maxItems) throw this.tooManyItems();
            p = stop;
            break;
          }
          case 4:
          case 5:
            p += hl;
            if (len > 0) {
              const k = major === 4 ? len : 2 * len;
              if (p + k > this.maxFrameBytes) throw this.tooLarge(p + k);
              if ((items += own + k) > maxItems) throw this.tooManyItems();
              this.open(st, k);
              continue;
            }
            if ((items += own) > maxItems) throw this.tooManyItems();
            break;
          case 6:
            p += hl;
            if ((items += own + 1) > maxItems) throw this.tooManyItems();
            this.open(st, 1);
            continue;
          default:
            items += own;
            p += hl; // integers, floats and simple values
        }
      }
      // An item is complete: close every container it completes.
      for (;;) {
        const top = st.length - 1;
        if (top < 0) {
          if (p > this.maxFrameBytes) throw this.tooLarge(p);
          if (items > maxItems) throw this.tooManyItems();
          this.scanPos = p;
          return p;
        }
        if (st[top] === -1) break;
        const left = st[top]! - 1;
        if (left > 0) {
          st[top] = left;
          break;
        }
        st.pop();
      }
    }
  }

  private open(st: number[], items: number): void {
    if (st.length >= this.maxDepth) {
      throw this.fail(bad0(`nested deeper than ${this.maxDepth} levels`));
    }
    st.push(items);
  }

  private tooManyItems(): ProtocolError {
    return this.fail(tooManyError(this.maxFrameItems));
  }

  private needMore(p: number, need: number, items: number): number {
    this.scanPos = p;
    if (items > this.maxFrameItems) throw this.tooManyItems();
    this.scanItems = items;
    if (need > this.maxFrameBytes) throw this.tooLarge(need);
    return -need;
  }

  private tooLarge(n: number): ProtocolError {
    return this.fail(
      new ProtocolError(
        'ERR_FRAME_TOO_LARGE',
        `CBOR frame exceeds ${this.maxFrameBytes} bytes (at least ${n})`,
      ),
    );
  }

  private fail(e: unknown): ProtocolError {
    let err: ProtocolError;
    if (e instanceof ProtocolError) err = e;
    else if (e instanceof RangeError)
      err = new ProtocolError('ERR_BAD_FRAME', 'bad CBOR frame: nested too deeply', { cause: e });
    else
      err = new ProtocolError('ERR_BAD_FRAME', `bad CBOR frame: ${String((e as Error)?.message ?? e)}`, {
        cause: e,
      });
    this.stack.length = 0;
    return this.markFailed(err);
  }
}

function bad0(msg: string): ProtocolError {
  return new ProtocolError('ERR_BAD_FRAME', `bad CBOR frame: ${msg}`);
}

const MAJOR_NAMES = [
  'unsigned integer',
  'negative integer',
  'byte string',
  'text string',
  'array',
  'map',
  'tag',
  'simple value/float',
];

function notArray(ib: number): ProtocolError {
  return bad0(`message is not an array (initial byte 0x${hex2(ib)}, ${MAJOR_NAMES[ib >> 5]})`);
}

export function createCborFrameDecoder(limits: FrameLimits): FrameDecoder {
  return new CborFrameDecoder(limits);
}
