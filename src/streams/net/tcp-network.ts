/**
 * The node's network over TCP: listeners, one peer object per remote node, on-demand
 * connects, seed dialling, remote monitors and the up/down stream (spec/protocol.md §2, §10,
 * §11; spec/api.md §10.3–§10.4; spec/global.md §3).
 *
 *   send to a down node   → queued (bounded), connect: deadline `connect_interval`, addresses
 *                           tried in order with spacing; deadline → "connect timeout"
 *   handshake completes   → up event, queue flushed in order; a second completion replaces the
 *                           first ("switched connections", last completion wins, as Perl)
 *   connection lost       → down event, every monitor of the node fires once with
 *                           ["transport_error", NODE, text], queue discarded
 *   first monitor of a remote port → ["", "mon1", NAME]; last one gone → ["", "mon0", NAME]
 *
 * Before authentication a peer's greeting is only a claim: it never stops a dial, and only the
 * node with the smaller ID acts on it in the tie-break, against incoming connections only.
 * Limits: accepted connections in their handshake (node-wide and per remote address) and all
 * connections together are capped; a new connection over a cap is closed at once (our own
 * dials instead close the newest pending incoming one), and every handshake must complete
 * within `handshake_timeout`. A peer object is dropped as soon as nothing refers to its node
 * (no connection, queue, monitor, dial, deadline or lookup), and at most
 * `MAX_CONNECTING_PEERS` nodes are being connected to at once.
 */
import type { Duplex } from 'node:stream';
import { distinctUntilChanged, Observable, Subject, type Subscriber } from 'rxjs';
import type { KillReason } from '../../errors.js';
import { DATACONN_PROTOCOL, type FramingFormat, GREETING_KEY, REASON } from '../../protocol/constants.js';
import type { Greeting } from '../../protocol/greeting.js';
import { isSubProtocol } from '../../protocol/greeting.js';
import type { HandshakeOptions, HandshakeSession } from '../../protocol/handshake.js';
import { joinHostPort, tcpTransports } from '../../protocol/tcp-transport.js';
import type { Listener, Transport, TransportFactory } from '../../protocol/transport.js';
import type { Clock, Timer } from '../clock.js';
import type { MonEntry } from '../kernel/kernel.js';
import { LEVEL, type Logger, LogLimiter, logText } from '../log/log.js';
import { resolveBinds, resolveDescriptors } from './binds.js';
import { Connection, type ConnectionEvents, HEARTBEAT_KEY } from './connection.js';
import type { ConnectionStats, Network, NetworkCounts, NetworkEnv, NodeStatus } from './network.js';

/** Protocol field and greeting key of a data connection (spec/protocol.md §13). */
export { DATACONN_PROTOCOL };
export const DATACONN_KEY = GREETING_KEY.DATACONN_ID;

/** Greeting key of the simultaneous-connect tie-break between our nodes (Perl ignores it). */
export const TIEBREAK_KEY = GREETING_KEY.TIEBREAK;

/** Messages kept for a node that is still connecting; beyond this they are dropped. */
export const MAX_PENDING_MESSAGES = 262_144;
/** How long `close()` waits for connections still being set up to take their queued messages. */
export const CLOSE_GRACE_MS = 1000;
/**
 * Nodes being connected to at once (a connect deadline running). A connect to one more node
 * fails at once: its queued messages are dropped and its monitors fire with
 * `["transport_error", NODE, "too many nodes connecting"]`.
 */
export const MAX_CONNECTING_PEERS = 1024;
/** Error text of a connect refused by `MAX_CONNECTING_PEERS`. */
export const TOO_MANY_CONNECTING = REASON.TOO_MANY_CONNECTING;
/** Nodes remembered as known (`nodeIsUp` → false) after their peer object was dropped. */
export const MAX_KNOWN_NODES = 1024;
/** Distinct handshake failure texts counted apart; further ones count under `other`. */
const MAX_FAILURE_TEXTS = 64;
/** Why a pending incoming connection was closed to make room for our own dial. */
const CONNECTION_LIMIT = REASON.CONNECTION_LIMIT;

