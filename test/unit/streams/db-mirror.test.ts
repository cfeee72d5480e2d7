/**
 * The client mirror of a monitored family (spec/api.md §15.5): g_chg1 diffs, g_chg2 updates,
 * the late listener's snapshot, immutable entries.
 */
import { describe, expect, it } from 'vitest';
import { type DbChange, type DbListener, FamilyWatch } from '../../../src/streams/db/family-watch.js';
import { turn } from '../../helpers/node.js';

const plain = (c: DbChange) => ({
  entries: { ...c.entries },
  added: [...c.added].sort(),
  changed: [...c.changed].sort(),
  deleted: [...c.deleted],
});

function recorder(): DbListener & { got: DbChange[]; completed: boolean } {
  const r = {
    got: [] as DbChange[],
    completed: false,
    next: (c: DbChange) => r.got.push(c),
    complete: () => {
      r.completed = true;
    },
  };
  return r;
}

describe('g_chg1: full snapshot diffed against the mirror', () => {
  const cases: { name: string; mirror: unknown; snapshot: unknown; want: ReturnType<typeof plain> }[] = [
    {
      name: 'first snapshot: every key added',
      mirror: null,
      snapshot: { a: 1, b: 2 },
      want: { entries: { a: 1, b: 2 }, added: ['a', 'b'], changed: [], deleted: [] },
    },
    {
      name: 'null snapshot of a family nothing touched: empty',
      mirror: null,
      snapshot: null,
      want: { entries: {}, added: [], changed: [], deleted: [] },
    },
    {
      name: 'keys in both are changed even when equal; missing ones deleted',
      mirror: { a: 1, b: 2, c: 3 },
      snapshot: { a: 1, b: 5, d: 4 },
      want: { entries: { a: 1, b: 5, d: 4 }, added: ['d'], changed: ['a', 'b'], deleted: ['c'] },
    },
    {
      name: 'a null snapshot after data (new master knows nothing): everything deleted',
      mirror: { a: 1 },
      snapshot: null,
      want: { entries: {}, added: [], changed: [], deleted: ['a'] },
    },
    {
      name: '{} treated like null',
      mirror: { a: 1 },
      snapshot: {},
      want: { entries: {}, added: [], changed: [], deleted: ['a'] },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const w = new FamilyWatch();
      if (c.mirror !== null) w.snapshot(c.mirror);
      expect(plain(w.snapshot(c.snapshot))).toEqual(c.want);
      expect(w.synced).toBe(true);
    });
  }
});

describe('g_chg2: incremental change', () => {
  const cases: { name: string; set: unknown; del: unknown; want: ReturnType<typeof plain> }[] = [
    {
      name: 'set of a new and an existing key',
      set: { a: 9, z: 1 },
      del: [],
      want: { entries: { a: 9, b: 2, z: 1 }, added: ['z'], changed: ['a'], deleted: [] },
    },
    {
      name: 'set of new keys around existing ones',
      set: { z: 1, a: 9, y: 2, b: 3 },
      del: [],
      want: { entries: { a: 9, b: 3, z: 1, y: 2 }, added: ['y', 'z'], changed: ['a', 'b'], deleted: [] },
    },
    {
      name: 'delete-only with SET {} (what Perl sends)',
      set: {},
      del: ['b'],
      want: { entries: { a: 1 }, added: [], changed: [], deleted: ['b'] },
    },
    {
      name: 'SET null and DEL null',
      set: null,
      del: null,
      want: { entries: { a: 1, b: 2 }, added: [], changed: [], deleted: [] },
    },
    {
      name: 'DEL missing',
      set: { c: 3 },
      del: undefined,
      want: { entries: { a: 1, b: 2, c: 3 }, added: ['c'], changed: [], deleted: [] },
    },
    {
      name: 'DEL is passed on as received, naming keys that were not there',
      set: {},
      del: ['nope', 'a'],
      want: { entries: { b: 2 }, added: [], changed: [], deleted: ['nope', 'a'] },
    },
    {
      name: 'set with the same value still counts as changed',
      set: { a: 1 },
      del: [],
      want: { entries: { a: 1, b: 2 }, added: [], changed: ['a'], deleted: [] },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const w = new FamilyWatch();
      w.snapshot({ a: 1, b: 2 });
      expect(plain(w.apply(c.set, c.del))).toEqual(c.want);
    });
  }

  it('entries are immutable snapshots: a later change leaves them alone', () => {
    const w = new FamilyWatch();
    const first = w.snapshot({ a: 1 });
    const second = w.apply({ b: 2 }, ['a']);
    expect({ ...first.entries }).toEqual({ a: 1 });
    expect({ ...second.entries }).toEqual({ b: 2 });
    expect(Object.isFrozen(second.entries)).toBe(true);
    expect(Object.getPrototypeOf(second.entries)).toBeNull();
  });

  it('every snapshot handed out keeps its entries through the copies of later changes', () => {
    const w = new FamilyWatch();
    const seen = [w.snapshot({ a: 1 })];
    seen.push(w.apply({ ['__proto__']: 'p', b: 2 }, null));
    seen.push(w.apply({ a: 3 }, ['b']));
    seen.push(w.apply({ c: 4 }, ['__proto__']));
    expect(seen.map((c) => Object.entries(c.entries))).toEqual([
      [['a', 1]],
      [
        ['a', 1],
        ['__proto__', 'p'],
        ['b', 2],
      ],
      [
        ['a', 3],
        ['__proto__', 'p'],
      ],
      [
        ['a', 3],
        ['c', 4],
      ],
    ]);
    for (const c of seen) expect(Object.getPrototypeOf(c.entries)).toBeNull();
  });

  it('__proto__ is an ordinary subkey', () => {
    const w = new FamilyWatch();
    const c = w.snapshot(JSON.parse('{"__proto__": 1}'));
    expect(c.added).toEqual(['__proto__']);
    expect(Object.keys(w.apply(JSON.parse('{"__proto__": 2}'), []).entries)).toEqual(['__proto__']);
  });
});

