/**
 * The node's own timers (`after`, `cal` and `call` timeouts) on the node's clock, so that
 * `close()` can cancel the ones still pending.
 */
import type { Clock, Timer } from './clock.js';

/**
 * The longest delay one timer of the clock takes (Node's timers take 2^31 - 1 ms and fire at
 * once for more); a longer wait is a chain of them.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A pending `after`: the clock's timer of its current stretch. */
interface NodeTimer extends Timer {
  current: Timer | undefined;
}

export class NodeTimers {
  private readonly live = new Set<NodeTimer>();

  constructor(private readonly clock: Clock) {}

  /** Runs `fn` once after `seconds` (at once for a negative or missing value). */
  after(seconds: number, fn: () => void): Timer {
    let left = seconds > 0 ? seconds * 1000 : 0;
    const t: NodeTimer = {
      current: undefined,
      cancel: () => {
        t.current?.cancel();
        t.current = undefined;
        this.live.delete(t);
      },
    };
    const arm = (): void => {
      const ms = Math.min(left, MAX_TIMER_MS);
      left -= ms;
      t.current = this.clock.timeout(() => {
        if (left > 0) return arm();
        t.current = undefined;
        this.live.delete(t);
        fn();
      }, ms);
    };
    arm();
    this.live.add(t);
    return t;
  }

  /** Cancels a timer made by `after` (no effect once it ran). */
  cancel(t: Timer): void {
    t.cancel();
  }

  /** Cancels every pending timer. */
  close(): void {
    for (const t of [...this.live]) t.cancel();
    this.live.clear();
  }
}
