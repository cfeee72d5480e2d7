/**
 * The global node's data (spec/global.md §5, §7.1–§7.3): one shard per source node and the
 * merged view of all shards. Pure bookkeeping: every operation returns the messages it calls
 * for, and the global service sends them.
 *
 *   update(N, F, SET, DEL)  (g_upd)   → forward: ["", "g_upd", F, SET, DEL_GLOBAL] to the other
 *                                       globals, only when N is one of our slaves
 *                                     → notify:  ["", "g_chg2", F, SET ∪ LOCAL_SET, DEL_LOCAL]
 *                                       to the monitors of F
 *   merge(N, DB)            (g_set, g_slave)  = update(N, F, DB[F], none) for every family
 *   clear(N)                (g_clr)   = update(N, F, none, [all of N's subkeys]), then drop N
 *
 * A deleted subkey that another source still provides stays in the merged view with that
 * source's value (a slave's value preferred); otherwise it is deleted.
 */
import {
  type Db,
  type DbRecord,
  type Family,
  hashEntries,
  isHash,
  listKeys,
  newRecord,
  sameValue,
} from './records.js';

/** One message an operation calls for: a SET hash and a DEL list. */
export interface Change {
  set: DbRecord;
  del: string[];
}

/** What one family update calls for; `undefined` = nothing to send. */
export interface Outcome {
  family: string;
  /** `g_upd` to every other global node. */
  forward: Change | undefined;
  /** `g_chg2` to every monitor of the family. */
  notify: Change | undefined;
}

export class GlobalStore {
  /** LOCAL_DBS: source node → its entries. */
  readonly shards = new Map<string, Db>();
  /** GLOBAL_DB: the merged view. */
  readonly merged: Db = new Map();

  /** `isSlave(node)`: whether `node` is one of our slaves (we are our own slave). */
  constructor(private readonly isSlave: (node: string) => boolean) {}

  /** Applies `["", "g_upd", family, set, del]` from `origin` (§7.1). */
  update(origin: string, family: string, set: unknown, del: unknown): Outcome {
    let shard = this.shards.get(origin);
    if (!shard) this.shards.set(origin, (shard = new Map()));
    let ldb = shard.get(family);
    if (!ldb) shard.set(family, (ldb = new Map()));
    let gdb = this.merged.get(family);
    if (!gdb) this.merged.set(family, (gdb = new Map()));

    // A fresh SET: keys of still-provided deletions are added to it below.
    const outSet = newRecord();
    let setSize = 0;
    const localSet = newRecord();
    let localSetSize = 0;
    const delLocal: string[] = [];
    const delGlobal: string[] = [];
    const slave = this.isSlave(origin);

    for (const [k, v] of hashEntries(set)) {
      ldb.set(k, v);
      gdb.set(k, v);
      outSet[k] = v;
      setSize++;
    }

    for (const k of listKeys(del)) {
      ldb.delete(k);
      const others = this.providers(family, k);
      if (others.length > 0) {
        const fromSlave = others.find((m) => this.isSlave(m));
        if (fromSlave !== undefined) {
          const v = this.shards.get(fromSlave)!.get(family)!.get(k);
          if (!sameValue(gdb.get(k), v)) {
            gdb.set(k, v);
            if (!(k in outSet)) setSize++;
            outSet[k] = v;
          }
        } else {
          delGlobal.push(k);
          const v = this.shards.get(others[0]!)!.get(family)!.get(k);
          if (!sameValue(gdb.get(k), v)) {
            gdb.set(k, v);
            if (!(k in localSet)) localSetSize++;
            localSet[k] = v;
          }
        }
      } else {
        gdb.delete(k);
        delLocal.push(k);
        if (slave) delGlobal.push(k);
      }
    }

    if (gdb.size === 0) this.merged.delete(family);
    if (ldb.size === 0) shard.delete(family);

    const forward =
      slave && (setSize > 0 || delGlobal.length > 0) ? { set: outSet, del: delGlobal } : undefined;
    let notify: Change | undefined;
    if (setSize > 0 || localSetSize > 0 || delLocal.length > 0) {
      // A new object when LOCAL_SET adds keys: `outSet` may already be queued as the forward.
      const all = localSetSize > 0 ? Object.assign(newRecord(), outSet, localSet) : outSet;
      notify = { set: all, del: delLocal };
    }
    return { family, forward, notify };
  }

  /** Merges a whole database as `origin`'s entries, without deletions (§7.2). */
  merge(origin: string, db: unknown): Outcome[] {
    if (!this.shards.has(origin)) this.shards.set(origin, new Map());
    const out: Outcome[] = [];
    for (const [family, entries] of hashEntries(db)) {
      if (isHash(entries)) out.push(this.update(origin, family, entries, undefined));
    }
    return out;
  }

  /** Removes everything `origin` provided (§7.3). */
  clear(origin: string): Outcome[] {
    const shard = this.shards.get(origin);
    if (!shard) return [];
    const out: Outcome[] = [];
    for (const [family, entries] of [...shard]) {
      out.push(this.update(origin, family, undefined, [...entries.keys()]));
    }
    this.shards.delete(origin);
    return out;
  }

  /** The union of the shards of `sources`, later sources overwriting earlier ones (§7.5). */
  union(sources: Iterable<string>): DbRecord {
    const out = newRecord();
    for (const src of sources) {
      const shard = this.shards.get(src);
      if (!shard) continue;
      for (const [family, entries] of shard) {
        const r = (out[family] ??= newRecord()) as DbRecord;
        for (const [k, v] of entries) r[k] = v;
      }
    }
    return out;
  }

  /** The merged entries of a family, if any. */
  family(family: string): Family | undefined {
    return this.merged.get(family);
  }

  /** The sources whose shard contains `family`/`key`. */
  private providers(family: string, key: string): string[] {
    const found: string[] = [];
    for (const [src, shard] of this.shards) if (shard.get(family)?.has(key)) found.push(src);
    return found;
  }
}
