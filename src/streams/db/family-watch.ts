/**
 * The client side of `db_mon` (spec/api.md §15.5): per monitored family a local mirror of the
 * master's merged view and the listeners. Pure bookkeeping, no I/O.
 *
 *   ["", "g_chg1", F, HASH|null]  → diff against the mirror: keys only in HASH → added, keys in
 *                                   both → changed (even if equal), keys only in the mirror →
 *                                   deleted; the mirror becomes HASH
 *   ["", "g_chg2", F, SET, DEL]   → each SET key: changed if present, else added; stored; then
 *                                   DEL removed; `deleted` is DEL exactly as received
 *   a listener joining a family whose snapshot already arrived gets, one event-loop turn later,
 *   the whole mirror with `added` = every key (Perl's two-argument call)
 * The first event of every listener is therefore a full snapshot (`added` = all keys).
 *
 * Snapshots cost O(1) per change until read: the family is kept as a frozen `base` (an earlier
 * version) plus an append-only `log` of the writes since then, beside the live mirror. A change
 * records where the log ended; its `entries`, when first read, are the base with that prefix
 * of the log applied (then frozen and cached). Reading the newest version makes it the new
 * base; when the log holds more writes than {@link REBASE_WRITES_PER_KEY} times the family's
 * subkeys, a fresh base is copied from the mirror, so that copying stays amortised O(1) per
 * change and an old change never needs more than one base and one log to materialise.
 */
import { type DbRecord, isHash, listKeys, newRecord } from './records.js';

/** One change of a monitored family, as `node.db.mon$(family)` emits it. */
export interface DbChange {
  /**
   * The whole family after the change (an immutable snapshot, no prototype): subkey → value.
   * A later change never modifies it. Built when first read (a getter: a spread copy of the
   * change leaves it out; `JSON.stringify` includes it).
   */
  readonly entries: Readonly<DbRecord>;
  /** Subkeys that were not present before. */
  readonly added: readonly string[];
  /** Subkeys that were present and were set again (the value may be the same). */
  readonly changed: readonly string[];
  /**
   * Subkeys removed: on a full snapshot the keys that are gone; on an incremental change the
   * master's delete list as sent (it may name keys that were not present).
   */
  readonly deleted: readonly string[];
  /**
   * The value of `subkey` in this version (`undefined` if absent): what `entries[subkey]` holds,
   * without building the snapshot. While the change is the family's newest version it reads
   * the live mirror, O(1); an older one looks through the writes since its base.
   */
  get(subkey: string): unknown;
}

/** A change as JSON: its fields, entries included. */
export type DbChangeJson = Omit<DbChange, 'get'>;

/** Who hears a family's changes. */
export interface DbListener {
  next(change: DbChange): void;
  complete(): void;
}

/** The log's mark of a deleted subkey. */
const DELETED: unknown = Symbol('deleted');

/** The empty subkey list shared by changes (frozen). */
const NONE: readonly string[] = Object.freeze([]);

/** An empty family, as the base before the first snapshot. */
const EMPTY: Readonly<DbRecord> = Object.freeze(newRecord());

/** Fewest writes that trigger a fresh base (short logs are cheaper to replay than to copy). */
const MIN_REBASE_WRITES = 16;

/**
 * Writes per subkey in the log before a fresh base is copied. A copy of a family beyond 16
 * subkeys is a dictionary that grows as it is filled (about 130 bytes per subkey): after one
 * write per subkey that was more than a third of all a receipt allocates. Four keep an old
 * change's replay O(family) while the copies cost a quarter; the log then holds up to four
 * older values of each subkey.
 */
export const REBASE_WRITES_PER_KEY = 4;

/** Families up to this many subkeys get snapshots in V8's fast mode (see `snapshotRecord`). */
export const FAST_SNAPSHOT_KEYS = 16;

/**
 * An empty record without a prototype for a snapshot of `size` subkeys. `Object.create(null)`
 * makes an object in V8's dictionary mode, which costs several times more to fill, enumerate
 * and freeze than an ordinary object whose prototype was taken away: a snapshot of a small
 * family is built and frozen in a third of the time. Beyond about 16 subkeys written by
 * computed name V8 turns such an object into a dictionary anyway, at a cost: larger families
 * start as one. Keys are as safe as in `newRecord()`: with no prototype, `__proto__` is an
 * own property.
 */
export function snapshotRecord(size: number): DbRecord {
  return size <= FAST_SNAPSHOT_KEYS ? (Object.setPrototypeOf({}, null) as DbRecord) : newRecord();
}

/** The base plus the first `end` writes of `log` (`size` subkeys), as a frozen record. */
function materialise(
  base: Readonly<DbRecord>,
  log: readonly unknown[],
  end: number,
  size: number,
): Readonly<DbRecord> {
  const r = snapshotRecord(size);
  for (const k in base) r[k] = base[k];
  for (let i = 0; i < end; i += 2) {
    const k = log[i] as string;
    const v = log[i + 1];
    if (v === DELETED) delete r[k];
    else r[k] = v;
  }
  return Object.freeze(r);
}

