/**
 * The node's network (over TCP, or the transport it is given): listeners, one peer object per
 * remote node, on-demand connects, seed dialling, remote monitors and the up/down stream
 * (spec/protocol.md §2, §10, §11; spec/api.md §10.3–§10.4; spec/global.md §3).
 *
 *   send to a down node   → queued (bounded), connect: deadline `connect_interval`, addresses
 *                           tried in order with spacing; deadline → "connect timeout"
 *   handshake completes   → up event, queue flushed in order; a second completion replaces the
 *                           first ("switched connections", last completion wins, as Perl)
 *   connection lost       → down event, every monitor of the node fires once with
 *                           ["transport_error", NODE, text], queue discarded
 *   first monitor of a remote port → ["", "mon1", NAME]; last one gone → ["", "mon0", NAME]
 *
 * Limits: accepted connections in their handshake (node-wide and per remote address) and all
 * connections together are capped (our own dials close the newest pending incoming one
 * instead of being refused); every handshake completes within `handshake_timeout`.
 *
 * The network is built from parts with one job each, made here in order and given what they
 * need at construction (no part sets another's fields):
 *
 *   PeerTable       peer objects, queues, connect deadlines, known nodes      (peer-table.ts)
 *   Acceptor        listeners, the pending-handshake caps                     (acceptor.ts)
 *   Dialer          address iteration, lookups, data-connection dials         (dialer.ts)
 *   SeedLoop        seed dials with backoff                                   (seed-loop.ts)
 *   RemoteMonitors  mon1/mon0 multiplexing of remote ports                    (remote-monitors.ts)
 *   TieBreak        simultaneous connects between our nodes                   (tie-break.ts)
 *   NetStats        backlog watchers, refusal and failure counts              (net-stats.ts)
 *
 * What stays here is the life of a connection: made, established (up), closed (down), and the
 * node's close with its grace.
 */
import { type Observable, Subject } from 'rxjs';
import type { KillReason } from '../../errors.js';
import { type FramingFormat, REASON } from '../../protocol/constants.js';
import type { Greeting } from '../../protocol/greeting.js';
import { tcpTransports } from '../../protocol/tcp-transport.js';
import type { Transport, TransportFactory } from '../../protocol/transport.js';
import type { Clock } from '../clock.js';
import type { MonEntry } from '../kernel/kernel.js';
import { LEVEL, logText } from '../log/log.js';
import { Acceptor } from './acceptor.js';
import { Connection, type ConnectionEvents } from './connection.js';
import { Dialer } from './dialer.js';
import { NetStats } from './net-stats.js';
import type { ConnectionStats, Network, NetworkCounts, NetworkEnv, NodeStatus } from './network.js';
import { type ConnectionKind, connectionOptions, type TcpNetworkOptions } from './options.js';
import { MAX_CONNECTING_PEERS, MAX_PENDING_MESSAGES, type Peer, PeerTable } from './peer-table.js';
import { RemoteMonitors } from './remote-monitors.js';
import { SeedLoop } from './seed-loop.js';
import { TieBreak } from './tie-break.js';

export type { TcpNetworkOptions } from './options.js';
export { MAX_CONNECTING_PEERS, MAX_KNOWN_NODES, MAX_PENDING_MESSAGES } from './peer-table.js';

/** How long `close()` waits for connections still being set up to take their queued messages. */
export const CLOSE_GRACE_MS = 1000;
/** Error text of a connect refused by `MAX_CONNECTING_PEERS`. */
export const TOO_MANY_CONNECTING = REASON.TOO_MANY_CONNECTING;

export class TcpNetwork implements Network {
  private readonly status = new Subject<NodeStatus>();
  readonly nodes$ = this.status.asObservable();
  /** Known listen addresses of other nodes (seeds; the `'l` family once the DB runs). */
  readonly addresses = new Map<string, readonly string[]>();
  /** Every connection not closed yet (accepted, dialled, established, data). */
  private readonly open = new Set<Connection>();
  private closing = false;
  private readonly clock: Clock;
  private readonly framings: FramingFormat[];
  private readonly connEvents: ConnectionEvents;
  private readonly peers: PeerTable;
  private readonly netStats: NetStats;
  private readonly tieBreak: TieBreak;
  private readonly monitors: RemoteMonitors;
  private readonly acceptor: Acceptor;
  private readonly dialer: Dialer;
  private readonly seeds: SeedLoop;
  /** Shared by every connection's options (an established connection keeps the second). */
  private readonly isUp = (id: string): boolean => this.peers.get(id)?.conn !== undefined;

