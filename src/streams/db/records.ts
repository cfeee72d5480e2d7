/**
 * Values of the distributed database (spec/api.md §15): records safe for any key, reading the
 * loosely shaped SET/DEL elements of wire messages, and Perl's value comparison.
 *
 * Wire rule used by every db module: a container handed to `send` is never mutated afterwards,
 * because connections encode their messages only when the turn's batch is written.
 */

import { formatReason } from '../../errors.js';

/** A hash as it travels on the wire: `{subkey: value}`. Built without a prototype. */
export type DbRecord = Record<string, unknown>;

/** One family of a database: subkey → value. */
export type Family = Map<string, unknown>;

/** A database: family → subkey → value. */
export type Db = Map<string, Family>;

/** An empty record with no prototype (`__proto__` is an ordinary key). */
export function newRecord(): DbRecord {
  return Object.create(null) as DbRecord;
}

/** A fresh record holding the entries of `map`. */
export function recordOf(map: ReadonlyMap<string, unknown> | undefined): DbRecord {
  const r = newRecord();
  if (map) for (const [k, v] of map) r[k] = v;
  return r;
}

/** A fresh `{family: {subkey: value}}` record of a whole database. */
export function dbRecordOf(db: ReadonlyMap<string, ReadonlyMap<string, unknown>>): DbRecord {
  const r = newRecord();
  for (const [family, entries] of db) r[family] = recordOf(entries);
  return r;
}

/** True for a non-null, non-array object (a hash on the wire). */
export function isHash(v: unknown): v is DbRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The entries of a wire hash; `null`, a missing element or anything else count as empty.
 */
export function hashEntries(v: unknown): [string, unknown][] {
  return isHash(v) ? Object.entries(v) : [];
}

/**
 * The keys of a wire list (as strings); `null`, a missing element or anything else: none.
 */
export function listKeys(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v.map(keyText);
}

/** A subkey from the wire as a string; never throws (a peer's object may have a bad `toString`). */
export function keyText(k: unknown): string {
  if (typeof k === 'string') return k;
  try {
    return String(k);
  } catch {
    return formatReason([k]);
  }
}

/**
 * The addresses of a `'l` entry (a list of `host:port` strings), or null when unusable.
 */
export function addressList(v: unknown): string[] | null {
  if (!Array.isArray(v)) return null;
  const addrs = v.filter((a): a is string => typeof a === 'string' && a !== '');
  return addrs.length > 0 ? addrs : null;
}

/**
 * Perl's comparison of database values: scalars by value and definedness (null and undefined
 * are both "undef"), references by their JSON encoding.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  const aRef = typeof a === 'object' && a !== null;
  const bRef = typeof b === 'object' && b !== null;
  if (aRef || bRef) {
    if (!(aRef && bRef)) return false;
    if (a === b) return true;
    const same = sameJson(a, b, SAME_JSON_DEPTH);
    if (same !== undefined) return same;
    try {
      return JSON.stringify(a) === JSON.stringify(b);
    } catch {
      return false;
    }
  }
  if (a === undefined || a === null) return b === undefined || b === null;
  return a === b || (typeof a === 'number' && Number.isNaN(a) && Number.isNaN(b));
}

/** Nesting `sameJson` walks at most; deeper values are compared by their JSON. */
const SAME_JSON_DEPTH = 8;

/** A value JSON writes as itself and no other value alike: compared by `===`. */
function isJsonScalar(v: unknown): boolean {
  const t = typeof v;
  return t === 'string' || t === 'boolean' || v === null || (t === 'number' && Number.isFinite(v as number));
}

/** A plain object or array without `toJSON`: JSON writes its own enumerable entries. */
function isJsonContainer(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null && proto !== Array.prototype) return false;
  return (v as { toJSON?: unknown }).toJSON === undefined;
}

/** A value JSON writes out as itself: neither left out, nor written as something else. */
function isJsonShown(v: unknown): boolean {
  return isJsonScalar(v) || isJsonContainer(v);
}

/**
 * Whether `JSON.stringify(a) === JSON.stringify(b)`, found without making the strings when
 * both are plain objects or arrays of strings, booleans, null, finite numbers and again such
 * containers (a database value usually is); `undefined` when anything else is met before the
 * answer (`undefined`, NaN, a class instance, …: written differently or left out by JSON),
 * and the caller compares the strings.
 */
function sameJson(a: unknown, b: unknown, depth: number): boolean | undefined {
  if (isJsonScalar(a)) return isJsonScalar(b) ? a === b : isJsonContainer(b) ? false : undefined;
  if (depth === 0 || !isJsonContainer(a)) return undefined;
  if (isJsonScalar(b)) return false;
  if (!isJsonContainer(b)) return undefined;
  const arrays = Array.isArray(a);
  if (arrays !== Array.isArray(b)) return false;
  if (arrays) {
    const x = a as unknown as unknown[];
    const y = b as unknown as unknown[];
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) {
      const same = sameJson(x[i], y[i], depth - 1);
      if (same !== true) return same;
    }
    // JSON leaves no element out (`undefined` is written as null): a longer array is written
    // longer, or not at all (JSON throws), which counts as different too.
    return x.length === y.length;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  // Entries whose value JSON leaves out could make different key lists write alike.
  if (ka.length !== kb.length) return undefined;
  for (let i = 0; i < ka.length; i++) {
    const va = a[ka[i]!];
    const vb = (b as Record<string, unknown>)[kb[i]!];
    if (ka[i] !== kb[i]) return isJsonShown(va) && isJsonShown(vb) ? false : undefined;
    const same = sameJson(va, vb, depth - 1);
    if (same !== true) return same;
  }
  return true;
}
