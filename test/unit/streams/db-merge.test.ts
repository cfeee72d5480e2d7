/**
 * The global node's shard/merge algorithm (spec/global.md §7.1–§7.3), table-driven: each case
 * sets up shards through updates, then applies one more and checks the merged view and the
 * g_upd (forward) and g_chg2 (notify) it calls for.
 */
import { describe, expect, it } from 'vitest';
import { GlobalStore } from '../../../src/streams/db/global-store.js';
import { recordOf } from '../../../src/streams/db/records.js';

/** `A`, `B`, `SELF` are our slaves; `G`, `H` are other global nodes. */
const SLAVES = new Set(['A', 'B', 'SELF']);

type Op = [origin: string, set: unknown, del?: unknown];

interface Case {
  name: string;
  before: Op[];
  op: Op | [origin: string, set: unknown];
  /** The merged family `F` afterwards; `undefined` = the family is gone. */
  merged: Record<string, unknown> | undefined;
  forward: { set: Record<string, unknown>; del: string[] } | undefined;
  notify: { set: Record<string, unknown>; del: string[] } | undefined;
}

const plain = (r: unknown) => (r === undefined ? undefined : JSON.parse(JSON.stringify(r)));

const cases: Case[] = [
  {
    name: 'a slave sets a key (db_set: no DEL element)',
    before: [],
    op: ['A', { k: 1 }],
    merged: { k: 1 },
    forward: { set: { k: 1 }, del: [] },
    notify: { set: { k: 1 }, del: [] },
  },
  {
    name: 'another global sets a key: monitors hear it, nothing is forwarded',
    before: [],
    op: ['G', { k: 1 }],
    merged: { k: 1 },
    forward: undefined,
    notify: { set: { k: 1 }, del: [] },
  },
  {
    name: 'the newest write wins in the merged view',
    before: [['A', { k: 1 }]],
    op: ['B', { k: 2 }],
    merged: { k: 2 },
    forward: { set: { k: 2 }, del: [] },
    notify: { set: { k: 2 }, del: [] },
  },
  {
    name: 'a slave deletes its only key, SET null (db_del): {} forwarded, {} to monitors',
    before: [['A', { k: 1, j: 2 }]],
    op: ['A', null, ['k']],
    merged: { j: 2 },
    forward: { set: {}, del: ['k'] },
    notify: { set: {}, del: ['k'] },
  },
  {
    name: 'deleting the last key drops the family',
    before: [['A', { k: 1 }]],
    op: ['A', {}, ['k']],
    merged: undefined,
    forward: { set: {}, del: ['k'] },
    notify: { set: {}, del: ['k'] },
  },
  {
    name: 'SET null and DEL missing: nothing at all',
    before: [['A', { k: 1 }]],
    op: ['A', null],
    merged: { k: 1 },
    forward: undefined,
    notify: undefined,
  },
  {
    name: 'SET {} and DEL []: nothing at all',
    before: [['A', { k: 1 }]],
    op: ['A', {}, []],
    merged: { k: 1 },
    forward: undefined,
    notify: undefined,
  },
  {
    name: 'SET and DEL of another type count as empty',
    before: [['A', { k: 1 }]],
    op: ['A', 'junk', 'junk'],
    merged: { k: 1 },
    forward: undefined,
    notify: undefined,
  },
  {
    name: 'deleting a key another slave still has with the same value: silent',
    before: [
      ['A', { k: 1 }],
      ['B', { k: 2 }],
    ],
    op: ['A', null, ['k']],
    merged: { k: 2 },
    forward: undefined,
    notify: undefined,
  },
  {
    name: "deleting a key another slave has with another value: that slave's value is SET",
    before: [
      ['B', { k: 2 }],
      ['A', { k: 1 }],
    ],
    op: ['A', null, ['k']],
    merged: { k: 2 },
    forward: { set: { k: 2 }, del: [] },
    notify: { set: { k: 2 }, del: [] },
  },
  {
    name: 'equal values compare by JSON encoding (distinct objects)',
    before: [
      ['B', { k: { x: [1] } }],
      ['A', { k: { x: [1] } }],
    ],
    op: ['A', null, ['k']],
    merged: { k: { x: [1] } },
    forward: undefined,
    notify: undefined,
  },
  {
    name: 'a slave deletes a key only another global still has: DEL forwarded, its value to monitors',
    before: [
      ['G', { k: 2 }],
      ['A', { k: 1 }],
    ],
    op: ['A', null, ['k']],
    merged: { k: 2 },
    forward: { set: {}, del: ['k'] },
    notify: { set: { k: 2 }, del: [] },
  },
  {
    name: 'the same when the merged value already is the global one: DEL forwarded, monitors not told',
    before: [
      ['A', { k: 1 }],
      ['G', { k: 2 }],
    ],
    op: ['A', null, ['k']],
    merged: { k: 2 },
    forward: { set: {}, del: ['k'] },
    notify: undefined,
  },
  {
    name: "a global deletes a key a slave still has: the slave's value to monitors, nothing forwarded",
    before: [
      ['A', { k: 1 }],
      ['G', { k: 2 }],
    ],
    op: ['G', null, ['k']],
    merged: { k: 1 },
    forward: undefined,
    notify: { set: { k: 1 }, del: [] },
  },
  {
    name: 'a global deletes a key nobody else has: monitors told, nothing forwarded',
    before: [['G', { k: 2, j: 1 }]],
    op: ['G', null, ['k']],
    merged: { j: 1 },
    forward: undefined,
    notify: { set: {}, del: ['k'] },
  },
  {
    name: 'deleting a key nobody has still reports it (as Perl does)',
    before: [['A', { j: 1 }]],
    op: ['A', null, ['nope']],
    merged: { j: 1 },
    forward: { set: {}, del: ['nope'] },
    notify: { set: {}, del: ['nope'] },
  },
  {
    name: 'a slave cannot delete what another slave provides',
    before: [['B', { k: 2 }]],
    op: ['A', null, ['k']],
    merged: { k: 2 },
    forward: undefined,
    notify: undefined,
  },
  {
    name: 'SET and DEL of the same key: set first, then deleted',
    before: [],
    op: ['A', { k: 1 }, ['k']],
    merged: undefined,
    forward: { set: { k: 1 }, del: ['k'] },
    notify: { set: { k: 1 }, del: ['k'] },
  },
  {
    name: 'null values are values',
    before: [],
    op: ['SELF', { G1: null }],
    merged: { G1: null },
    forward: { set: { G1: null }, del: [] },
    notify: { set: { G1: null }, del: [] },
  },
  {
    name: 'numeric subkeys in DEL are strings',
    before: [['A', { '1': 'x' }]],
    op: ['A', null, [1]],
    merged: undefined,
    forward: { set: {}, del: ['1'] },
    notify: { set: {}, del: ['1'] },
  },
];

