/**
 * `node.db`: the distributed database as every node sees it (spec/api.md §15, global.md §3–§4,
 * §9): the node's own entries (LOCAL_DB), queries, monitored families and address lookups;
 * the master and the requests kept for it are `MasterLink`'s (db-master.ts). A global node
 * additionally runs `GlobalService` (global-service.ts).
 *
 * Exchange with the master (`["", TAG, …]`):
 *   master found         → g_slave LOCAL_DB, then every pending request again
 *   db.set / db.del      → g_upd F {K: V}   /  g_upd F null [K…]   (only if a master is known)
 *   family$/keys$/values$→ g_db_family|g_db_keys|g_db_values F ID  ← g_reply ID RESULT
 *   first mon$ of F      → g_mon1 F  ← g_chg1 F HASH, then g_chg2 F SET DEL (current master only)
 *   last mon$ of F gone  → g_mon0 F
 *   address of a node    → g_find NODE  ← g_found NODE ADDRS (one outstanding per node)
 * Pending requests are keyed `"g_find NODE"`, `"mon1 F"` or the query ID and re-sent to every
 * new master until answered (mon1: until unsubscribed). The master is the first seed node that
 * is connected; when it goes down the next connected seed (or the first to come up) takes over.
 */
import { Observable, type Subscriber, type Subscription } from 'rxjs';
import { nodeClosedError } from '../../errors.js';
import { magicIncrement } from '../../protocol/ids.js';
import type { Clock } from '../clock.js';
import { Guard, type Kernel } from '../kernel/kernel.js';
import type { RequestHandler } from '../kernel/node-port.js';
import { LEVEL, type Logger, logText } from '../log/log.js';
import { type DbChange, type DbListener, FamilyWatch } from './family-watch.js';
import { type GlobalHost, GlobalService } from './global-service.js';
import { type DbNetwork, MasterLink } from './master-link.js';
import {
  addressList,
  type Db,
  type DbRecord,
  dbRecordOf,
  isHash,
  keyText,
  newRecord,
  sameValue,
} from './records.js';

export interface DbEnv {
  nodeId: string;
  kernel: Kernel;
  network: DbNetwork;
  /** The node port's `g_*` handlers. */
  requests: Map<string, RequestHandler>;
  logger: Logger;
  /** The clock of the database's timers (default: the kernel's). */
  clock?: Clock | undefined;
  /** Every change of a monitored family (for the node stream), while `reportChanges(true)`. */
  onChange?(family: string, change: DbChange): void;
}

/**
 * Address lookups (`g_find`) waiting for the master at most. Peers can make this node look up
 * any node ID (a relayed `snd` to it), and without a master nothing answers; further lookups
 * fail at once ("no known address") until answers make room.
 */
export const MAX_PENDING_FINDS = 1024;

interface Query {
  sub: Subscriber<unknown>;
  shape(result: unknown): unknown;
}

export class NodeDb {
  /** LOCAL_DB: the entries this node set. */
  private readonly local: Db = new Map();
  private readonly link: MasterLink;
  /**
   * The link's master as the link tells it (`masterChanged`): this node reads it here, so a
   * change from the master is checked without touching the link (one object less per receipt,
   * often out of the caches).
   */
  private masterId: string | undefined;
  private readonly queries = new Map<string, Query>();
  private lastId = 'a';
  private readonly watches = new Map<string, FamilyWatch>();
  /** The watch a change last went to (changes come in runs of one family): no map lookup. */
  private lastWatch: FamilyWatch | undefined;
  /** True while changes go to `onChange` (someone subscribes to the node stream). */
  private reporting = false;
  private readonly finds = new Map<string, ((addrs: string[] | null) => void)[]>();
  /** On a global node: lookups waiting for a node's `'l` entry (see `awaitAddress`). */
  private readonly addressWaits = new Map<string, Set<(addrs: string[] | null) => void>>();
  /** Callers waiting in `finds` or `addressWaits`, all nodes together (at most {@link MAX_PENDING_FINDS}). */
  private findWaiters = 0;
  /** GLOBAL_NODE: nodes that told us they are global. */
  private readonly globalNodes = new Set<string>();
  private service: GlobalService | undefined;
  private started = false;
  private closed = false;
  private readonly statusSub: Subscription;
  private readonly clock: Clock;

