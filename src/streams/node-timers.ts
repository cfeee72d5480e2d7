/**
 * The node's own timers (`after`, `cal` timeouts) on the node's clock, so that `close()` can
 * cancel the ones still pending.
 */
import type { Clock, Timer } from './clock.js';

export class NodeTimers {
  private readonly live = new Set<Timer>();

  constructor(private readonly clock: Clock) {}

  /** Runs `fn` once after `seconds` (at once for a negative or missing value). */
  after(seconds: number, fn: () => void): Timer {
    const ms = seconds > 0 ? seconds * 1000 : 0;
    const t = this.clock.timeout(() => {
      this.live.delete(t);
      fn();
    }, ms);
    this.live.add(t);
    return t;
  }

  /** Cancels a timer made by `after` (no effect once it ran). */
  cancel(t: Timer): void {
    t.cancel();
    this.live.delete(t);
  }

  /** Cancels every pending timer. */
  close(): void {
    for (const t of this.live) t.cancel();
    this.live.clear();
  }
}