describe('GlobalStore.update (g_upd, §7.1)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const store = new GlobalStore((n) => SLAVES.has(n));
      for (const [origin, set, del] of c.before) store.update(origin, 'F', set, del);
      const [origin, set, del] = c.op as Op;
      const out = store.update(origin, 'F', set, del);
      expect(out.family).toBe('F');
      const f = store.family('F');
      expect(f === undefined ? undefined : plain(recordOf(f))).toEqual(c.merged);
      expect(plain(out.forward)).toEqual(c.forward);
      expect(plain(out.notify)).toEqual(c.notify);
    });
  }

  it('a forwarded SET never gains the keys only monitors get (separate objects)', () => {
    const store = new GlobalStore((n) => SLAVES.has(n));
    store.update('G', 'F', { g: 2 }, undefined);
    store.update('B', 'F', { s: 2 }, undefined);
    store.update('A', 'F', { g: 1, s: 1 }, undefined);
    const out = store.update('A', 'F', { n: 5 }, ['g', 's']);
    expect(plain(out.forward)).toEqual({ set: { n: 5, s: 2 }, del: ['g'] });
    expect(plain(out.notify)).toEqual({ set: { n: 5, s: 2, g: 2 }, del: [] });
    expect(out.forward!.set).not.toBe(out.notify!.set);
  });

  it('keeps shards per source; a source whose family empties loses it', () => {
    const store = new GlobalStore((n) => SLAVES.has(n));
    store.update('A', 'F', { k: 1 }, undefined);
    store.update('A', 'E', { x: 1 }, undefined);
    store.update('A', 'F', null, ['k']);
    expect([...store.shards.get('A')!.keys()]).toEqual(['E']);
  });

  it('subkeys like __proto__ are ordinary keys', () => {
    const store = new GlobalStore(() => true);
    const set = JSON.parse('{"__proto__": 1, "constructor": 2}');
    const out = store.update('A', 'F', set, undefined);
    expect(Object.keys(out.notify!.set).sort()).toEqual(['__proto__', 'constructor']);
    expect([...store.family('F')!.keys()].sort()).toEqual(['__proto__', 'constructor']);
  });
});

