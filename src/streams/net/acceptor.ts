/**
 * The listeners and what they accept: connections still in their handshake are counted
 * node-wide and per remote address. A new one over a pending cap takes the place of a pending
 * one it competes with (same address at the per-address cap, any at the node-wide cap): the
 * oldest that has not sent a complete greeting line, else the oldest if it has used `staleMs`
 * of its handshake time; if there is none, the new one is closed at once. Over the cap of all
 * connections a new one is closed at once. An honest peer greets in its first packet and
 * completes its handshake in a few round trips, so a stranger holding every slot with silent
 * or trickling connections cannot lock it out, while new connections cannot push out
 * handshakes in progress (greeted) before `staleMs`.
 *
 *   start(binds, fallback)   listens on every resolved bind address (the fallback when one of
 *                            the binds is in use, see TcpNetworkOptions.fallbackBinds)
 *   accept(transport)        refused at a cap (or replacing a stale pending one), else handed
 *                            to `init.open` and counted
 *   settle(conn)             the connection's handshake ended: it no longer counts
 *   newest()                 the newest pending incoming connection (our own dials make room)
 */

import { joinHostPort } from '../../protocol/address.js';
import { REASON } from '../../protocol/constants.js';
import type { Listener, Transport, TransportFactory } from '../../protocol/transport.js';
import type { Clock } from '../clock.js';
import { LEVEL, type Logger } from '../log/log.js';
import { resolveBinds } from './binds.js';
import type { Connection } from './connection.js';

export interface AcceptorInit {
  readonly transports: TransportFactory;
  readonly hostname: string;
  readonly logger: Logger;
  /** Accepted connections in their handshake, node-wide and from one remote address. */
  readonly maxPendingHandshakes: number;
  readonly maxPendingHandshakesPerAddress: number;
  /** Connections of all kinds together. */
  readonly maxConnections: number;
  /** The node's clock and how long a greeted connection keeps its place against new ones. */
  readonly clock: Clock;
  readonly staleMs: number;
  /** Connections open now, of every kind. */
  openCount(): number;
  /** A connection refused at a cap (logged through the rate limit). */
  refuse(kind: string, text: string): void;
  /** Makes the connection of an accepted transport; `label` is the peer's address. */
  open(transport: Transport, label: string): Connection;
}

export class Acceptor {
  private readonly bound: string[] = [];
  private readonly servers: Listener[] = [];
  /** Accepted connections still in their handshake (oldest first) → remote address, accept time. */
  private readonly inbound = new Map<Connection, { from: string; since: number }>();
  /** Accepted connections still in their handshake, by remote address. */
  private readonly pendingFrom = new Map<string, number>();
  private stopped = false;

  constructor(private readonly init: AcceptorInit) {}

  /** The bound listener addresses. */
  get binds(): readonly string[] {
    return this.bound;
  }

  /** Accepted connections still in their handshake. */
  get pending(): number {
    return this.inbound.size;
  }

  /** The remote address of a pending accepted connection (undefined: not one). */
  from(conn: Connection): string | undefined {
    return this.inbound.get(conn)?.from;
  }

  async start(binds: readonly string[], fallback: readonly string[] | undefined): Promise<void> {
    try {
      await this.listen(binds);
    } catch (err) {
      if (!fallback || (err as { cause?: { code?: string } }).cause?.code !== 'EADDRINUSE') throw err;
      for (const s of this.servers.splice(0)) void s.close();
      this.bound.length = 0;
      this.init.logger.log(
        LEVEL.info,
        `${(err as Error).message}; listening on ${fallback.join(', ')} instead`,
      );
      await this.listen(fallback);
    }
  }

  private async listen(binds: readonly string[]): Promise<void> {
    const addrs = await resolveBinds(binds, { hostname: this.init.hostname });
    for (const addr of addrs) {
      const listener = await this.init.transports.listen(addr, (t) => this.accept(t));
      if (this.stopped) {
        void listener.close();
        return;
      }
      this.servers.push(listener);
      this.bound.push(listener.bound);
    }
  }

  private accept(transport: Transport): void {
    if (this.stopped) {
      transport.destroy();
      return;
    }
    const o = this.init;
    const from = transport.remoteAddress ?? '?';
    let full = this.full(from);
    // At most both pending caps make room, one connection each.
    for (let round = 0; round < 2 && full?.pending; round++) {
      const stale = this.stalest(full.perAddress ? from : undefined);
      if (stale === undefined) break;
      o.refuse(
        'pending connections replaced',
        `incoming connection closed before authentication: ${full.text}, a new one takes its place`,
      );
      stale.close(REASON.CONNECTION_LIMIT);
      full = this.full(from);
    }
    if (full !== undefined) {
      transport.destroy();
      o.refuse('incoming connection refused', `incoming connection refused: ${full.text}`);
      return;
    }
    const conn = o.open(transport, joinHostPort(from, transport.remotePort ?? 0));
    this.inbound.set(conn, { from, since: o.clock.now() });
    this.pendingFrom.set(from, (this.pendingFrom.get(from) ?? 0) + 1);
  }

  /** The cap a new connection from `from` would exceed, if any. */
  private full(from: string): { text: string; pending: boolean; perAddress: boolean } | undefined {
    const o = this.init;
    if (this.inbound.size >= o.maxPendingHandshakes)
      return {
        text: `${o.maxPendingHandshakes} handshakes pending (max_pending_handshakes)`,
        pending: true,
        perAddress: false,
      };
    if ((this.pendingFrom.get(from) ?? 0) >= o.maxPendingHandshakesPerAddress)
      return {
        text: `${o.maxPendingHandshakesPerAddress} handshakes pending from ${from} (max_pending_handshakes_per_address)`,
        pending: true,
        perAddress: true,
      };
    if (o.openCount() >= o.maxConnections)
      return {
        text: `${o.maxConnections} connections open (max_connections)`,
        pending: false,
        perAddress: false,
      };
    return undefined;
  }

  /**
   * The pending connection (from `from`, if given) a new one may replace: the oldest without a
   * greeting line, else the oldest if it has waited `staleMs` or more (the map keeps accept
   * order: the first match is the oldest).
   */
  private stalest(from: string | undefined): Connection | undefined {
    let oldest: { conn: Connection; since: number } | undefined;
    for (const [conn, p] of this.inbound) {
      if (from !== undefined && p.from !== from) continue;
      if (conn.greetedId === undefined) return conn;
      oldest ??= { conn, since: p.since };
    }
    const stale = this.init.clock.now() - this.init.staleMs;
    return oldest !== undefined && oldest.since <= stale ? oldest.conn : undefined;
  }

  /** `conn` no longer counts as a pending accepted connection. */
  settle(conn: Connection): void {
    const from = this.inbound.get(conn)?.from;
    if (from === undefined) return;
    this.inbound.delete(conn);
    const n = (this.pendingFrom.get(from) ?? 1) - 1;
    if (n > 0) this.pendingFrom.set(from, n);
    else this.pendingFrom.delete(from);
  }

  /** The newest accepted connection still in its handshake. */
  newest(): Connection | undefined {
    let newest: Connection | undefined;
    for (const c of this.inbound.keys()) newest = c;
    return newest;
  }

  /** Accepted connections still in their handshake. */
  pendingConnections(): Connection[] {
    return [...this.inbound.keys()];
  }

  /** Accepts nothing more (the node is closing). */
  stop(): void {
    this.stopped = true;
  }

  /** Closes the listeners. */
  close(): Promise<void>[] {
    return this.servers.map((s) => s.close());
  }
}
