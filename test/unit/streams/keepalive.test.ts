/**
 * The keepalive of a global node on a virtual clock: a node that is down is dialled at once,
 * then after 0.6–1.2 s, the wait doubling up to `monitor_timeout`; `lost` starts short again;
 * the timer stops when nothing is down and on close.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { VirtualClock } from '../../../src/streams/clock.js';
import { Keepalive, MAX_KEPT_NODES } from '../../../src/streams/db/keepalive.js';

function setup(maxRetry = 8) {
  const clock = new VirtualClock();
  const up = new Set<string>();
  const dials: { node: string; at: number }[] = [];
  const full: string[] = [];
  const k = new Keepalive({
    isUp: (n) => up.has(n),
    connect: (n) => dials.push({ node: n, at: clock.now() }),
    maxRetry: () => maxRetry,
    full: (n) => full.push(n),
    clock,
  });
  return { clock, up, dials, full, k };
}

/** Gaps between successive dial times of `node`, in whole milliseconds. */
function gaps(dials: { node: string; at: number }[], node: string): number[] {
  const at = dials.filter((d) => d.node === node).map((d) => d.at);
  return at.slice(1).map((t, i) => Math.round(t - at[i]!));
}

describe('Keepalive backoff', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('dials at once, then after 0.6–1.2 s, doubling up to monitor_timeout', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5); // first wait (1 + 0.5) × 0.3 × 2 = 0.9 s
    const { clock, dials, k } = setup(8);
    k.add('g1');
    expect(dials).toEqual([{ node: 'g1', at: 0 }]);
    clock.advance(60_000);
    expect(gaps(dials, 'g1').slice(0, 6)).toEqual([900, 1800, 3600, 7200, 8000, 8000]);
    k.close();
    expect(clock.size).toBe(0);
  });

  it('the first wait lies between 0.6 and 1.2 s whatever the random draw', () => {
    for (const r of [0, 0.999]) {
      vi.spyOn(Math, 'random').mockReturnValue(r);
      const { clock, dials, k } = setup(30);
      k.add('g');
      clock.advance(1200);
      const [first] = gaps(dials, 'g');
      expect(first).toBeGreaterThanOrEqual(600);
      expect(first).toBeLessThanOrEqual(1200);
      k.close();
    }
  });

  it('stops when the node comes up, and a lost connection starts short again', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { clock, up, dials, k } = setup(30);
    k.add('g');
    clock.advance(600 + 1200 + 2400); // dials at 0, 600, 1800, 4200
    expect(dials.map((d) => Math.round(d.at))).toEqual([0, 600, 1800, 4200]);
    up.add('g');
    k.up('g');
    expect(clock.size).toBe(0);
    clock.advance(100_000);
    expect(dials).toHaveLength(4);

    up.delete('g');
    k.lost('g');
    expect(dials.at(-1)).toEqual({ node: 'g', at: 104_200 });
    clock.advance(600);
    expect(dials.at(-1)).toEqual({ node: 'g', at: 104_800 });
    k.close();
    expect(clock.size).toBe(0);
  });

  it('one timer for all down nodes; a node deleted for good is not dialled again', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { clock, dials, k } = setup(30);
    k.add('a');
    k.add('b');
    expect(clock.size).toBe(1);
    k.del('a');
    clock.advance(600);
    expect(dials.filter((d) => d.at === 600).map((d) => d.node)).toEqual(['b']);
    k.del('b');
    expect(clock.size).toBe(0);
  });

  it('a node already up is kept but not dialled; nodes beyond the cap are refused', () => {
    const { clock, up, dials, full, k } = setup();
    up.add('u');
    k.add('u');
    expect(dials).toEqual([]);
    expect(clock.size).toBe(0);
    for (let i = 0; i < MAX_KEPT_NODES - 1; i++) {
      up.add(`n${i}`);
      k.add(`n${i}`);
    }
    k.add('one-too-many');
    expect(full).toEqual(['one-too-many']);
    expect(k.size).toBe(MAX_KEPT_NODES);
    k.close();
  });
});
