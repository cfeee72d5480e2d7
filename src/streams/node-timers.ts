/**
 * The node's own timers (`after`, `cal` and `call` timeouts) on the node's clock, so that
 * `close()` can cancel the ones still pending.
 */
import { type Clock, chainedTimeout, type Timer } from './clock.js';

export class NodeTimers {
  private readonly live = new Set<Timer>();

  constructor(private readonly clock: Clock) {}

  /** Runs `fn` once after `seconds` (at once for a negative or missing value). */
  after(seconds: number, fn: () => void): Timer {
    // Chained here too: a clock other than the real one need not take delays beyond 2^31 - 1 ms.
    const timer = chainedTimeout(
      (f, ms) => this.clock.timeout(f, ms),
      () => {
        this.live.delete(t);
        fn();
      },
      seconds * 1000,
    );
    const t: Timer = {
      cancel: () => {
        timer.cancel();
        this.live.delete(t);
      },
    };
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
