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
  if (!m) throw new ConnectionError('ERR_CONNECT_REFUSED', `bad address '${addr}'`);
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
