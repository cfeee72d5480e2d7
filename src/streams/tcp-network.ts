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
 */
import type { Server, Socket } from 'node:net';
import { Subject } from 'rxjs';
import type { KillReason } from '../errors.js';
import type { FramingFormat } from '../protocol/constants.js';
import type { Greeting } from '../protocol/greeting.js';
import type { HandshakeOptions } from '../protocol/handshake.js';
import { dialTcp, joinHostPort, listenTcp, tuneSocket } from '../protocol/tcp-transport.js';
import { resolveDescriptors } from './binds.js';
import { Connection, type ConnectionEvents, HEARTBEAT_KEY } from './connection.js';
import type { Kernel, MonEntry } from './kernel.js';
import { LEVEL, type Logger } from './log.js';
import type { ConnectionStats, Network, NodeStatus } from './network.js';

/** Greeting key of the simultaneous-connect tie-break between our nodes (Perl ignores it). */
export const TIEBREAK_KEY = 'tb';

/** Messages kept for a node that is still connecting; beyond this they are dropped. */
export const MAX_PENDING_MESSAGES = 262_144;
/** How long `close()` waits for connections still being set up to take their queued messages. */
export const CLOSE_GRACE_MS = 1000;

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
  fallbackBinds?: readonly string[];
}

class Peer {
  conn: Connection | undefined;
  queue: unknown[][] = [];
  dropped = 0;
  readonly monitors = new Map<string, MonEntry[]>();
  deadline: NodeJS.Timeout | undefined;
  readonly tries = new Set<Connection>();
  /** Called once the queue was handed to a new connection or dropped (`close()` waits for it). */
  settled: (() => void) | undefined;
  constructor(readonly id: string) {}
}

export class TcpNetwork implements Network {
  private readonly status = new Subject<NodeStatus>();
  readonly nodes$ = this.status.asObservable();
  private bound: string[] = [];
  private readonly peers = new Map<string, Peer>();
  private readonly servers: Server[] = [];
  private readonly inbound = new Set<Connection>();
  /** Dialled connections still in their handshake (labelled with the dialled address). */
  private readonly outgoing = new Set<Connection>();
  /** Connections still in their handshake, by the node ID their peer's greeting claimed. */
  private readonly handshaking = new Map<string, Set<Connection>>();
  /** The peer object a dialled connection counts as a connect attempt for. */
  private readonly attemptOf = new Map<Connection, Peer>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Known listen addresses of other nodes (seeds; the `'l` family once the DB runs). */
  readonly addresses = new Map<string, readonly string[]>();
  /** Seed address → node ID last seen behind it. */
  private readonly seedNodes = new Map<string, string | undefined>();
  private lingering: [Peer, string, MonEntry[]][] = [];
  private sweepQueued = false;
  private seedRetry = 0;
  private seedTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private readonly framings: FramingFormat[];
  private readonly connEvents: ConnectionEvents;

  /** Called when one of our seed addresses turns out to be ourselves. */
  onSelfSeed: (() => void) | undefined;
  /** Looks up addresses of a node not in `addresses` (`g_find` to the master, or the `'l` family). */
  lookup: ((nodeId: string) => Promise<readonly string[] | null>) | undefined;

  constructor(
    private readonly kernel: Kernel,
    private readonly opts: TcpNetworkOptions,
  ) {
    this.framings = opts.framings.filter((f): f is FramingFormat => f === 'cbor' || f === 'json');
    this.connEvents = {
      established: (c) => this.established(c),
      message: (src, msg) => this.kernel.receive(src, msg),
      closed: (c, reason) => this.connectionClosed(c, reason),
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
      for (const s of this.servers.splice(0)) s.close();
      this.bound.length = 0;
      this.opts.logger.log(
        LEVEL.info,
        `${(err as Error).message}; listening on ${fallback.join(', ')} instead`,
      );
      await this.listen(fallback);
    }
    if (this.closing) return;
    const seeds = await resolveDescriptors(this.opts.seeds, { hostname: this.opts.hostname });
    for (const s of seeds) this.seedNodes.set(s, undefined);
    if (seeds.length > 0 && !this.closing) this.seedAgain();
  }

  private async listen(binds: readonly string[]): Promise<void> {
    const addrs = await resolveDescriptors(binds, { hostname: this.opts.hostname });
    for (const addr of addrs) {
      const { server, bound } = await listenTcp(addr, (s) => this.accept(s));
      if (this.closing) {
        server.close();
        return;
      }
      this.servers.push(server);
      this.bound.push(bound);
    }
  }

