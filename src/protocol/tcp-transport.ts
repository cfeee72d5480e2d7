/**
 * The TCP (and TLS) carrier: listening, dialling, socket options and the TLS upgrade in the
 * middle of a handshake, behind the `Transport` interface (transport.ts). No protocol logic
 * and no timers here.
 */
import { type ConnectOpts, createServer, type Server, Socket, type SocketConstructorOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { ConnectionError } from '../errors.js';
import { clipAddress, joinHostPort, splitHostPort } from './address.js';
import { REASON } from './constants.js';
import type { Listener, Transport, TransportFactory, TransportHandlers } from './transport.js';

/** Options of the TCP transport factory. */
export interface TcpTransportOptions {
  /** Nagle off (TCP_NODELAY) unless false. */
  readonly nodelay: boolean;
}

/** The TCP transports of a node: dialled and accepted sockets with the AEMP socket options. */
export function tcpTransports(opts: TcpTransportOptions): TransportFactory {
  return {
    dial(addr) {
      return dialTcp(addr, opts.nodelay);
    },
    async listen(addr, onAccept): Promise<Listener> {
      const { server, bound } = await listenTcp(addr, (socket) => {
        tuneSocket(socket, opts.nodelay);
        onAccept(new TcpTransport(socket));
      });
      return {
        bound,
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    },
  };
}

const ignore = (): void => {};

/** The transport a socket belongs to, read by the socket listeners shared by all transports. */
const OWNER = Symbol('aemp.transport');
type Owned = Duplex & { [OWNER]?: TcpTransport | undefined };

/**
 * What dialled sockets read into: one buffer for all of them (Node's `onread`). A read is
 * taken whole before the next one starts (the decoders copy what they keep), so no socket
 * needs a buffer of its own, and no read allocates one.
 */
const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024);

/** A TCP socket (and, after `startTls`, the TLS socket on it) as a `Transport`. */
export class TcpTransport implements Transport {
  // One listener of each kind for all sockets (a listener runs with `this` = the socket): an
  // established connection holds no functions of its own here.
  private static readonly onEarlyError = function (this: Owned, err: Error): void {
    const t = this[OWNER];
    if (t) t.early ??= err.message;
  };
  private static readonly onData = function (this: Owned, chunk: Uint8Array): void {
    const t = this[OWNER];
    if (t && !t.done) t.handlers?.data(chunk);
  };
  /**
   * A dialled socket's read (`onread`, into READ_BUFFER): to its transport while it reads
   * directly; a socket handed over (`detach`) or upgraded to TLS gets a copy on its readable
   * side, as a socket without `onread` would.
   */
  static readonly onRead = function (this: Owned, n: number, buf: Buffer): boolean {
    const t = this[OWNER];
    if (t?.readsDirect) {
      if (!t.done) t.handlers?.data(buf.subarray(0, n));
      return true;
    }
    return this.push(Buffer.from(buf.subarray(0, n)));
  };
  private static readonly onError = function (this: Owned, err: Error): void {
    this[OWNER]?.finish(err.message);
  };
  private static readonly onClose = function (this: Owned): void {
    this[OWNER]?.finish(REASON.CLOSED_BY_PEER);
  };

  private socket: Socket;
  private readonly raw: Socket;
  private handlers: TransportHandlers | undefined;
  /** Set once the handlers are gone (ended, destroyed or detached). */
  private done = false;
  /** Reads come through `onRead` straight to the handlers (a dialled socket before any TLS). */
  private readsDirect: boolean;
  /** An error before `open()`: reported then. */
  private early: string | undefined;
  private onTlsError: ((err: Error) => void) | undefined;

  constructor(socket: Socket, readsDirect = false) {
    this.raw = this.socket = socket;
    this.readsDirect = readsDirect;
    (socket as Owned)[OWNER] = this;
    socket.on('error', TcpTransport.onEarlyError);
  }

  get remoteAddress(): string | undefined {
    return this.raw.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.raw.remotePort;
  }

  get connected(): boolean {
    return !this.raw.connecting && !this.raw.destroyed;
  }

  get unsentBytes(): number {
    return this.socket.writableLength;
  }

  open(handlers: TransportHandlers): void {
    this.handlers = handlers;
    const s = this.raw;
    s.off('error', TcpTransport.onEarlyError);
    s.on('error', TcpTransport.onError);
    s.on('close', TcpTransport.onClose);
    if (!this.readsDirect) s.on('data', TcpTransport.onData);
    if (this.early !== undefined) this.finish(this.early);
  }

  /** The carrier ended on its own: one `closed`, then nothing. */
  private finish(reason: string): void {
    if (this.done) return;
    const h = this.handlers;
    this.destroy();
    h?.closed(reason);
  }

  write(bytes: Uint8Array | string, done?: () => void): void {
    this.socket.write(bytes, done);
  }

  writeAll(chunks: readonly Uint8Array[], done?: () => void): void {
    const s = this.socket;
    s.cork();
    for (let i = 0; i < chunks.length; i++) s.write(chunks[i]!, i === chunks.length - 1 ? done : undefined);
    s.uncork();
  }

  /** Our listeners go; errors from here on are ignored. */
  private release(): void {
    this.done = true;
    this.handlers = undefined;
    for (const s of new Set([this.socket, this.raw])) {
      s.removeAllListeners();
      s.on('error', ignore);
    }
  }

  end(): Promise<void> {
    if (this.done) return Promise.resolve();
    this.release();
    const socket = this.socket;
    return new Promise((resolve) => {
      socket.once('close', () => {
        if (socket !== this.raw) this.raw.destroy();
        resolve();
      });
      socket.end();
    });
  }

  destroy(): void {
    if (!this.done) this.release();
    this.socket.destroy();
    this.raw.destroy();
  }

  startTls(
    certPem: string,
    client: boolean,
    pending: Uint8Array,
    secured: (rejected?: string) => void,
  ): void {
    this.raw.off('data', TcpTransport.onData);
    this.readsDirect = false;
    const tls = upgradeTls(this.raw, certPem, client, pending);
    (tls as Owned)[OWNER] = this;
    this.socket = tls;
    let up = false;
    this.onTlsError = (err: Error & { code?: string }) =>
      this.finish(up ? err.message : tlsHandshakeErrorText(tls, err));
    tls.on('error', this.onTlsError);
    tls.on('close', TcpTransport.onClose);
    tls.on('data', TcpTransport.onData);
    tls.once(client ? 'secureConnect' : 'secure', () => {
      up = true;
      if (!this.done) secured(peerCertificateError(tls));
    });
  }

  detach(rest: Uint8Array): Duplex {
    const stream = this.socket;
    const raw = this.raw;
    stream.pause();
    this.done = true;
    this.handlers = undefined;
    for (const s of new Set([stream, raw])) {
      s.off('data', TcpTransport.onData);
      s.off('error', TcpTransport.onError);
      s.off('close', TcpTransport.onClose);
      if (this.onTlsError) s.off('error', this.onTlsError);
      (s as Owned)[OWNER] = undefined;
    }
    if (rest.length > 0) stream.unshift(Buffer.from(rest.buffer, rest.byteOffset, rest.length));
    if (stream !== raw) {
      raw.on('error', ignore);
      stream.once('close', () => raw.destroy());
    }
    return stream;
  }
}

/** Listens on `host:port` (port 0 = any); resolves with the server and the bound address. */
export function listenTcp(
  addr: string,
  onSocket: (socket: Socket) => void,
): Promise<{ server: Server; bound: string }> {
  const { host, port } = splitHostPort(addr);
  return new Promise((resolve, reject) => {
    const server = createServer({ noDelay: true }, onSocket);
    const fail = (err: Error) =>
      reject(
        new ConnectionError('ERR_BIND_FAILED', `cannot listen on ${addr}: ${err.message}`, { cause: err }),
      );
    server.once('error', fail);
    server.listen({ host, port }, () => {
      server.off('error', fail);
      const a = server.address();
      const bound = typeof a === 'object' && a ? joinHostPort(a.address, a.port) : addr;
      resolve({ server, bound });
    });
  });
}

/**
 * Starts a TCP connection to `host:port`, as a transport whose socket reads into the shared
 * buffer. Errors arrive as the socket's `error` event, a bad address too (no port, a port
 * outside 1…65535, stray characters): addresses come from peers, and a throw here would escape
 * from whatever timer or promise dialled.
 */
export function dialTcp(addr: string, nodelay: boolean): TcpTransport {
  // `onread` is taken by the constructor (net.connect passes it there too), though the types
  // list it only among the connect options.
  const reads: ConnectOpts = { onread: { buffer: READ_BUFFER, callback: TcpTransport.onRead } };
  const socket = new Socket(reads as SocketConstructorOpts);
  const transport = new TcpTransport(socket, true);
  tuneSocket(socket, nodelay);
  try {
    const { host, port } = splitHostPort(addr);
    if (port < 1 || port > 65535)
      throw new ConnectionError('ERR_BAD_ADDRESS', `bad port in '${clipAddress(addr)}'`);
    socket.connect({ host, port });
  } catch (err) {
    process.nextTick(() => socket.destroy(err as Error));
  }
  return transport;
}

/** Applies the AEMP socket options: keepalive always, Nagle off unless `nodelay` is false. */
export function tuneSocket(socket: Socket, nodelay: boolean): void {
  socket.setKeepAlive(true);
  socket.setNoDelay(nodelay);
}

/**
 * Upgrades a connected socket to TLS (spec/protocol.md §7): the configured PEM is both our
 * certificate and the only trusted CA, the peer must present a certificate, no host name
 * check. `pending` holds bytes already read from the socket that belong to the TLS layer.
 *
 * The caller MUST check `peerCertificateError` once the TLS handshake completed: on the server
 * side (a socket built by hand, not by a `tls.Server`) Node does not act on the verification
 * result, so a client with any certificate gets through the TLS handshake.
 */
export function upgradeTls(socket: Socket, certPem: string, client: boolean, pending: Uint8Array): TLSSocket {
  // Stop the flow first: bytes put back on a flowing socket with no 'data' listener would be
  // emitted to nobody before the TLS layer starts reading (the peer's hello often arrives in
  // the same read as its nonce line).
  socket.pause();
  if (pending.length > 0) socket.unshift(Buffer.from(pending));
  const common = { key: certPem, cert: certPem, ca: certPem, minVersion: 'TLSv1.2' as const };
  if (client) {
    return tlsConnect({ ...common, socket, rejectUnauthorized: true, checkServerIdentity: () => undefined });
  }
  return new TLSSocket(socket, { ...common, isServer: true, requestCert: true, rejectUnauthorized: true });
}

/** The verification result OpenSSL recorded for the peer's certificate (null = verified). */
type VerifyResult = () => (Error & { code?: string }) | null;

/**
 * Why the peer's certificate is not acceptable, or undefined if the peer presented one that
 * verifies against our CA. Call after the TLS handshake completed, in either role. Fails
 * closed: a result that cannot be read counts as a rejection.
 */
export function peerCertificateError(tls: TLSSocket): string | undefined {
  if (tls.getPeerX509Certificate() === undefined) return 'no certificate presented';
  // Node keeps the verification result on the native handle; only the client side (and a
  // `tls.Server`) copy it to `authorized`, so read it directly for both roles.
  const handle = (tls as unknown as { _handle?: { verifyError?: VerifyResult } })._handle;
  if (typeof handle?.verifyError !== 'function') {
    return tls.authorized ? undefined : 'verification result unavailable';
  }
  const error = handle.verifyError.call(handle);
  if (error) return describeVerifyError(error.message, error.code);
  return undefined;
}

/**
 * The reason text for an error on a TLS socket whose handshake has not completed: on the
 * client side Node refuses a certificate that does not verify by failing the socket, after
 * recording why in `authorizationError`.
 */
export function tlsHandshakeErrorText(tls: TLSSocket, err: Error & { code?: string }): string {
  const why: unknown = tls.authorizationError;
  if (why !== undefined && why !== null) {
    return `TLS peer certificate rejected: ${describeVerifyError(err.message, String(why))}`;
  }
  return `TLS handshake failed: ${err.message}`;
}

function describeVerifyError(message: string, code: string | undefined): string {
  return code && code !== message ? `${message} (${code})` : message;
}