  /** @internal */
  constructor(private readonly env: DbEnv) {
    this.clock = env.clock ?? env.kernel.clock;
    this.link = new MasterLink({
      ...env,
      localDb: () => dbRecordOf(this.local),
      masterChanged: (node) => {
        this.masterId = node;
      },
    });
    const r = env.requests;
    r.set('g_global', (src) => this.globalNodes.add(src));
    // A node registering as our slave makes this node global first.
    r.set('g_slave', (src, args) => {
      this.becomeGlobal();
      this.service?.slave(src, args);
    });
    r.set('g_reply', (_src, [id, result]) => this.reply(String(id), result));
    r.set('g_found', (_src, [node, addrs]) => this.found(String(node), addrs));
    r.set('g_chg1', (src, args) => {
      const w = this.monitored(src, args[0]);
      if (w) this.changed(w, w.snapshot(args[1]));
    });
    r.set('g_chg2', (src, args) => {
      const w = this.monitored(src, args[0]);
      if (w) this.changed(w, w.apply(args[1], args[2]));
    });
    this.statusSub = env.network.nodes$.subscribe((s) =>
      s.type === 'up' ? this.up(s.node) : this.down(s.node),
    );
  }

  /** True once this node runs the global service. */
  get isGlobal(): boolean {
    return this.service !== undefined;
  }

  /** The node ID of the current master, if any (the own ID on a global node). */
  get master(): string | undefined {
    return this.masterId;
  }

  /**
   * @internal Sizes of the tables peers' messages reach: pending address lookups and, on a
   * global node, the global service's tables (for tests and diagnostics).
   */
  sizes(): { pendingFinds: number; findWaiters: number; global?: ReturnType<GlobalService['sizes']> } {
    return {
      pendingFinds: this.finds.size,
      findWaiters: this.findWaiters,
      ...(this.service ? { global: this.service.sizes() } : {}),
    };
  }

  /** @internal On a global node: the nodes monitoring `family`, in the order they are told. */
  monitorsOf(family: string): string[] {
    return this.service?.monitorsOf(family) ?? [];
  }

  /**
   * @internal The entries this node knows, read-only: the merged view on a global node, its
   * own entries elsewhere (the stats request counts families and keys from it).
   */
  get known(): ReadonlyMap<string, ReadonlyMap<string, unknown>> {
    return this.service ? this.service.merged : this.local;
  }

  /** A copy of this node's own entries: `{family: {subkey: value}}`. */
  get own(): DbRecord {
    return dbRecordOf(this.local);
  }

  /**
   * Sets `family`/`subkey` to `value` (default null) in this node's entries (`db_set`) and
   * tells the master. Values are any JSON-like data; they are not copied. Disposing the
   * returned guard deletes the entry.
   */
  set(family: string, subkey: string, value: unknown = null): Guard {
    checkKey(family, subkey);
    this.store(family, subkey, value);
    return new Guard(() => this.del(family, subkey));
  }

  /** Deletes entries this node set (`db_del`); subkeys it does not own are ignored. */
  del(family: string, ...subkeys: string[]): void {
    const f = this.local.get(family);
    if (!f) return;
    const removed = subkeys.filter((k) => f.delete(k));
    if (f.size === 0) this.local.delete(family);
    if (removed.length > 0) this.link.toMaster(['g_upd', family, null, removed]);
  }

  /**
   * Registers a port (`db_reg`, default: the port whose handler runs) under `family` with
   * `value`; the entry is deleted when the port dies. Disposing the guard deletes it earlier.
   */
  reg(family: string, port?: string, value: unknown = null): Guard {
    const p = port ?? this.env.kernel.self;
    if (p === undefined) throw new TypeError('db.reg: no port given and not running in port context');
    checkKey(family, p);
    this.store(family, p, value);
    // One guard owns both the entry and the port monitor: disposing it removes both, and the
    // port's death disposes it (so a later dispose cannot delete a value set after that).
    let died = false;
    let guard: Guard | undefined;
    const monitor = this.env.kernel.monitor(p, {
      fire: () => {
        died = true;
        guard?.unsubscribe();
      },
    });
    guard = new Guard(() => {
      monitor.unsubscribe();
      this.del(family, p);
    });
    // A port that does not exist: the monitor fired at once.
    if (died) guard.unsubscribe();
    return guard;
  }

  /** The merged family from the master: emits `{subkey: value}` (possibly `{}`), completes. */
  family$(family: string): Observable<DbRecord> {
    return this.query('g_db_family', family, (r) => (isHash(r) ? r : newRecord()));
  }

  /** The subkeys of the merged family: emits them once, completes. */
  keys$(family: string): Observable<string[]> {
    return this.query('g_db_keys', family, (r) => (Array.isArray(r) ? r.map(keyText) : []));
  }

