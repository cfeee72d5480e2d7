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
    try {
      return JSON.stringify(a) === JSON.stringify(b);
    } catch {
      return false;
    }
  }
  if (a === undefined || a === null) return b === undefined || b === null;
  return a === b || (typeof a === 'number' && Number.isNaN(a) && Number.isNaN(b));
}
