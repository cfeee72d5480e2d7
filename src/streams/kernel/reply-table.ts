/**
 * The reply ports of calls in flight, in a table of slots instead of the port map: a reply
 * port's name is the node's random part and a number (`uniq + seq`), the number's low bits pick
 * its slot, and a message for it finds it by parsing the name. No map entry is made and
 * deleted per call, and no name is ever reused (a late reply to a finished call finds nothing).
 *
 * Anything beyond its messages (a monitor, a kill, a stream or handlers set on it) turns the
 * reply port into an ordinary port record first (see `PortTable.find`).
 */
import type { PortSink } from './port-record.js';

/** The receiver of a reply port in the table; the kernel keeps these fields. */
export interface ReplyPort extends PortSink {
  /** The port's number while it is in the table. */
  replySeq: number;
  /** The port's ID. */
  replyId: string;
  /** The port's record, once it left the table for the port map. */
  replyRecord: object | undefined;
}

/** Longest number part of a reply port name (2^53 has 16 digits). */
const MAX_DIGITS = 15;

export class ReplyTable {
  private slots: (ReplyPort | undefined)[] = new Array(64).fill(undefined);
  private mask = 63;
  private seq = 0;
  /** Number of reply ports in the table. */
  count = 0;

  /** A number no reply port had or will have (for reply ports made outside the table). */
  take(): number {
    return ++this.seq;
  }

  /** Puts `p` in the table under a new number, which it returns. */
  add(p: ReplyPort): number {
    // At most half full, so a free slot is near.
    if (this.count * 2 >= this.slots.length) this.grow();
    let s = ++this.seq;
    while (this.slots[s & this.mask] !== undefined) s = ++this.seq;
    this.slots[s & this.mask] = p;
    p.replySeq = s;
    this.count++;
    return s;
  }

  /** The reply port numbered `seq`, if it is in the table. */
  get(seq: number): ReplyPort | undefined {
    const p = this.slots[seq & this.mask];
    return p !== undefined && p.replySeq === seq ? p : undefined;
  }

  /** Takes `p` out of the table (no effect if it is not there). */
  remove(p: ReplyPort): void {
    const i = p.replySeq & this.mask;
    if (this.slots[i] !== p) return;
    this.slots[i] = undefined;
    this.count--;
  }

  /** The reply ports in the table. */
  all(): ReplyPort[] {
    return this.slots.filter((p): p is ReplyPort => p !== undefined);
  }

  private grow(): void {
    // Numbers apart in the low bits of the old mask stay apart under the wider one.
    const old = this.slots;
    this.slots = new Array(old.length * 2).fill(undefined);
    this.mask = this.slots.length - 1;
    for (const p of old) if (p !== undefined) this.slots[p.replySeq & this.mask] = p;
  }
}

/**
 * The number of a reply port name `uniq + digits` (no leading zero), or -1 for any other
 * name.
 */
export function replySeqOf(name: string, uniq: string): number {
  const u = uniq.length;
  const n = name.length;
  if (n <= u || n > u + MAX_DIGITS) return -1;
  let c = name.charCodeAt(u) - 48;
  if (c < 1 || c > 9) return -1;
  let v = c;
  for (let i = u + 1; i < n; i++) {
    c = name.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  // (`indexOf` at 0 costs V8 about half of what `startsWith` does.)
  if (u > 0 && name.indexOf(uniq) !== 0) return -1;
  return v;
}
