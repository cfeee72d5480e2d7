/**
 * The kernel's delivery queue: a FIFO of entries stored in fixed-size blocks. Pushing never
 * copies earlier entries (a growing array would, on every doubling), and drained blocks are
 * reused.
 *
 * An entry is either a (target, payload) pair or a target with up to {@link MAX_VALUES} message
 * values stored inline. Inline values keep a burst of a million small local messages cheap for
 * the garbage collector: the message array a subscriber sees is made only when the entry is
 * delivered, so it dies young instead of being copied through every scavenge while it waits.
 *
 * Drained blocks are kept for the next burst (fresh memory costs far more than reuse: a burst of
 * a million messages needs 32 MB of blocks) until the owner calls {@link PairFifo.trim}.
 */

const BLOCK = 16384; // slots per block
/**
 * Slots of a queue's first block: most nodes never queue more than a few entries at once, and
 * a full block would cost every node 128 KB from the start; bursts get full blocks.
 */
const FIRST_BLOCK = 256;
/** Most message values an entry holds inline. */
export const MAX_VALUES = 4;
/** Marks the unused tail of a block (an entry never spans two blocks). */
const END: unique symbol = Symbol('end of block');

interface Block {
  items: unknown[];
  next: Block | undefined;
}

export class PairFifo {
  private head: Block;
  private tail: Block;
  private readPos = 0;
  private writePos = 0;
  /** Drained blocks kept for reuse, linked through `next`. */
  private spare: Block | undefined;
  private spares = 0;
  private count = 0;

  constructor() {
    this.head = this.tail = newBlock(FIRST_BLOCK);
  }

  /** Number of queued entries. */
  get length(): number {
    return this.count;
  }

  /** Queues a (target, payload) pair; `payload` must not be a number. */
  push(target: unknown, payload: unknown): void {
    const items = this.room(2);
    const w = this.writePos;
    items[w] = target;
    items[w + 1] = payload;
    this.writePos = w + 2;
    this.count++;
  }

  /**
   * Queues `target` with the first `n` (at most {@link MAX_VALUES}) of `a`…`d`; it is drained as
   * the pair (target, [a, …]).
   */
  pushValues(target: unknown, n: number, a: unknown, b: unknown, c: unknown, d: unknown): void {
    const items = this.room(2 + n);
    const w = this.writePos;
    items[w] = target;
    items[w + 1] = n;
    if (n > 0) items[w + 2] = a;
    if (n > 1) items[w + 3] = b;
    if (n > 2) items[w + 4] = c;
    if (n > 3) items[w + 5] = d;
    this.writePos = w + 2 + n;
    this.count++;
  }

  /**
   * Calls `each` for the entries queued right now, oldest first; entries pushed meanwhile stay
   * for the next drain. Stops early when `each` returns true.
   */
  drain(each: (target: unknown, payload: unknown) => boolean | undefined): void {
    let n = this.count;
    while (n > 0) {
      let items = this.head.items;
      let r = this.readPos;
      if (r === items.length || items[r] === END) {
        const done = this.head;
        this.head = done.next!;
        if (r < items.length) items[r] = undefined;
        done.next = this.spare;
        this.spare = done;
        this.spares++;
        items = this.head.items;
        r = 0;
      }
      const t = items[r];
      const h = items[r + 1];
      items[r] = items[r + 1] = undefined;
      let p: unknown;
      if (typeof h === 'number') {
        p = values(items, r + 2, h);
        r += 2 + h;
      } else {
        p = h;
        r += 2;
      }
      this.count--;
      n--;
      if (this.head === this.tail && r === this.writePos) r = this.writePos = 0;
      this.readPos = r;
      if (each(t, p)) return;
    }
  }

  /** Number of drained blocks kept for reuse. */
  get spareBlocks(): number {
    return this.spares;
  }

  /** Lets go of all but `keep` of the blocks kept for reuse. */
  trim(keep: number): void {
    while (this.spares > keep) {
      this.spare = this.spare!.next;
      this.spares--;
    }
  }

  /** Drops everything queued and every block kept for reuse. */
  clear(): void {
    this.head = this.tail = newBlock(FIRST_BLOCK);
    this.readPos = this.writePos = this.count = 0;
    this.spare = undefined;
    this.spares = 0;
  }

  /** The block to write `slots` slots into at `writePos`, starting a new one if needed. */
  private room(slots: number): unknown[] {
    const size = this.tail.items.length;
    if (this.writePos + slots <= size) return this.tail.items;
    if (this.writePos < size) this.tail.items[this.writePos] = END;
    let b = this.spare;
    if (b !== undefined) {
      this.spare = b.next;
      b.next = undefined;
      this.spares--;
    } else b = newBlock(BLOCK);
    this.tail.next = b;
    this.tail = b;
    this.writePos = 0;
    return b.items;
  }
}

/** Takes `n` values out of `items` from `at` into a new array. */
function values(items: unknown[], at: number, n: number): unknown[] {
  let out: unknown[];
  switch (n) {
    case 0:
      return [];
    case 1:
      out = [items[at]];
      break;
    case 2:
      out = [items[at], items[at + 1]];
      break;
    case 3:
      out = [items[at], items[at + 1], items[at + 2]];
      break;
    default:
      out = [items[at], items[at + 1], items[at + 2], items[at + 3]];
  }
  for (let i = at; i < at + n; i++) items[i] = undefined;
  return out;
}

function newBlock(slots: number): Block {
  return { items: new Array(slots).fill(undefined), next: undefined };
}