describe('GlobalStore.merge (g_set / g_slave, §7.2) and clear (g_clr, §7.3)', () => {
  it('merges every family as updates without deletions; non-hash families are skipped', () => {
    const store = new GlobalStore((n) => SLAVES.has(n));
    store.update('A', 'F', { old: 1 }, undefined);
    const out = store.merge('A', { F: { k: 1 }, "'l": { A: ['127.0.0.1:1'] }, bad: 5 });
    expect(out.map((o) => o.family)).toEqual(['F', "'l"]);
    expect(plain(recordOf(store.family('F')))).toEqual({ old: 1, k: 1 });
    expect(plain(out[1]!.forward)).toEqual({ set: { A: ['127.0.0.1:1'] }, del: [] });
  });

  it('merging null or {} registers the source with nothing', () => {
    const store = new GlobalStore(() => true);
    expect(store.merge('A', null)).toEqual([]);
    expect(store.merge('B', {})).toEqual([]);
    expect(store.shards.has('A')).toBe(true);
    expect(store.merged.size).toBe(0);
  });

  it('clear deletes everything only that source provided, per family, and drops the shard', () => {
    const store = new GlobalStore((n) => SLAVES.has(n));
    store.update('A', 'F', { a: 1, shared: 1 }, undefined);
    store.update('A', 'E', { e: 1 }, undefined);
    store.update('B', 'F', { shared: 1 }, undefined);
    const out = store.clear('A');
    expect(out.map((o) => [o.family, plain(o.forward), plain(o.notify)])).toEqual([
      ['F', { set: {}, del: ['a'] }, { set: {}, del: ['a'] }],
      ['E', { set: {}, del: ['e'] }, { set: {}, del: ['e'] }],
    ]);
    expect(store.shards.has('A')).toBe(false);
    expect(plain(recordOf(store.family('F')))).toEqual({ shared: 1 });
    expect(store.family('E')).toBeUndefined();
    expect(store.clear('A')).toEqual([]);
  });

  it("clearing another global's shard forwards nothing", () => {
    const store = new GlobalStore((n) => SLAVES.has(n));
    store.merge('G', { F: { a: 1 }, "'g": { G: null } });
    const out = store.clear('G');
    expect(out.every((o) => o.forward === undefined)).toBe(true);
    expect(out.map((o) => plain(o.notify))).toEqual([
      { set: {}, del: ['a'] },
      { set: {}, del: ['G'] },
    ]);
  });
});

describe('GlobalStore.union (g_set payload, §7.5) and empty families', () => {
  it('is the union of the given shards, later sources overwriting earlier ones', () => {
    const store = new GlobalStore(() => true);
    store.update('SELF', "'l", { SELF: ['a:1'] }, undefined);
    store.update('A', 'F', { k: 1 }, undefined);
    store.update('B', 'F', { k: 2, j: 3 }, undefined);
    store.update('G', 'F', { g: 1 }, undefined);
    expect(plain(store.union(['SELF', 'A', 'B', 'nobody']))).toEqual({
      "'l": { SELF: ['a:1'] },
      F: { k: 2, j: 3 },
    });
    expect(plain(store.union([]))).toEqual({});
  });

  it('keeps no empty family: an update that leaves a family empty drops it', () => {
    const store = new GlobalStore(() => true);
    store.update('A', 'N', null, undefined);
    store.update('A', 'M', null, ['x']);
    expect(store.family('N')).toBeUndefined();
    expect(store.family('M')).toBeUndefined();
    expect(store.merged.size).toBe(0);
  });
});
