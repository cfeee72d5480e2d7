/**
 * Our dials: a node's known addresses are tried in order, the first at once and the next ones
 * spaced (spec/protocol.md §2.2) while its connect deadline runs; a node with no known address
 * is looked up first (`g_find` to the master, or the `'l` family). Each dial counts as a
 * connect attempt for its node (`Peer.tries`) until its handshake ends. Data connections
 * (`aemp-dataconn`, §13) are dialled here too.
 */
import type { Duplex } from 'node:stream';
import { dialable } from '../../protocol/address.js';
import { REASON } from '../../protocol/constants.js';
import type { Greeting } from '../../protocol/greeting.js';
import type { Transport, TransportFactory } from '../../protocol/transport.js';
import type { Clock, Timer } from '../clock.js';
import { logText } from '../log/log.js';
import type { Connection, ConnectionEvents } from './connection.js';
import type { Peer, PeerTable } from './peer-table.js';

export interface DialerInit {
  readonly clock: Clock;
  readonly transports: TransportFactory;
  readonly nodeId: string;
  /** Seconds (`connect_interval`, `monitor_timeout`): they set the spacing of addresses. */
  readonly connectInterval: number;
  readonly monitorTimeout: number;
  /** Connections of all kinds together: at the cap, a dial first makes room. */
  readonly maxConnections: number;
  /** Known listen addresses of other nodes (seeds; the `'l` family once the DB runs). */
  readonly addresses: Map<string, readonly string[]>;
  readonly peers: PeerTable;
  /** Looks up the addresses of a node not in `addresses`. */
  readonly lookup: ((nodeId: string) => Promise<readonly string[] | null>) | undefined;
  /** Our own listen addresses (a data connection to ourselves). */
  binds(): readonly string[];
  /** Connections open now, of every kind. */
  openCount(): number;
  /** At the connection cap: closes the newest incoming connection in its handshake. */
  makeRoom(): void;
  /** A node-link connection on a dialled transport; `onGreeting` sees the peer's greeting. */
  openLink(transport: Transport, label: string, onGreeting: (g: Greeting) => void): Connection;
  /** A data connection on a dialled transport, greeting with `dataconnId`. */
  openData(transport: Transport, label: string, dataconnId: string, events: ConnectionEvents): Connection;
  /** A connection made by `openData` ended or was handed over. */
  dataDone(conn: Connection): void;
  /** The connect procedure of `p` failed with `text`. */
  failed(p: Peer, text: string): void;
  /** True once the network is closing. */
  closing(): boolean;
}

export class Dialer {
  /** Dialled connections still in their handshake (labelled with the dialled address). */
  private readonly outgoing = new Set<Connection>();
  /** The peer object a dialled connection counts as a connect attempt for. */
  private readonly attemptOf = new Map<Connection, Peer>();
  /** Data connections we dialled that are still in their handshake. */
  private readonly dataDials = new Set<Connection>();
  /** The spacing timers of address iteration. */
  private readonly timers = new Set<Timer>();

  constructor(private readonly init: DialerInit) {}

  /** Our dials (node links) still in their handshake. */
  get pending(): number {
    return this.outgoing.size;
  }

  /** True while one of our dials to `addr` is in its handshake. */
  dialling(addr: string): boolean {
    for (const c of this.outgoing) if (c.label === addr) return true;
    return false;
  }

  /**
   * Dials `p`'s node (its connect deadline runs): its known addresses, else those looked up.
   * Nothing happens while a dial to the node is under way already.
   */
  reach(p: Peer): void {
    if (p.tries.size > 0) return;
    // Always dial, even while the node's greeting arrived on an incoming connection: that
    // claim is unauthenticated (anyone can send it), and a real simultaneous connect is
    // settled by the tie-break.
    const known = this.init.addresses.get(p.id);
    if (known && known.length > 0) this.tryAddresses(p, known);
    else if (this.init.lookup) {
      const token = {};
      p.lookup = token;
      const done = (addrs: readonly string[] | null) => {
        // Stale: the connect procedure failed (or succeeded) meanwhile.
        if (p.lookup !== token) return;
        p.lookup = undefined;
        if (p.conn || this.init.closing()) this.init.peers.release(p);
        else {
          // A lookup's answer is a peer's word: only addresses that can be dialled, and a few.
          const usable = addrs ? usableAddresses(addrs) : [];
          if (usable.length > 0) this.tryAddresses(p, usable);
          else this.init.failed(p, REASON.NO_KNOWN_ADDRESS);
        }
      };
      this.init.lookup(p.id).then(done, () => done(null));
    } else queueMicrotask(() => this.init.failed(p, REASON.NO_KNOWN_ADDRESS));
  }

