/**
 * `observeNetwork` in virtual time on an in-memory network: pictures come every interval, link
 * rates are counter deltas over the interval, a node that stops answering is shown with its
 * last numbers as `unknown`, and once the heartbeat declares it down it leaves the pictures.
 */
import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { observeNetwork } from '../../src/streams/observe/network-view.js';
import type { NetworkSnapshot } from '../../src/streams/observe/snapshot.js';
import { MemoryNetwork, VirtualClock } from '../../src/testing.js';
import { node, nodeEvent } from './net/memory-nodes.js';

const HB = { heartbeat_interval: 1, heartbeat_misses: 3 };
const subs: Subscription[] = [];
afterEach(() => {
  for (const s of subs.splice(0)) s.unsubscribe();
});

async function network() {
  const net = new MemoryNetwork();
  const clock = new VirtualClock();
  const G = '10.0.0.1:4040';
  const g = node(net.host(), clock, {
    nodeid: 'vw-g',
    binds: [G],
    services: ['AnyEvent::MP::Global::'],
    ...HB,
  });
  await g.ready;
  const hostB = net.host();
  const b = node(hostB, clock, { nodeid: 'vw-b', binds: ['10.0.0.2:4040'], seeds: [G], ...HB });
  const c = node(net.host(), clock, { nodeid: 'vw-c', binds: ['10.0.0.3:4040'], seeds: [G], ...HB });
  await Promise.all([b.ready, c.ready, nodeEvent(b, 'up', 'vw-g'), nodeEvent(c, 'up', 'vw-g')]);
  return { g, b, c, hostB, clock };
}

/** Subscribes to the view; `pictures` fills as the clock runs. */
function watch(view: ReturnType<typeof observeNetwork>) {
  const pictures: NetworkSnapshot[] = [];
  subs.push(view.subscribe((p) => pictures.push(p)));
  return pictures;
}

/**
 * Runs the clock in steps of 10 ms: a request and its answer take a few turns of the event loop
 * on the in-memory network, which the clock gives between its steps (in a real network they
 * take time; here no time passes while they travel).
 */
async function advance(clock: VirtualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 10) await clock.run(Math.min(10, ms - t));
}

const ids = (p: NetworkSnapshot | undefined) => (p?.nodes.map((n) => n.node) ?? []).sort();

describe('observeNetwork (virtual time)', () => {
  it('one picture per interval; rates are counter deltas per second', async () => {
    const { g, b, c, clock } = await network();
    const pictures = watch(observeNetwork(c, { intervalMs: 1000, families: false }));
    await advance(clock, 3000);
    expect(pictures.length).toBeGreaterThanOrEqual(3);
    expect(pictures.length).toBeLessThanOrEqual(4);
    const last = pictures.at(-1)!;
    expect(ids(last)).toEqual(['vw-b', 'vw-c', 'vw-g']);
    expect(last.nodes.every((n) => n.kind === 'aemp')).toBe(true);
    expect(last.nodes.find((n) => n.node === 'vw-g')!.global).toBe(true);

    // 200 messages from b to g within one interval: b → g shows ~200 messages per second.
    const sink = g.port(() => {});
    const before = pictures.length;
    for (let i = 0; i < 200; i++) b.snd(sink, i);
    await advance(clock, 1000);
    expect(pictures.length).toBe(before + 1);
    const link = pictures.at(-1)!.links.find((l) => l.from === 'vw-b' && l.to === 'vw-g')!;
    expect(link.msgRateOut).toBeGreaterThanOrEqual(190);
    expect(link.msgRateOut).toBeLessThan(215);
    // Quiet again: the rate drops back.
    await advance(clock, 1000);
    const quiet = pictures.at(-1)!.links.find((l) => l.from === 'vw-b' && l.to === 'vw-g')!;
    expect(quiet.msgRateOut).toBeLessThan(15);
  });

  it('a silent node is shown with its last numbers as unknown, then leaves once it is down', async () => {
    const { c, hostB, clock } = await network();
    const pictures = watch(observeNetwork(c, { intervalMs: 1000, families: false }));
    await advance(clock, 2000);
    const known = pictures.at(-1)!.nodes.find((n) => n.node === 'vw-b')!;
    expect(known.kind).toBe('aemp');
    expect(known.ports).toBeGreaterThanOrEqual(0);

    hostB.freeze();
    await advance(clock, 2000);
    const silent = pictures.at(-1)!.nodes.find((n) => n.node === 'vw-b')!;
    expect(silent.kind).toBe('unknown');
    expect(silent.ports).toBe(known.ports);
    expect(silent.heapUsed).toBe(known.heapUsed);

    // Heartbeat: down after 3 × 1 s of silence at c and at the global node ('l loses it); the
    // next picture after that no longer lists it.
    await advance(clock, 3000);
    expect(ids(pictures.at(-1))).toEqual(['vw-c', 'vw-g']);
  });

  it('completes when the node closes', async () => {
    const { c, clock } = await network();
    let completed = false;
    subs.push(observeNetwork(c, { intervalMs: 500 }).subscribe({ complete: () => (completed = true) }));
    await advance(clock, 1000);
    expect(completed).toBe(false);
    const closed = c.close();
    for (let i = 0; i < 20 && !completed; i++) await advance(clock, 100);
    await closed;
    expect(completed).toBe(true);
  });

  it('stops polling when unsubscribed', async () => {
    const { c, clock } = await network();
    const pictures: NetworkSnapshot[] = [];
    const sub = observeNetwork(c, { intervalMs: 500 }).subscribe((p) => pictures.push(p));
    await advance(clock, 1000);
    sub.unsubscribe();
    const n = pictures.length;
    expect(n).toBeGreaterThanOrEqual(2);
    await advance(clock, 5000);
    expect(pictures.length).toBe(n);
  });
});
