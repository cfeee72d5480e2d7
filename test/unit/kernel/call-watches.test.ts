import { describe, expect, it } from 'vitest';
import type { KillReason } from '../../../src/errors.js';
import { CallWatches, type Watcher } from '../../../src/streams/kernel/call-watches.js';
import type { MonEntry } from '../../../src/streams/kernel/port-record.js';

/** A watch function that records the monitors set and lets the test fire them. */
function monitors() {
  const set = new Map<string, MonEntry[]>();
  let cancels = 0;
  const watch = (portId: string, entry: MonEntry) => {
    const list = set.get(portId) ?? [];
    list.push(entry);
    set.set(portId, list);
    return () => {
      cancels++;
      list.splice(list.indexOf(entry), 1);
    };
  };
  const fire = (portId: string, reason: KillReason) => {
    for (const e of set.get(portId)?.splice(0) ?? []) e.fire(reason);
  };
  return { watch, fire, count: (id: string) => set.get(id)?.length ?? 0, cancels: () => cancels };
}

function watcher(log: string[], name: string): Watcher {
  return {
    watchGroup: undefined,
    watchPrev: undefined,
    watchNext: undefined,
    fire: (reason) => log.push(`${name}:${reason.join(',')}`),
  };
}

const microtasks = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('CallWatches', () => {
  it('sets one monitor for many calls to a port; its death reaches every call once', () => {
    const m = monitors();
    const cw = new CallWatches(m.watch);
    const log: string[] = [];
    const ws = ['a', 'b', 'c', 'd'].map((n) => watcher(log, n));
    for (const w of ws) cw.join('n#p', w);
    cw.join('n#q', watcher(log, 'q'));
    expect(m.count('n#p')).toBe(1);
    expect(m.count('n#q')).toBe(1);
    cw.leave(ws[1]!);
    m.fire('n#p', ['die', 'x']);
    expect(log.sort()).toEqual(['a:die,x', 'c:die,x', 'd:die,x']);
    expect(cw.size).toBe(1);
    // Leaving after the death is harmless; a new call sets a new monitor.
    cw.leave(ws[0]!);
    cw.join('n#p', watcher(log, 'e'));
    expect(m.count('n#p')).toBe(1);
  });

  it('keeps an emptied group for calls made before the microtasks run, then cancels its monitor', async () => {
    const m = monitors();
    const cw = new CallWatches(m.watch);
    const log: string[] = [];
    const a = watcher(log, 'a');
    cw.join('n#p', a);
    cw.leave(a);
    const b = watcher(log, 'b');
    cw.join('n#p', b);
    expect(m.count('n#p')).toBe(1);
    await microtasks();
    expect(m.count('n#p')).toBe(1);
    cw.leave(b);
    await microtasks();
    expect(m.count('n#p')).toBe(0);
    expect(m.cancels()).toBe(1);
    expect(cw.size).toBe(0);
  });

  it('sweeps every group emptied in one run, except one joined again and one whose port died', async () => {
    const m = monitors();
    const cw = new CallWatches(m.watch);
    const log: string[] = [];
    const ports = ['n#1', 'n#2', 'n#3', 'n#4', 'n#5'];
    const ws = ports.map((p) => {
      const w = watcher(log, p);
      cw.join(p, w);
      return w;
    });
    for (const w of ws) cw.leave(w);
    // Joined again before the sweep: kept with its monitor.
    const again = watcher(log, 'again');
    cw.join('n#2', again);
    // Died before the sweep: gone already, nothing more to cancel.
    m.fire('n#4', ['x']);
    await microtasks();
    expect(ports.map((p) => m.count(p))).toEqual([0, 1, 0, 0, 0]);
    expect(m.cancels()).toBe(3);
    expect(cw.size).toBe(1);
    expect(log).toEqual([]);
    // The next run's emptied groups are swept too.
    cw.leave(again);
    const late = watcher(log, 'late');
    cw.join('n#6', late);
    cw.leave(late);
    await microtasks();
    expect(m.count('n#2') + m.count('n#6')).toBe(0);
    expect(cw.size).toBe(0);
  });

  it('a monitor that fires at once (no such port) ends the call that set it and leaves no group', () => {
    const cw = new CallWatches((_id, entry) => {
      entry.fire(['no_such_port']);
      return () => {};
    });
    const log: string[] = [];
    cw.join('n#gone', watcher(log, 'a'));
    expect(log).toEqual(['a:no_such_port']);
    expect(cw.size).toBe(0);
  });

  it('a call ended by the death may start another call to the same port', () => {
    const m = monitors();
    const cw = new CallWatches(m.watch);
    const log: string[] = [];
    const again = watcher(log, 'again');
    cw.join('n#p', { ...watcher(log, 'a'), fire: () => cw.join('n#p', again) });
    m.fire('n#p', ['x']);
    expect(again.watchGroup).toBeDefined();
    expect(m.count('n#p')).toBe(1);
  });
});
