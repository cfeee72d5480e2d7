/**
 * The byte carrier under a connection: bytes in, bytes out, close, the remote address, and
 * the TLS upgrade where the carrier has one. TCP (tcp-transport.ts) is one implementation, an
 * in-memory pair (memory-transport.ts) another. A connection drives the AEMP handshake and the
 * data phase through this interface only; it never sees a socket.
 *
 *   dial(addr) / listen(addr, onAccept) → Transport
 *   transport.open(handlers)            bytes arrive through `handlers.data`, the end once
 *                                       through `handlers.closed(reason)`
 *   transport.write(bytes[, done])      `done` once the carrier took the bytes
 *   transport.startTls?(…)              the connection continues inside TLS
 *   transport.detach(rest)              the raw byte stream for its new owner (data connections)
 */
import type { Duplex } from 'node:stream';

/** What a transport tells its owner. */
export interface TransportHandlers {
  /**
   * Bytes from the peer (decrypted, once TLS is on). The chunk is lent for the call only: a
   * transport may read the next bytes into the same memory (dialled TCP sockets share one
   * read buffer), so whatever outlives the call must be copied.
   */
  data(chunk: Uint8Array): void;
  /** The transport ended (peer closed, error, refused); `reason` is the error text. Once. */
  closed(reason: string): void;
}

/** A connection's byte carrier. */
export interface Transport {
  /** The peer's address as seen from here (`host`), if known. */
  readonly remoteAddress: string | undefined;
  /** The peer's port, if known. */
  readonly remotePort: number | undefined;
  /** True once the carrier is connected (the peer gets what is written) and until it ends. */
  readonly connected: boolean;
  /** Bytes written that the carrier has not taken yet. */
  readonly unsentBytes: number;
  /** Starts delivering to `handlers` (bytes arriving before are kept until then). */
  open(handlers: TransportHandlers): void;
  /** Writes bytes (or a line of text); `done` runs once they were taken (or failed). */
  write(bytes: Uint8Array | string, done?: () => void): void;
  /** Writes several buffers in one go; `done` runs once the last one was taken. */
  writeAll(chunks: readonly Uint8Array[], done?: () => void): void;
  /**
   * Closes after what was written went out; resolves once the carrier is closed (the caller
   * calls `destroy()` if the peer takes too long). No handler is called any more.
   */
  end(): Promise<void>;
  /** Closes at once; no handler is called any more. */
  destroy(): void;
  /**
   * The TLS capability (spec/protocol.md §7), absent on carriers without TLS. Bytes already
   * read past the last handshake line (`pending`) belong to the TLS layer. Afterwards the
   * handlers get decrypted bytes; `secured` runs once the TLS handshake completed with the
   * peer's certificate verified against ours (undefined), or with the reason it was rejected.
   * A TLS failure before that ends the transport with its reason.
   */
  startTls?(
    certPem: string,
    client: boolean,
    pending: Uint8Array,
    secured: (rejected?: string) => void,
  ): void;
  /**
   * Stops delivering to the handlers and hands the byte stream to a new owner (paused, inside
   * TLS if TLS is on, `rest` put back in front). The transport is no longer used after this.
   */
  detach(rest: Uint8Array): Duplex;
}

/** How a network reaches other nodes and is reached. */
export interface TransportFactory {
  /** Starts a connection to `addr` (`host:port`); failures end it through `closed`. */
  dial(addr: string): Transport;
  /**
   * Listens on `addr` (port 0 = any); resolves with the bound address (`host:port`) and a
   * close function once listening. Rejects with a ConnectionError `ERR_BIND_FAILED`
   * (its `cause.code` is `EADDRINUSE` when the address is taken).
   */
  listen(addr: string, onAccept: (t: Transport) => void): Promise<Listener>;
}

/** A listening endpoint. */
export interface Listener {
  readonly bound: string;
  close(): Promise<void>;
}
