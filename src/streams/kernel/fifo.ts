/**
 * The kernel's delivery queue: a FIFO of entries stored in a chain of blocks. Pushing never
 * copies earlier entries (a growing array would, on every doubling), and drained blocks are
 * reused.
 *
 * An entry is either a (target, payload) pair or a target with up to {@link MAX_VALUES} message
 * values stored inline. Inline values keep a burst of a million small local messages cheap for
 * the garbage collector: the message array a subscriber sees is made only when the entry is
 * delivered, so it dies young instead of being copied through every scavenge while it waits.
 *
 * Consecutive inline entries to the same target with the same number of values share one
 * header, so a burst to one port stores just the values: half the memory for `snd(port, tag,
 * i)`. Fresh memory is what makes the first burst of a process slow (page faults, and the
 * collector marking every new block), so fewer slots per message is what makes it fast.
 *
 * Slots of a block, oldest first; an entry never spans two blocks:
 *   pair   `target, payload` (the payload is never a number)
 *   run    `target, k, values…, values…, …`: k = (entries not yet read) × RUN + values per
 *          entry. The writer appends to the newest run by raising k; the reader takes the
 *          run's entries by lowering it, and clears the header with the last one.
 *
 * Drained blocks are kept for the next burst (fresh memory costs far more than reuse: a burst of
 * a million two-value messages needs 16 MB of blocks) until the owner calls
 * {@link PairFifo.trim}.
 */

/**
 * Slots of a queue's first block: most nodes never queue more than a few entries at once, and
 * a full block would cost every node 128 KB from the start.
 */
const FIRST_BLOCK = 256;
/**
 * Slots of a full block, which bursts get. New blocks grow from the first one by {@link GROWTH}
 * up to this size (2 KB, 8 KB, 32 KB, then 128 KB each), so that a node which once queues a
 * few hundred entries keeps a few KB for them, not 128 KB. A full block is just above V8's
 * limit for ordinary objects, so it is made in the large-object space and never copied by the
 * young-generation collector.
 */
const BLOCK = 16384;
const GROWTH = 4;
/** Most message values an entry holds inline. */
export const MAX_VALUES = 4;
/** One entry in a run header's count (the low bits hold the values per entry). */
const RUN = 8;
/** Marks the unused tail of a block. */
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
  /** Slot of the count of the run being read in `head`, or -1. */
  private readRun = -1;
  /**
   * Slot of the count of the newest run in `tail`, or -1 once something else was queued after
   * it (or the queue started over); the writer adds to that run while its header matches.
   */
  private writeRun = -1;
  /** Drained blocks kept for reuse, linked through `next`. */
  private spare: Block | undefined;
  private spares = 0;
  /** Slots of the next block made (blocks grow from the first one to full blocks). */
  private nextSize = FIRST_BLOCK * GROWTH;
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
    // An entry after this one must not join a run queued before it.
    this.writeRun = -1;
    this.count++;
  }

  /**
   * Queues `target` (never `undefined`) with the first `n` (at most {@link MAX_VALUES}) of
   * `a`…`d`; it is drained as the pair (target, [a, …]).
   */
  pushValues(target: unknown, n: number, a: unknown, b: unknown, c: unknown, d: unknown): void {
    let items = this.tail.items;
    let w = this.writePos;
    // The newest run takes the entry if its header is still there (the reader clears it with
    // the run's last entry), names this target and this many values, and the block has room.
    const run = this.writeRun;
    if (
      run > 0 &&
      items[run - 1] === target &&
      ((items[run] as number) & (RUN - 1)) === n &&
      w + n <= items.length
    ) {
      items[run] = (items[run] as number) + RUN;
    } else {
      items = this.room(2 + n);
      w = this.writePos;
      items[w] = target;
      items[w + 1] = RUN + n;
      this.writeRun = w + 1;
      w += 2;
    }
    if (n > 0) items[w] = a;
    if (n > 1) items[w + 1] = b;
    if (n > 2) items[w + 2] = c;
    if (n > 3) items[w + 3] = d;
    this.writePos = w + n;
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
      let run = this.readRun;
      let t: unknown;
      let p: unknown;
      if (run >= 0) {
        // The next entry of the run being read.
        t = items[run - 1];
        const k = items[run] as number;
        if (k < 2 * RUN) {
          // Its last entry so far. Whatever is queued after it starts a new entry, and if nothing
          // is, the queue starts over below: the writer cannot add to this run any more.
          items[run - 1] = items[run] = undefined;
          run = -1;
        } else items[run] = k - RUN;
        const v = k & (RUN - 1);
        p = values(items, r, v);
        r += v;
      } else {
        if (r === items.length || items[r] === END) {
          items = this.nextBlock(r);
          r = 0;
        }
        t = items[r];
        const h = items[r + 1];
        if (typeof h !== 'number') {
          items[r] = items[r + 1] = undefined;
          p = h;
          r += 2;
        } else {
          // The first entry of a run: the header stays while more entries follow.
          if (h < 2 * RUN) items[r] = items[r + 1] = undefined;
          else {
            items[r + 1] = h - RUN;
            run = r + 1;
          }
          const v = h & (RUN - 1);
          p = values(items, r + 2, v);
          r += 2 + v;
        }
      }
      n--;
      if (--this.count === 0) {
        // Empty (the last entry ended its run): start over at the front of the block.
        r = this.writePos = 0;
        this.writeRun = -1;
      }
      this.readPos = r;
      this.readRun = run;
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
    this.readRun = this.writeRun = -1;
    this.spare = undefined;
    this.spares = 0;
    this.nextSize = FIRST_BLOCK * GROWTH;
  }

  /** Moves the reader from `head`, read up to `r`, to the next block; returns its slots. */
  private nextBlock(r: number): unknown[] {
    const done = this.head;
    if (r < done.items.length) done.items[r] = undefined;
    this.head = done.next!;
    done.next = this.spare;
    this.spare = done;
    this.spares++;
    return this.head.items;
  }

  /**
   * The block to write `slots` slots into at `writePos`, starting a new one if needed. Kept
   * small: it is inlined into every `snd`, and the optimiser inlines a call chain only up to a
   * total size, so the rare work of starting a block lives in {@link PairFifo.addBlock}.
   */
  private room(slots: number): unknown[] {
    const items = this.tail.items;
    return this.writePos + slots <= items.length ? items : this.addBlock();
  }

  /** Ends the tail block (marking its unused rest) and appends a spare or a new block. */
  private addBlock(): unknown[] {
    const items = this.tail.items;
    if (this.writePos < items.length) items[this.writePos] = END;
    let b = this.spare;
    if (b !== undefined) {
      this.spare = b.next;
      b.next = undefined;
      this.spares--;
    } else {
      b = newBlock(this.nextSize);
      this.nextSize = Math.min(BLOCK, this.nextSize * GROWTH);
    }
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