  /** The values of the merged family: emits them once, completes. */
  values$(family: string): Observable<unknown[]> {
    return this.query('g_db_values', family, (r) => (Array.isArray(r) ? r : []));
  }

  /**
   * Monitors a family (`db_mon`). The first event is a full snapshot (`added` = every key),
   * then one event per change the master reports (see `DbChange`). The last unsubscription
   * stops monitoring at the master. Completes when the node closes.
   */
  mon$(family: string): Observable<DbChange> {
    return new Observable<DbChange>((sub) => {
      if (this.closed) {
        sub.complete();
        return;
      }
      // The subscriber itself listens: a change reaches it without a further object or closure
      // in between (each one more a receipt touches, on a busy machine often out of the caches).
      // One subscriber object subscribed twice gets a listener of its own for the second time.
      const listener: DbListener = this.watches.get(family)?.has(sub)
        ? { next: (c) => sub.next(c), complete: () => sub.complete() }
        : sub;
      this.watch(family, listener);
      return () => this.unwatch(family, listener);
    });
  }

  /** @internal Listeners bound: publishes `'l` and looks for a master (or announces itself). */
  start(binds: readonly string[]): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.store("'l", this.env.nodeId, [...binds]);
    if (this.service) this.service.announce();
    else this.link.search();
  }

  /** @internal Turns this node into a global node (global.md §2); idempotent. */
  becomeGlobal(): void {
    if (this.service || this.closed) return;
    this.service = new GlobalService(this.host());
    if (this.started) this.service.announce();
  }

  /** @internal Stops timers and completes every stream. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.statusSub.unsubscribe();
    this.service?.close();
    const watches = [...this.watches.values()];
    this.watches.clear();
    this.lastWatch = undefined;
    for (const w of watches) w.close();
    const queries = [...this.queries.values()];
    this.queries.clear();
    for (const q of queries) q.sub.error(nodeClosedError(this.env.nodeId, 'database query'));
    for (const waits of [...this.addressWaits.values()]) for (const finish of [...waits]) finish(null);
    this.link.clear();
    this.finds.clear();
    this.findWaiters = 0;
  }

  private host(): GlobalHost {
    const { nodeId, network, requests, logger } = this.env;
    return {
      nodeId,
      network,
      requests,
      logger,
      clock: this.clock,
      globalNodes: this.globalNodes,
      send: (node, msg) => this.link.send(node, msg),
      sendAll: (nodes, msg) => this.link.sendAll(nodes, msg),
      set: (family, subkey, value) => this.store(family, subkey, value),
      del: (family, ...subkeys) => this.del(family, ...subkeys),
      masterSet: (node) => this.link.set(node),
      watch: (family, listener) => this.watch(family, listener),
      logFromPeer: (kind, src, level, text) => this.env.kernel.logFromPeer(kind, src, level, text),
    };
  }

  private store(family: string, subkey: string, value: unknown): void {
    let f = this.local.get(family);
    if (f?.has(subkey) && sameValue(f.get(subkey), value)) return;
    if (!f) this.local.set(family, (f = new Map()));
    f.set(subkey, value);
    if (this.masterId === undefined) return;
    const set = newRecord();
    set[subkey] = value;
    this.link.toMaster(['g_upd', family, set]);
  }

  private query<T>(tag: string, family: string, shape: (r: unknown) => T): Observable<T> {
    return new Observable<T>((sub) => {
      if (this.closed) {
        sub.error(nodeClosedError(this.env.nodeId, `db.${tag.slice(5)}$('${family}')`));
        return;
      }
      const id = (this.lastId = magicIncrement(this.lastId));
      this.queries.set(id, { sub: sub as Subscriber<unknown>, shape });
      this.link.request(id, [tag, family, id]);
      return () => {
        this.queries.delete(id);
        this.link.done(id);
      };
    });
  }

  private reply(id: string, result: unknown): void {
    this.link.done(id);
    const q = this.queries.get(id);
    if (!q) return;
    this.queries.delete(id);
    q.sub.next(q.shape(result));
    q.sub.complete();
  }

  private watch(family: string, listener: DbListener): void {
    let w = this.watches.get(family);
    if (w) {
      w.add(listener);
      return;
    }
    this.watches.set(family, (w = new FamilyWatch(family)));
    w.add(listener);
    this.link.request(`mon1 ${family}`, ['g_mon1', family]);
  }

  private unwatch(family: string, listener: DbListener): void {
    const w = this.watches.get(family);
    if (!w?.remove(listener) || w.size > 0) return;
    this.watches.delete(family);
    if (this.lastWatch === w) this.lastWatch = undefined;
    this.link.done(`mon1 ${family}`);
    this.link.toMaster(['g_mon0', family]);
  }

  /** The watch of `family` if `src` is the master, whose changes count. */
  private monitored(src: string, family: unknown): FamilyWatch | undefined {
    if (src !== this.masterId) return undefined;
    const last = this.lastWatch;
    if (last !== undefined && last.family === family) return last;
    return (this.lastWatch = this.watches.get(String(family)));
  }

  private changed(w: FamilyWatch, change: DbChange): void {
    w.emit(change);
    if (this.reporting) this.env.onChange?.(w.family, change);
  }

  /**
   * @internal Whether changes are told to `onChange`: the node turns it on while its stream has
   * a subscriber (a receipt then need not look further than this object to know).
   */
  reportChanges(on: boolean): void {
    this.reporting = on;
  }

  /** @internal The network's address lookup for a node it does not know (components.ts). */
  lookup(nodeId: string): Promise<readonly string[] | null> {
    if (this.service) {
      const known = this.service.addressesOf(nodeId);
      // Unknown to the master itself: the node may be connecting to us right now (a `cal` or
      // `snd` to a node that was just started), so wait for its addresses or its connection.
      return known ? Promise.resolve(known) : this.awaitAddress(nodeId);
    }
    // No master now and none to come (no seeds): fail at once rather than at the deadline.
    if (this.masterId === undefined && this.env.network.hasSeeds === false) return Promise.resolve(null);
    if (this.findWaiters >= MAX_PENDING_FINDS) {
      this.env.kernel.logFromPeer(
        'address lookups',
        this.env.nodeId,
        LEVEL.warn,
        `no address lookup for ${logText(nodeId, 100)}: ${MAX_PENDING_FINDS} lookups are waiting for the master`,
      );
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      this.findWaiters++;
      const waiting = this.finds.get(nodeId);
      if (waiting) {
        waiting.push(resolve);
        return;
      }
      this.finds.set(nodeId, [resolve]);
      this.link.request(`g_find ${nodeId}`, ['g_find', nodeId]);
    });
  }

  /**
   * On a global node: resolves with the addresses of `nodeId` once its `'l` entry appears, with
   * null when it connects first (the network then uses that connection), when the network's
   * monitor timeout passes or when the node closes. Counts towards {@link MAX_PENDING_FINDS}.
   */
  private awaitAddress(nodeId: string): Promise<readonly string[] | null> {
    if (this.closed || this.findWaiters >= MAX_PENDING_FINDS) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.findWaiters++;
      let done = false;
      const finish = (addrs: string[] | null): void => {
        if (done) return;
        done = true;
        timer.cancel();
        this.findWaiters--;
        const list = this.addressWaits.get(nodeId);
        list?.delete(finish);
        if (list?.size === 0) this.addressWaits.delete(nodeId);
        this.unwatch("'l", listener);
        resolve(addrs);
      };
      const listener: DbListener = {
        next: (c) => {
          const addrs = addressList(c.entries[nodeId]);
          if (addrs) finish(addrs);
        },
        complete: () => finish(null),
      };
      const timer = this.clock.timeout(
        () => finish(null),
        (this.env.network.monitorTimeout ?? 30) * 1000,
        false,
      );
      let list = this.addressWaits.get(nodeId);
      if (!list) this.addressWaits.set(nodeId, (list = new Set()));
      list.add(finish);
      this.watch("'l", listener);
    });
  }

  private found(nodeId: string, addrs: unknown): void {
    this.link.done(`g_find ${nodeId}`);
    const waiting = this.finds.get(nodeId);
    if (!waiting) return;
    this.finds.delete(nodeId);
    this.findWaiters -= waiting.length;
    for (const resolve of waiting) resolve(addressList(addrs));
  }

  private up(node: string): void {
    const waits = this.addressWaits.get(node);
    if (waits) for (const finish of [...waits]) finish(null);
    if (this.service) this.service.nodeUp(node);
    else if (this.started) this.link.up(node);
  }

  private down(node: string): void {
    this.globalNodes.delete(node);
    if (this.service) this.service.nodeDown(node);
    else this.link.down(node);
  }
}

function checkKey(family: unknown, subkey: unknown): void {
  if (typeof family !== 'string' || family === '')
    throw new TypeError('db: the family must be a non-empty string');
  if (typeof subkey !== 'string' || subkey === '')
    throw new TypeError('db: the subkey must be a non-empty string');
}
