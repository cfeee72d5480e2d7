/**
 * Transport-descriptor resolution for `binds` and `seeds` (spec/api.md §4.3): turns the
 * configured strings into the ordered, de-duplicated `host:port` addresses to listen on or
 * connect to.
 *
 * Accepted forms of one item (an element may hold several items separated by commas; their
 * position is their priority):
 *   `host:port`, `host port`, `host#port`, `[v6]:port`, `[v6]`, bare IPv6 (`::1`, `::1 4040`),
 *   `host` (port 0), `*:port` (every local interface), `host:*` (port 0 = OS-assigned),
 *   `""` (the host name, port 0) and `4040` (the host name, port 4040).
 * Items are trimmed of surrounding whitespace (Perl does not trim).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ConfigError, ConnectionError } from '../../errors.js';

/** One parsed item: `host` is `*`, an IP literal or a name to resolve. */
export interface TransportItem {
  readonly host: string;
  readonly port: number;
}

/** An address as returned by the resolver. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/** One local interface address, as `os.networkInterfaces()` reports it. */
export interface InterfaceAddress {
  readonly address: string;
  readonly family: string | number;
}

/** Options of `resolveDescriptors`. */
export interface ResolveDescriptorOptions {
  /** The host name used for empty and all-digit items. */
  readonly hostname: string;
  /** Resolves a host name to every address. @default dns.lookup(host, { all: true }) */
  readonly lookup?: (host: string) => Promise<readonly ResolvedAddress[]>;
  /** The local interfaces. @default os.networkInterfaces() */
  readonly interfaces?: () => NodeJS.Dict<readonly InterfaceAddress[]>;
  /** Told about names that did not resolve (they contribute nothing). @default ignore */
  readonly warn?: (message: string) => void;
  /**
   * Names that do not resolve (or resolve to no address) throw an `ERR_BIND_FAILED`
   * ConnectionError instead of contributing nothing (see `resolveBinds`). @default false
   */
  readonly strict?: boolean;
}

/**
 * Splits one element into its comma items the way Perl's `split /,/` does (trailing empty
 * items are dropped), except that a wholly empty element is one empty item (= host name).
 */
export function splitItems(element: string): string[] {
  if (element === '') return [''];
  const parts = element.split(',');
  while (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/**
 * Parses one item with AnyEvent::Socket `parse_hostport` rules (missing port → 0, port `*`
 * → 0; an empty or all-digit item means the host name). Throws ConfigError
 * `"<item>": unparsable transport descriptor (<why>)` for anything else.
 */
export function parseTransportItem(raw: string, hostname: string): TransportItem {
  const r = tryParseItem(raw, hostname);
  if (typeof r === 'string') throw new ConfigError(`"${raw}": unparsable transport descriptor (${r})`);
  return r;
}

/** Why `raw` is not a valid transport descriptor item, or undefined if it is one. */
export function transportItemProblem(raw: string): string | undefined {
  const r = tryParseItem(raw, 'localhost');
  return typeof r === 'string' ? r : undefined;
}

/** The parsed item, or the reason it does not parse. */
function tryParseItem(raw: string, hostname: string): TransportItem | string {
  let item = raw.trim();
  if (/^\d*$/.test(item)) item = item === '' ? hostname : `${hostname}:${item}`;
  let host: string;
  let rest: string;
  const v6 = /^([0-9a-fA-F:]*:[0-9a-fA-F:]*:[0-9a-fA-F.:]*)/.exec(item);
  if (v6 && isIPv6(v6[1]!)) {
    host = v6[1]!;
    rest = item.slice(host.length);
  } else if (item.startsWith('[')) {
    const m = /^\[([^[\]]+)\]/.exec(item);
    if (!m) return 'unbalanced brackets';
    host = m[1]!;
    rest = item.slice(m[0].length);
  } else {
    // Perl allows '#' inside a name here; no host name has one, so it separates the port
    const m = /^[^[\]:\s#]+/.exec(item);
    if (!m) return 'no host';
    host = m[0];
    rest = item.slice(host.length);
  }
  let portText = '0';
  if (rest !== '') {
    const m = /^(?:\s+|:|#)([^:\s]+)$/.exec(rest);
    if (!m) return 'expected host:port';
    portText = m[1]!;
  }
  if (host.includes(':') && !isIPv6(host)) return 'not an IPv6 address';
  // four dotted numbers are meant as an IPv4 address: never look them up as a host name
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host) && !isIPv4(host)) return 'not an IPv4 address';
  if (portText === '*') return { host, port: 0 };
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) return `bad port "${portText}"`;
  return { host, port: Number(portText) };
}

/** Renders `host:port`, with IPv6 addresses in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The addresses host `*` stands for: every IPv4 address outside 127.0.0.0/8, then every
 * IPv6 global unicast (first byte 0x20–0x3f) or unique-local (0xfc/0xfd) address, in
 * interface order.
 */
export function localInterfaceAddresses(ifaces: NodeJS.Dict<readonly InterfaceAddress[]>): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      const fam = String(a.family);
      if ((fam === 'IPv4' || fam === '4') && isIPv4(a.address)) {
        if (!a.address.startsWith('127.')) v4.push(a.address);
      } else if ((fam === 'IPv6' || fam === '6') && isIPv6(a.address)) {
        const first = Number.parseInt((a.address.split(':')[0] || '0').padStart(4, '0').slice(0, 2), 16);
        if ((first >= 0x20 && first <= 0x3f) || first === 0xfc || first === 0xfd)
          v6.push(normalizeIp(a.address));
      }
    }
  }
  return [...v4, ...v6];
}