export interface TcpNetworkOptions {
  nodeId: string;
  hostname: string;
  secret: string | undefined;
  cert: string | undefined;
  authOffer: readonly string[];
  authAccept: readonly string[];
  framings: readonly string[];
  binds: readonly string[];
  seeds: readonly string[];
  /** Seconds. */
  monitorTimeout: number;
  /** Seconds. */
  connectInterval: number;
  nodelay: boolean;
  maxFrameBytes: number;
  /** Unsent bytes one connection may hold before it is dropped. */
  maxSendBufferBytes: number;
  /** Unsent bytes all connections together may hold; past it, a connection that adds to a
   * backlog of its own is dropped. */
  maxTotalSendBufferBytes: number;
  /** Most data items one frame may decode to. */
  maxFrameItems: number;
  /** Refuse peers whose greeting does not state their connection role. */
  strictPeers: boolean;
  /** Seconds from TCP connect to authentication. */
  handshakeTimeout: number;
  /** Accepted connections in their handshake, node-wide and from one remote address. */
  maxPendingHandshakes: number;
  maxPendingHandshakesPerAddress: number;
  /** Connections of all kinds together. */
  maxConnections: number;
  logger: Logger;
  /** Seconds between heartbeats (0 = off) and missed beats before a peer is down. */
  heartbeatInterval: number;
  heartbeatMisses: number;
  /**
   * Listened on instead of `binds` when one of those is already in use (the embedded default's
   * seed address, taken by another node on this machine: this node then joins it).
   */
  fallbackBinds?: readonly string[] | undefined;
  /** How other nodes are reached and how this node listens (default: TCP). */
  transports?: TransportFactory | undefined;
}

class Peer {
  conn: Connection | undefined;
  queue: unknown[][] = [];
  dropped = 0;
  readonly monitors = new Map<string, MonEntry[]>();
  deadline: Timer | undefined;
  readonly tries = new Set<Connection>();
  /** Called once the queue was handed to a new connection or dropped (`close()` waits for it). */
  settled: (() => void) | undefined;
  /** The address lookup in flight (its result is used only while this is set). */
  lookup: object | undefined;
  /** A connect refused by `MAX_CONNECTING_PEERS`, failing in a microtask. */
  refused = false;
  constructor(readonly id: string) {}

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

export class TcpNetwork implements Network {
  private readonly status = new Subject<NodeStatus>();
  readonly nodes$ = this.status.asObservable();
  /** Subscribers of `backlog$`, by node ID. */
  private readonly backlogWatchers = new Map<string, Set<Subscriber<number>>>();
  /** Set once `close()` has finished. */
  private closed = false;
  private bound: string[] = [];
  private readonly peers = new Map<string, Peer>();
  private readonly servers: Listener[] = [];
  /** Accepted connections still in their handshake → the remote address. */
  private readonly inbound = new Map<Connection, string>();
  /** Accepted connections still in their handshake, by remote address. */
  private readonly pendingFrom = new Map<string, number>();
  /** Every connection not closed yet (accepted, dialled, established). */
  private readonly open = new Set<Connection>();
  /** Peers with a connect deadline running (limited by `MAX_CONNECTING_PEERS`). */
  private connecting = 0;
  /** Nodes that were connected once, most recent last (bounded by `MAX_KNOWN_NODES`). */
  private readonly known = new Set<string>();
  /**
   * Rate limit of the lines a flood can provoke: failed incoming handshakes per remote address,
   * and refusals per kind (a few lines, then a count).
   */
  private readonly failures = new LogLimiter(() => this.opts.logger);
  /** Totals for metrics: refusals by kind, failed handshakes by reason, heartbeat timeouts. */
  private readonly refusedCount = new Map<string, number>();
  private readonly failedCount = new Map<string, number>();
  private heartbeatTimeouts = 0;
  /** Dialled connections still in their handshake (labelled with the dialled address). */
  private readonly outgoing = new Set<Connection>();
  /** Connections still in their handshake, by the node ID their peer's greeting claimed. */
  private readonly handshaking = new Map<string, Set<Connection>>();
  /** The peer object a dialled connection counts as a connect attempt for. */
  private readonly attemptOf = new Map<Connection, Peer>();
  private readonly timers = new Set<Timer>();
  /** Known listen addresses of other nodes (seeds; the `'l` family once the DB runs). */
  readonly addresses = new Map<string, readonly string[]>();
  /** Seed address → node ID last seen behind it. */
  private readonly seedNodes = new Map<string, string | undefined>();
  private lingering: [Peer, string, MonEntry[]][] = [];
  private sweepQueued = false;
  private seedRetry = 0;
  private seedTimer: Timer | undefined;
  private closing = false;
  private readonly framings: FramingFormat[];
  private readonly connEvents: ConnectionEvents;
  private readonly clock: Clock;
  private readonly transports: TransportFactory;

  /** Data connections we dialled that are still in their handshake. */
  private readonly dataDials = new Set<Connection>();

  constructor(
    private readonly env: NetworkEnv,
    private readonly opts: TcpNetworkOptions,
  ) {
    this.clock = env.clock;
    this.transports = opts.transports ?? tcpTransports({ nodelay: opts.nodelay });
    this.framings = opts.framings.filter((f): f is FramingFormat => f === 'cbor' || f === 'json');
    this.connEvents = {
      established: (c) => this.established(c),
      message: (src, msg) => this.env.receive(src, msg),
      closed: (c, reason) => this.connectionClosed(c, reason),
      backlog: (c, bytes) => {
        if (c.peerId !== undefined && this.peers.get(c.peerId)?.conn === c)
          this.reportBacklog(c.peerId, bytes);
      },
      // An accepted data connection: no node link, no up event; the stream leaves the network.
      handover: (c, session, stream) => {
        this.settle(c);
        this.open.delete(c);
        if (this.closing || !this.env.dataConnAccepted) {
          stream.on('error', () => {});
          stream.destroy();
        } else this.env.dataConnAccepted(stream, session);
      },
    };
  }