  constructor(
    private readonly env: NetworkEnv,
    private readonly opts: TcpNetworkOptions,
  ) {
    const clock = env.clock;
    this.clock = clock;
    const transports: TransportFactory = opts.transports ?? tcpTransports({ nodelay: opts.nodelay });
    this.framings = opts.framings.filter((f): f is FramingFormat => f === 'cbor' || f === 'json');
    const logger = opts.logger;
    this.peers = new PeerTable({
      clock,
      connectInterval: opts.connectInterval,
      maxQueueBytes: opts.maxSendBufferBytes,
      maxTotalBufferBytes: opts.maxTotalSendBufferBytes,
      deadlinePassed: (p) => {
        if (!p.conn) this.fail(p, REASON.CONNECT_TIMEOUT);
      },
    });
    this.netStats = new NetStats({ clock, logger, connectionTo: (id) => this.peers.get(id)?.conn });
    this.tieBreak = new TieBreak(opts.nodeId, (id) => this.peers.get(id)?.tries ?? []);
    this.monitors = new RemoteMonitors({ peers: this.peers, send: (id, msg) => this.send(id, msg), logger });
    this.acceptor = new Acceptor({
      transports,
      hostname: opts.hostname,
      logger,
      maxPendingHandshakes: opts.maxPendingHandshakes,
      maxPendingHandshakesPerAddress: opts.maxPendingHandshakesPerAddress,
      maxConnections: opts.maxConnections,
      clock,
      staleMs: (opts.handshakeTimeout * 1000) / 4,
      openCount: () => this.open.size,
      refuse: (kind, text) => this.netStats.refuse(kind, text),
      open: (transport, label) => this.openAccepted(transport, label),
    });
    this.dialer = new Dialer({
      clock,
      transports,
      nodeId: opts.nodeId,
      connectInterval: opts.connectInterval,
      monitorTimeout: opts.monitorTimeout,
      maxConnections: opts.maxConnections,
      addresses: this.addresses,
      peers: this.peers,
      lookup: env.lookup ? (id) => env.lookup!(id) : undefined,
      binds: () => this.acceptor.binds,
      openCount: () => this.open.size,
      makeRoom: () => this.makeRoom(),
      openLink: (transport, label, onGreeting) => {
        const conn: Connection = this.openConnection(transport, label, true, this.connEvents, {
          onPeerGreeting: (g) => {
            onGreeting(g);
            this.tieBreak.greeted(conn, g);
          },
        });
        return conn;
      },
      openData: (transport, label, dataconnId, events) =>
        this.openConnection(transport, label, true, events, { dataconnId }),
      dataDone: (conn) => this.open.delete(conn),
      failed: (p, text) => this.fail(p, text),
      closing: () => this.closing,
    });
    this.seeds = new SeedLoop({
      clock,
      nodeId: opts.nodeId,
      hostname: opts.hostname,
      seeds: opts.seeds,
      monitorTimeout: opts.monitorTimeout,
      logger,
      addresses: this.addresses,
      isUp: (id) => this.peers.get(id)?.conn !== undefined,
      dialling: (addr) => this.dialer.dialling(addr),
      dial: (addr, onGreeting) => this.dialer.dial(addr, onGreeting),
      selfSeed: () => env.selfSeed?.(),
    });
    this.connEvents = {
      established: (c) => this.established(c),
      message: env.receive, // straight to the node's receiver: one call less per message
      closed: (c, reason) => this.connectionClosed(c, reason),
      backlog: (c, bytes) => {
        if (c.peerId !== undefined && this.peers.get(c.peerId)?.conn === c)
          this.netStats.report(c.peerId, bytes);
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
    return this.acceptor.binds;
  }

  /** True if seeds are configured (a node without seeds has no master unless it turns global). */
  get hasSeeds(): boolean {
    return this.seeds.hasSeeds;
  }

  /** `monitor_timeout` in seconds (the global keepalive's longest retry interval). */
  get monitorTimeout(): number {
    return this.opts.monitorTimeout;
  }

  async start(): Promise<void> {
    await this.acceptor.start(this.opts.binds, this.opts.fallbackBinds);
    if (this.closing) return;
    await this.seeds.start();
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
      if (this.peers.full) {
        this.netStats.refuse(
          'connect refused',
          `connect refused: ${MAX_CONNECTING_PEERS} nodes being connected to, message dropped`,
        );
        return;
      }
      p = this.peers.ensure(nodeId);
    }
    if (p.refused) return;
    if (this.peers.enqueue(p, msg))
      this.opts.logger.log(
        LEVEL.warn,
        `${logText(nodeId, 100)}: ${p.queue.length} messages queued while connecting (at most ${MAX_PENDING_MESSAGES}, max_send_buffer_bytes), dropping more`,
      );
    this.connect(p);
  }

  sendIfUp(nodeId: string, msg: unknown[]): void {
    this.peers.get(nodeId)?.conn?.send(msg);
  }

  monitor(nodeId: string, portName: string, entry: MonEntry): () => void {
    return this.monitors.monitor(nodeId, portName, entry);
  }

  remoteKilled(src: string, name: string, reason: KillReason): void {
    this.monitors.remoteKilled(src, name, reason);
  }

  stats(): ConnectionStats[] {
    return this.peers.stats();
  }

  counts(): NetworkCounts {
    return this.netStats.counts();
  }

  peerGreeting(nodeId: string): Greeting | undefined {
    return this.peers.get(nodeId)?.conn?.session?.peerGreeting;
  }

  backlog$(nodeId: string): Observable<number> {
    return this.netStats.backlog$(nodeId);
  }

  upNodes(): string[] {
    return this.peers.upNodes();
  }

  nodeIsUp(nodeId: string): boolean | undefined {
    return this.peers.nodeIsUp(nodeId);
  }

  /** Peer objects held (connected, connecting, queued for or monitored); for tests. */
  get peerCount(): number {
    return this.peers.size;
  }

  /** Accepted connections still in their handshake; for tests. */
  get pendingHandshakes(): number {
    return this.acceptor.pending;
  }

  /** Handshakes under way whose peer's greeting claimed `nodeId`; for tests. */
  handshakesClaiming(nodeId: string): number {
    return this.tieBreak.claiming(nodeId);
  }

  /** Our dials still in their handshake; for tests. */
  get pendingDials(): number {
    return this.dialer.pending;
  }

  /** The rate limit of refusal and handshake-failure lines; tests end its interval. */
  get failures(): { flush(): void } {
    return this.netStats.limiter;
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
    const p = this.peers.ensure(nodeId);
    if (!p.conn) this.connect(p);
    this.peers.release(p);
  }

  /** True if `id` is the node last seen behind one of our seed addresses. */
  isSeedNode(id: string): boolean {
    return this.seeds.isSeedNode(id);
  }

  /** Dials a data connection (see `Dialer.dialDataConn`). */
  readonly dialDataConn: Dialer['dialDataConn'] = (nodeId, dataconnId, done) =>
    this.dialer.dialDataConn(nodeId, dataconnId, done);

  async close(): Promise<void> {
    // A send just before close(): give connections still being set up a moment to take it.
    await this.peers.settlePending(CLOSE_GRACE_MS);
    this.closing = true;
    this.acceptor.stop();
    this.seeds.stop();
    this.netStats.stop();
    const dials = this.dialer.stop();
    const ending: Promise<void>[] = [];
    const orphaned: [string, MonEntry[][]][] = [];
    for (const p of this.peers.values()) {
      this.peers.clearDeadline(p);
      p.lookup = undefined;
      if (p.queue.length > 0)
        this.opts.logger.log(
          LEVEL.warn,
          `${logText(p.id, 100)}: ${p.queue.length} message(s) dropped: the node closed before the connection was up`,
        );
      this.peers.takeQueue(p);
      orphaned.push([p.id, this.monitors.take(p)]);
      for (const c of p.tries) ending.push(c.shutdown(REASON.SHUTTING_DOWN));
      if (p.conn) ending.push(p.conn.shutdown(REASON.SHUTTING_DOWN));
    }
    // Monitors of remote ports end with the connections: they fire (pending calls error).
    for (const [id, lists] of orphaned)
      for (const list of lists) this.monitors.fire(list, ['transport_error', id, REASON.SHUTTING_DOWN]);
    for (const c of dials) ending.push(c.shutdown(REASON.SHUTTING_DOWN));
    for (const c of this.acceptor.pendingConnections()) ending.push(c.shutdown(REASON.SHUTTING_DOWN));
    ending.push(...this.acceptor.close());
    await Promise.all(ending);
    this.netStats.close();
    this.status.complete();
  }

  /** Starts the connect procedure of `p` (its deadline, then the dials). */
  private connect(p: Peer): void {
    if (p.deadline || p.refused || this.closing) return;
    if (this.peers.full) {
      // Fails after the caller is done (monitor() adds its entry after sending mon1).
      p.refused = true;
      this.netStats.refuse(
        'connect refused',
        `connect refused: ${MAX_CONNECTING_PEERS} nodes being connected to`,
      );
      queueMicrotask(() => {
        p.refused = false;
        this.fail(p, TOO_MANY_CONNECTING);
      });
      return;
    }
    // The deadline runs from the first queued message even when a handshake with this node
    // (e.g. a seed dial) is already under way: that one may fail or stall.
    this.peers.startDeadline(p);
    this.dialer.reach(p);
  }

  /** At the connection cap, for our own dial: the newest pending incoming handshake goes. */
  private makeRoom(): void {
    const newest = this.acceptor.newest();
    if (!newest) return;
    this.netStats.refuse(
      'incoming connections closed before authentication',
      `incoming connection closed before authentication: ${this.opts.maxConnections} connections open (max_connections), dialling out`,
    );
    newest.close(REASON.CONNECTION_LIMIT);
  }

  private openAccepted(transport: Transport, label: string): Connection {
    const conn: Connection = this.openConnection(transport, label, false, this.connEvents, {
      onPeerGreeting: (g) => this.tieBreak.greeted(conn, g),
      dataConnCheck: (g) => {
        if (!this.env.dataConnCheck) throw new Error(`${g.proto}: sub-protocol not supported`);
        this.env.dataConnCheck(g, g.nodeId);
      },
    });
    return conn;
  }

  /** A new connection on `transport`, counted as open until it ends. */
  private openConnection(
    transport: Transport,
    label: string,
    outgoing: boolean,
    events: ConnectionEvents,
    kind: ConnectionKind,
  ): Connection {
    const options = connectionOptions(this.opts, {
      ...kind,
      clock: this.clock,
      framings: this.framings,
      label,
      outgoing,
      isConnected: this.isUp,
      totalSendBufferExceeded: this.peers.sendBuffersFull,
      totalReceiveBufferExceeded: this.peers.receiveBuffersFull,
    });
    const conn = new Connection(transport, options, events);
    this.open.add(conn);
    return conn;
  }

  /** The connection's handshake ended: it no longer counts as pending or as an attempt. */
  private settle(conn: Connection): void {
    this.tieBreak.settle(conn);
    this.acceptor.settle(conn);
    this.dialer.settle(conn);
  }

  private established(conn: Connection): void {
    this.settle(conn);
    if (this.closing) {
      conn.close(REASON.SHUTTING_DOWN);
      return;
    }
    const p = this.peers.ensure(conn.peerId!);
    if (p.conn && p.conn !== conn) {
      const old = p.conn;
      p.conn = undefined;
      this.lost(p, REASON.SWITCHED, true);
      old.close(REASON.SWITCHED);
    }
    p.conn = conn;
    if (this.netStats.watched(p.id)) {
      conn.watchBacklog = true;
      this.netStats.report(p.id, conn.unsentBytes);
    }
    p.lookup = undefined;
    this.peers.clearDeadline(p);
    this.peers.remember(p.id);
    // The seed hook first (the bare g_slave makes sure the seed runs the global service), then
    // the up event (whose subscribers may register with the seed as their master).
    if (this.seeds.isSeedNode(p.id)) conn.send(['', 'g_slave']);
    this.status.next({ type: 'up', node: p.id });
    if (conn.isUp && p.conn === conn) {
      for (const m of this.peers.takeQueue(p)) conn.send(m);
    }
    p.settled?.();
  }

  private connectionClosed(conn: Connection, reason: string): void {
    const from = this.acceptor.from(conn);
    this.settle(conn);
    this.open.delete(conn);
    const id = conn.peerId;
    const p = id === undefined ? undefined : this.peers.get(id);
    if (p && p.conn === conn) {
      p.conn = undefined;
      // Whatever the transport still held is gone with it.
      this.netStats.report(p.id, 0);
      if (!this.closing) {
        if (reason === REASON.HEARTBEAT_TIMEOUT) this.netStats.heartbeatTimedOut();
        this.opts.logger.log(LEVEL.info, `connection to ${logText(p.id, 100)} lost: ${logText(reason)}`);
        this.lost(p, reason, true);
        this.peers.release(p);
        if (this.seeds.isSeedNode(p.id)) this.seeds.again();
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
        reason === REASON.CONNECTION_LIMIT ||
        (greeted !== undefined &&
          (this.peers.get(greeted)?.conn !== undefined || this.tieBreak.claiming(greeted) > 0));
      const level = routine ? LEVEL.info : LEVEL.warn;
      const line = `${logText(conn.label, 300)}: handshake failed: ${logText(reason)}`;
      this.netStats.handshakeFailed(reason, level, line, from);
    }
  }

  /** A connect attempt failed: monitors fire, the queue is discarded. */
  private fail(p: Peer, text: string): void {
    if (p.conn || this.closing) return;
    this.peers.clearDeadline(p);
    p.lookup = undefined;
    this.lost(p, text, false);
    this.peers.release(p);
  }

  private lost(p: Peer, text: string, wasUp: boolean): void {
    const reason = ['transport_error', p.id, text];
    if (wasUp) this.env.dropRemoteMonitors(p.id);
    this.peers.takeQueue(p);
    p.settled?.();
    if (wasUp) this.status.next({ type: 'down', node: p.id, reason });
    this.monitors.fireAll(p, reason);
  }
}
