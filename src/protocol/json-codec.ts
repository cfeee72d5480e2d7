/**
 * JSON data-phase codec (protocol.md §8.2): one JSON text (an array) per message, UTF-8, written
 * back to back. The decoder accepts texts with no separator and whitespace between texts (a
 * keepalive); anything else between texts is an error.
 *
 * Decoding scans bytes for the end of each text (bracket depth outside strings), then decodes all
 * complete texts of a chunk with one fatal UTF-8 decode and parses each with `JSON.parse`. The
 * scan state of an incomplete text is kept, so a large text arriving in many chunks is scanned
 * once. See frame-codec.ts for the contract.
 */
import { randomBytes } from 'node:crypto';
import { AempError, ProtocolError } from '../errors.js';
import { MAX_EXACT_INTEGER_DIGITS } from './constants.js';
import { PendingFrameDecoder } from './frame-decoder-base.js';
import type { FrameDecoder, FrameEncoder, FrameLimits } from './frame-types.js';

const EMPTY = Buffer.alloc(0);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Marks a bigint carried through JSON.parse/stringify as a string (random: a peer cannot forge it). */
const BIG_TAG = `aemp-bigint:${randomBytes(8).toString('hex')}:`;

/**
 * 16 digits in a row. Every integer beyond ±(2**53-1) has at least 16 digits, so a text without
 * such a run (almost every text; strings holding digits may have one) takes the plain path.
 */
const LONG_DIGITS = /[0-9]{16}/;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Calls `f(start, end)` for every number token outside strings in the JSON text `t` that is an
 * integer (digits, optional minus sign) beyond ±(2**53-1) of at most MAX_EXACT_INTEGER_DIGITS
 * digits. Returns the text with each token
 * replaced by what `f` returns, or null when there was none.
 */
function mapBigIntegers(t: string, f: (tok: string) => string): string | null {
  const n = t.length;
  let out = '';
  let last = 0;
  let found = false;
  let i = 0;
  while (i < n) {
    const c = t.charCodeAt(i);
    if (c === 0x22) {
      i++;
      while (i < n) {
        const d = t.charCodeAt(i++);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x2d || isDigit(c)) {
      const start = i++;
      let integer = true;
      while (i < n) {
        const d = t.charCodeAt(i);
        if (isDigit(d)) i++;
        else if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) {
          integer = false;
          i++;
        } else break;
      }
      // Longer integers are left to JSON.parse, as floating-point numbers (see the limit).
      const digits = i - start - (c === 0x2d ? 1 : 0);
      if (integer && i - start >= 16 && digits <= MAX_EXACT_INTEGER_DIGITS) {
        const tok = t.slice(start, i);
        if (!Number.isSafeInteger(Number(tok))) {
          out += t.slice(last, start) + f(tok);
          last = i;
          found = true;
        }
      }
    } else i++;
  }
  return found ? out + t.slice(last) : null;
}

function bigReviver(_key: string, v: unknown): unknown {
  return typeof v === 'string' && v.startsWith(BIG_TAG) ? BigInt(v.slice(BIG_TAG.length)) : v;
}

/**
 * JSON.parse, except that integers beyond ±(2**53-1) become bigint (exact), as the CBOR decoder
 * makes them. `mayBeBig` false promises the text has no LONG_DIGITS run.
 */