  get binds(): readonly string[] {
    return this.bound;
  }

  /** True if seeds are configured (a node without seeds has no master unless it turns global). */
  get hasSeeds(): boolean {
    // Configured seeds count before start() resolved them: a send made right after configure()
    // waits for the seeds (up to connect_interval) instead of failing at once.
    return this.opts.seeds.length > 0 || this.seedNodes.size > 0;
  }

  /** `monitor_timeout` in seconds (the global keepalive's longest retry interval). */
  get monitorTimeout(): number {
    return this.opts.monitorTimeout;
  }

  async start(): Promise<void> {
    try {
      await this.listen(this.opts.binds);
    } catch (err) {
      const fallback = this.opts.fallbackBinds;
      if (!fallback || (err as { cause?: { code?: string } }).cause?.code !== 'EADDRINUSE') throw err;
      for (const s of this.servers.splice(0)) void s.close();
      this.bound.length = 0;
      this.opts.logger.log(
        LEVEL.info,
        `${(err as Error).message}; listening on ${fallback.join(', ')} instead`,
      );
      await this.listen(fallback);
    }
    if (this.closing) return;
    const seeds = await resolveDescriptors(this.opts.seeds, {
      hostname: this.opts.hostname,
      warn: (why) => this.opts.logger.log(LEVEL.error, `seed skipped: ${why}`),
    });
    for (const s of seeds) this.seedNodes.set(s, undefined);
    if (seeds.length > 0 && !this.closing) this.seedAgain();
  }

  private async listen(binds: readonly string[]): Promise<void> {
    const addrs = await resolveBinds(binds, { hostname: this.opts.hostname });
    for (const addr of addrs) {
      const listener = await this.transports.listen(addr, (t) => this.accept(t));
      if (this.closing) {
        void listener.close();
        return;
      }
      this.servers.push(listener);
      this.bound.push(listener.bound);
    }
  }

  send(nodeId: string, msg: unknown[]): void {
    let p = this.peers.get(nodeId);
    if (p?.conn !== undefined) {
      p.conn.send(msg);
      return;
    }
    if (this.closing) return;
    if (!p) {
      // An unknown node beyond the cap: nothing to fire, nothing kept.
      if (this.connecting >= MAX_CONNECTING_PEERS) {
        this.refuse(
          'connect refused',
          `connect refused: ${MAX_CONNECTING_PEERS} nodes being connected to, message dropped`,
        );
        return;
      }
      p = this.peer(nodeId);
    }
    if (p.refused) return;
    if (p.queue.length >= MAX_PENDING_MESSAGES) {
      if (p.dropped++ === 0)
        this.opts.logger.log(
          LEVEL.warn,
          `${logText(nodeId, 100)}: ${MAX_PENDING_MESSAGES} messages queued while connecting, dropping more`,
        );
    } else p.queue.push(msg);
    this.connect(p);
  }

  sendIfUp(nodeId: string, msg: unknown[]): void {
    this.peers.get(nodeId)?.conn?.send(msg);
  }

  monitor(nodeId: string, portName: string, entry: MonEntry): () => void {
    const p = this.peer(nodeId);
    let list = p.monitors.get(portName);
    if (!list) {
      list = [];
      p.monitors.set(portName, list);
      if (portName !== '') this.send(nodeId, ['', 'mon1', portName]);
    }
    list.push(entry);
    const mine = list;
    return () => {
      if (p.monitors.get(portName) !== mine) return;
      const i = mine.indexOf(entry);
      if (i >= 0) mine.splice(i, 1);
      if (mine.length > 0) return;
      // Keep the emptied list until the microtasks queued so far ran: a caller awaiting a reply
      // and calling again (back-to-back cal$) reuses the remote monitor instead of sending a
      // mon0/mon1 pair. (rxjs runs finalizers after resolving the awaited promise, so the
      // caller's continuation is queued before this sweep.)
      this.lingering.push([p, portName, mine]);
      if (!this.sweepQueued) {
        this.sweepQueued = true;
        queueMicrotask(this.sweep);
      }
    };
  }

  private readonly sweep = (): void => {
    this.sweepQueued = false;
    const items = this.lingering;
    this.lingering = [];
    for (const [p, portName, list] of items) {
      if (list.length > 0 || p.monitors.get(portName) !== list) continue;
      p.monitors.delete(portName);
      // The peer only holds our monitor if the mon1 got (or will get) there.
      if (portName !== '' && (p.conn || p.deadline)) this.send(p.id, ['', 'mon0', portName]);
      this.release(p);
    }
  };

