/**
 * When two database values count as the same (records.ts `sameValue`): containers as Perl
 * compares them, by their JSON. Plain objects and arrays are compared by walking them; the
 * answer must be the one comparing the JSON strings gives, for every value JSON writes oddly
 * (undefined, NaN, -0, holes, toJSON, class instances, cycles, BigInt).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sameValue } from '../../../src/streams/db/records.js';

/** The comparison by the JSON strings (a value JSON cannot write is different from all). */
function byJson(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

class Point {
  constructor(readonly x: number) {}
}

/** Few keys and scalars, so that equal and nearly equal values come up often. */
const KEY = fc.constantFrom('a', 'b', '0', '1', '__proto__', 'toJSON');
const SCALAR = fc.constantFrom<unknown>(
  0,
  -0,
  1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '',
  '1',
  'x',
  true,
  false,
  null,
  undefined,
  Symbol.for('s'),
  10n,
  () => 1,
);

/** An object with the given entries, in order, `__proto__` as an own key. */
function objectOf(entries: [string, unknown][], proto: object | null): Record<string, unknown> {
  const o = Object.create(proto) as Record<string, unknown>;
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true });
  return o;
}

const { value: VALUE } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    SCALAR,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.sparseArray(tie('value'), { maxLength: 3 }),
    fc
      .tuple(fc.array(fc.tuple(KEY, tie('value')), { maxLength: 3 }), fc.boolean())
      .map(([e, nullProto]) => objectOf(e, nullProto ? null : Object.prototype)),
    fc.constantFrom<unknown>(new Date(0), new Point(1), { toJSON: () => 'x' }, 'x', [1], { a: 1 }),
  ),
}));

/** A copy that JSON writes alike (order, prototypes and odd values kept), sometimes changed once. */
function copy(v: unknown, change: number[]): unknown {
  const changeHere = change.length > 0 && change[0] === 0;
  const rest = change.slice(1);
  if (changeHere) return typeof v === 'number' ? v + 1 : typeof v === 'string' ? `${v}!` : [v];
  if (Array.isArray(v)) {
    const a = new Array<unknown>(v.length);
    v.forEach((x, i) => {
      a[i] = copy(x, rest);
    });
    return a;
  }
  if (
    v !== null &&
    typeof v === 'object' &&
    (Object.getPrototypeOf(v) ?? Object.prototype) === Object.prototype
  )
    return objectOf(
      Object.keys(v).map((k) => [k, copy((v as Record<string, unknown>)[k], rest)]),
      Object.getPrototypeOf(v),
    );
  return v;
}

const container = (v: unknown) => typeof v === 'object' && v !== null;

describe('sameValue of containers', () => {
  it('agrees with comparing the JSON strings, for any two values', () => {
    fc.assert(
      fc.property(VALUE.filter(container), VALUE.filter(container), (a, b) => {
        expect(sameValue(a, b)).toBe(byJson(a, b));
      }),
      { numRuns: 5000 },
    );
  });

  it('agrees with comparing the JSON strings, for a value and a copy, changed in one place or not', () => {
    fc.assert(
      fc.property(VALUE.filter(container), fc.array(fc.nat(2), { maxLength: 4 }), (a, change) => {
        const b = copy(a, change);
        expect(sameValue(a, b)).toBe(byJson(a, b));
      }),
      { numRuns: 5000 },
    );
  });

  it('the values JSON writes alike though they differ, and those it cannot write', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const pairs: [unknown, unknown, boolean][] = [
      [{ a: 1, b: 2 }, { a: 1, b: 2 }, true],
      [{ a: 1, b: 2 }, { b: 2, a: 1 }, false],
      [{ a: undefined, b: 1 }, { b: 1 }, true],
      [{ a: undefined }, { c: () => 1 }, true],
      [[undefined], [null], true],
      [[Number.NaN], [null], true],
      [[Number.NaN], [Number.POSITIVE_INFINITY], true],
      [{ t: 0 }, { t: -0 }, true],
      [[1, 2], [1, 2, 3], false],
      [{ seq: 1, t: 2.5 }, { seq: 2, t: 2.5 }, false],
      [{ d: new Date(0) }, { d: '1970-01-01T00:00:00.000Z' }, true],
      [{ p: { toJSON: () => 'x' } }, { p: 'x' }, true],
      [{ n: 10n }, { n: 10n }, false],
      [cyclic, { ...cyclic }, false],
      [Object.assign(Object.create(null), { k: [1] }), { k: [1] }, true],
    ];
    for (const [a, b, same] of pairs) {
      expect([a, b, sameValue(a, b)]).toEqual([a, b, same]);
      expect(byJson(a, b)).toBe(same);
    }
  });
});