  send(nodeId: string, msg: unknown[]): void {
    const p = this.peers.get(nodeId) ?? this.peer(nodeId);
    if (p.conn !== undefined) {
      p.conn.send(msg);
      return;
    }
    if (this.closing) return;
    if (p.queue.length >= MAX_PENDING_MESSAGES) {
      if (p.dropped++ === 0)
        this.opts.logger.log(
          LEVEL.warn,
          `${nodeId}: ${MAX_PENDING_MESSAGES} messages queued while connecting, dropping more`,
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
    }
  };

  remoteKilled(src: string, name: string, reason: KillReason): void {
    const p = this.peers.get(src);
    const list = p?.monitors.get(name);
    if (!p || !list) return;
    p.monitors.delete(name);
    this.fire(list, reason);
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

  /** Bytes waiting in all connections' write buffers. */
  private unsentTotal(): number {
    let total = 0;
    for (const p of this.peers.values()) if (p.conn) total += p.conn.unsentBytes;
    return total;
  }

  upNodes(): string[] {
    const up: string[] = [];
    for (const p of this.peers.values()) if (p.conn) up.push(p.id);
    return up;
  }

  nodeIsUp(nodeId: string): boolean | undefined {
    const p = this.peers.get(nodeId);
    return p ? p.conn !== undefined : undefined;
  }

  /**
   * Starts the on-demand connect procedure for `nodeId` without queueing a message (the
   * global nodes' keepalive, global.md §8). Nothing happens if it is connected or connecting.
   */
  connectTo(nodeId: string): void {
    if (nodeId === this.opts.nodeId) return;
    const p = this.peer(nodeId);
    if (!p.conn) this.connect(p);
  }

  /** Dials `addr` as a seed (global.md §3). */
  dialSeed(addr: string): void {
    this.dial(addr, (g) => {
      if (g.nodeId === this.opts.nodeId) {
        this.seedNodes.delete(addr);
        this.onSelfSeed?.();
        throw new Error('I refuse to talk to myself');
      }
      this.seedNodes.set(addr, g.nodeId);
      this.addresses.set(g.nodeId, [addr]);
    });
  }

  async close(): Promise<void> {
    // A send just before close(): give connections still being set up a moment to take it.
    await this.settlePending(CLOSE_GRACE_MS);
    this.closing = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.seedTimer) clearTimeout(this.seedTimer);
    const ending: Promise<void>[] = [];
    const orphaned: [string, MonEntry[]][] = [];
    for (const p of this.peers.values()) {
      if (p.deadline) clearTimeout(p.deadline);
      p.deadline = undefined;
      if (p.queue.length > 0)
        this.opts.logger.log(
          LEVEL.warn,
          `${p.id}: ${p.queue.length} message(s) dropped: the node closed before the connection was up`,
        );
      p.queue = [];
      for (const list of p.monitors.values()) orphaned.push([p.id, list]);
      p.monitors.clear();
      for (const c of p.tries) ending.push(c.shutdown('node shutting down'));
      if (p.conn) ending.push(p.conn.shutdown('node shutting down'));
    }
    // Monitors of remote ports end with the connections: they fire (pending calls error).
    for (const [id, list] of orphaned) this.fire(list, ['transport_error', id, 'node shutting down']);
    for (const c of this.outgoing) ending.push(c.shutdown('node shutting down'));
    for (const c of this.inbound) ending.push(c.shutdown('node shutting down'));
    ending.push(...this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await Promise.all(ending);
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
        clearTimeout(timer);
        for (const p of pending) p.settled = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
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
    if (p.deadline || this.closing) return;
    // The deadline runs from the first queued message even when a handshake with this node
    // (e.g. a seed dial) is already under way: that one may fail or stall.
    p.deadline = this.timer(this.opts.connectInterval, () => {
      p.deadline = undefined;
      if (!p.conn) this.fail(p, 'connect timeout');
    });
    if (p.tries.size > 0) return;
    // A handshake the peer started is under way: wait for it rather than dial a second
    // connection that one side may already have lost to it.
    if (this.handshaking.has(p.id)) return;
    const known = this.addresses.get(p.id);
    if (known && known.length > 0) this.tryAddresses(p, known);
    else if (this.lookup) {
      this.lookup(p.id).then(
        (addrs) => {
          if (p.conn || this.closing) return;
          if (addrs && addrs.length > 0) this.tryAddresses(p, addrs);
          else this.fail(p, 'no known address');
        },
        () => this.fail(p, 'no known address'),
      );
    } else queueMicrotask(() => this.fail(p, 'no known address'));
  }

  /** Tries addresses in order: the first at once, the next ones spaced (protocol.md §2.2). */
  private tryAddresses(p: Peer, addrs: readonly string[]): void {
    const { connectInterval: ci, monitorTimeout: mt } = this.opts;
    const spacing = Math.max(0.4, Math.min(ci, (mt - ci) / addrs.length));
    const next = (i: number) => {
      if (p.conn || this.closing || i >= addrs.length) return;
      this.dial(addrs[i]!, undefined, p);
      if (i + 1 < addrs.length) this.timer(spacing * (0.9 + 0.1 * Math.random()), () => next(i + 1));
    };
    next(0);
  }

  private dial(addr: string, onGreeting?: (g: Greeting) => void, p?: Peer): Connection {
    const socket = dialTcp(addr);
    tuneSocket(socket, this.opts.nodelay);
    const conn: Connection = new Connection(
      socket,
      this.connOptions(addr, true, (g) => {
        onGreeting?.(g);
        this.greeted(conn, g);
        if (!this.attemptOf.has(conn)) this.attempt(conn, this.peer(g.nodeId));
      }),
      this.connEvents,
    );
    if (p) this.attempt(conn, p);
    this.outgoing.add(conn);
    return conn;
  }

  private attempt(conn: Connection, p: Peer): void {
    this.attemptOf.set(conn, p);
    p.tries.add(conn);
  }

  /**
   * A peer's greeting arrived on `conn` (before authentication). Two of our nodes that dial each
   * other at the same moment settle it here, before either connection carries a message: both
   * keep the connection dialled by the smaller node ID and close the other one. (AEMP's own rule,
   * kept for peers that do not advertise the key, lets the last completed handshake win, which
   * can lose or reorder messages written on the replaced connection.)
   */
  private greeted(conn: Connection, g: Greeting): void {
    const id = g.nodeId;
    if (g.keys.get(TIEBREAK_KEY) === '1') {
      // Competitors: handshakes with this node, and our dials to it that are connected but
      // not greeted yet (the peer sees those and decides the same way).
      const others = new Set(this.handshaking.get(id));
      for (const t of this.peers.get(id)?.tries ?? []) if (t !== conn && t.connected) others.add(t);
      const ourDialWins = this.opts.nodeId < id;
      const text = `simultaneous connection with ${id}, keeping the one dialled by ${ourDialWins ? this.opts.nodeId : id}`;
      for (const other of others) {
        if (other === conn || other.outgoing === conn.outgoing) continue;
        if (conn.outgoing !== ourDialWins) throw new Error(text);
        other.close(text);
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
    this.inbound.delete(conn);
    this.outgoing.delete(conn);
    this.attemptOf.get(conn)?.tries.delete(conn);
    this.attemptOf.delete(conn);
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    tuneSocket(socket, this.opts.nodelay);
    const label = joinHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    const conn: Connection = new Connection(
      socket,
      this.connOptions(label, false, (g) => this.greeted(conn, g)),
      this.connEvents,
    );
    this.inbound.add(conn);
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
    };
    return {
      handshake,
      certPem: o.cert,
      handshakeTimeoutMs: o.monitorTimeout * 1000,
      maxFrameBytes: o.maxFrameBytes,
      maxSendBufferBytes: o.maxSendBufferBytes,
      totalSendBufferExceeded: () => this.unsentTotal() > o.maxTotalSendBufferBytes,
      label,
      outgoing,
      heartbeatInterval: o.heartbeatInterval,
      heartbeatMisses: o.heartbeatMisses,
    };
  }

  private established(conn: Connection): void {
    this.settle(conn);
    if (this.closing) {
      conn.close('node shutting down');
      return;
    }
    const p = this.peer(conn.peerId!);
    if (p.conn && p.conn !== conn) {
      const old = p.conn;
      p.conn = undefined;
      this.lost(p, 'switched connections', true);
      old.close('switched connections');
    }
    p.conn = conn;
    if (p.deadline) {
      clearTimeout(p.deadline);
      this.timers.delete(p.deadline);
      p.deadline = undefined;
    }
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
    this.settle(conn);
    const id = conn.peerId;
    const p = id === undefined ? undefined : this.peers.get(id);
    if (p && p.conn === conn) {
      p.conn = undefined;
      if (!this.closing) {
        this.opts.logger.log(LEVEL.info, `connection to ${p.id} lost: ${reason}`);
        this.lost(p, reason, true);
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
        reason.startsWith('simultaneous connection') ||
        (greeted !== undefined &&
          (this.peers.get(greeted)?.conn !== undefined || this.handshaking.has(greeted)));
      const level = routine ? LEVEL.info : LEVEL.warn;
      this.opts.logger.log(level, `${conn.label}: handshake failed: ${reason}`);
    }
  }

  /** A connect attempt failed: monitors fire, the queue is discarded. */
  private fail(p: Peer, text: string): void {
    if (p.conn || this.closing) return;
    if (p.deadline) {
      clearTimeout(p.deadline);
      this.timers.delete(p.deadline);
      p.deadline = undefined;
    }
    this.lost(p, text, false);
  }

  private lost(p: Peer, text: string, wasUp: boolean): void {
    const reason = ['transport_error', p.id, text];
    if (wasUp) this.kernel.dropRemoteMonitors(p.id);
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
    this.seedTimer = setTimeout(() => this.seedAll(), this.seedRetry * 1000);
  }

  private timer(seconds: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, seconds * 1000);
    this.timers.add(t);
    return t;
  }
}
