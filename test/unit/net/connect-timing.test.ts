/**
 * The connect procedure's timers in virtual time (spec/protocol.md §2.2, global.md §3): the
 * connect deadline, the spacing between addresses, the seed loop's backoff, the handshake's
 * limits and the close grace. Dials go to an in-memory network; no socket, no wall time.
 */
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { MemoryNetwork, VirtualClock } from '../../../src/testing.js';
import { within } from '../../helpers/fake-peer.js';
import { network, node } from './memory-nodes.js';

const FAR = '10.0.9.9:4040';
const FARTHER = '10.0.9.10:4040';

describe('connect deadline', () => {
  it('a node whose dial never connects fails with connect timeout at exactly connect_interval', async () => {
    const net = new MemoryNetwork();
    net.blackhole(FAR);
    const clock = new VirtualClock();
    const a = node(net.host(), clock, { nodeid: 'cd-a', binds: ['10.0.0.1:4040'], connect_interval: 2 });
    await a.ready;
    network(a).addresses.set('cd-far', [FAR]);
    let reason: unknown;
    const fired = firstValueFrom(a.mon$('cd-far#p')).then((r) => (reason = r));
    await clock.run(1999);
    expect(reason).toBeUndefined();
    await clock.run(1);
    await within(fired, 1000, 'the monitor of the unreachable node');
    expect(reason).toEqual(['transport_error', 'cd-far', 'connect timeout']);
  });

  it('the next address is dialled after the spacing × 0.9…1.0, all within the one deadline', async () => {
    const net = new MemoryNetwork();
    net.blackhole(FAR);
    net.blackhole(FARTHER);
    const clock = new VirtualClock();
    const dials: [string, number][] = [];
    const host = net.host({ onDial: (addr) => dials.push([addr, clock.now()]) });
    // spacing = max(0.4, min(ci, (mt - ci) / n)) = max(0.4, min(3, (7 - 3) / 2)) = 2 s
    const a = node(host, clock, {
      nodeid: 'sp-a',
      binds: ['10.0.0.1:4040'],
      connect_interval: 3,
      monitor_timeout: 7,
    });
    await a.ready;
    network(a).addresses.set('sp-far', [FAR, FARTHER]);
    const fired = firstValueFrom(a.mon$('sp-far#p'));
    await clock.run(3000);
    expect(await within(fired, 1000, 'the connect deadline')).toEqual([
      'transport_error',
      'sp-far',
      'connect timeout',
    ]);
    expect(dials.map(([addr]) => addr)).toEqual([FAR, FARTHER]);
    expect(dials[0]![1]).toBe(0);
    expect(dials[1]![1]).toBeGreaterThanOrEqual(1800);
    expect(dials[1]![1]).toBeLessThanOrEqual(2000);
  });
});

describe('seed loop', () => {
  it('an unreachable seed is dialled again with the retry doubling up to monitor_timeout', async () => {
    const net = new MemoryNetwork();
    const clock = new VirtualClock();
    const SEED = '10.0.5.5:4040';
    const dials: number[] = [];
    const host = net.host({ onDial: (addr) => addr === SEED && dials.push(clock.now()) });
    const a = node(host, clock, {
      nodeid: 'sb-a',
      binds: ['10.0.0.1:4040'],
      seeds: [SEED],
      monitor_timeout: 10,
    });
    await a.ready;
    await clock.run(60_000);
    expect(dials[0]).toBe(0);
    const gaps = dials.slice(1).map((t, i) => t - dials[i]!);
    // The first retry after (1 … 2) × 0.6 s × 2, then twice the one before, at most 10 s.
    expect(gaps[0]).toBeGreaterThanOrEqual(1200);
    expect(gaps[0]).toBeLessThan(2400);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeCloseTo(Math.min(2 * gaps[i - 1]!, 10_000), 6);
    expect(gaps.at(-1)).toBeCloseTo(10_000, 6);
    expect(gaps.length).toBeGreaterThan(5);
  });
});
