/**
 * The peer table: one `Peer` per remote node the network deals with (connected, connecting,
 * queued for or monitored), the messages queued while it connects, the connect deadline, and
 * the nodes remembered after their peer object was dropped.
 *
 *   ensure(id)          the node's peer object (made on first use)
 *   release(p)          dropped once nothing refers to the node any more (`Peer.idle`)
 *   startDeadline(p)    `connect_interval` on the clock; at most MAX_CONNECTING_PEERS at once
 *   settlePending(ms)   waits (the close grace) until queued nodes connected or failed
 */
import type { Clock, Timer } from '../clock.js';
import type { MonEntry } from '../kernel/kernel.js';
import type { Connection } from './connection.js';
import { messageSize } from './message-size.js';
import type { ConnectionStats } from './network.js';

/** Messages kept for a node that is still connecting; beyond this they are dropped. */
export const MAX_PENDING_MESSAGES = 262_144;
/**
 * Nodes being connected to at once (a connect deadline running). A connect to one more node
 * fails at once: its queued messages are dropped and its monitors fire with
 * `["transport_error", NODE, "too many nodes connecting"]`.
 */
export const MAX_CONNECTING_PEERS = 1024;
/** Nodes remembered as known (`nodeIsUp` → false) after their peer object was dropped. */
export const MAX_KNOWN_NODES = 1024;

const NO_MONITORS: ReadonlyMap<string, MonEntry[]> = new Map();
const NO_TRIES: ReadonlySet<Connection> = new Set();

/** What the network knows about one remote node. */
export class Peer {
  conn: Connection | undefined;
  queue: unknown[][] = [];
  /** The estimated memory of `queue` (message-size.ts). */
  queueBytes = 0;
  dropped = 0;
  deadline: Timer | undefined;
  // Most peers have no monitors and no dial under way: their map and set exist only while used.
  private monitorMap: Map<string, MonEntry[]> | undefined;
  private trySet: Set<Connection> | undefined;
  /** Called once the queue was handed to a new connection or dropped (`close()` waits for it). */
  settled: (() => void) | undefined;
  /** The address lookup in flight (its result is used only while this is set). */
  lookup: object | undefined;
  /** A connect refused by `MAX_CONNECTING_PEERS`, failing in a microtask. */
  refused = false;
  constructor(readonly id: string) {}

  /** Monitors of the node's ports (`""` = the node itself), by port name. */
  get monitors(): ReadonlyMap<string, MonEntry[]> {
    return this.monitorMap ?? NO_MONITORS;
  }

  setMonitors(portName: string, list: MonEntry[]): void {
    (this.monitorMap ??= new Map()).set(portName, list);
  }

  deleteMonitors(portName: string): void {
    this.monitorMap?.delete(portName);
    if (this.monitorMap?.size === 0) this.monitorMap = undefined;
  }

  /** Every monitor list; none are registered afterwards. */
  takeMonitors(): MonEntry[][] {
    const all = [...this.monitors.values()];
    this.monitorMap = undefined;
    return all;
  }

  /** Our dials counting as connect attempts for this node. */
  get tries(): ReadonlySet<Connection> {
    return this.trySet ?? NO_TRIES;
  }

  addTry(conn: Connection): void {
    (this.trySet ??= new Set()).add(conn);
  }

  deleteTry(conn: Connection): void {
    this.trySet?.delete(conn);
    if (this.trySet?.size === 0) this.trySet = undefined;
  }

  /** Nothing refers to this node any more: the peer object can be dropped. */
  get idle(): boolean {
    return (
      this.conn === undefined &&
      this.deadline === undefined &&
      this.lookup === undefined &&
      !this.refused &&
      this.queue.length === 0 &&
      this.monitors.size === 0 &&
      this.tries.size === 0
    );
  }
}

export interface PeerTableInit {
  readonly clock: Clock;
  /** Seconds a connect may take (`connect_interval`). */
  readonly connectInterval: number;
  /** Estimated bytes of messages kept for one connecting node (`max_send_buffer_bytes`). */
  readonly maxQueueBytes: number;
  /**
   * `max_total_send_buffer_bytes`: the bound of each of the estimated bytes kept for all
   * connecting nodes, the unsent bytes and the bytes of incomplete incoming frames of all
   * established connections.
   */
  readonly maxTotalBufferBytes: number;
  /** The connect deadline of `p` passed (its deadline is cleared already). */
  deadlinePassed(p: Peer): void;
}

export class PeerTable {
  private readonly peers = new Map<string, Peer>();
  /** Nodes that were connected once, most recent last (bounded by `MAX_KNOWN_NODES`). */
  private readonly known = new Set<string>();
  /** Peers with a connect deadline running. */
  private connecting = 0;
  /** The estimated bytes of every peer's queue. */
  private queuedBytes = 0;

  constructor(private readonly init: PeerTableInit) {}

  get(id: string): Peer | undefined {
    return this.peers.get(id);
  }

