import { firstValueFrom, interval, NEVER, TimeoutError, take, timeout, timer, toArray } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  chainedTimeout,
  clockScheduler,
  MAX_TIMER_MS,
  realClock,
  VirtualClock,
} from '../../../src/streams/clock.js';
import { within } from '../../helpers/fake-peer.js';

describe('VirtualClock', () => {
  it('fires timeouts in order of due time, then of creation, each with now() at its due time', () => {
    const c = new VirtualClock(100);
    const seen: [string, number][] = [];
    const at = (name: string) => () => seen.push([name, c.now()]);
    c.timeout(at('b30'), 30);
    c.timeout(at('a10'), 10);
    c.timeout(at('c30'), 30);
    c.timeout(at('zero'), 0);
    c.advance(29);
    expect(seen).toEqual([
      ['zero', 100],
      ['a10', 110],
    ]);
    expect(c.now()).toBe(129);
    c.advance(1);
    expect(seen.slice(2)).toEqual([
      ['b30', 130],
      ['c30', 130],
    ]);
    expect(c.size).toBe(0);
  });

  it('runs a timer made by a firing timer within the same advance when it falls due', () => {
    const c = new VirtualClock();
    const seen: number[] = [];
    c.timeout(() => {
      seen.push(c.now());
      c.timeout(() => seen.push(c.now()), 5);
    }, 10);
    c.advance(20);
    expect(seen).toEqual([10, 15]);
    expect(c.now()).toBe(20);
  });

  it('repeats intervals until cancelled; cancel is idempotent and works from inside', () => {
    const c = new VirtualClock();
    const ticks: number[] = [];
    const t = c.interval(() => {
      ticks.push(c.now());
      if (ticks.length === 3) t.cancel();
    }, 7);
    c.advance(100);
    expect(ticks).toEqual([7, 14, 21]);
    t.cancel();
    expect(c.size).toBe(0);
  });

  it('a cancelled timeout never fires', () => {
    const c = new VirtualClock();
    let fired = false;
    const t = c.timeout(() => (fired = true), 5);
    t.cancel();
    c.advance(10);
    expect(fired).toBe(false);
    expect(c.size).toBe(0);
  });

  it('epochMs follows now() from its base', () => {
    const c = new VirtualClock(0, 1_000_000);
    c.advance(2500);
    expect(c.epochMs()).toBe(1_002_500);
  });

  it('drives rxjs timer and timeout through its scheduler', async () => {
    const c = new VirtualClock();
    const values: number[] = [];
    timer(50, c.scheduler).subscribe((v) => values.push(v));
    const err = firstValueFrom(NEVER.pipe(timeout({ first: 30, scheduler: c.scheduler }))).catch((e) => e);
    c.advance(29);
    expect(values).toEqual([]);
    c.advance(1);
    expect(await within(err, 1000, 'the timeout error')).toBeInstanceOf(TimeoutError);
    c.advance(20);
    expect(values).toEqual([0]);
    const ticks = firstValueFrom(interval(10, c.scheduler).pipe(take(3), toArray()));
    c.advance(30);
    expect(await within(ticks, 1000, 'three interval ticks')).toEqual([0, 1, 2]);
    expect(c.size).toBe(0);
  });

  it('run() lets promise jobs and setImmediate work run between timers', async () => {
    const c = new VirtualClock();
    const seen: string[] = [];
    // The second timer is armed only by work that runs after the first timer's callback.
    c.timeout(() => {
      void Promise.resolve().then(() => seen.push(`then@${c.now()}`));
      setImmediate(() => {
        seen.push(`immediate@${c.now()}`);
        c.timeout(() => seen.push(`second@${c.now()}`), 10);
      });
    }, 10);
    await c.run(25);
    expect(seen).toEqual(['then@10', 'immediate@10', 'second@20']);
    expect(c.now()).toBe(25);
  });

  it('advance() does not wait for promises: what a promise arms fires only on a later advance', async () => {
    const c = new VirtualClock();
    const seen: number[] = [];
    c.timeout(() => void Promise.resolve().then(() => c.timeout(() => seen.push(c.now()), 1)), 1);
    c.advance(10);
    await Promise.resolve();
    expect(seen).toEqual([]);
    c.advance(1);
    expect(seen).toEqual([11]);
  });
});

describe('clockScheduler', () => {
  it('reschedules an action with its new delay and cancels with unsubscribe', () => {
    const c = new VirtualClock();
    const s = clockScheduler(c);
    const seen: number[] = [];
    const action = s.schedule<number>(
      function (n) {
        seen.push(c.now());
        if (n! < 2) this.schedule(n! + 1, 5);
      },
      3,
      0,
    );
    c.advance(100);
    expect(seen).toEqual([3, 8, 13]);
    const stopped = s.schedule(() => seen.push(-1), 1);
    stopped.unsubscribe();
    c.advance(5);
    expect(seen).toEqual([3, 8, 13]);
    expect(action.closed).toBe(false);
    expect(c.size).toBe(0);
  });
});

describe('realClock', () => {
  it('fires a timeout, and a cancelled one never', async () => {
    let cancelledFired = false;
    realClock.timeout(() => (cancelledFired = true), 1).cancel();
    await within(new Promise<void>((resolve) => realClock.timeout(resolve, 5)), 2000, 'a 5 ms timeout');
    expect(cancelledFired).toBe(false);
    expect(realClock.epochMs()).toBeGreaterThan(Date.UTC(2020, 0, 1));
  });
});

describe('long delays', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const DAY_MS = 86_400_000;

  it('realClock.timeout waits 30 days as a chain of Node timers (one timer would fire at once)', () => {
    // vitest's fake timers treat a delay over 2^31 - 1 ms as 1 ms, as Node does.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let fired = false;
    realClock.timeout(() => (fired = true), 30 * DAY_MS);
    vi.advanceTimersByTime(30 * DAY_MS - 1);
    expect(fired).toBe(false);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(true);
  });

  it('cancelling a chained timeout in a later stretch stops it', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let fired = false;
    const t = realClock.timeout(() => (fired = true), 60 * DAY_MS);
    vi.advanceTimersByTime(40 * DAY_MS);
    t.cancel();
    vi.advanceTimersByTime(30 * DAY_MS);
    expect(fired).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('realClock.interval beyond one timer runs every 2^31 - 1 ms instead of every millisecond', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let ticks = 0;
    const t = realClock.interval(() => ticks++, 40 * DAY_MS);
    vi.advanceTimersByTime(1000);
    expect(ticks).toBe(0);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(ticks).toBe(1);
    t.cancel();
  });

  it('chainedTimeout arms stretches no longer than its maximum', () => {
    const c = new VirtualClock();
    const stretches: number[] = [];
    let firedAt: number | undefined;
    chainedTimeout(
      (f, ms) => {
        stretches.push(ms);
        return c.timeout(f, ms);
      },
      () => (firedAt = c.now()),
      25,
      10,
    );
    c.advance(100);
    expect(stretches).toEqual([10, 10, 5]);
    expect(firedAt).toBe(25);
  });
});