  /** Tries addresses in order: the first at once, the next ones spaced (protocol.md §2.2). */
  private tryAddresses(p: Peer, addrs: readonly string[]): void {
    const { connectInterval: ci, monitorTimeout: mt } = this.init;
    const spacing = Math.max(0.4, Math.min(ci, (mt - ci) / addrs.length));
    const next = (i: number) => {
      // Addresses are tried while the connect procedure runs (its deadline).
      if (p.conn || !p.deadline || this.init.closing() || i >= addrs.length) return;
      this.dial(addrs[i]!, undefined, p);
      if (i + 1 < addrs.length) {
        const t = this.init.clock.timeout(
          () => {
            this.timers.delete(t);
            next(i + 1);
          },
          spacing * (0.9 + 0.1 * Math.random()) * 1000,
        );
        this.timers.add(t);
      }
    };
    next(0);
  }

  /**
   * Dials `addr` for a node link. `onGreeting` sees the peer's greeting first (and may throw);
   * the dial counts as an attempt for `p`, or for the node the greeting names.
   */
  dial(addr: string, onGreeting?: (g: Greeting) => void, p?: Peer): Connection {
    // Our own dials are not refused at the connection cap: the newest pending incoming
    // handshake makes room instead.
    if (this.init.openCount() >= this.init.maxConnections) this.init.makeRoom();
    const conn: Connection = this.init.openLink(this.init.transports.dial(addr), addr, (g) => {
      onGreeting?.(g);
      if (!this.attemptOf.has(conn)) this.attempt(conn, this.init.peers.ensure(g.nodeId));
    });
    if (p) this.attempt(conn, p);
    this.outgoing.add(conn);
    return conn;
  }

  private attempt(conn: Connection, p: Peer): void {
    this.attemptOf.set(conn, p);
    p.addTry(conn);
  }

  /** `conn`'s handshake ended: it no longer counts as a dial or a connect attempt. */
  settle(conn: Connection): void {
    this.outgoing.delete(conn);
    const p = this.attemptOf.get(conn);
    if (p) {
      p.deleteTry(conn);
      this.attemptOf.delete(conn);
      this.init.peers.release(p);
    }
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
      if (this.init.closing()) return finish(REASON.SHUTTING_DOWN);
      if (i >= addrs.length) return finish(lastError);
      const addr = addrs[i]!;
      const conn = this.init.openData(this.init.transports.dial(addr), addr, dataconnId, {
        established: (c) => c.close('not a data connection'),
        message: () => {},
        closed: (c, reason) => {
          this.dataDials.delete(c);
          this.init.dataDone(c);
          if (current === c) tryFrom(addrs, i + 1, `${addr}: ${reason}`);
        },
        handover: (c, session, stream) => {
          this.dataDials.delete(c);
          this.init.dataDone(c);
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
    };
    const start = (addrs: readonly string[] | null | undefined) => {
      if (!addrs || addrs.length === 0) finish(`${nodeId}: no known address`);
      else tryFrom(addrs, 0, `${nodeId}: no address answered`);
    };
    const known = nodeId === this.init.nodeId ? this.init.binds() : this.init.addresses.get(nodeId);
    if (known && known.length > 0) start(known);
    else if (this.init.lookup)
      this.init.lookup(nodeId).then(
        (a) => start(a && usableAddresses(a)),
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

  /** Stops address iteration; returns the dials still in their handshake, for shutdown. */
  stop(): Connection[] {
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    return [...this.outgoing, ...this.dataDials];
  }
}

/** Addresses of one node tried at most: a lookup answer can be any list. */
export const MAX_TRIED_ADDRESSES = 16;

/** The dialable addresses of a looked-up list, at most {@link MAX_TRIED_ADDRESSES}. */
export function usableAddresses(addrs: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const a of addrs) {
    if (dialable(a) && !out.includes(a)) out.push(a);
    if (out.length >= MAX_TRIED_ADDRESSES) break;
  }
  return out;
}