  /** The node's peer object, made if there is none. */
  ensure(id: string): Peer {
    let p = this.peers.get(id);
    if (!p) {
      p = new Peer(id);
      this.peers.set(id, p);
    }
    return p;
  }

  values(): IterableIterator<Peer> {
    return this.peers.values();
  }

  get size(): number {
    return this.peers.size;
  }

  /** Drops the peer object once nothing refers to the node any more. */
  release(p: Peer): void {
    if (!p.idle || this.peers.get(p.id) !== p) return;
    this.peers.delete(p.id);
  }

  /** Remembers a node that was connected, for `nodeIsUp` after its peer object is gone. */
  remember(id: string): void {
    this.known.delete(id);
    this.known.add(id);
    if (this.known.size > MAX_KNOWN_NODES) this.known.delete(this.known.values().next().value!);
  }

  upNodes(): string[] {
    const up: string[] = [];
    for (const p of this.peers.values()) if (p.conn) up.push(p.id);
    return up;
  }

  nodeIsUp(id: string): boolean | undefined {
    const p = this.peers.get(id);
    if (p) return p.conn !== undefined;
    return this.known.has(id) ? false : undefined;
  }

  /** True while no further connect may start (`MAX_CONNECTING_PEERS` deadlines running). */
  get full(): boolean {
    return this.connecting >= MAX_CONNECTING_PEERS;
  }

  /**
   * Queues `msg` for `p` while it connects. Beyond `MAX_PENDING_MESSAGES`, or when its estimated
   * size would take the peer's queue past `maxQueueBytes` or all queues past
   * `maxTotalQueueBytes`, it is dropped; returns true for the first message dropped since the
   * queue last emptied.
   */
  enqueue(p: Peer, msg: unknown[]): boolean {
    if (p.queue.length < MAX_PENDING_MESSAGES) {
      const room = Math.min(
        this.init.maxQueueBytes - p.queueBytes,
        this.init.maxTotalBufferBytes - this.queuedBytes,
      );
      const size = room > 0 ? messageSize(msg, room) : room + 1;
      if (size <= room) {
        p.queue.push(msg);
        p.queueBytes += size;
        this.queuedBytes += size;
        return false;
      }
    }
    return p.dropped++ === 0;
  }

  /** Empties `p`'s queue and returns what it held. */
  takeQueue(p: Peer): unknown[][] {
    const queued = p.queue;
    this.queuedBytes -= p.queueBytes;
    p.queue = [];
    p.queueBytes = 0;
    p.dropped = 0;
    return queued;
  }

  /** Starts `p`'s connect deadline (`connect_interval` from now). */
  startDeadline(p: Peer): void {
    this.connecting++;
    p.deadline = this.init.clock.timeout(() => {
      p.deadline = undefined;
      this.connecting--;
      this.init.deadlinePassed(p);
    }, this.init.connectInterval * 1000);
  }

  clearDeadline(p: Peer): void {
    if (!p.deadline) return;
    p.deadline.cancel();
    p.deadline = undefined;
    this.connecting--;
  }

  /** Counters of every established connection and of nodes with queued messages. */
  stats(): ConnectionStats[] {
    const out: ConnectionStats[] = [];
    for (const p of this.peers.values()) {
      const c = p.conn;
      if (!c && p.queue.length === 0) continue;
      out.push({
        node: p.id,
        up: c !== undefined,
        messagesIn: c?.messagesIn ?? 0,
        messagesOut: c?.messagesOut ?? 0,
        bytesIn: c?.bytesIn ?? 0,
        bytesOut: c?.bytesOut ?? 0,
        queued: p.queue.length,
        unsentBytes: c?.unsentBytes ?? 0,
      });
    }
    return out;
  }

  /** Bytes waiting in all established connections' write buffers. */
  unsentTotal(): number {
    let total = 0;
    for (const p of this.peers.values()) if (p.conn) total += p.conn.unsentBytes;
    return total;
  }

  /** True when all established connections together hold too many unsent bytes. */
  readonly sendBuffersFull = (): boolean => this.unsentTotal() > this.init.maxTotalBufferBytes;

  /**
   * True when the incomplete incoming frames of all established connections together are too
   * many bytes (connections still in their handshake hold no frames).
   */
  readonly receiveBuffersFull = (): boolean => {
    let total = 0;
    for (const p of this.peers.values()) if (p.conn) total += p.conn.receiveBuffered;
    return total > this.init.maxTotalBufferBytes;
  };

  /** Resolves when every node with queued messages got connected or failed, or after `ms`. */
  settlePending(ms: number): Promise<void> {
    const pending = [...this.peers.values()].filter(
      (p) => p.conn === undefined && p.queue.length > 0 && p.deadline !== undefined,
    );
    if (pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      let left = pending.length;
      const done = () => {
        timer.cancel();
        for (const p of pending) p.settled = undefined;
        resolve();
      };
      const timer = this.init.clock.timeout(done, ms);
      for (const p of pending)
        p.settled = () => {
          p.settled = undefined;
          if (--left === 0) done();
        };
    });
  }
}
