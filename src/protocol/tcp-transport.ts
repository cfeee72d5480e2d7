/**
 * The TCP (and TLS) carrier: listening, dialling, socket options and the TLS upgrade in the
 * middle of a handshake. No protocol logic and no timers here.
 */
import { createServer, type Server, Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { ConnectionError } from '../errors.js';

/** Parses `host:port` / `[v6]:port` into its parts. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(addr) ?? /^([^:]*):(\d+)$/.exec(addr);
  if (!m) throw new ConnectionError('ERR_BAD_ADDRESS', `bad address '${addr}'`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Formats a host and port as `host:port` (IPv6 in brackets). */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
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

/** Starts a TCP connection to `host:port`. Errors arrive as the socket's `error` event. */
export function dialTcp(addr: string): Socket {
  const { host, port } = splitHostPort(addr);
  const socket = new Socket();
  socket.connect({ host, port });
  return socket;
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
