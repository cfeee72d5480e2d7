/**
 * A FIFO of (target, payload) pairs stored in fixed-size blocks: pushing never copies
 * earlier entries (a growing array would, on every doubling), and drained blocks are reused.
 * This keeps a burst of a million local messages cheap for the garbage collector.
 */

const BLOCK = 8192; // pairs per block

interface Block {
  items: unknown[];
  next: Block | undefined;
}

export class PairFifo {
  private head: Block;
  private tail: Block;
  private readPos = 0;
  private writePos = 0;
  private spare: Block | undefined;
  private count = 0;

  constructor() {
    this.head = this.tail = newBlock();
  }

  /** Number of queued pairs. */
  get length(): number {
    return this.count;
  }

  push(target: unknown, payload: unknown): void {
    if (this.writePos === BLOCK * 2) {
      const b = this.spare ?? newBlock();
      this.spare = undefined;
      this.tail.next = b;
      this.tail = b;
      this.writePos = 0;
    }
    const items = this.tail.items;
    items[this.writePos] = target;
    items[this.writePos + 1] = payload;
    this.writePos += 2;
    this.count++;
  }

  /**
   * Calls `each` for the pairs queued right now, oldest first; pairs pushed meanwhile stay for
   * the next drain. Stops early when `each` returns true.
   */
  drain(each: (target: unknown, payload: unknown) => boolean | undefined): void {
    let n = this.count;
    while (n > 0) {
      if (this.readPos === BLOCK * 2) {
        const done = this.head;
        this.head = done.next!;
        done.next = undefined;
        this.spare = done;
        this.readPos = 0;
      }
      const items = this.head.items;
      const t = items[this.readPos];
      const p = items[this.readPos + 1];
      items[this.readPos] = items[this.readPos + 1] = undefined;
      this.readPos += 2;
      this.count--;
      n--;
      if (this.head === this.tail && this.readPos === this.writePos) this.readPos = this.writePos = 0;
      if (each(t, p)) return;
    }
  }

  /** Drops everything queued. */
  clear(): void {
    this.head = this.tail = newBlock();
    this.readPos = this.writePos = this.count = 0;
    this.spare = undefined;
  }
}

function newBlock(): Block {
  return { items: new Array(BLOCK * 2).fill(undefined), next: undefined };
}
