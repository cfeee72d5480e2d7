/**
 * What a node needs from its network layer (implemented by `TcpNetwork` over any transport),
 * and what the network gets from the node when it is built (`NetworkEnv`).
 */
import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import type { KillReason } from '../../errors.js';
import type { Greeting } from '../../protocol/greeting.js';
import type { HandshakeSession } from '../../protocol/handshake.js';
import type { Clock } from '../clock.js';
import type { Remote } from '../kernel/kernel.js';

/**
 * The node's side of its network, handed over when the network is built (components.ts):
 * where messages go, whom to ask for addresses, and the node's clock.
 */
export interface NetworkEnv {
  /** The node's clock: every deadline, spacing, backoff and heartbeat of the network. */
  readonly clock: Clock;
  /** A message `[PORTNAME, …]` from node `src` (called unbound: each connection calls it directly). */
  readonly receive: (src: string, msg: unknown[]) => void;
  /** Node `src` went down: its monitors of our ports are gone. */
  dropRemoteMonitors(src: string): void;
  /** Looks up listener addresses of a node not known yet (`g_find`, or the `'l` family). */
  lookup?(nodeId: string): Promise<readonly string[] | null>;
  /** One of our seed addresses turned out to be ourselves. */
  selfSeed?(): void;
  /**
   * An incoming data connection (`aemp-dataconn`, spec/protocol.md §13) authenticated: throws
   * to refuse it before our auth line goes out. Unset: every data connection is refused.
   */
  dataConnCheck?(g: Greeting, peerId: string): void;
  /** The raw stream of an accepted data connection. */
  dataConnAccepted?(stream: Duplex, session: HandshakeSession): void;
}

/** A connection to a node came up or went down (`mon_nodes`). Up and down alternate per node. */
export type NodeStatus = { type: 'up'; node: string } | { type: 'down'; node: string; reason: KillReason };

/** Traffic of one connection (data phase only) and what waits to be sent to that node. */
export interface ConnectionStats {
  /** The other node. */
  readonly node: string;
  /** True while the connection is established; false while the node is being connected. */
  readonly up: boolean;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Messages waiting for the connection to come up. */
  readonly queued: number;
  /** Bytes written to the socket but not yet taken by the operating system. */
  readonly unsentBytes: number;
}

/** Totals since the network started (read by metrics and the stats request). */
export interface NetworkCounts {
  /** Connections and connects refused at the caps, by kind. */
  readonly refused: ReadonlyMap<string, number>;
  /** Failed handshakes by reason text (the first 64 texts; later ones count under `other`). */
  readonly handshakeFailures: ReadonlyMap<string, number>;
  /** Connections ended because the peer stayed silent for its heartbeat misses. */
  readonly heartbeatTimeouts: number;
}

export interface Network extends Remote {
  /** Up/down events of connections to other nodes. */
  readonly nodes$: Observable<NodeStatus>;
  /** IDs of nodes with an established connection. */
  upNodes(): string[];
  /** True if connected, false if known but not connected, undefined if unknown. */
  nodeIsUp(nodeId: string): boolean | undefined;
  /** A remote port we monitor died (`kil0` from `src`). */
  remoteKilled(src: string, name: string, reason: KillReason): void;
  /** The bound listener addresses (`host:port`) once listening. */
  readonly binds: readonly string[];
  /** Counters of every established or pending connection. */
  stats(): ConnectionStats[];
  /**
   * Bytes written to the connection to `nodeId` and not yet taken by the operating system: the
   * current value at once, then each change; 0 while not connected; 0 and complete on close.
   */
  backlog$(nodeId: string): Observable<number>;
  /** Refusals, failed handshakes and heartbeat timeouts so far. */
  counts?(): NetworkCounts;
  /** The greeting of the peer on the established connection to `nodeId` (aemp or Perl keys). */
  peerGreeting?(nodeId: string): Greeting | undefined;
  /** Binds listeners and starts seeds. */
  start(): Promise<void>;
  /** Closes listeners and connections. */
  close(): Promise<void>;
}
