/**
 * Node addresses: `host:port`, IPv6 hosts in brackets (`[::1]:4040`). Addresses arrive from
 * peers (a master's `g_found`, the `'l` entries slaves register), so the dialling side checks
 * them with {@link dialable} before it spends a connection on one.
 */
import { ConnectionError } from '../errors.js';

/** Longer addresses are not dialled (a DNS name is at most 253 characters). */
export const MAX_ADDRESS_LENGTH = 300;

/** Parses `host:port` / `[v6]:port` into its parts; throws `ERR_BAD_ADDRESS` otherwise. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(addr) ?? /^([^:]*):(\d+)$/.exec(addr);
  if (!m) throw new ConnectionError('ERR_BAD_ADDRESS', `bad address '${clipAddress(addr)}'`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Formats a host and port as `host:port` (IPv6 in brackets). */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * True for an address a connection can be opened to: a non-empty host of visible characters
 * without `;`, a port in 1…65535, at most {@link MAX_ADDRESS_LENGTH} characters.
 */
export function dialable(addr: unknown): addr is string {
  if (typeof addr !== 'string' || addr.length > MAX_ADDRESS_LENGTH) return false;
  // Visible ASCII and non-ASCII letters only: no controls, no spaces, no ';' (greeting syntax).
  for (let i = 0; i < addr.length; i++) {
    const c = addr.charCodeAt(i);
    if (c <= 0x20 || c === 0x3b || c === 0x7f) return false;
  }
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(addr) ?? /^([^:[\]]+):(\d{1,5})$/.exec(addr);
  if (!m) return false;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535;
}

/** An address as error or log text: peers choose it, so it is cut short. */
export function clipAddress(addr: string): string {
  return addr.length > 80 ? `${addr.slice(0, 80)}…` : addr;
}
