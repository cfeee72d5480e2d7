/**
 * The network's options (from the configuration) and the options of each connection it makes.
 */
import { DATACONN_PROTOCOL, type FramingFormat, GREETING_KEY } from '../../protocol/constants.js';
import { type Greeting, isSubProtocol } from '../../protocol/greeting.js';
import type { HandshakeOptions } from '../../protocol/handshake.js';
import type { TransportFactory } from '../../protocol/transport.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log/log.js';
import type { ConnectionOptions } from './connection.js';

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

/** What kind of connection: a node link (dialled or accepted) or a dialled data connection. */
export interface ConnectionKind {
  /** Sees the peer's greeting before authentication; throws to fail the connection. */
  readonly onPeerGreeting?: ((g: Greeting) => void) | undefined;
  /** A dialled data connection (`aemp-dataconn`) with this `dataconn_id`. */
  readonly dataconnId?: string | undefined;
  /**
   * Accepted connections: a peer may switch to `aemp-dataconn`; this runs once such a peer
   * authenticated, before our auth line, and throws to refuse it.
   */
  readonly dataConnCheck?: ((g: Greeting) => void) | undefined;
}

/** What a connection's options depend on besides the network's options. */
export interface ConnectionContext extends ConnectionKind {
  readonly clock: Clock;
  readonly framings: readonly FramingFormat[];
  /** The dialled address, or the peer's address of an accepted connection. */
  readonly label: string;
  readonly outgoing: boolean;
  /** True if an established connection to the node exists (called unbound). */
  readonly isConnected: (nodeId: string) => boolean;
  /** True when all connections together hold too many unsent bytes (called unbound). */
  readonly totalSendBufferExceeded: () => boolean;
  /** True when all connections together hold too many bytes of incomplete frames (called unbound). */
  readonly totalReceiveBufferExceeded: () => boolean;
}

/** The options of one connection of the network. */
export function connectionOptions(o: TcpNetworkOptions, c: ConnectionContext): ConnectionOptions {
  const handshake: HandshakeOptions = {
    nodeId: o.nodeId,
    secret: o.secret,
    hasCert: o.cert !== undefined,
    authOffer: o.authOffer,
    authAccept: o.authAccept,
    framings: c.framings,
    peerAddr: c.label,
    extraKeys: {
      [GREETING_KEY.TIEBREAK]: '1',
      ...(o.heartbeatInterval > 0 ? { [GREETING_KEY.HEARTBEAT]: String(o.heartbeatInterval) } : {}),
    },
    isConnected: c.isConnected,
    ...(c.onPeerGreeting ? { onPeerGreeting: c.onPeerGreeting } : {}),
    role: c.outgoing ? 'dialled' : 'accepted',
    strictPeers: o.strictPeers,
  };
  if (c.dataconnId !== undefined) {
    // Perl's data-connection dialler greets with its own protocol and only this key.
    handshake.extraKeys = { [GREETING_KEY.DATACONN_ID]: c.dataconnId };
    handshake.subProtocol = DATACONN_PROTOCOL;
    delete handshake.isConnected;
  }
  const check = c.dataConnCheck;
  if (check) {
    handshake.acceptSubProtocols = [DATACONN_PROTOCOL];
    handshake.onPeerVerified = (g) => {
      if (isSubProtocol(g.proto)) check(g);
    };
  }
  return {
    handshake,
    clock: c.clock,
    certPem: o.cert,
    // Perl's read inactivity limit, never longer than the whole handshake may take.
    handshakeTimeoutMs: Math.min(o.monitorTimeout, o.handshakeTimeout) * 1000,
    handshakeDeadlineMs: o.handshakeTimeout * 1000,
    maxFrameBytes: o.maxFrameBytes,
    maxFrameItems: o.maxFrameItems,
    maxSendBufferBytes: o.maxSendBufferBytes,
    totalSendBufferExceeded: c.totalSendBufferExceeded,
    totalReceiveBufferExceeded: c.totalReceiveBufferExceeded,
    label: c.label,
    outgoing: c.outgoing,
    heartbeatInterval: o.heartbeatInterval,
    heartbeatMisses: o.heartbeatMisses,
  };
}