  remoteKilled(src: string, name: string, reason: KillReason): void {
    const p = this.peers.get(src);
    const list = p?.monitors.get(name);
    if (!p || !list) return;
    p.monitors.delete(name);
    this.fire(list, reason);
    this.release(p);
  }

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

  counts(): NetworkCounts {
    return {
      refused: this.refusedCount,
      handshakeFailures: this.failedCount,
      heartbeatTimeouts: this.heartbeatTimeouts,
    };
  }

  peerGreeting(nodeId: string): Greeting | undefined {
    return this.peers.get(nodeId)?.conn?.session?.peerGreeting;
  }

  /** Bytes waiting in all connections' write buffers. */
  private unsentTotal(): number {
    let total = 0;
    for (const p of this.peers.values()) if (p.conn) total += p.conn.unsentBytes;
    return total;
  }

  backlog$(nodeId: string): Observable<number> {
    return new Observable<number>((sub) => {
      if (this.closed) {
        sub.next(0);
        sub.complete();
        return;
      }
      let set = this.backlogWatchers.get(nodeId);
      if (!set) this.backlogWatchers.set(nodeId, (set = new Set()));
      set.add(sub);
      const conn = this.peers.get(nodeId)?.conn;
      if (conn) conn.watchBacklog = true;
      sub.next(conn?.unsentBytes ?? 0);
      const watchers = set;
      return () => {
        watchers.delete(sub);
        if (watchers.size > 0 || this.backlogWatchers.get(nodeId) !== watchers) return;
        this.backlogWatchers.delete(nodeId);
        const c = this.peers.get(nodeId)?.conn;
        if (c) c.watchBacklog = false;
      };
    }).pipe(distinctUntilChanged());
  }

  private reportBacklog(nodeId: string, bytes: number): void {
    const set = this.backlogWatchers.get(nodeId);
    if (set) for (const s of [...set]) s.next(bytes);
  }

  upNodes(): string[] {
    const up: string[] = [];
    for (const p of this.peers.values()) if (p.conn) up.push(p.id);
    return up;
  }

  nodeIsUp(nodeId: string): boolean | undefined {
    const p = this.peers.get(nodeId);
    if (p) return p.conn !== undefined;
    return this.known.has(nodeId) ? false : undefined;
  }

  /** Peer objects held (connected, connecting, queued for or monitored); for tests. */
  get peerCount(): number {
    return this.peers.size;
  }

  /** Accepted connections still in their handshake; for tests. */
  get pendingHandshakes(): number {
    return this.inbound.size;
  }

  /** Handshakes under way whose peer's greeting claimed `nodeId`; for tests. */
  handshakesClaiming(nodeId: string): number {
    return this.handshaking.get(nodeId)?.size ?? 0;
  }

  /** Connections not closed yet, of every kind; for tests. */
  get openConnections(): number {
    return this.open.size;
  }

  /**
   * Starts the on-demand connect procedure for `nodeId` without queueing a message (the
   * global nodes' keepalive, global.md §8). Nothing happens if it is connected or connecting.
   */
  connectTo(nodeId: string): void {
    if (nodeId === this.opts.nodeId) return;
    const p = this.peer(nodeId);
    if (!p.conn) this.connect(p);
    this.release(p);
  }

  /** Dials `addr` as a seed (global.md §3). */
  dialSeed(addr: string): void {
    this.dial(addr, (g) => {
      if (g.nodeId === this.opts.nodeId) {
        this.seedNodes.delete(addr);
        this.env.selfSeed?.();
        throw new Error(REASON.SELF_CONNECT);
      }
      // A different node behind the seed address now: forget the address of the one before.
      const before = this.seedNodes.get(addr);
      if (before !== undefined && before !== g.nodeId && this.addresses.get(before)?.[0] === addr)
        this.addresses.delete(before);
      this.seedNodes.set(addr, g.nodeId);
      this.addresses.set(g.nodeId, [addr]);
    });
  }

  async close(): Promise<void> {
    // A send just before close(): give connections still being set up a moment to take it.
    await this.settlePending(CLOSE_GRACE_MS);
    this.closing = true;
    this.failures.close();
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    this.seedTimer?.cancel();
    const ending: Promise<void>[] = [];
    const orphaned: [string, MonEntry[]][] = [];
    for (const p of this.peers.values()) {
      this.clearDeadline(p);
      p.lookup = undefined;
      if (p.queue.length > 0)
        this.opts.logger.log(
          LEVEL.warn,
          `${logText(p.id, 100)}: ${p.queue.length} message(s) dropped: the node closed before the connection was up`,
        );
      p.queue = [];
      for (const list of p.monitors.values()) orphaned.push([p.id, list]);
      p.monitors.clear();
      for (const c of p.tries) ending.push(c.shutdown(REASON.SHUTTING_DOWN));
      if (p.conn) ending.push(p.conn.shutdown(REASON.SHUTTING_DOWN));
    }
    // Monitors of remote ports end with the connections: they fire (pending calls error).
    for (const [id, list] of orphaned) this.fire(list, ['transport_error', id, REASON.SHUTTING_DOWN]);
    for (const c of this.outgoing) ending.push(c.shutdown(REASON.SHUTTING_DOWN));
    for (const c of [...this.inbound.keys()]) ending.push(c.shutdown(REASON.SHUTTING_DOWN));
    for (const c of [...this.dataDials]) ending.push(c.shutdown(REASON.SHUTTING_DOWN));
    ending.push(...this.servers.map((s) => s.close()));
    await Promise.all(ending);
    this.closed = true;
    // Nothing is left to send: watchers of a backlog see 0, then the end.
    const watchers = [...this.backlogWatchers.values()].flatMap((set) => [...set]);
    this.backlogWatchers.clear();
    for (const s of watchers) {
      s.next(0);
      s.complete();
    }
    this.status.complete();
  }

