/**
 * The ceiling's wire code: a bare socket, cbor-x, all frames of one event-loop turn in one
 * write, and the usual cbor-x incremental decoding: the incomplete tail is kept and decoded
 * again together with the next read. `counts`, when given, adds up the frames and bytes written.
 */
import type { Socket } from 'node:net';
import { decodeMultiple, Encoder } from 'cbor-x';

export interface WriteCounts {
  messages: number;
  bytes: number;
}

/** On a message sent unchanged on several channels: its bytes, encoded by the first. */
const SHARED = Symbol('sharedFrame');
type Shared = unknown[] & { [SHARED]?: Buffer | null };

/**
 * Marks `msg` as sent unchanged on many channels (a fan-out): a channel whose turn's batch is
 * just this message writes the bytes the first one encoded (as aemp's connections do).
 */
export function shareFrame<T extends unknown[]>(msg: T): T {
  (msg as Shared)[SHARED] = null;
  return msg;
}

export function rawChannel(
  sock: Socket,
  onMsg: (m: unknown[]) => void,
  counts?: WriteCounts,
): (msg: unknown[]) => void {
  const enc = new Encoder({ useRecords: false });
  let pending: unknown[] = [];
  let queued = false;
  const flush = () => {
    queued = false;
    const batch = pending;
    pending = [];
    const one = batch.length === 1 ? (batch[0] as Shared) : undefined;
    // cbor-x never writes over what it returned (each encode continues after the last, and a
    // new buffer replaces a full one), so a lone message's bytes go out as they are.
    const bytes =
      one === undefined
        ? Buffer.concat(batch.map((m) => enc.encode(m)))
        : SHARED in one
          ? (one[SHARED] ??= Buffer.from(enc.encode(one)))
          : enc.encode(one);
    if (counts) {
      counts.messages += batch.length;
      counts.bytes += bytes.length;
    }
    sock.write(bytes);
  };
  let rest: Buffer = Buffer.alloc(0);
  let need = 0;
  sock.on('data', (chunk: Buffer) => {
    const buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    if (buf.length < need) {
      rest = buf;
      return;
    }
    let used = buf.length;
    try {
      decodeMultiple(buf, (v) => {
        onMsg(v as unknown[]);
      });
    } catch (e) {
      const err = e as { incomplete?: boolean; lastPosition?: number };
      if (!err.incomplete) throw e;
      used = err.lastPosition ?? 0;
    }
    rest = buf.subarray(used);
    need = rest.length ? itemEnd(rest, 0) : 0;
  });
  return (msg) => {
    pending.push(msg);
    if (!queued) {
      queued = true;
      queueMicrotask(flush);
    }
  };
}

/**
 * The end offset of the CBOR item starting at `pos` (definite lengths), or 0 when even its
 * headers are not all there yet. Only skips over heads; never decodes values.
 */
export function itemEnd(b: Uint8Array, pos: number): number {
  if (pos >= b.length) return 0;
  const ib = b[pos]!;
  const major = ib >> 5;
  const info = ib & 31;
  if (info > 27) return 0;
  const extra = info < 24 ? 0 : 1 << (info - 24); // 0, 1, 2, 4 or 8 length bytes
  let p = pos + 1;
  if (p + extra > b.length) return 0;
  let len = info;
  if (extra === 1) len = b[p]!;
  else if (extra === 2) len = (b[p]! << 8) | b[p + 1]!;
  else if (extra === 4) len = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  else if (extra === 8) len = Number(new DataView(b.buffer, b.byteOffset + p, 8).getBigUint64(0));
  p += extra;
  if (len < 0) return 0;
  switch (major) {
    case 2:
    case 3:
      return p + len;
    case 4:
    case 5: {
      let end = p;
      for (let i = 0; i < (major === 5 ? len * 2 : len); i++) {
        end = itemEnd(b, end);
        if (end === 0) return 0;
      }
      return end;
    }
    case 6:
      return itemEnd(b, p);
    default:
      return p;
  }
}

/**
 * The bytes-only ceiling's receiving side: counts the complete top-level CBOR items in a byte
 * stream without decoding them (`itemEnd` over the heads only). An item whose heads are all
 * there but whose payload is not is skipped over as its bytes arrive, without copying them;
 * only an incomplete head is kept for the next chunk. `onItem` gets each item's first byte.
 */
export function itemScanner(onItem: (first: number) => void): (chunk: Buffer) => void {
  let rest: Buffer | undefined;
  let skip = 0;
  return (chunk) => {
    let buf = chunk;
    if (skip > 0) {
      if (skip >= buf.length) {
        skip -= buf.length;
        return;
      }
      buf = buf.subarray(skip);
      skip = 0;
    }
    if (rest) buf = Buffer.concat([rest, buf]);
    rest = undefined;
    let pos = 0;
    while (pos < buf.length) {
      const end = itemEnd(buf, pos);
      if (end === 0) {
        rest = buf.subarray(pos);
        return;
      }
      onItem(buf[pos]!);
      if (end > buf.length) {
        skip = end - buf.length;
        return;
      }
      pos = end;
    }
  };
}
