/**
 * A node's link to its master (spec/global.md §3, §4, §9): which node the master is, the
 * requests kept for it, and how `["", TAG, …]` reaches a node — to this node it is handled at
 * once, as Perl delivers local messages synchronously.
 *
 *   set(M)               → g_slave LOCAL_DB to M, then every pending request again
 *   master goes down     → the next connected seed node (else the first seed to come up)
 *   request(key, msg)    → kept under `key` and sent now if a master is known
 *   done(key)            → forgotten (answered or cancelled)
 * Keys: `"g_find NODE"`, `"mon1 FAMILY"`, query IDs.
 */
import type { Observable } from 'rxjs';
import type { RequestHandler } from '../kernel/node-port.js';
import { LEVEL, type Logger, logText } from '../log/log.js';
import { shareFrame } from '../net/connection.js';
import type { NodeStatus } from '../net/network.js';
import type { DbRecord } from './records.js';

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
}

export interface MasterEnv {
  nodeId: string;
  network: DbNetwork;
  /** The node port's handlers (messages to this node go straight to them). */
  requests: Map<string, RequestHandler>;
  logger: Logger;
  /** LOCAL_DB as a fresh record, for `g_slave`. */
  localDb(): DbRecord;
  /** The master changed (`undefined`: none now); told before anything is sent to a new one. */
  masterChanged?(node: string | undefined): void;
}

export class MasterLink {
  #master: string | undefined;
  private readonly pending = new Map<string, unknown[]>();

  constructor(private readonly env: MasterEnv) {}

  /** The node ID of the master, if any (it changes only here, and `masterChanged` is told). */
  get master(): string | undefined {
    return this.#master;
  }

  /** Keeps `msg` for the master under `key` and sends it if there is a master. */
  request(key: string, msg: unknown[]): void {
    this.pending.set(key, msg);
    this.toMaster(msg);
  }

  /** True if a request is kept under `key`. */
  has(key: string): boolean {
    return this.pending.has(key);
  }

  /** Forgets the request kept under `key`. */
  done(key: string): void {
    this.pending.delete(key);
  }

  /** Sends `msg` to the master, if there is one (not kept). */
  toMaster(msg: unknown[]): void {
    if (this.#master !== undefined) this.send(this.#master, msg);
  }

  /** Sends `["", …msg]` to `node`. Containers in `msg` must not be modified afterwards. */
  send(node: string, msg: unknown[]): void {
    if (node !== this.env.nodeId) {
      this.env.network.send(node, ['', ...msg]);
      return;
    }
    const handler = this.env.requests.get(msg[0] as string);
    if (!handler) return;
    try {
      handler(node, msg.slice(1));
    } catch (err) {
      this.env.logger.log(LEVEL.error, `error processing node message from ${node}: ${logText(String(err))}`);
    }
  }

  /**
   * Sends `["", …msg]` to every node of `nodes` (this node's own request handled in turn): one
   * message for all connections, encoded once per framing. Containers in `msg` must not be
   * modified afterwards.
   */
  sendAll(nodes: Iterable<string>, msg: unknown[]): void {
    let wire: unknown[] | undefined;
    for (const node of nodes) {
      if (node === this.env.nodeId) this.send(node, msg);
      else this.env.network.send(node, (wire ??= shareFrame(['', ...msg])));
    }
  }

  /** `master_set`: registers with `node` and re-sends every pending request. */
  set(node: string): void {
    this.#master = node;
    this.env.masterChanged?.(node);
    this.env.logger.log(LEVEL.info, `master: ${node}`);
    this.send(node, ['g_slave', this.env.localDb()]);
    // A snapshot: requests answered at once (by this node as master) leave the table meanwhile.
    for (const msg of [...this.pending.values()]) this.toMaster(msg);
  }

  /** `master_search`: the first connected seed node becomes the master, if any. */
  search(): void {
    const net = this.env.network;
    if (!net.isSeedNode) return;
    const seed = net.upNodes().find((n) => net.isSeedNode!(n));
    if (seed !== undefined) this.set(seed);
  }

  /** A connection came up: a seed node becomes the master if there is none. */
  up(node: string): void {
    if (this.#master === undefined && this.env.network.isSeedNode?.(node)) this.set(node);
  }

  /** A connection went down: if it was the master's, look for another. */
  down(node: string): void {
    if (this.#master !== node) return;
    this.#master = undefined;
    this.env.masterChanged?.(undefined);
    this.env.logger.log(LEVEL.info, `master ${node} lost, looking for another`);
    this.search();
  }

  /** Forgets every pending request. */
  clear(): void {
    this.pending.clear();
  }
}
