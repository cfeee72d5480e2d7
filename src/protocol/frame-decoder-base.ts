/**
 * What the CBOR and JSON frame decoders share: the limits, the buffer holding the bytes of an
 * incomplete frame, the rule that a decoder is dead after bad input, and the guard against a
 * `push` from inside its own `onMessage`.
 */
import { AempError, ProtocolError } from '../errors.js';
import type { FrameDecoder, FrameLimits } from './frame-types.js';

export abstract class PendingFrameDecoder<B extends Buffer = Buffer> implements FrameDecoder {
  protected readonly maxFrameBytes: number;
  protected readonly maxFrameItems: number;
  protected readonly maxDepth: number;
  protected failure: ProtocolError | null = null;
  /** Bytes of the frame(s) not yet decoded: pend[0, pendLen). */
  protected pend: B;
  protected pendLen = 0;
  private pushing = false;

  constructor(
    limits: FrameLimits,
    private readonly empty: B,
  ) {
    this.maxFrameBytes = limits.maxFrameBytes;
    this.maxFrameItems = limits.maxFrameItems;
    this.maxDepth = limits.maxDepth;
    this.pend = empty;
  }

  get buffered(): number {
    return this.pendLen;
  }

  push(chunk: Uint8Array, onMessage: (msg: unknown[]) => void): void {
    if (this.pushing)
      throw new AempError('ERR_BAD_ARGUMENT', 'FrameDecoder.push called from its own onMessage');
    if (this.failure !== null) {
      throw new ProtocolError(this.failure.code, `decoder failed earlier: ${this.failure.message}`, {
        cause: this.failure,
      });
    }
    this.pushing = true;
    try {
      this.decode(chunk, onMessage);
    } finally {
      this.pushing = false;
    }
  }

  /** Decodes one chunk (the decoder is alive and not re-entered). */
  protected abstract decode(chunk: Uint8Array, onMessage: (msg: unknown[]) => void): void;

  /** Appends buf[from, to) to the pending bytes, growing the buffer geometrically. */
  protected append(buf: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    const need = this.pendLen + n;
    if (need > this.pend.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, this.pend.length * 2, 256)) as B;
      this.pend.copy(grown, 0, 0, this.pendLen);
      this.pend = grown;
    }
    this.pend.set(buf.subarray(from, to), this.pendLen);
    this.pendLen = need;
  }

  /** Marks the decoder dead with `err` and drops the pending bytes; returns `err`. */
  protected markFailed(err: ProtocolError): ProtocolError {
    this.failure = err;
    this.pend = this.empty;
    this.pendLen = 0;
    return err;
  }
}