describe('listeners', () => {
  it('listeners added before the first snapshot get it as their first event', () => {
    const w = new FamilyWatch();
    const a = recorder();
    const b = recorder();
    w.add(a);
    w.add(b);
    w.emit(w.snapshot({ k: 1 }));
    expect(a.got.map(plain)).toEqual([{ entries: { k: 1 }, added: ['k'], changed: [], deleted: [] }]);
    expect(b.got).toEqual(a.got);
  });

  it('a listener joining a synced family gets the mirror on the next turn, all keys added', async () => {
    const w = new FamilyWatch();
    const first = recorder();
    w.add(first);
    w.emit(w.snapshot({ k: 1, j: 2 }));
    const late = recorder();
    w.add(late);
    // A change in the same turn reaches the active listener only.
    w.emit(w.apply({ n: 3 }, []));
    expect(late.got).toEqual([]);
    expect(w.size).toBe(2);
    await turn();
    expect(late.got.map(plain)).toEqual([
      { entries: { k: 1, j: 2, n: 3 }, added: ['j', 'k', 'n'], changed: [], deleted: [] },
    ]);
    w.emit(w.apply({}, ['k']));
    expect(late.got.map((c) => c.deleted)).toEqual([[], ['k']]);
    expect(first.got).toHaveLength(3);
  });

  it('a late listener removed before its turn is never called', async () => {
    const w = new FamilyWatch();
    w.snapshot({ k: 1 });
    const late = recorder();
    w.add(late);
    expect(w.remove(late)).toBe(true);
    expect(w.size).toBe(0);
    await turn();
    expect(late.got).toEqual([]);
    expect(w.remove(late)).toBe(false);
  });

  it('a listener may remove another during an emission', () => {
    const w = new FamilyWatch();
    const b = recorder();
    const a: DbListener = { next: () => w.remove(b), complete: () => {} };
    w.add(a);
    w.add(b);
    w.emit(w.snapshot({ k: 1 }));
    expect(b.got).toEqual([]);
  });

  it('has() knows active and waiting listeners until they are removed', () => {
    const w = new FamilyWatch();
    const a = recorder();
    w.add(a);
    w.snapshot({});
    const late = recorder();
    expect(w.has(late)).toBe(false);
    w.add(late);
    expect([w.has(a), w.has(late)]).toEqual([true, true]);
    w.remove(late);
    w.remove(a);
    expect([w.has(a), w.has(late)]).toEqual([false, false]);
  });

  it('close completes active and waiting listeners', () => {
    const w = new FamilyWatch();
    const a = recorder();
    w.add(a);
    w.snapshot({});
    const late = recorder();
    w.add(late);
    w.close();
    expect(a.completed).toBe(true);
    expect(late.completed).toBe(true);
    expect(w.size).toBe(0);
  });
});