function parseJson(text: string, mayBeBig = LONG_DIGITS.test(text)): unknown {
  if (!mayBeBig) return JSON.parse(text);
  const tagged = mapBigIntegers(text, (tok) => `"${BIG_TAG}${tok}"`);
  return tagged === null ? JSON.parse(text) : JSON.parse(tagged, bigReviver);
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function badFrame(msg: string, cause?: unknown): ProtocolError {
  return new ProtocolError(
    'ERR_BAD_FRAME',
    `bad JSON frame: ${msg}`,
    cause === undefined ? undefined : { cause },
  );
}

function describeByte(c: number): string {
  const h = `0x${c.toString(16).padStart(2, '0')}`;
  return c >= 0x21 && c < 0x7f ? `'${String.fromCharCode(c)}' (${h})` : h;
}

class JsonFrameDecoder extends PendingFrameDecoder {
  // pend holds the bytes of an incomplete text (or, if `rescan`, undelivered bytes not yet scanned).
  private rescan = false;

  // Scan state of the text being scanned.
  private depth = 0;
  private inStr = false;
  private esc = false;
  /** UTF-8 bytes minus UTF-16 units so far (continuation bytes minus 4-byte leads). */
  private adj = 0;

  // Complete texts of the current chunk: byte offsets and `adj` at each end.
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly adjStarts: number[] = [];
  private readonly adjEnds: number[] = [];

  constructor(limits: FrameLimits) {
    super(limits, EMPTY);
  }

  protected decode(chunk: Uint8Array, onMessage: (msg: unknown[]) => void): void {
    let buf = asBuffer(chunk);
    let off = 0;
    if (this.pendLen > 0) {
      if (this.rescan) {
        buf = Buffer.concat([this.pend.subarray(0, this.pendLen), buf]);
        this.pendLen = 0;
        this.rescan = false;
      } else {
        // Continue the incomplete text at pend[0].
        let e: number;
        try {
          e = this.scan(buf, 0, buf.length);
        } catch (err) {
          throw this.fail(err);
        }
        if (e < 0) {
          this.append(buf, 0, buf.length);
          if (this.pendLen > this.maxFrameBytes) throw this.tooLarge(this.pendLen);
          return;
        }
        if (this.pendLen + e > this.maxFrameBytes) throw this.tooLarge(this.pendLen + e);
        this.append(buf, 0, e);
        const frame = this.pend.subarray(0, this.pendLen);
        if (this.tooManyItems(frame, 0, frame.length)) throw this.fail(this.itemsError());
        this.pendLen = 0;
        const msg = this.parse(this.decodeText(frame));
        this.trim();
        off = e;
        try {
          onMessage(msg);
        } catch (err) {
          this.keep(buf, off);
          throw err;
        }
      }
    }
    if (off < buf.length) this.run(buf, off, onMessage);
  }

  /** Decodes every text in buf from off; the incomplete tail (if any) goes to pend. */
  private run(buf: Buffer, off: number, onMessage: (msg: unknown[]) => void): void {
    const n = buf.length;
    const { starts, ends, adjStarts, adjEnds } = this;
    starts.length = 0;
    ends.length = 0;
    adjStarts.length = 0;
    adjEnds.length = 0;
    let i = off;
    let adj = 0;
    let error: ProtocolError | null = null;
    for (;;) {
      let c = 0;
      while (i < n) {
        c = buf[i]!;
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
        else break;
      }
      if (i >= n) break;
      if (c !== 0x5b) {
        error = badFrame(
          starts.length === 0 && i === off && c !== 0x2c
            ? `message is not an array (starts with ${describeByte(c)})`
            : `unexpected ${describeByte(c)} between JSON texts (only whitespace may separate them)`,
        );
        break;
      }
      this.depth = 0;
      this.inStr = false;
      this.esc = false;
      this.adj = adj;
      let e: number;
      try {
        e = this.scan(buf, i, n);
      } catch (err) {
        error = err as ProtocolError;
        break;
      }
      if (e < 0) {
        if (n - i > this.maxFrameBytes) error = this.tooLarge(n - i, false);
        else {
          this.adj = 0;
          this.append(buf, i, n);
        }
        break;
      }
      if (e - i > this.maxFrameBytes) {
        error = this.tooLarge(e - i, false);
        break;
      }
      if (this.tooManyItems(buf, i, e)) {
        error = this.itemsError();
        break;
      }
      starts.push(i);
      ends.push(e);
      adjStarts.push(adj);
      adj = this.adj;
      adjEnds.push(adj);
      i = e;
    }

    const count = starts.length;
    if (count > 0) {
      const base = starts[0]!;
      let text: string | null;
      try {
        text = utf8.decode(buf.subarray(base, ends[count - 1]!));
      } catch {
        text = null; // invalid UTF-8 somewhere: decode text by text to find it
      }
      // One JSON.parse for all texts of the chunk ("[t1,t2,…]") is cheaper than one per text; if
      // it fails, parse text by text so that the texts before the bad one are still delivered.
      let all: unknown[] | null = null;
      const big = text !== null && LONG_DIGITS.test(text);
      if (text !== null && count > 1) {
        let joined = '[';
        for (let k = 0; k < count; k++) {
          if (k > 0) joined += ',';
          joined += text.slice(starts[k]! - base - adjStarts[k]!, ends[k]! - base - adjEnds[k]!);
        }
        try {
          all = parseJson(`${joined}]`, big) as unknown[];
        } catch {
          all = null;
        }
        if (all !== null && all.length !== count) all = null;
      }
      for (let k = 0; k < count; k++) {
        const s = starts[k]!;
        const e = ends[k]!;
        const msg =
          all !== null
            ? (all[k] as unknown[])
            : text !== null
              ? this.parse(text.slice(s - base - adjStarts[k]!, e - base - adjEnds[k]!), big)
              : this.parse(this.decodeText(buf.subarray(s, e)));
        try {
          onMessage(msg);
        } catch (err) {
          this.pendLen = 0;
          this.keep(buf, e);
          throw err;
        }
      }
    }
    if (error !== null) throw this.fail(error);
  }

  /**
   * Scans buf[i, n) continuing the state in the fields; returns the offset just past the end of
   * the text, or -1 if the text continues beyond n (state saved).
   */
  private scan(buf: Buffer, i: number, n: number): number {
    let depth = this.depth;
    let inStr = this.inStr;
    let esc = this.esc;
    let adj = this.adj;
    const maxDepth = this.maxDepth;
    while (i < n) {
      let c = buf[i++]!;
      if (inStr) {
        for (;;) {
          if (c < 0x80) {
            if (esc) esc = false;
            else if (c === 0x22) {
              inStr = false;
              break;
            } else if (c === 0x5c) esc = true;
          } else {
            esc = false;
            if ((c & 0xc0) === 0x80) adj++;
            else if (c >= 0xf0) adj--;
          }
          if (i >= n) break;
          c = buf[i++]!;
        }
        continue;
      }
      if (c === 0x22) inStr = true;
      else if (c === 0x5b || c === 0x7b) {
        if (++depth > maxDepth) throw badFrame(`nested deeper than ${maxDepth} levels`);
      } else if (c === 0x5d || c === 0x7d) {
        if (--depth === 0) {
          this.adj = adj;
          return i;
        }
      } else if (c >= 0x80) {
        if ((c & 0xc0) === 0x80) adj++;
        else if (c >= 0xf0) adj--;
      }
    }
    this.depth = depth;
    this.inStr = inStr;
    this.esc = esc;
    this.adj = adj;
    return -1;
  }

  /**
   * True when the text buf[i, e) holds more than maxFrameItems data items. Each item takes at least
   * one byte, so only texts longer than that are counted (one more pass, before JSON.parse).
   */
  private tooManyItems(buf: Buffer, i: number, e: number): boolean {
    return e - i > this.maxFrameItems && countItems(buf, i, e, this.maxFrameItems) > this.maxFrameItems;
  }

  private itemsError(): ProtocolError {
    return new ProtocolError(
      'ERR_FRAME_TOO_LARGE',
      `JSON frame holds more than ${this.maxFrameItems} data items`,
    );
  }

  private decodeText(bytes: Uint8Array): string {
    try {
      return utf8.decode(bytes);
    } catch (e) {
      throw this.fail(badFrame('invalid UTF-8', e));
    }
  }

  private parse(text: string, mayBeBig?: boolean): unknown[] {
    try {
      return parseJson(text, mayBeBig) as unknown[];
    } catch (e) {
      const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
      throw this.fail(badFrame(`${(e as Error).message} in ${JSON.stringify(shown)}`, e));
    }
  }

  /** After onMessage threw: keep buf[from…] (undelivered, unscanned) for the next push. */
  private keep(buf: Buffer, from: number): void {
    this.append(buf, from, buf.length);
    this.rescan = this.pendLen > 0;
  }

  private trim(): void {
    if (this.pend.length > 1 << 20) this.pend = EMPTY;
  }

  private tooLarge(n: number, mark = true): ProtocolError {
    const err = new ProtocolError(
      'ERR_FRAME_TOO_LARGE',
      `JSON frame exceeds ${this.maxFrameBytes} bytes (at least ${n})`,
    );
    return mark ? this.fail(err) : err;
  }

  private fail(e: unknown): ProtocolError {
    return this.markFailed(e instanceof ProtocolError ? e : badFrame(String((e as Error)?.message ?? e), e));
  }
}

/**
 * Counts the data items of the JSON text buf[i, e) as the CBOR decoder counts them: the text
 * itself, every array element, every object key and every object value. That is 1 + commas +
 * colons + non-empty arrays and objects (outside strings). Stops early once past `max` (at a
 * comma or colon, where the count so far is exact).
 */
function countItems(buf: Buffer, i: number, e: number, max: number): number {
  let items = 1;
  let inStr = false;
  let esc = false;
  let prev = 0;
  while (i < e) {
    const c = buf[i++]!;
    if (inStr) {
      if (esc) esc = false;
      else if (c === 0x22) inStr = false;
      else if (c === 0x5c) esc = true;
      continue;
    }
    if (c === 0x2c || c === 0x3a) {
      if (++items > max) return items;
    } else if (c === 0x5b || c === 0x7b) items++;
    else if (c === 0x5d || c === 0x7d) {
      if (prev === 0x5b || prev === 0x7b) items--;
    } else if (c === 0x22) inStr = true;
    else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    prev = c;
  }
  return items;
}

export function createJsonFrameDecoder(limits: FrameLimits): FrameDecoder {
  return new JsonFrameDecoder(limits);
}

// ---------------------------------------------------------------------------------------------
// Encoder

const BIG_RE = new RegExp(`"${BIG_TAG}(-?[0-9]+)"`, 'g');

function bigReplacer(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? BIG_TAG + v.toString() : v;
}

/**
 * An integral number beyond ±(2**53-1) in exponent form: JSON.stringify writes up to 21 digits
 * (1e20 → "100000000000000000000"), which JSON::XS reads as an integer when it fits 64 bits and
 * as a string when not; "1e+20" it reads as the same floating-point number.
 */
function exponentForm(tok: string): string {
  return Number(tok).toExponential();
}

/** JSON.stringify's text, with big integral numbers in exponent form (see exponentForm). */
function perlNumbers(s: string): string {
  return LONG_DIGITS.test(s) ? (mapBigIntegers(s, exponentForm) ?? s) : s;
}

function stringify(msg: readonly unknown[]): string {
  let err: unknown;
  try {
    return perlNumbers(JSON.stringify(msg));
  } catch (e) {
    err = e;
  }
  if (err instanceof TypeError && /BigInt/i.test(err.message)) {
    try {
      // bigints are tagged strings until the numbers are fixed, then become plain digits
      return perlNumbers(JSON.stringify(msg, bigReplacer)).replace(BIG_RE, '$1');
    } catch (e) {
      err = e;
    }
  }
  throw new AempError('ERR_BAD_ARGUMENT', `cannot encode message as JSON: ${(err as Error).message}`, {
    cause: err,
  });
}

const jsonEncoder: FrameEncoder = {
  encode(msg: readonly unknown[]): Uint8Array {
    return Buffer.from(stringify(msg), 'utf8');
  },
  encodeBatch(msgs: readonly (readonly unknown[])[]): Uint8Array {
    let s = '';
    for (const m of msgs) s += stringify(m);
    return Buffer.from(s, 'utf8');
  },
  encodeChunks(msgs: readonly (readonly unknown[])[], maxBytes = Infinity): Uint8Array[] {
    if (maxBytes === Infinity) return [jsonEncoder.encodeBatch(msgs)];
    // Characters count as bytes here: a batch stops within 3 × maxBytes at most.
    let s = '';
    for (const m of msgs) {
      s += stringify(m);
      if (s.length > maxBytes) break;
    }
    return [Buffer.from(s, 'utf8')];
  },
};

export function createJsonFrameEncoder(): FrameEncoder {
  return jsonEncoder;
}
