/**
 * The ceiling's wire code: a bare socket, cbor-x, all frames of one event-loop turn in one
 * write, and the usual cbor-x incremental decoding: the incomplete tail is kept and decoded
 * again together with the next read.
 */
import type { Socket } from 'node:net';
import { decodeMultiple, Encoder } from 'cbor-x';

export function rawChannel(sock: Socket, onMsg: (m: unknown[]) => void): (msg: unknown[]) => void {
  const enc = new Encoder({ useRecords: false });
  let pending: unknown[] = [];
  let queued = false;
  const flush = () => {
    queued = false;
    const batch = pending;
    pending = [];
    sock.write(Buffer.concat(batch.map((m) => enc.encode(m))));
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
function itemEnd(b: Buffer, pos: number): number {
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
  else if (extra === 2) len = b.readUInt16BE(p);
  else if (extra === 4) len = b.readUInt32BE(p);
  else if (extra === 8) len = Number(b.readBigUInt64BE(p));
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
