/**
 * Local delivery: one FIFO of (target, payload) entries for the whole node, drained on the next
 * turn of the event loop (`setImmediate`), so the order per sender is kept and a handler never
 * runs inside `snd`. Blocks left over from a burst are kept for the next one and let go once
 * local traffic has been quiet for a while (a timer on the node's clock).
 */
import type { Clock, Timer } from '../clock.js';
import { PairFifo } from './fifo.js';

/** Spare queue blocks (up to 128 KB each) kept for good; more are kept only while bursts continue. */
const KEPT_SPARE_BLOCKS = 2;
/** How long after the last burst the queue keeps its extra spare blocks. */
const SPARE_BLOCKS_KEPT_MS = 10_000;

/** Handles one entry; returns true to stop draining (the kernel closed). */
export type Step = (target: unknown, payload: unknown) => boolean;

export class DeliveryQueue {
  private readonly fifo = new PairFifo();
  private scheduled: NodeJS.Immediate | undefined;
  /** Lets go of the spare blocks once local traffic has been quiet for a while. */
  private trimTimer: Timer | undefined;
  /** When a drain last ended with extra spare blocks. */
  private lastBurst = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly step: Step,
  ) {}

  /** Number of queued entries. */
  get length(): number {
    return this.fifo.length;
  }

  /** Number of drained blocks kept for reuse. */
  get spareBlocks(): number {
    return this.fifo.spareBlocks;
  }

  /** Queues a (target, payload) pair (`payload` must not be a number). */
  push(target: unknown, payload: unknown): void {
    if (this.closed) return;
    this.fifo.push(target, payload);
    this.scheduled ??= setImmediate(this.drain);
  }

  /** Queues `target` with the first `n` of `a`…`d` inline (see `PairFifo.pushValues`). */
  pushValues(target: unknown, n: number, a: unknown, b: unknown, c: unknown, d: unknown): void {
    if (this.closed) return;
    this.fifo.pushValues(target, n, a, b, c, d);
    this.scheduled ??= setImmediate(this.drain);
  }

  /** Drops everything queued and stops the timers; later pushes are ignored. */
  close(): void {
    this.closed = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.trimTimer?.cancel();
    this.trimTimer = undefined;
    this.fifo.clear();
  }

  private readonly drain = (): void => {
    this.scheduled = undefined;
    this.fifo.drain(this.step);
    if (this.closed) return;
    if (this.fifo.length > 0) this.scheduled ??= setImmediate(this.drain);
    else if (this.fifo.spareBlocks > KEPT_SPARE_BLOCKS) {
      this.lastBurst = this.clock.now();
      this.trimTimer ??= this.clock.timeout(this.trim, SPARE_BLOCKS_KEPT_MS, false);
    }
  };

  private readonly trim = (): void => {
    this.trimTimer = undefined;
    const quiet = this.clock.now() - this.lastBurst;
    if (quiet < SPARE_BLOCKS_KEPT_MS) {
      // Bursts went on meanwhile: wait until the last one is long enough ago.
      this.trimTimer = this.clock.timeout(this.trim, SPARE_BLOCKS_KEPT_MS - quiet, false);
      return;
    }
    if (this.fifo.length === 0) this.fifo.trim(KEPT_SPARE_BLOCKS);
  };
}
