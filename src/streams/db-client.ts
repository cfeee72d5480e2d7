/**
 * `node.db`: the distributed database as every node sees it (spec/api.md §15, global.md §3–§4,
 * §9): the node's own entries (LOCAL_DB), its master, the requests it keeps for the master,
 * queries and monitored families. A global node additionally runs `GlobalService`.
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
import { magicIncrement } from '../protocol/ids.js';
import { type DbChange, type DbListener, FamilyWatch } from './db-mirror.js';
import {
  addressList,
  type Db,
  type DbRecord,
  dbRecordOf,
  isHash,
  newRecord,
  sameValue,
} from './db-values.js';
import { GlobalService } from './global-service.js';
import { Guard, type Kernel } from './kernel.js';
import { LEVEL, type Logger } from './log.js';
import type { NodeStatus } from './network.js';
import type { RequestHandler } from './node-port.js';

/** What the database needs from the network layer (the optional parts are TcpNetwork's). */
export interface DbNetwork {
  readonly nodes$: Observable<NodeStatus>;
  /** Queues `["", TAG, …]` for a node, connecting on demand. */
  send(nodeId: string, msg: unknown[]): void;
  upNodes(): string[];
  nodeIsUp(nodeId: string): boolean | undefined;
  isSeedNode?(nodeId: string): boolean;
  connectTo?(nodeId: string): void;
  readonly monitorTimeout?: number;
  readonly hasSeeds?: boolean;
  lookup?: ((nodeId: string) => Promise<readonly string[] | null>) | undefined;
  onSelfSeed?: (() => void) | undefined;
}

export interface DbEnv {
  nodeId: string;
  kernel: Kernel;
  network: DbNetwork;
  /** The node port's `g_*` handlers. */
  requests: Map<string, RequestHandler>;
  logger: Logger;
  /** Every change of a monitored family (for the node stream). */
  onChange?(family: string, change: DbChange): void;
}

/** What the global service uses of the client (global.md §2, §7.4, §7.5). */
export interface GlobalHost {
  readonly nodeId: string;
  readonly network: DbNetwork;
  readonly requests: Map<string, RequestHandler>;
  readonly logger: Logger;
  /** GLOBAL_NODE. */
  readonly globalNodes: Set<string>;
  send(node: string, msg: unknown[]): void;
  set(family: string, subkey: string, value: unknown): void;
  del(family: string, ...subkeys: string[]): void;
  masterSet(node: string): void;
  watch(family: string, listener: DbListener): void;
}

interface Query {
  sub: Subscriber<unknown>;
  shape(result: unknown): unknown;
}

export class NodeDb {
  /** LOCAL_DB: the entries this node set. */
  private readonly local: Db = new Map();
  private masterId: string | undefined;
  /** Requests for the master, by key; re-sent to every new master. */
  private readonly pending = new Map<string, unknown[]>();
  private readonly queries = new Map<string, Query>();
  private lastId = 'a';
  private readonly watches = new Map<string, FamilyWatch>();
  private readonly finds = new Map<string, ((addrs: string[] | null) => void)[]>();
  /** GLOBAL_NODE: nodes that told us they are global. */
  private readonly globalNodes = new Set<string>();
  private service: GlobalService | undefined;
  private started = false;
  private closed = false;
  private readonly statusSub: Subscription;

  constructor(private readonly env: DbEnv) {
    const r = env.requests;
    r.set('g_global', (src) => this.globalNodes.add(src));
    r.set('g_slave', (src, args) => {
      this.becomeGlobal();
      const real = r.get('g_slave');
      if (this.service && real) real(src, args);
    });
    r.set('g_reply', (_src, [id, result]) => this.reply(String(id), result));
    r.set('g_found', (_src, [node, addrs]) => this.found(String(node), addrs));
    r.set('g_chg1', (src, [family, hash]) => this.change(src, String(family), (w) => w.snapshot(hash)));
    r.set('g_chg2', (src, [family, set, del]) => this.change(src, String(family), (w) => w.apply(set, del)));
    env.network.lookup = (id) => this.lookup(id);
    env.network.onSelfSeed = () => this.becomeGlobal();
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
    if (removed.length > 0) this.toMaster(['g_upd', family, null, removed]);
  }

  /**
   * Registers a port (`db_reg`, default: the port whose handler runs) under `family` with
   * `value`; the entry is deleted when the port dies. Disposing the guard deletes it earlier.
   */
  reg(family: string, port?: string, value: unknown = null): Guard {
    const p = port ?? this.env.kernel.self;
    if (p === undefined) throw new TypeError('db.reg: no port given and not running in port context');
    const guard = this.set(family, p, value);
    this.env.kernel.monitor(p, { fire: () => this.del(family, p) });
    return guard;
  }

  /** The merged family from the master: emits `{subkey: value}` (possibly `{}`), completes. */
  family$(family: string): Observable<DbRecord> {
    return this.query('g_db_family', family, (r) => (isHash(r) ? r : newRecord()));
  }

