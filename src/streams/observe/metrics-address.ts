/**
 * The `metrics` configuration value: where a node serves its Prometheus metrics. `PORT` alone
 * listens on loopback (127.0.0.1); `HOST:PORT` and `[V6]:PORT` name the address.
 */

/** Where the metrics listen by default. */
export const DEFAULT_METRICS_HOST = '127.0.0.1';
export const DEFAULT_METRICS_PORT = 9464;

/** Parses `PORT`, `HOST:PORT` or `[V6]:PORT`; undefined if it is none of these. */
export function parseMetricsAddress(text: string): { host: string; port: number } | undefined {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = m[1] === undefined ? DEFAULT_METRICS_HOST : m[1].replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

/** Why a `metrics` value is not acceptable, or undefined. */
export function metricsAddressProblem(text: string): string | undefined {
  return parseMetricsAddress(text) ? undefined : 'must be a port or host:port (e.g. "127.0.0.1:9464")';
}
