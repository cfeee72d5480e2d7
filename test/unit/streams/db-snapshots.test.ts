/**
 * The snapshots of a monitored family's changes (family-watch.ts): built lazily from a frozen
 * base and a log of writes, they must equal what an eager copy after every change would have
 * held, whenever and in whatever order they are read.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DbChange,
  DbChangeEvent,
  FAST_SNAPSHOT_KEYS,
  FamilyWatch,
  REBASE_WRITES_PER_KEY,
} from '../../../src/streams/db/family-watch.js';
import { type DbRecord, newRecord } from '../../../src/streams/db/records.js';

/** Subkeys, some of them awkward for plain objects (prototype names, array indices). */
const KEYS = ['a', 'b', 'c', 'd', 'e', '__proto__', 'constructor', '0', '7', 'toString'];

type Op =
  | { kind: 'chg1'; hash: Record<string, number> | null }
  | { kind: 'chg2'; set: Record<string, number> | null; del: string[] | null }
  | { kind: 'read'; pick: number };

/** A wire hash with the given entries (own `__proto__` included, as the decoder makes it). */
const hash = (pairs: [string, number][]): Record<string, number> => {
  const h: Record<string, number> = {};
  for (const [k, v] of pairs) Object.defineProperty(h, k, { value: v, enumerable: true, writable: true });
  return h;
};
/** Operations on a family whose subkeys come from `keys`, each SET or DEL naming up to `most`. */
const opsOver = (keys: readonly string[], most: number): fc.Arbitrary<Op> => {
  const key = fc.constantFrom(...keys);
  const pairs = fc.array(fc.tuple(key, fc.integer({ min: 0, max: 99 })), { maxLength: most });
  return fc.oneof(
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('chg1' as const), hash: fc.option(pairs.map(hash)) }),
    },
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant('chg2' as const),
        set: fc.option(pairs.map(hash)),
        del: fc.option(fc.array(key, { maxLength: 4 })),
      }),
    },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('read' as const), pick: fc.nat() }) },
  );
};
/** Beyond FAST_SNAPSHOT_KEYS subkeys snapshots are built differently: families of both sizes. */
const SMALL = opsOver(KEYS, 6);
const LARGE_KEYS = [...KEYS, ...Array.from({ length: FAST_SNAPSHOT_KEYS + 10 }, (_, i) => `k${i}`)];
const LARGE = opsOver(LARGE_KEYS, 24);

/** The eager model: a prototype-less record changed in place, copied after every change. */
class Model {
  data = newRecord();
  chg1(h: unknown): void {
    const next = newRecord();
    if (h) for (const [k, v] of Object.entries(h)) next[k] = v;
    this.data = next;
  }
  /** Applies a g_chg2; the SET's keys that were new, and those that were there. */
  chg2(set: unknown, del: string[] | null): { added: string[]; changed: string[] } {
    const added: string[] = [];
    const changed: string[] = [];
    if (set)
      for (const [k, v] of Object.entries(set)) {
        (k in this.data ? changed : added).push(k);
        this.data[k] = v;
      }
    for (const k of del ?? []) delete this.data[k];
    return { added, changed };
  }
  copy(): [string, unknown][] {
    return Object.entries(this.data);
  }
}

/** `get` of every subkey of `keys` gives what the version holds (undefined if absent). */
const checkGet = (c: DbChange, want: [string, unknown][], keys: readonly string[]) => {
  const holds = new Map(want);
  for (const k of keys) expect([k, c.get(k)]).toEqual([k, holds.get(k)]);
};

const check = (c: DbChange, want: [string, unknown][]) => {
  const got = c.entries;
  expect(Object.entries(got)).toEqual(want);
  expect(Object.isFrozen(got)).toBe(true);
  expect(Object.getPrototypeOf(got)).toBeNull();
  // Read again: the same object.
  expect(c.entries).toBe(got);
};

