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
 */
import { type DbRecord, hashEntries, listKeys, newRecord } from './records.js';

/** One change of a monitored family, as `node.db.mon$(family)` emits it. */
export interface DbChange {
  /**
   * The whole family after the change (an immutable snapshot, no prototype): subkey → value.
   * A later change never modifies it.
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
}

/** Who hears a family's changes. */
export interface DbListener {
  next(change: DbChange): void;
  complete(): void;
}

export class FamilyWatch {
  /** True once the master sent the first snapshot. */
  synced = false;
  private data: DbRecord = newRecord();
  /** The current `data` object was handed out: copy before the next mutation. */
  private shared = false;
  private readonly active = new Set<DbListener>();
  /** Listeners waiting for their first (snapshot) event on the next turn. */
  private readonly waiting = new Map<DbListener, NodeJS.Immediate>();

  /** Number of listeners, active or waiting. */
  get size(): number {
    return this.active.size + this.waiting.size;
  }

  /** The current entries (immutable snapshot). */
  get entries(): Readonly<DbRecord> {
    if (!this.shared) {
      Object.freeze(this.data);
      this.shared = true;
    }
    return this.data;
  }

  /** Adds a listener (see the header for when its first event comes). */
  add(listener: DbListener): void {
    if (!this.synced) {
      this.active.add(listener);
      return;
    }
    const t = setImmediate(() => {
      this.waiting.delete(listener);
      this.active.add(listener);
      const entries = this.entries;
      listener.next({ entries, added: Object.keys(entries), changed: [], deleted: [] });
    });
    this.waiting.set(listener, t);
  }

  /** Removes a listener; true if it was there. */
  remove(listener: DbListener): boolean {
    const t = this.waiting.get(listener);
    if (t) {
      clearImmediate(t);
      this.waiting.delete(listener);
      return true;
    }
    return this.active.delete(listener);
  }

  /** Applies a full snapshot (`g_chg1`) and returns the change. */
  snapshot(hash: unknown): DbChange {
    const next = newRecord();
    for (const [k, v] of hashEntries(hash)) next[k] = v;
    const added: string[] = [];
    const changed: string[] = [];
    const deleted: string[] = [];
    for (const k in next) (k in this.data ? changed : added).push(k);
    for (const k in this.data) if (!(k in next)) deleted.push(k);
    this.data = next;
    this.shared = false;
    this.synced = true;
    return { entries: this.entries, added, changed, deleted };
  }

  /** Applies an incremental change (`g_chg2`) and returns the change. */
  apply(set: unknown, del: unknown): DbChange {
    if (this.shared) {
      // A for-in copy: several times faster than Object.assign on these prototype-less
      // dictionaries, and a large family is copied once per change while it is being read.
      const copy = newRecord();
      for (const k in this.data) copy[k] = this.data[k];
      this.data = copy;
      this.shared = false;
    }
    const added: string[] = [];
    const changed: string[] = [];
    for (const [k, v] of hashEntries(set)) {
      (k in this.data ? changed : added).push(k);
      this.data[k] = v;
    }
    const deleted = listKeys(del);
    for (const k of deleted) delete this.data[k];
    return { entries: this.entries, added, changed, deleted };
  }

  /** Calls every active listener with `change`. */
  emit(change: DbChange): void {
    for (const l of [...this.active]) if (this.active.has(l)) l.next(change);
  }

  /** Completes and drops every listener. */
  close(): void {
    for (const t of this.waiting.values()) clearImmediate(t);
    const all = [...this.active, ...this.waiting.keys()];
    this.waiting.clear();
    this.active.clear();
    for (const l of all) l.complete();
  }
}
