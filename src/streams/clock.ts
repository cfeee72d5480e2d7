/**
 * The one source of time of a node. Every deadline, heartbeat, backoff, linger and timeout
 * takes its time from the clock the node was built with: `realClock` in production, a
 * `VirtualClock` in tests, which runs hours of heartbeats and backoff in a few milliseconds.
 *
 * Only time goes through the clock; "later in this turn" (`setImmediate`, microtasks) does not.
 */
import { type SchedulerAction, type SchedulerLike, Subscription } from 'rxjs';

/** A pending timeout or interval; `cancel()` is idempotent. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds (only differences mean something). */
  now(): number;
  /** Milliseconds since the epoch (wall clock: log records, the `time` request). */
  epochMs(): number;
  /**
   * Runs `fn` once after `ms`. A timer with `keepAlive: false` does not keep the process
   * alive on its own (Node's `unref`).
   */
  timeout(fn: () => void, ms: number, keepAlive?: boolean): Timer;
  /** Runs `fn` every `ms` until cancelled. */
  interval(fn: () => void, ms: number, keepAlive?: boolean): Timer;
  /** An rxjs scheduler on this clock (for `timer`, `timeout`, `interval` operators). */
  readonly scheduler: SchedulerLike;
}

/** Adapts any clock to rxjs's scheduler interface. */
export function clockScheduler(clock: Pick<Clock, 'now' | 'timeout'>): SchedulerLike {
  return {
    now: () => clock.now(),
    schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
      let timer: Timer | undefined;
      const action = new Subscription(() => timer?.cancel()) as Subscription & SchedulerAction<T>;
      action.schedule = (next?: T, after = 0) => {
        timer?.cancel();
        if (action.closed) return action;
        timer = clock.timeout(() => {
          timer = undefined;
          if (!action.closed) work.call(action, next);
        }, after);
        return action;
      };
      return action.schedule(state, delay);
    },
  };
}

/**
 * The longest delay one of Node's timers takes: 2^31 - 1 ms (about 24.8 days); a longer one
 * fires at once, with a warning.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A timeout of any length as a chain of timers no longer than `max` each (`arm` sets one).
 * A negative or non-number delay fires on the next timer turn.
 */
export function chainedTimeout(
  arm: (fn: () => void, ms: number) => Timer,
  fn: () => void,
  ms: number,
  max = MAX_TIMER_MS,
): Timer {
  let left = Number.isNaN(ms) ? 0 : Math.max(ms, 0);
  let current: Timer | undefined;
  const step = (): void => {
    const stretch = Math.min(left, max);
    left -= stretch;
    current = arm(() => {
      if (left > 0) return step();
      current = undefined;
      fn();
    }, stretch);
  };
  step();
  return {
    cancel: () => {
      current?.cancel();
      current = undefined;
    },
  };
}

/** A Node timer as a `Timer` (a method, not a closure per timer). */
class NodeTimer implements Timer {
  constructor(
    private readonly t: NodeJS.Timeout,
    private readonly clear: (t: NodeJS.Timeout) => void,
  ) {}

  cancel(): void {
    this.clear(this.t);
  }
}

function nodeTimer(t: NodeJS.Timeout, keepAlive: boolean, clear: (t: NodeJS.Timeout) => void): Timer {
  if (!keepAlive) t.unref();
  return new NodeTimer(t, clear);
}

/**
 * Real time: `performance.now()`, `Date.now()` and Node's timers. Timeouts of any length
 * work (chained); an interval is at most `MAX_TIMER_MS`.
 */
export const realClock: Clock = {
  now: () => performance.now(),
  epochMs: () => Date.now(),
  timeout: (fn, ms, keepAlive = true) =>
    chainedTimeout((f, m) => nodeTimer(setTimeout(f, m), keepAlive, clearTimeout), fn, ms),
  interval: (fn, ms, keepAlive = true) =>
    nodeTimer(setInterval(fn, Math.min(ms, MAX_TIMER_MS)), keepAlive, clearInterval),
  get scheduler() {
    return realScheduler;
  },
};
const realScheduler = clockScheduler(realClock);

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  every: number | undefined;
  cancelled: boolean;
}

/**
 * Time that moves only when told: `advance(ms)` runs every timer due by then, in order of due
 * time (then of creation), each with `now()` at its due time. `run(ms)` does the same but lets
 * I/O callbacks, promises and `setImmediate` work run between timers, for code that reacts to
 * a timer by sending and awaiting something.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly pending: Pending[] = [];
  readonly scheduler: SchedulerLike = clockScheduler(this);

  constructor(
    start = 0,
    private readonly epochBase = Date.UTC(2026, 0, 1),
  ) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  epochMs(): number {
    return this.epochBase + this.t;
  }

  timeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, undefined);
  }

  interval(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  /** Timers not yet fired or cancelled. */
  get size(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }

  /** Moves time forward by `ms`, firing what falls due, synchronously. */
  advance(ms: number): void {
    const end = this.t + Math.max(0, ms);
    for (let p = this.next(end); p; p = this.next(end)) this.fire(p);
    this.t = end;
  }

  /** Like `advance`, but yields to the event loop (I/O, promises, `setImmediate`) around each timer. */
  async run(ms: number): Promise<void> {
    const end = this.t + Math.max(0, ms);
    await settle();
    for (let p = this.next(end); p; p = this.next(end)) {
      this.fire(p);
      await settle();
    }
    this.t = end;
    await settle();
  }

  private add(fn: () => void, ms: number, every: number | undefined): Timer {
    const p: Pending = { at: this.t + Math.max(0, ms || 0), seq: this.seq++, fn, every, cancelled: false };
    this.pending.push(p);
    return {
      cancel: () => {
        p.cancelled = true;
        const i = this.pending.indexOf(p);
        if (i >= 0) this.pending.splice(i, 1);
      },
    };
  }

  private next(end: number): Pending | undefined {
    let best: Pending | undefined;
    for (const p of this.pending) {
      if (p.at <= end && (!best || p.at < best.at || (p.at === best.at && p.seq < best.seq))) best = p;
    }
    return best;
  }

  private fire(p: Pending): void {
    this.t = Math.max(this.t, p.at);
    if (p.every === undefined) {
      this.pending.splice(this.pending.indexOf(p), 1);
    } else {
      p.at += p.every;
      p.seq = this.seq++;
    }
    p.fn();
  }
}

/**
 * Event-loop turns `run()` gives between timers: enough for a request and its answer to
 * cross an in-memory connection (each hop takes a turn or two).
 */
const SETTLE_TURNS = 8;

/** Lets pending I/O callbacks, promise jobs and `setImmediate` work run, for a few turns. */
async function settle(): Promise<void> {
  for (let i = 0; i < SETTLE_TURNS; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
