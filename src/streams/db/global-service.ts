/**
 * The global node (`AnyEvent::MP::Global`, spec/global.md §2, §5–§8): holds every source's
 * shard and the merged view, answers the slaves, and keeps the global nodes meshed.
 *
 * Requests handled (`["", TAG, …]` from node N):
 *   g_slave [DB]        N becomes our slave; DB merged as N's shard (no DB: nothing)
 *   g_global            N is global: clear N's shard, then g_upd 'g + g_set MERGED-SLAVES → N
 *   g_set DB            DB merged as N's shard; own entry 'l N := DB['l][N]
 *   g_upd F SET DEL     applied (db-merge.ts); g_upd → other globals, g_chg2 → monitors of F
 *   g_find NODE         → g_found NODE ADDRS|null
 *   g_db_family F ID    → g_reply ID {…}        g_db_keys / g_db_values → g_reply ID [...]
 *   g_mon1 F            N monitors F (and counts as a slave) → g_chg1 F HASH|null
 *   g_mon0 F            N stops monitoring F
 * Connection up → g_global to the node; down → everything the node provided disappears.
 * We are our own master and our own slave: our own changes take the slave path.
 */

import type { Clock } from '../clock.js';
import type { RequestHandler } from '../kernel/node-port.js';
import { LEVEL, type Logger, type LogLevel, logText } from '../log/log.js';
import type { DbListener } from './family-watch.js';
import { type Change, GlobalStore, type Outcome } from './global-store.js';
import { Keepalive, MAX_KEPT_NODES } from './keepalive.js';
import type { DbNetwork } from './master-link.js';
import { addressList, isHash, recordOf } from './records.js';

/** What the global service uses of the node's database client (global.md §2, §7.4, §7.5). */
export interface GlobalHost {
  readonly nodeId: string;
  readonly network: DbNetwork;
  readonly requests: Map<string, RequestHandler>;
  readonly logger: Logger;
  /** The node's clock (the keepalive's retry timer). */
  readonly clock?: Clock | undefined;
  /** GLOBAL_NODE. */
  readonly globalNodes: Set<string>;
  /** `["", …msg]` to a node (to this node: handled at once). */
  send(node: string, msg: unknown[]): void;
  /** `["", …msg]` to each of `nodes`, in order (one message encoded once for all). */
  sendAll(nodes: Iterable<string>, msg: unknown[]): void;
  /** `db_set` / `db_del` of this node's own entries. */
  set(family: string, subkey: string, value: unknown): void;
  del(family: string, ...subkeys: string[]): void;
  masterSet(node: string): void;
  /** An internal `db_mon`. */
  watch(family: string, listener: DbListener): void;
  /** Logs a line a peer provoked, rate-limited per kind and source (`Kernel.logFromPeer`). */
  logFromPeer?(kind: string, src: string, level: LogLevel, text: string): void;
}

/**
 * Families one node may monitor on this global node at a time (`g_mon1`). A node monitors the
 * families its program watches, rarely more than a few dozen; further `g_mon1`s are ignored
 * (and logged), so that a peer cannot grow the monitor tables without bound.
 */
export const MAX_MONITORED_FAMILIES = 4096;
/** Longest family name a `g_mon1` may register (characters); longer ones are ignored. */
export const MAX_MONITORED_FAMILY_NAME = 4096;

/** Default `monitor_timeout` (seconds) when the network does not say. */
const DEFAULT_MONITOR_TIMEOUT = 30;

export class GlobalService {
  private readonly store: GlobalStore;
  /** GLOBAL_SLAVE: our slaves and the families each monitors. */
  private readonly slaves = new Map<string, Set<string>>();
  /** GLOBAL_MON: family → nodes monitoring it. */
  private readonly mons = new Map<string, Set<string>>();
  private readonly keepalive: Keepalive;
  private announced = false;

  constructor(private readonly host: GlobalHost) {
    this.store = new GlobalStore((n) => this.slaves.has(n));
    const net = host.network;
    this.keepalive = new Keepalive({
      isUp: (n) => n === host.nodeId || net.nodeIsUp(n) === true,
      connect: (n) => net.connectTo?.(n),
      maxRetry: () => net.monitorTimeout ?? DEFAULT_MONITOR_TIMEOUT,
      clock: host.clock,
      full: (n) =>
        host.logFromPeer?.(
          'keepalive',
          host.nodeId,
          LEVEL.warn,
          `not keeping ${logText(n, 100)} connected: already ${MAX_KEPT_NODES} global nodes in 'g`,
        ),
    });
    const r = host.requests;
    r.set('g_global', (src) => {
      this.disconnect(src);
      host.globalNodes.add(src);
      this.globalConnect(src);
    });
    r.set('g_set', (src, [db]) => {
      this.apply(this.store.merge(src, db));
      const listeners = isHash(db) ? db["'l"] : undefined;
      // Own entries only: the node ID may name an inherited property (`constructor`).
      const own = isHash(listeners) && Object.hasOwn(listeners, src) ? listeners[src] : null;
      host.set("'l", src, own ?? null);
    });
    r.set('g_upd', (src, [family, set, del]) => {
      if (typeof family === 'string') this.apply([this.store.update(src, family, set, del)]);
    });
    r.set('g_find', (src, [node]) => {
      host.send(src, ['g_found', node, this.store.family("'l")?.get(String(node)) ?? null]);
    });
    r.set('g_db_family', (src, [family, id]) => {
      host.send(src, ['g_reply', id, recordOf(this.store.family(String(family)))]);
    });
    // Reads store nothing: Perl autovivifies the family here (a later g_chg1 then carries {}
    // instead of null, which receivers treat alike), but a peer could so fill the table with
    // empty families, one per request.
    r.set('g_db_keys', (src, [family, id]) => {
      host.send(src, ['g_reply', id, [...(this.store.family(String(family))?.keys() ?? [])]]);
    });
    r.set('g_db_values', (src, [family, id]) => {
      host.send(src, ['g_reply', id, [...(this.store.family(String(family))?.values() ?? [])]]);
    });
    r.set('g_mon1', (src, [family]) => this.monitor(src, String(family)));
    r.set('g_mon0', (src, [family]) => this.unmonitor(src, String(family)));
  }