/**
 * Resolves binds or seeds to `host:port` strings: each element in order, within an element
 * its comma items by position; duplicates (across the whole list) are dropped.
 *
 * Host `*` expands to `localInterfaceAddresses()`. Unlike Perl (whose `*` expands to nothing
 * when Net::Interface is missing, leaving the node without listeners), when no interface
 * address qualifies — e.g. a machine or container with loopback only — `*` falls back to
 * `127.0.0.1`, so the node still gets a listener.
 *
 * Other names go through the resolver; every returned address is used. A name that fails to
 * resolve contributes nothing (reported through `warn`), or with `strict` throws. Syntax
 * errors throw ConfigError.
 */
export async function resolveDescriptors(
  list: readonly string[] | string,
  options: ResolveDescriptorOptions,
): Promise<string[]> {
  const elements = typeof list === 'string' ? [list] : list;
  const items: TransportItem[] = [];
  for (const el of elements)
    for (const it of splitItems(String(el))) items.push(parseTransportItem(it, options.hostname));

  const lookup = options.lookup ?? defaultLookup;
  const interfaces = options.interfaces ?? (networkInterfaces as () => NodeJS.Dict<InterfaceAddress[]>);
  const perItem = await Promise.all(
    items.map(async ({ host, port }): Promise<string[]> => {
      let hosts: string[];
      if (host === '*') {
        hosts = localInterfaceAddresses(interfaces());
        if (hosts.length === 0) hosts = ['127.0.0.1'];
      } else if (isIP(host)) {
        hosts = [normalizeIp(host)];
      } else {
        try {
          hosts = (await lookup(host)).map((a) => normalizeIp(a.address));
        } catch (err) {
          const why = `cannot resolve "${host}": ${err instanceof Error ? err.message : String(err)}`;
          if (options.strict) throw bindError(host, port, why, err);
          options.warn?.(why);
          hosts = [];
        }
        if (hosts.length === 0 && options.strict)
          throw bindError(host, port, `"${host}" resolves to no address`, undefined);
      }
      return hosts.map((h) => formatHostPort(h, port));
    }),
  );
  return [...new Set(perItem.flat())];
}

/**
 * Resolves `binds`: as `resolveDescriptors`, but a host name that does not resolve (or
 * resolves to no address) is an error, so a node never silently ends up without the listeners
 * it was configured with. Throws ConnectionError `ERR_BIND_FAILED`:
 *
 *   cannot listen on "nonsense:4040": cannot resolve "nonsense": getaddrinfo ENOTFOUND nonsense
 */
export function resolveBinds(
  list: readonly string[] | string,
  options: Omit<ResolveDescriptorOptions, 'strict' | 'warn'>,
): Promise<string[]> {
  return resolveDescriptors(list, { ...options, strict: true });
}

function bindError(host: string, port: number, why: string, cause: unknown): ConnectionError {
  const item = port === 0 ? host : formatHostPort(host, port);
  return new ConnectionError('ERR_BIND_FAILED', `cannot listen on "${item}": ${why}`, {
    ...(cause === undefined ? {} : { cause }),
  });
}

async function defaultLookup(host: string): Promise<readonly ResolvedAddress[]> {
  return dnsLookup(host, { all: true });
}

/** Canonical text of an IP literal (IPv6 compressed, lower case); other input unchanged. */
function normalizeIp(ip: string): string {
  if (!isIPv6(ip) || ip.includes('%')) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}