  /** Resolves when every node with queued messages got connected or failed, or after `ms`. */
  private settlePending(ms: number): Promise<void> {
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
      const timer = this.clock.timeout(done, ms);
      for (const p of pending)
        p.settled = () => {
          p.settled = undefined;
          if (--left === 0) done();
        };
    });
  }

  private peer(nodeId: string): Peer {
    let p = this.peers.get(nodeId);
    if (!p) {
      p = new Peer(nodeId);
      this.peers.set(nodeId, p);
    }
    return p;
  }

  private connect(p: Peer): void {
    if (p.deadline || p.refused || this.closing) return;
    if (this.connecting >= MAX_CONNECTING_PEERS) {
      // Fails after the caller is done (monitor() adds its entry after sending mon1).
      p.refused = true;
      this.refuse('connect refused', `connect refused: ${MAX_CONNECTING_PEERS} nodes being connected to`);
      queueMicrotask(() => {
        p.refused = false;
        this.fail(p, TOO_MANY_CONNECTING);
      });
      return;
    }
    // The deadline runs from the first queued message even when a handshake with this node
    // (e.g. a seed dial) is already under way: that one may fail or stall.
    this.connecting++;
    p.deadline = this.timer(this.opts.connectInterval, () => {
      p.deadline = undefined;
      this.connecting--;
      if (!p.conn) this.fail(p, REASON.CONNECT_TIMEOUT);
    });
    if (p.tries.size > 0) return;
    // Always dial, even while the node's greeting arrived on an incoming connection: that
    // claim is unauthenticated (anyone can send it), and a real simultaneous connect is
    // settled by the tie-break in greeted().
    const known = this.addresses.get(p.id);
    if (known && known.length > 0) this.tryAddresses(p, known);
    else if (this.env.lookup) {
      const token = {};
      p.lookup = token;
      const done = (addrs: readonly string[] | null) => {
        // Stale: the connect procedure failed (or succeeded) meanwhile.
        if (p.lookup !== token) return;
        p.lookup = undefined;
        if (p.conn || this.closing) this.release(p);
        else if (addrs && addrs.length > 0) this.tryAddresses(p, addrs);
        else this.fail(p, REASON.NO_KNOWN_ADDRESS);
      };
      this.env.lookup(p.id).then(done, () => done(null));
    } else queueMicrotask(() => this.fail(p, REASON.NO_KNOWN_ADDRESS));
  }

  private clearDeadline(p: Peer): void {
    if (!p.deadline) return;
    p.deadline.cancel();
    this.timers.delete(p.deadline);
    p.deadline = undefined;
    this.connecting--;
  }

  /** Drops the peer object once nothing refers to the node any more. */
  private release(p: Peer): void {
    if (!p.idle || this.peers.get(p.id) !== p) return;
    this.peers.delete(p.id);
  }

  /** Remembers a node that was connected, for `nodeIsUp` after its peer object is gone. */
  private remember(id: string): void {
    this.known.delete(id);
    this.known.add(id);
    if (this.known.size > MAX_KNOWN_NODES) this.known.delete(this.known.values().next().value!);
  }

  /** Tries addresses in order: the first at once, the next ones spaced (protocol.md §2.2). */
  private tryAddresses(p: Peer, addrs: readonly string[]): void {
    const { connectInterval: ci, monitorTimeout: mt } = this.opts;
    const spacing = Math.max(0.4, Math.min(ci, (mt - ci) / addrs.length));
    const next = (i: number) => {
      // Addresses are tried while the connect procedure runs (its deadline).
      if (p.conn || !p.deadline || this.closing || i >= addrs.length) return;
      this.dial(addrs[i]!, undefined, p);
      if (i + 1 < addrs.length) this.timer(spacing * (0.9 + 0.1 * Math.random()), () => next(i + 1));
    };
    next(0);
  }

  private dial(addr: string, onGreeting?: (g: Greeting) => void, p?: Peer): Connection {
    // Our own dials are not refused at the connection cap: the newest pending incoming
    // handshake makes room instead.
    if (this.open.size >= this.opts.maxConnections) {
      let newest: Connection | undefined;
      for (const c of this.inbound.keys()) newest = c;
      if (newest) {
        this.refuse(
          'incoming connections closed before authentication',
          `incoming connection closed before authentication: ${this.opts.maxConnections} connections open (max_connections), dialling out`,
        );
        newest.close(CONNECTION_LIMIT);
      }
    }
    const conn: Connection = new Connection(
      this.transports.dial(addr),
      this.connOptions(addr, true, (g) => {
        onGreeting?.(g);
        this.greeted(conn, g);
        if (!this.attemptOf.has(conn)) this.attempt(conn, this.peer(g.nodeId));
      }),
      this.connEvents,
    );
    if (p) this.attempt(conn, p);
    this.outgoing.add(conn);
    this.open.add(conn);
    return conn;
  }

  private attempt(conn: Connection, p: Peer): void {
    this.attemptOf.set(conn, p);
    p.tries.add(conn);
  }

  /**
   * A peer's greeting arrived on `conn` (before authentication). Two of our nodes that dial each
   * other at the same moment settle it here, before either connection carries a message: the
   * connection dialled by the smaller node ID is kept. (AEMP's own rule, kept for peers that do
   * not advertise the key, lets the last completed handshake win, which can lose or reorder
   * messages written on the replaced connection.)
   *
   * The greeting is not authenticated yet, so anyone may claim any node ID here. Only the
   * smaller node acts, and only on incoming connections: it fails an incoming one while its own
   * dial to that node is connected, and closes incoming ones claiming the node once its own
   * dial is greeted by it. The larger node does nothing (the real smaller node closes the losing
   * connection before authenticating it), so a claim never costs a node its own dial.
   */
  private greeted(conn: Connection, g: Greeting): void {
    const id = g.nodeId;
    if (g.keys.get(TIEBREAK_KEY) === '1' && this.opts.nodeId < id) {
      const text = `${REASON.SIMULTANEOUS} with ${id}, keeping the one dialled by ${this.opts.nodeId}`;
      if (conn.outgoing) {
        for (const other of [...(this.handshaking.get(id) ?? [])]) if (!other.outgoing) other.close(text);
      } else {
        for (const t of this.peers.get(id)?.tries ?? []) if (t.connected) throw new Error(text);
      }
    }
    let set = this.handshaking.get(id);
    if (!set) this.handshaking.set(id, (set = new Set()));
    set.add(conn);
  }

  /** The connection no longer counts as a connect attempt. */
  private settle(conn: Connection): void {
    const id = conn.greetedId;
    const set = id === undefined ? undefined : this.handshaking.get(id);
    if (set) {
      set.delete(conn);
      if (set.size === 0) this.handshaking.delete(id!);
    }
    const from = this.inbound.get(conn);
    if (from !== undefined) {
      this.inbound.delete(conn);
      const n = (this.pendingFrom.get(from) ?? 1) - 1;
      if (n > 0) this.pendingFrom.set(from, n);
      else this.pendingFrom.delete(from);
    }
    this.outgoing.delete(conn);
    const p = this.attemptOf.get(conn);
    if (p) {
      p.tries.delete(conn);
      this.attemptOf.delete(conn);
      this.release(p);
    }
  }

  private accept(transport: Transport): void {
    if (this.closing) {
      transport.destroy();
      return;
    }
    const o = this.opts;
    const from = transport.remoteAddress ?? '?';
    const fromNow = this.pendingFrom.get(from) ?? 0;
    // The connection just accepted is the newest unauthenticated one: it goes first.
    const full =
      this.inbound.size >= o.maxPendingHandshakes
        ? `${o.maxPendingHandshakes} handshakes pending (max_pending_handshakes)`
        : fromNow >= o.maxPendingHandshakesPerAddress
          ? `${o.maxPendingHandshakesPerAddress} handshakes pending from ${from} (max_pending_handshakes_per_address)`
          : this.open.size >= o.maxConnections
            ? `${o.maxConnections} connections open (max_connections)`
            : undefined;
    if (full !== undefined) {
      transport.destroy();
      this.refuse('incoming connection refused', `incoming connection refused: ${full}`);
      return;
    }
    const label = joinHostPort(from, transport.remotePort ?? 0);
    const options = this.connOptions(label, false, (g) => this.greeted(conn, g));
    options.handshake.acceptSubProtocols = [DATACONN_PROTOCOL];
    options.handshake.onPeerVerified = (g) => {
      if (!isSubProtocol(g.proto)) return;
      if (!this.env.dataConnCheck) throw new Error(`${g.proto}: sub-protocol not supported`);
      this.env.dataConnCheck(g, g.nodeId);
    };
    const conn: Connection = new Connection(transport, options, this.connEvents);
    this.inbound.set(conn, from);
    this.pendingFrom.set(from, fromNow + 1);
    this.open.add(conn);
  }

  private connOptions(label: string, outgoing: boolean, onPeerGreeting?: (g: Greeting) => void) {
    const o = this.opts;
    const handshake: HandshakeOptions = {
      nodeId: o.nodeId,
      secret: o.secret,
      hasCert: o.cert !== undefined,
      authOffer: o.authOffer,
      authAccept: o.authAccept,
      framings: this.framings,
      peerAddr: label,
      extraKeys: {
        [TIEBREAK_KEY]: '1',
        ...(o.heartbeatInterval > 0 ? { [HEARTBEAT_KEY]: String(o.heartbeatInterval) } : {}),
      },
      isConnected: (id) => this.peers.get(id)?.conn !== undefined,
      ...(onPeerGreeting ? { onPeerGreeting } : {}),
      role: outgoing ? 'dialled' : 'accepted',
      strictPeers: o.strictPeers,
    };
    return {
      handshake,
      clock: this.clock,
      certPem: o.cert,
      // Perl's read inactivity limit, never longer than the whole handshake may take.
      handshakeTimeoutMs: Math.min(o.monitorTimeout, o.handshakeTimeout) * 1000,
      handshakeDeadlineMs: o.handshakeTimeout * 1000,
      maxFrameBytes: o.maxFrameBytes,
      maxFrameItems: o.maxFrameItems,
      maxSendBufferBytes: o.maxSendBufferBytes,
      totalSendBufferExceeded: () => this.unsentTotal() > o.maxTotalSendBufferBytes,
      label,
      outgoing,
      heartbeatInterval: o.heartbeatInterval,
      heartbeatMisses: o.heartbeatMisses,
    };
  }

  /**
   * Dials a data connection to `nodeId` (its known or looked-up listener addresses, tried in
   * order) greeting with `aemp-dataconn` and `dataconn_id`. `done` gets the raw stream once the
   * peer authenticated as `nodeId`, or the error text of the last attempt. Returns a cancel.
   */
  dialDataConn(
    nodeId: string,
    dataconnId: string,
    done: (error: string | undefined, stream?: Duplex) => void,
  ): () => void {
    let over = false;
    let current: Connection | undefined;
    const finish = (error: string | undefined, stream?: Duplex) => {
      if (over) return;
      over = true;
      done(error, stream);
    };
    const tryFrom = (addrs: readonly string[], i: number, lastError: string) => {
      if (over) return;
      if (this.closing) return finish(REASON.SHUTTING_DOWN);
      if (i >= addrs.length) return finish(lastError);
      const addr = addrs[i]!;
      const options = this.connOptions(addr, true);
      options.handshake.extraKeys = { [DATACONN_KEY]: dataconnId };
      options.handshake.subProtocol = DATACONN_PROTOCOL;
      delete options.handshake.isConnected;
      const conn = new Connection(this.transports.dial(addr), options, {
        established: (c) => c.close('not a data connection'),
        message: () => {},
        closed: (c, reason) => {
          this.dataDials.delete(c);
          this.open.delete(c);
          if (current === c) tryFrom(addrs, i + 1, `${addr}: ${reason}`);
        },
        handover: (c, session, stream) => {
          this.dataDials.delete(c);
          this.open.delete(c);
          if (session.peerNodeId !== nodeId) {
            stream.on('error', () => {});
            stream.destroy();
            tryFrom(addrs, i + 1, `${addr}: answered by ${logText(session.peerNodeId, 100)}, not ${nodeId}`);
          } else if (over) stream.destroy();
          else finish(undefined, stream);
        },
      });
      current = conn;
      this.dataDials.add(conn);
      this.open.add(conn);
    };
    const start = (addrs: readonly string[] | null | undefined) => {
      if (!addrs || addrs.length === 0) finish(`${nodeId}: no known address`);
      else tryFrom(addrs, 0, `${nodeId}: no address answered`);
    };
    const known = nodeId === this.opts.nodeId ? this.bound : this.addresses.get(nodeId);
    if (known && known.length > 0) start(known);
    else if (this.env.lookup)
      this.env.lookup(nodeId).then(
        (a) => start(a),
        () => start(null),
      );
    else queueMicrotask(() => start(null));
    return () => {
      over = true;
      const c = current;
      current = undefined;
      c?.close('cancelled');
    };
  }

  private established(conn: Connection): void {
    this.settle(conn);
    if (this.closing) {
      conn.close(REASON.SHUTTING_DOWN);
      return;
    }
    const p = this.peer(conn.peerId!);
    if (p.conn && p.conn !== conn) {
      const old = p.conn;
      p.conn = undefined;
      this.lost(p, REASON.SWITCHED, true);
      old.close(REASON.SWITCHED);
    }
    p.conn = conn;
    if (this.backlogWatchers.has(p.id)) {
      conn.watchBacklog = true;
      this.reportBacklog(p.id, conn.unsentBytes);
    }
    p.lookup = undefined;
    this.clearDeadline(p);
    this.remember(p.id);
    // The seed hook first (the bare g_slave makes sure the seed runs the global service), then
    // the up event (whose subscribers may register with the seed as their master).
    if (this.isSeedNode(p.id)) conn.send(['', 'g_slave']);
    this.status.next({ type: 'up', node: p.id });
    if (conn.isUp && p.conn === conn) {
      const queued = p.queue;
      p.queue = [];
      p.dropped = 0;
      for (const m of queued) conn.send(m);
    }
    p.settled?.();
  }

  private connectionClosed(conn: Connection, reason: string): void {
    const from = this.inbound.get(conn);
    this.settle(conn);
    this.open.delete(conn);
    const id = conn.peerId;
    const p = id === undefined ? undefined : this.peers.get(id);
    if (p && p.conn === conn) {
      p.conn = undefined;
      // Whatever the socket still held is gone with it.
      this.reportBacklog(p.id, 0);
      if (!this.closing) {
        if (reason === REASON.HEARTBEAT_TIMEOUT) this.heartbeatTimeouts++;
        this.opts.logger.log(LEVEL.info, `connection to ${logText(p.id, 100)} lost: ${logText(reason)}`);
        this.lost(p, reason, true);
        this.release(p);
        if (this.isSeedNode(p.id)) this.seedAgain();
      }
      return;
    }
    if (!this.closing && conn.session === undefined) {
      // Routine, not worth a warning: a dial that never got a greeting (refused, unreachable;
      // common for seeds), and the loser of a simultaneous connect.
      const greeted = conn.greetedId;
      const routine =
        (conn.outgoing && greeted === undefined) ||
        reason.startsWith(REASON.SIMULTANEOUS) ||
        reason === CONNECTION_LIMIT ||
        (greeted !== undefined &&
          (this.peers.get(greeted)?.conn !== undefined || this.handshaking.has(greeted)));
      const level = routine ? LEVEL.info : LEVEL.warn;
      const text =
        this.failedCount.has(reason) || this.failedCount.size < MAX_FAILURE_TEXTS ? reason : 'other';
      this.failedCount.set(text, (this.failedCount.get(text) ?? 0) + 1);
      const line = `${logText(conn.label, 300)}: handshake failed: ${logText(reason)}`;
      if (from === undefined) this.opts.logger.log(level, line);
      else this.failures.log(`failed incoming handshakes from ${from}`, level, line);
    }
  }

  /** A connect attempt failed: monitors fire, the queue is discarded. */
  private fail(p: Peer, text: string): void {
    if (p.conn || this.closing) return;
    this.clearDeadline(p);
    p.lookup = undefined;
    this.lost(p, text, false);
    this.release(p);
  }

  private lost(p: Peer, text: string, wasUp: boolean): void {
    const reason = ['transport_error', p.id, text];
    if (wasUp) this.env.dropRemoteMonitors(p.id);
    p.queue = [];
    p.settled?.();
    if (wasUp) this.status.next({ type: 'down', node: p.id, reason });
    const all = [...p.monitors.values()];
    p.monitors.clear();
    for (const list of all) this.fire(list, reason);
  }

  private fire(list: MonEntry[], reason: KillReason): void {
    for (const m of list) {
      try {
        m.fire(reason);
      } catch (err) {
        this.opts.logger.log(LEVEL.error, `monitor callback threw: ${String(err)}`);
      }
    }
  }

  /** True if `id` is the node last seen behind one of our seed addresses. */
  isSeedNode(id: string): boolean {
    for (const v of this.seedNodes.values()) if (v === id) return true;
    return false;
  }

  /** Restarts the seed loop with a short delay (global.md §3 `seed_again`). */
  private seedAgain(): void {
    this.seedRetry = (1 + Math.random()) * 0.6;
    if (!this.seedTimer) this.seedAll();
  }

  private seedAll(): void {
    this.seedTimer = undefined;
    if (this.closing) return;
    const todo = [...this.seedNodes].filter(([, id]) => id === undefined || !this.peers.get(id)?.conn);
    if (todo.length === 0) return;
    for (const [addr] of todo) {
      if (![...this.outgoing].some((c) => c.label === addr)) this.dialSeed(addr);
    }
    this.seedRetry = Math.min(this.seedRetry * 2, this.opts.monitorTimeout);
    this.seedTimer = this.clock.timeout(() => this.seedAll(), this.seedRetry * 1000);
  }

  /** A connection or connect refused at a cap: logged at info level through the rate limit. */
  private refuse(kind: string, text: string): void {
    this.refusedCount.set(kind, (this.refusedCount.get(kind) ?? 0) + 1);
    this.failures.log(kind, LEVEL.info, text);
  }

  private timer(seconds: number, fn: () => void): Timer {
    const t = this.clock.timeout(() => {
      this.timers.delete(t);
      fn();
    }, seconds * 1000);
    this.timers.add(t);
    return t;
  }
}