  /** `g_slave [DB]` from `src` (routed here by NodeDb): `src` becomes our slave, DB its shard. */
  slave(src: string, args: unknown[]): void {
    if (args.length === 0) return;
    if (!this.slaves.has(src)) this.slaves.set(src, new Set());
    this.apply(this.store.merge(src, args[0]));
  }

  /**
   * The steps of becoming global once the node is configured (§2): own master and slave,
   * `'g` entry, `g_global` to every connected node, the `'g` keepalive.
   */
  announce(): void {
    if (this.announced) return;
    this.announced = true;
    const { host } = this;
    host.masterSet(host.nodeId);
    host.set("'g", host.nodeId, null);
    for (const n of host.network.upNodes()) {
      host.send(n, ['g_global']);
      if (host.globalNodes.has(n)) this.globalConnect(n);
    }
    const mesh: DbListener = {
      next: (c) => {
        for (const n of c.added) this.keepalive.add(n);
        for (const n of c.deleted) this.keepalive.del(n);
      },
      complete: () => {},
    };
    host.watch("'g", mesh);
  }

  /** @internal Sizes of the tables peers' requests reach (for tests and diagnostics). */
  sizes(): {
    families: number;
    shards: number;
    monitoredFamilies: number;
    monitors: number;
    keptNodes: number;
  } {
    let monitoredFamilies = 0;
    for (const f of this.slaves.values()) monitoredFamilies += f.size;
    return {
      families: this.store.merged.size,
      shards: this.store.shards.size,
      monitoredFamilies,
      monitors: this.mons.size,
      keptNodes: this.keepalive.size,
    };
  }

  /** @internal The nodes monitoring `family`, in the order their `g_chg2`s are sent. */
  monitorsOf(family: string): string[] {
    return [...(this.mons.get(family) ?? [])];
  }

  /** The merged view, read-only (the stats request counts its families and keys). */
  get merged(): ReadonlyMap<string, ReadonlyMap<string, unknown>> {
    return this.store.merged;
  }

  /** Addresses of a node from the merged `'l` family (null: none known). */
  addressesOf(nodeId: string): string[] | null {
    return addressList(this.store.family("'l")?.get(nodeId));
  }

  /** A connection came up (§7.6). */
  nodeUp(node: string): void {
    if (!this.announced) return;
    this.host.send(node, ['g_global']);
    this.keepalive.up(node);
  }

  /** A connection went down (§7.6). */
  nodeDown(node: string): void {
    this.disconnect(node);
    this.keepalive.lost(node);
  }

  close(): void {
    this.keepalive.close();
  }

  /** `g_disconnect` (§7.4): forget everything `node` provided. */
  private disconnect(node: string): void {
    const { host } = this;
    host.globalNodes.delete(node);
    host.del("'g", node);
    host.del("'l", node);
    this.apply(this.store.clear(node));
    const families = this.slaves.get(node);
    if (!families) return;
    this.slaves.delete(node);
    for (const f of families) this.dropMonitor(f, node);
  }

  /** The global-connect step towards global node `g` (§7.5). */
  private globalConnect(g: string): void {
    this.host.set("'g", g, null);
    this.host.send(g, ['g_set', this.store.union(this.slaves.keys())]);
  }

  private monitor(node: string, family: string): void {
    let families = this.slaves.get(node);
    if (!families?.has(family)) {
      const refusal =
        family.length > MAX_MONITORED_FAMILY_NAME
          ? `family name longer than ${MAX_MONITORED_FAMILY_NAME} characters`
          : (families?.size ?? 0) >= MAX_MONITORED_FAMILIES
            ? `already monitors ${MAX_MONITORED_FAMILIES} families`
            : undefined;
      if (refusal !== undefined) {
        this.host.logFromPeer?.(
          'refused g_mon1',
          node,
          LEVEL.warn,
          `ignoring g_mon1 ${logText(family, 100)} from ${logText(node, 100)}: ${refusal}`,
        );
        return;
      }
    }
    if (!families) this.slaves.set(node, (families = new Set()));
    families.add(family);
    let m = this.mons.get(family);
    if (!m) this.mons.set(family, (m = new Set()));
    m.add(node);
    const f = this.store.family(family);
    this.host.send(node, ['g_chg1', family, f ? recordOf(f) : null]);
  }

  private unmonitor(node: string, family: string): void {
    this.slaves.get(node)?.delete(family);
    this.dropMonitor(family, node);
  }

  private dropMonitor(family: string, node: string): void {
    const m = this.mons.get(family);
    if (!m) return;
    m.delete(node);
    if (m.size === 0) this.mons.delete(family);
  }

  /** Sends what the store's operations call for: forwards first, then monitor updates. */
  private apply(outcomes: Outcome[]): void {
    for (const o of outcomes) {
      if (o.forward) this.broadcast(this.host.globalNodes, 'g_upd', o.family, o.forward);
      const m = this.mons.get(o.family);
      if (o.notify && m) this.broadcast(m, 'g_chg2', o.family, o.notify);
    }
  }

  private broadcast(to: Set<string>, tag: string, family: string, c: Change): void {
    if (to.size === 0) return;
    this.host.sendAll([...to], [tag, family, c.set, c.del]);
  }
}
