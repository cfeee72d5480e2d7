/**
 * The listeners and what they accept: connections still in their handshake are counted
 * node-wide and per remote address, and a new one over a cap (or over the cap of all
 * connections) is closed at once.
 *
 *   start(binds, fallback)   listens on every resolved bind address (the fallback when one of
 *                            the binds is in use, see TcpNetworkOptions.fallbackBinds)
 *   accept(transport)        refused at a cap, else handed to `init.open` and counted
 *   settle(conn)             the connection's handshake ended: it no longer counts
 *   newest()                 the newest pending incoming connection (our own dials make room)
 */

import { joinHostPort } from '../../protocol/address.js';
import type { Listener, Transport, TransportFactory } from '../../protocol/transport.js';
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
  /** Accepted connections still in their handshake → the remote address. */
  private readonly inbound = new Map<Connection, string>();
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
    return this.inbound.get(conn);
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
    const fromNow = this.pendingFrom.get(from) ?? 0;
    // The connection just accepted is the newest unauthenticated one: it goes first.
    const full =
      this.inbound.size >= o.maxPendingHandshakes
        ? `${o.maxPendingHandshakes} handshakes pending (max_pending_handshakes)`
        : fromNow >= o.maxPendingHandshakesPerAddress
          ? `${o.maxPendingHandshakesPerAddress} handshakes pending from ${from} (max_pending_handshakes_per_address)`
          : o.openCount() >= o.maxConnections
            ? `${o.maxConnections} connections open (max_connections)`
            : undefined;
    if (full !== undefined) {
      transport.destroy();
      o.refuse('incoming connection refused', `incoming connection refused: ${full}`);
      return;
    }
    const conn = o.open(transport, joinHostPort(from, transport.remotePort ?? 0));
    this.inbound.set(conn, from);
    this.pendingFrom.set(from, fromNow + 1);
  }

  /** `conn` no longer counts as a pending accepted connection. */
  settle(conn: Connection): void {
    const from = this.inbound.get(conn);
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