describe('lazy snapshots', () => {
  it.each([
    ['small', SMALL, KEYS],
    ['large', LARGE, LARGE_KEYS],
  ])(
    'every change of a %s family, read at any later time and in any order, holds the entries of its version',
    (_, op, keys) => {
      fc.assert(
        fc.property(
          fc.array(op, { maxLength: 120 }),
          fc.array(fc.nat(), { maxLength: 30 }),
          (ops, lateReads) => {
            const w = new FamilyWatch('f');
            const model = new Model();
            const changes: [DbChange, [string, unknown][]][] = [];
            for (const o of ops) {
              if (o.kind === 'chg1') {
                model.chg1(o.hash);
                changes.push([w.snapshot(o.hash), model.copy()]);
              } else if (o.kind === 'chg2') {
                const want = model.chg2(o.set, o.del);
                const c = w.apply(o.set, o.del);
                expect({ added: c.added, changed: c.changed }).toEqual(want);
                changes.push([c, model.copy()]);
                // The newest version, read through the live mirror.
                checkGet(c, model.copy(), keys);
              } else if (changes.length > 0) {
                // An older version: get before and after its entries are built.
                const [c, want] = changes[o.pick % changes.length]!;
                if (o.pick % 2 === 0) checkGet(c, want, keys);
                check(c, want);
                checkGet(c, want, keys);
              }
              // The watch's own view (a late listener's first event) is always the newest version.
              if (o.kind === 'read' && o.pick % 5 === 0)
                expect(Object.entries(w.entries)).toEqual(model.copy());
            }
            for (const pick of lateReads) {
              if (changes.length === 0) break;
              const [c, want] = changes[pick % changes.length]!;
              if (pick % 3 === 0) checkGet(c, want, keys);
              check(c, want);
            }
            for (const [c, want] of changes) check(c, want);
          },
        ),
        { numRuns: 400 },
      );
    },
  );

  it('a change read long after thousands of unread ones still holds its own version', () => {
    const w = new FamilyWatch('f');
    w.snapshot({ a: 0 });
    const first = w.apply({ b: 1 }, null);
    const later: DbChange[] = [];
    for (let i = 0; i < 5000; i++) later.push(w.apply({ [`k${i % 300}`]: i }, i % 7 === 0 ? ['b'] : null));
    expect({ ...first.entries }).toEqual({ a: 0, b: 1 });
    const last = later.at(-1)!;
    // Values of old and newest versions without their snapshots.
    expect([first.get('b'), first.get('k0'), later[0]!.get('b'), later[0]!.get('k0')]).toEqual([
      1,
      undefined,
      undefined,
      0,
    ]);
    expect([last.get('k199'), last.get('k299'), last.get('a'), last.get('b')]).toEqual([
      4999,
      4799,
      0,
      undefined,
    ]);
    expect(Object.keys(last.entries)).toHaveLength(301);
    expect(last.entries.k199).toBe(4999);
    expect(last.entries.k299).toBe(4799);
    // The first of them deleted 'b' and set k0.
    expect(later[0]!.entries).toEqual(Object.assign(newRecord(), { a: 0, k0: 0 }) as DbRecord);
  });

  it('the log of writes is bounded, and a fresh base is copied once per REBASE_WRITES_PER_KEY writes per subkey', () => {
    const size = 50;
    const w = new FamilyWatch('f');
    w.snapshot(Object.fromEntries(Array.from({ length: size }, (_, i) => [`k${i}`, 0])));
    // The log itself is private: read here for its length and for when it starts again.
    const logOf = () => (w as unknown as { log: unknown[] }).log;
    const logs = new Set<unknown[]>();
    let longest = 0;
    const writes = 20 * size * REBASE_WRITES_PER_KEY;
    for (let i = 0; i < writes; i++) {
      const c = w.apply({ [`k${i % size}`]: i }, null);
      logs.add(logOf());
      longest = Math.max(longest, logOf().length);
      // The newest value, whatever the log holds.
      expect(c.get(`k${i % size}`)).toBe(i);
    }
    // One write is a subkey and a value in the log.
    expect(longest).toBeLessThanOrEqual(2 * REBASE_WRITES_PER_KEY * size);
    expect(logs.size).toBeGreaterThanOrEqual(19);
    expect(logs.size).toBeLessThanOrEqual(21);
    expect(Object.entries(w.entries)).toHaveLength(size);
  });

  it('JSON of a change, and of its node event, includes the entries', () => {
    const w = new FamilyWatch('f');
    w.snapshot({ a: 1 });
    const c = w.apply({ b: 2 }, null);
    const e = new DbChangeEvent('f', c);
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      type: 'db',
      family: 'f',
      entries: { a: 1, b: 2 },
      added: ['b'],
      changed: [],
      deleted: [],
    });
    expect(JSON.parse(JSON.stringify(c))).toEqual({
      entries: { a: 1, b: 2 },
      added: ['b'],
      changed: [],
      deleted: [],
    });
    expect(e.entries).toBe(c.entries);
    expect([e.get('a'), e.get('b'), e.get('c')]).toEqual([1, 2, undefined]);
  });
});