  /** The subkeys of the merged family: emits them once, completes. */
  keys$(family: string): Observable<string[]> {
    return this.query('g_db_keys', family, (r) => (Array.isArray(r) ? r.map(String) : []));
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
      const listener: DbListener = { next: (c) => sub.next(c), complete: () => sub.complete() };
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
    else this.masterSearch();
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
    for (const w of watches) w.close();
    const queries = [...this.queries.values()];
    this.queries.clear();
    for (const q of queries) q.sub.complete();
    this.pending.clear();
    this.finds.clear();
  }

  private host(): GlobalHost {
    const { nodeId, network, requests, logger } = this.env;
    return {
      nodeId,
      network,
      requests,
      logger,
      globalNodes: this.globalNodes,
      send: (node, msg) => this.send(node, msg),
      set: (family, subkey, value) => this.store(family, subkey, value),
      del: (family, ...subkeys) => this.del(family, ...subkeys),
      masterSet: (node) => this.masterSet(node),
      watch: (family, listener) => this.watch(family, listener),
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
    this.toMaster(['g_upd', family, set]);
  }

  private query<T>(tag: string, family: string, shape: (r: unknown) => T): Observable<T> {
    return new Observable<T>((sub) => {
      const id = (this.lastId = magicIncrement(this.lastId));
      this.queries.set(id, { sub: sub as Subscriber<unknown>, shape });
      this.request(id, [tag, family, id]);
      return () => {
        this.queries.delete(id);
        this.pending.delete(id);
      };
    });
  }

  private reply(id: string, result: unknown): void {
    this.pending.delete(id);
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
    this.watches.set(family, (w = new FamilyWatch()));
    w.add(listener);
    this.request(`mon1 ${family}`, ['g_mon1', family]);
  }

  private unwatch(family: string, listener: DbListener): void {
    const w = this.watches.get(family);
    if (!w?.remove(listener) || w.size > 0) return;
    this.watches.delete(family);
    this.pending.delete(`mon1 ${family}`);
    this.toMaster(['g_mon0', family]);
  }

  private change(src: string, family: string, apply: (w: FamilyWatch) => DbChange): void {
    if (src !== this.masterId) return;
    const w = this.watches.get(family);
    if (!w) return;
    const change = apply(w);
    w.emit(change);
    this.env.onChange?.(family, change);
  }

  private lookup(nodeId: string): Promise<readonly string[] | null> {
    if (this.service) return Promise.resolve(this.service.addressesOf(nodeId));
    // No master now and none to come (no seeds): fail at once rather than at the deadline.
    if (this.masterId === undefined && this.env.network.hasSeeds === false) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiting = this.finds.get(nodeId);
      if (waiting) {
        waiting.push(resolve);
        return;
      }
      this.finds.set(nodeId, [resolve]);
      this.request(`g_find ${nodeId}`, ['g_find', nodeId]);
    });
  }

  private found(nodeId: string, addrs: unknown): void {
    this.pending.delete(`g_find ${nodeId}`);
    const waiting = this.finds.get(nodeId);
    this.finds.delete(nodeId);
    if (waiting) for (const resolve of waiting) resolve(addressList(addrs));
  }

  private request(key: string, msg: unknown[]): void {
    this.pending.set(key, msg);
    this.toMaster(msg);
  }

  private masterSet(node: string): void {
    this.masterId = node;
    this.env.logger.log(LEVEL.info, `master: ${node}`);
    this.toMaster(['g_slave', dbRecordOf(this.local)]);
    for (const msg of [...this.pending.values()]) this.toMaster(msg);
  }

  /** Makes the first connected seed node the master; else the first seed to come up will be. */
  private masterSearch(): void {
    const net = this.env.network;
    if (this.service || !this.started || this.closed || !net.isSeedNode) return;
    const seed = net.upNodes().find((n) => net.isSeedNode!(n));
    if (seed !== undefined) this.masterSet(seed);
  }

  private up(node: string): void {
    if (this.service) this.service.nodeUp(node);
    else if (this.started && this.masterId === undefined && this.env.network.isSeedNode?.(node))
      this.masterSet(node);
  }

  private down(node: string): void {
    this.globalNodes.delete(node);
    if (this.service) this.service.nodeDown(node);
    else if (this.masterId === node) {
      this.masterId = undefined;
      this.env.logger.log(LEVEL.info, `master ${node} lost, looking for another`);
      this.masterSearch();
    }
  }

  private toMaster(msg: unknown[]): void {
    if (this.masterId !== undefined) this.send(this.masterId, msg);
  }

  /** `["", …msg]` to `node`; to this node it is handled at once, as Perl delivers locally. */
  private send(node: string, msg: unknown[]): void {
    if (node !== this.env.nodeId) {
      this.env.network.send(node, ['', ...msg]);
      return;
    }
    const handler = this.env.requests.get(msg[0] as string);
    if (!handler) return;
    try {
      handler(node, msg.slice(1));
    } catch (err) {
      this.env.logger.log(LEVEL.error, `error processing node message from ${node}: ${String(err)}`);
    }
  }
}

function checkKey(family: unknown, subkey: unknown): void {
  if (typeof family !== 'string' || family === '')
    throw new TypeError('db: the family must be a non-empty string');
  if (typeof subkey !== 'string' || subkey === '')
    throw new TypeError('db: the subkey must be a non-empty string');
}