/**
 * A change whose `entries` are materialised when first read: the base plus the first `end`
 * writes of `log`. `watch` (while this may be its newest version) adopts them as its base.
 * `entries` is a getter of the class (an object literal's getter costs a closure and an
 * accessor per change); `toJSON` includes it.
 */
class Change implements DbChange {
  #watch: FamilyWatch | undefined;
  #base: Readonly<DbRecord>;
  #log: unknown[];
  readonly #end: number;
  /** Subkeys in this version. */
  readonly #size: number;
  #snap: Readonly<DbRecord> | undefined;

  constructor(
    watch: FamilyWatch | undefined,
    base: Readonly<DbRecord>,
    log: unknown[],
    end: number,
    size: number,
    readonly added: readonly string[],
    readonly changed: readonly string[],
    readonly deleted: readonly string[],
  ) {
    this.#watch = watch;
    this.#base = base;
    this.#log = log;
    this.#end = end;
    this.#size = size;
    this.#snap = end === 0 ? base : undefined;
  }

  get entries(): Readonly<DbRecord> {
    if (this.#snap === undefined) {
      const snap = materialise(this.#base, this.#log, this.#end, this.#size);
      this.#watch?.adopt(this.#base, this.#log, this.#end, snap);
      this.#snap = snap;
      this.#watch = undefined;
      this.#log = [];
      this.#base = EMPTY;
    }
    return this.#snap;
  }

  get(subkey: string): unknown {
    if (this.#snap !== undefined) return this.#snap[subkey];
    const w = this.#watch;
    if (w?.isNewest(this.#base, this.#log, this.#end)) return w!.current(subkey);
    const log = this.#log;
    for (let i = this.#end - 2; i >= 0; i -= 2) {
      if (log[i] === subkey) {
        const v = log[i + 1];
        return v === DELETED ? undefined : v;
      }
    }
    return this.#base[subkey];
  }

  toJSON(): DbChangeJson {
    return { entries: this.entries, added: this.added, changed: this.changed, deleted: this.deleted };
  }
}

/** A change as an event of the node stream (`type: 'db'`), its entries still lazy. */
export class DbChangeEvent implements DbChange {
  readonly type = 'db';
  readonly added: readonly string[];
  readonly changed: readonly string[];
  readonly deleted: readonly string[];
  readonly #change: DbChange;

  constructor(
    readonly family: string,
    change: DbChange,
  ) {
    this.#change = change;
    this.added = change.added;
    this.changed = change.changed;
    this.deleted = change.deleted;
  }

  get entries(): Readonly<DbRecord> {
    return this.#change.entries;
  }

  get(subkey: string): unknown {
    return this.#change.get(subkey);
  }

  toJSON(): DbChangeJson & { type: 'db'; family: string } {
    return { type: 'db', family: this.family, ...this.#change, entries: this.entries };
  }
}

export class FamilyWatch {
  /** True once the master sent the first snapshot. */
  synced = false;
  /**
   * The live mirror: never handed out. A Map: a set reports through `size` whether its key was
   * new, so a change's subkey costs one hash lookup where a record costs an `in` and a store.
   */
  private data = new Map<string, unknown>();
  /** A frozen earlier version of the family (handed out). */
  private base: Readonly<DbRecord> = EMPTY;
  /** The writes since `base`: subkey, value (or DELETED), …; only appended to, or replaced. */
  private log: unknown[] = [];
  private readonly active = new Set<DbListener>();
  /** The one active listener while there is exactly one (a change then reaches it directly). */
  private only: DbListener | undefined;
  /** Listeners waiting for their first (snapshot) event on the next turn. */
  private readonly waiting = new Map<DbListener, NodeJS.Immediate>();

  /** @param family The family's name (for those who hear of its changes). */
  constructor(readonly family = '') {}

  /** Number of listeners, active or waiting. */
  get size(): number {
    return this.active.size + this.waiting.size;
  }

  /** The current entries (immutable snapshot). */
  get entries(): Readonly<DbRecord> {
    if (this.log.length > 0) this.rebase();
    return this.base;
  }

  /** Adds a listener (see the header for when its first event comes). */
  add(listener: DbListener): void {
    if (!this.synced) {
      this.active.add(listener);
      this.activeChanged();
      return;
    }
    const t = setImmediate(() => {
      this.waiting.delete(listener);
      this.active.add(listener);
      this.activeChanged();
      const entries = this.entries;
      const keys = Object.keys(entries);
      listener.next(new Change(undefined, entries, [], 0, keys.length, keys, NONE, NONE));
    });
    this.waiting.set(listener, t);
  }

  /** True if `listener` is there, active or waiting. */
  has(listener: DbListener): boolean {
    return this.active.has(listener) || this.waiting.has(listener);
  }

  /** Removes a listener; true if it was there. */
  remove(listener: DbListener): boolean {
    const t = this.waiting.get(listener);
    if (t) {
      clearImmediate(t);
      this.waiting.delete(listener);
      return true;
    }
    const had = this.active.delete(listener);
    this.activeChanged();
    return had;
  }

  /** Applies a full snapshot (`g_chg1`) and returns the change. */
  snapshot(hash: unknown): DbChange {
    const next = new Map<string, unknown>();
    const added: string[] = [];
    const changed: string[] = [];
    const deleted: string[] = [];
    if (isHash(hash)) for (const k of Object.keys(hash)) next.set(k, hash[k]);
    for (const k of next.keys()) (this.data.has(k) ? changed : added).push(k);
    for (const k of this.data.keys()) if (!next.has(k)) deleted.push(k);
    // The mirror and its frozen twin, the new base.
    this.data = next;
    this.rebase();
    this.synced = true;
    return new Change(undefined, this.base, this.log, 0, next.size, added, changed, deleted);
  }

  /** Applies an incremental change (`g_chg2`) and returns the change. */
  apply(set: unknown, del: unknown): DbChange {
    const data = this.data;
    const log = this.log;
    let added: readonly string[] = NONE;
    let changed: readonly string[] = NONE;
    if (isHash(set)) {
      // The SET's own key list becomes `changed` or `added` when all its keys are one or the
      // other (an update usually sets one key); the other list is the shared empty one.
      const keys = Object.keys(set);
      let a: string[] | undefined;
      let c: string[] | undefined;
      let fresh = false;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        const v = set[k];
        const size = data.size;
        data.set(k, v);
        log.push(k, v);
        const isNew = data.size !== size;
        if (i === 0) fresh = isNew;
        else if (a === undefined && isNew !== fresh) {
          // The first key unlike the ones before it: two lists after all.
          a = fresh ? keys.slice(0, i) : [];
          c = fresh ? [] : keys.slice(0, i);
        }
        if (a !== undefined) (isNew ? a : c!).push(k);
      }
      if (a !== undefined) {
        added = a;
        changed = c!;
      } else if (fresh) added = keys;
      else changed = keys;
    }
    const deleted = Array.isArray(del) && del.length > 0 ? listKeys(del) : NONE;
    // An index loop: `for … of` makes an iterator object per change (most delete nothing).
    for (let i = 0; i < deleted.length; i++) {
      const k = deleted[i]!;
      if (data.delete(k)) log.push(k, DELETED);
    }
    // Beyond some writes per subkey: a fresh base, so that replaying stays O(family); the
    // change then holds that base as its snapshot.
    if (log.length > 2 * REBASE_WRITES_PER_KEY * Math.max(MIN_REBASE_WRITES, data.size)) this.rebase();
    const end = this.log.length;
    return new Change(this, this.base, this.log, end, data.size, added, changed, deleted);
  }

  /** True while `base` with `log`'s first `end` writes is the newest version (the mirror). */
  isNewest(base: Readonly<DbRecord>, log: unknown[], end: number): boolean {
    return base === this.base && log === this.log && end === log.length;
  }

  /** `subkey`'s value in the newest version. */
  current(subkey: string): unknown {
    return this.data.get(subkey);
  }

  /**
   * A change read its entries: `snap` is `base` with `log`'s first `end` writes. If that is
   * still the newest version, it becomes the base.
   */
  adopt(base: Readonly<DbRecord>, log: unknown[], end: number, snap: Readonly<DbRecord>): void {
    if (this.isNewest(base, log, end)) {
      this.base = snap;
      this.log = [];
    }
  }

  /** Calls every active listener with `c`. */
  emit(c: DbChange): void {
    if (this.only !== undefined) {
      this.only.next(c);
      return;
    }
    for (const l of [...this.active]) if (this.active.has(l)) l.next(c);
  }

  /** Keeps `only` in step with `active`. */
  private activeChanged(): void {
    this.only = this.active.size === 1 ? this.active.values().next().value : undefined;
  }

  /** Completes and drops every listener. */
  close(): void {
    for (const t of this.waiting.values()) clearImmediate(t);
    const all = [...this.active, ...this.waiting.keys()];
    this.waiting.clear();
    this.active.clear();
    this.only = undefined;
    for (const l of all) l.complete();
  }

  /** A fresh base copied from the mirror; the log starts again. */
  private rebase(): void {
    const r = snapshotRecord(this.data.size);
    this.data.forEach((v, k) => {
      r[k] = v;
    });
    this.base = Object.freeze(r);
    this.log = [];
  }
}
