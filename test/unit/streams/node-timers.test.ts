import { describe, expect, it } from 'vitest';
import { type Timer, VirtualClock } from '../../../src/streams/clock.js';
import { NodeTimers } from '../../../src/streams/node-timers.js';

/** A virtual clock that refuses delays Node's timers cannot take (they would fire at once). */
class NodeLimitClock extends VirtualClock {
  override timeout(fn: () => void, ms: number): Timer {
    if (ms > 2 ** 31 - 1) throw new Error(`a ${ms} ms timer would fire at once`);
    return super.timeout(fn, ms);
  }
}

const DAY = 86_400;

describe('NodeTimers', () => {
  it('waits longer than one timer can as a chain: after 30 days fires at 30 days, not before', () => {
    const clock = new NodeLimitClock();
    const timers = new NodeTimers(clock);
    let firedAt: number | undefined;
    timers.after(30 * DAY, () => (firedAt = clock.now()));
    clock.advance(30 * DAY * 1000 - 1);
    expect(firedAt).toBeUndefined();
    clock.advance(1);
    expect(firedAt).toBe(30 * DAY * 1000);
    expect(clock.size).toBe(0);
  });

  it('cancel and close stop a chain in any stretch', () => {
    const clock = new NodeLimitClock();
    const timers = new NodeTimers(clock);
    let fired = 0;
    const a = timers.after(60 * DAY, () => fired++);
    timers.after(60 * DAY, () => fired++);
    clock.advance(40 * DAY * 1000);
    timers.cancel(a);
    expect(clock.size).toBe(1);
    timers.close();
    expect(clock.size).toBe(0);
    clock.advance(30 * DAY * 1000);
    expect(fired).toBe(0);
  });

  it('a negative, zero or missing delay fires on the next timer turn', () => {
    const clock = new VirtualClock();
    const timers = new NodeTimers(clock);
    const seen: string[] = [];
    timers.after(-1, () => seen.push('negative'));
    timers.after(0, () => seen.push('zero'));
    timers.after(Number.NaN, () => seen.push('nan'));
    expect(seen).toEqual([]);
    clock.advance(0);
    expect(seen).toEqual(['negative', 'zero', 'nan']);
  });
});
