/**
 * What a call leaves behind (nothing: no reply port, watch group or monitor once it ended,
 * however it ended) and how many monitors calls set on the called port.
 */
import { firstValueFrom, lastValueFrom, map, Subject, takeUntil } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { KilledError, Node } from '../../../src/index.js';
import { WAIT_MS, within } from '../../helpers/fake-peer.js';
import { testNode, turn } from '../../helpers/node.js';

/** A port that answers `[...msg]` to the reply port its request ends with. */
function echoPort(n: Node): string {
  return n.port((...m: unknown[]) => n.snd(m[m.length - 1] as string, ...m.slice(0, -1)));
}

/** Counts the monitors the node's kernel sets (the calls' shared ones among them). */
function countWatches(n: Node): { count(): number } {
  const k = n.kernel;
  const watch = k.watch.bind(k);
  let count = 0;
  k.watch = (portId, entry) => {
    count++;
    return watch(portId, entry);
  };
  return { count: () => count };
}

describe('calls leave nothing behind', () => {
  it('10,000 calls of every kind, 64 at a time, leave no reply port, watch group or monitor', async () => {
    const n = testNode();
    const echo = echoPort(n);
    const ports = n.kernel.portCount;
    const kinds: ((i: number) => Promise<unknown[]>)[] = [
      (i) => n.call(echo, ['call', i]),
      (i) => lastValueFrom(n.cal$(echo, 'cal$', i)),
      // An operator chain subscribes with an rxjs Subscriber: the call's other path.
      (i) => lastValueFrom(n.cal$(echo, 'piped', i).pipe(map((r) => r))),
      (i) =>
        new Promise((resolve) => {
          n.cal(echo, 'cal', i, (...r: unknown[]) => resolve(r));
        }),
    ];
    let next = 0;
    let wrong = 0;
    const worker = async () => {
      while (next < 10_000) {
        const i = next++;
        const reply = await kinds[i % kinds.length]!(i);
        if (reply[1] !== i) wrong++;
      }
    };
    await within(Promise.all(Array.from({ length: 64 }, worker)), 20_000, '10,000 calls');
    expect(wrong).toBe(0);
    await turn();
    expect(n.kernel.portCount).toBe(ports);
    expect(n.kernel.callWatches.size).toBe(0);
    expect(n.kernel.monitorCount(echo)).toBe(0);
  });

  it('unsubscribing a cal$ under an operator chain before the reply frees its reply port', async () => {
    const n = testNode();
    const held: string[] = [];
    const server = n.port((reply: string) => held.push(reply));
    const ports = n.kernel.portCount;
    const stop = new Subject<void>();
    const got: unknown[] = [];
    let completed = false;
    n.cal$(server)
      .pipe(takeUntil(stop))
      .subscribe({ next: (r) => got.push(r), complete: () => (completed = true) });
    await turn();
    expect(held).toHaveLength(1);
    expect(n.kernel.hasPort(held[0]!)).toBe(true);
    expect(n.kernel.monitorCount(server)).toBe(1);
    stop.next();
    expect(completed).toBe(true);
    expect(n.kernel.hasPort(held[0]!)).toBe(false);
    n.snd(held[0]!, 'late');
    await turn();
    expect(got).toEqual([]);
    expect(n.kernel.portCount).toBe(ports);
    expect(n.kernel.monitorCount(server)).toBe(0);
    expect(n.kernel.callWatches.size).toBe(0);
  });

  it('cal$ to a local port that does not exist fails with no_such_port and leaves nothing', async () => {
    const n = testNode();
    const missing = `${n.id}#nope`;
    const plain = (await within(
      lastValueFrom(n.cal$(missing, 'x')).catch((e: unknown) => e),
      WAIT_MS,
      'the plain observer to fail',
    )) as KilledError;
    const piped = (await within(
      firstValueFrom(n.cal$(missing, 'x').pipe(map((r) => r))).catch((e: unknown) => e),
      WAIT_MS,
      'the operator chain to fail',
    )) as KilledError;
    for (const err of [plain, piped]) {
      expect(err.port).toBe(missing);
      expect(err.reason[0]).toBe('no_such_port');
    }
    await turn();
    expect(n.kernel.portCount).toBe(0);
    expect(n.kernel.callWatches.size).toBe(0);
  });
});

describe('monitors of called ports', () => {
  it('a caller awaiting each reply before the next call sets one monitor for all its calls', async () => {
    const n = testNode();
    const echo = echoPort(n);
    const watches = countWatches(n);
    const sequential = async () => {
      for (let i = 0; i < 100; i++) {
        expect(await n.call(echo, [i])).toEqual([i]);
        expect(await lastValueFrom(n.cal$(echo, i))).toEqual([i]);
      }
    };
    await within(sequential(), WAIT_MS, '200 sequential calls');
    expect(watches.count()).toBe(1);
    // Once no call follows, the monitor goes.
    await turn();
    expect(n.kernel.monitorCount(echo)).toBe(0);
    expect(n.kernel.callWatches.size).toBe(0);
  });
});
