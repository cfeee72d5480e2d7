/**
 * Prometheus metrics of one node (text format, prom-client), served over HTTP on loopback by
 * default. Every value is read when scraped, from counters the node keeps anyway: nothing is
 * done per message. Each node has a registry of its own (never prom-client's global one).
 *
 *   GET /metrics   the metrics          other paths → 404      other methods → 405
 *   on loopback, a Host header that is no loopback name → 421 (DNS rebinding)
 *
 * Metric names (all prefixed `aemp_`; `peer` is the other node's ID):
 *   link_messages_in_total / link_messages_out_total / link_bytes_in_total /
 *   link_bytes_out_total {peer}              traffic per connection (data phase)
 *   link_up {peer}                           1 while connected, 0 while being connected
 *   link_queued_messages {peer}              messages waiting for the connection
 *   link_unsent_bytes {peer}                 written but not yet taken by the OS
 *   connections_up_total                     connections established (since serving)
 *   connections_down_total {reason}          connections lost, by reason
 *   connections_refused_total {kind}         connections and connects refused at the caps
 *   handshake_failures_total {reason}        failed handshakes, by reason
 *   heartbeat_timeouts_total                 peers declared down for silence
 *   ports / remote_monitors                  live local ports, monitors other nodes hold
 *   db_families / db_keys                    entries this node knows (merged on a global node)
 *   heap_used_bytes / rss_bytes              memory of the process
 *   event_loop_delay_seconds {stat=p50|max}  event-loop delay since the previous scrape
 *   stats_requests_total {result}            aemp::stats answered / refused (rate limit)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Subscription } from 'rxjs';
import { AempError } from '../../errors.js';
import type { Node } from '../node.js';
import { keepRoom } from './http-room.js';
import { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT } from './metrics-address.js';
import {
  LOOP_RESOLUTION_MS,
  loopDelayMs,
  MAX_STATS_LINKS,
  MAX_STATS_NAME,
  type StatsSource,
  statsRequestCounts,
} from './stats-request.js';

export interface MetricsOptions {
  /** TCP port (default 9464; 0 = any free port). */
  port?: number;
  /** Address to listen on (default 127.0.0.1: this machine only). */
  host?: string;
}

export { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT, parseMetricsAddress } from './metrics-address.js';

/** A running metrics endpoint. */
export interface MetricsHandle {
  /** The URL of the metrics (`http://host:port/metrics`). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops listening; also happens when the node closes. */
  close(): Promise<void>;
}

/** The fixed reasons reason labels are drawn from (peer-chosen texts never become labels). */
const REASONS: [RegExp, string][] = [
  [/heartbeat/i, 'heartbeat_timeout'],
  [/timed out|timeout|not completed within/i, 'timeout'],
  [/closed by peer|ECONNRESET|EPIPE|socket hang up/i, 'closed_by_peer'],
  [/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|no known address/i, 'unreachable'],
  [/TLS|certificate/i, 'tls'],
  [/auth|echo attack|signature|secret/i, 'auth'],
  [/framing/i, 'framing'],
  [/greeting|protocol|version|role/i, 'protocol'],
  [/simultaneous connection|already connected|switched connections/i, 'duplicate'],
  [/talk to myself/i, 'self'],
  [/limit|too many|overflow/i, 'limit'],
  [/shutting down|cancelled/i, 'shutdown'],
];

/** A reason text as one of a few fixed labels. */
export function reasonLabel(text: string): string {
  for (const [re, label] of REASONS) if (re.test(text)) return label;
  return 'other';
}

/** The refusal kinds the network counts, as labels. */
function kindLabel(kind: string): string {
  if (/^connect refused/.test(kind)) return 'connect';
  if (/closed before authentication/.test(kind)) return 'incoming_closed';
  if (/replaced/.test(kind)) return 'replaced';
  if (/incoming connection refused/.test(kind)) return 'incoming';
  return 'other';
}

/**
 * A registry with this node's metrics, read when collected. `stop()` ends what it watches
 * (the up/down events and the event-loop delay histogram).
 */
export function nodeMetrics(node: Node): { registry: Registry; stop(): void } {
  const src = node as unknown as StatsSource;
  const registry = new Registry();
  const registers = [registry];
  const ups = { n: 0 };
  const downs = new Map<string, number>();
  // nodes$ first replays the nodes connected now: those came up before the metrics started.
  let live = false;
  const updown: Subscription = node.nodes$.subscribe((e) => {
    if (!live) return;
    if (e.type === 'up') ups.n++;
    else {
      const label = reasonLabel(String(e.reason[2] ?? e.reason[0] ?? ''));
      downs.set(label, (downs.get(label) ?? 0) + 1);
    }
  });
  live = true;
  let loop: IntervalHistogram | undefined = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();

  /**
   * The links, bounded like the stats answer: read once per scrape (prom-client runs every
   * metric's collect in one synchronous pass) for all the per-link metrics.
   */
  let scraped: ReturnType<typeof src.network.stats> | undefined;
  const links = () => {
    if (scraped === undefined) {
      scraped = src.network
        .stats()
        .filter((c) => c.node.length <= MAX_STATS_NAME)
        .slice(0, MAX_STATS_LINKS);
      queueMicrotask(() => {
        scraped = undefined;
      });
    }
    return scraped;
  };
  const linkCounter = (name: string, help: string, pick: (c: ReturnType<typeof links>[number]) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        for (const c of links()) this.inc({ peer: c.node }, pick(c));
      },
    });
  const linkGauge = (name: string, help: string, pick: (c: ReturnType<typeof links>[number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        for (const c of links()) this.set({ peer: c.node }, pick(c));
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  /** A counter from a map of totals, labelled by `label` of each key. */
  const countsBy = (
    name: string,
    help: string,
    labelName: string,
    read: () => ReadonlyMap<string, number> | undefined,
    label: (key: string) => string,
  ) =>
    new Counter({
      name,
      help,
      labelNames: [labelName],
      registers,
      collect() {
        this.reset();
        for (const [k, v] of read() ?? []) this.inc({ [labelName]: label(k) }, v);
      },
    });

  linkCounter('aemp_link_messages_in_total', 'Messages received from the peer', (c) => c.messagesIn);
  linkCounter('aemp_link_messages_out_total', 'Messages sent to the peer', (c) => c.messagesOut);
  linkCounter('aemp_link_bytes_in_total', 'Bytes received from the peer (data phase)', (c) => c.bytesIn);
  linkCounter('aemp_link_bytes_out_total', 'Bytes sent to the peer (data phase)', (c) => c.bytesOut);
  linkGauge('aemp_link_up', '1 while connected to the peer, 0 while connecting', (c) => (c.up ? 1 : 0));
  linkGauge('aemp_link_queued_messages', 'Messages waiting for the connection', (c) => c.queued);
  linkGauge('aemp_link_unsent_bytes', 'Bytes written but not yet taken by the OS', (c) => c.unsentBytes);
  new Counter({
    name: 'aemp_connections_up_total',
    help: 'Connections established since the metrics started',
    registers,
    collect() {
      this.reset();
      this.inc(ups.n);
    },
  });
  countsBy(
    'aemp_connections_down_total',
    'Connections lost since the metrics started, by reason',
    'reason',
    () => downs,
    (k) => k,
  );
  countsBy(
    'aemp_connections_refused_total',
    'Connections and connects refused at the caps, by kind',
    'kind',
    () => src.network.counts?.().refused,
    kindLabel,
  );
  countsBy(
    'aemp_handshake_failures_total',
    'Failed handshakes, by reason',
    'reason',
    () => src.network.counts?.().handshakeFailures,
    reasonLabel,
  );
  new Counter({
    name: 'aemp_heartbeat_timeouts_total',
    help: 'Peers declared down after missing their heartbeats',
    registers,
    collect() {
      this.reset();
      this.inc(src.network.counts?.().heartbeatTimeouts ?? 0);
    },
  });
  gauge('aemp_ports', 'Live local ports', () => src.kernel.portCount);
  gauge(
    'aemp_remote_monitors',
    'Monitors other nodes hold on local ports',
    () => src.kernel.remoteMonitorCount,
  );
  gauge(
    'aemp_db_families',
    'DB families this node knows (merged on a global node)',
    () => src.db.known?.size ?? 0,
  );
  gauge('aemp_db_keys', 'DB keys this node knows (merged on a global node)', () => {
    let keys = 0;
    for (const f of src.db.known?.values() ?? []) keys += f.size;
    return keys;
  });
  gauge('aemp_heap_used_bytes', 'V8 heap in use', () => process.memoryUsage().heapUsed);
  gauge('aemp_rss_bytes', 'Resident set size of the process', () => process.memoryUsage.rss());
  new Gauge({
    name: 'aemp_event_loop_delay_seconds',
    help: 'Event-loop delay since the previous scrape',
    labelNames: ['stat'],
    registers,
    collect() {
      if (!loop) return;
      const { p50, max } = loopDelayMs(loop);
      this.set({ stat: 'p50' }, p50 / 1000);
      this.set({ stat: 'max' }, max / 1000);
      loop.reset();
    },
  });
  new Counter({
    name: 'aemp_stats_requests_total',
    help: 'aemp::stats requests answered and refused (rate limit)',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      const { answered, refused } = statsRequestCounts(node);
      this.inc({ result: 'answered' }, answered);
      this.inc({ result: 'refused' }, refused);
    },
  });

  return {
    registry,
    stop() {
      updown.unsubscribe();
      loop?.disable();
      loop = undefined;
    },
  };
}

/**
 * Connections the metrics endpoint holds that are not being answered (silent, in the middle of
 * their request line or headers, or kept alive after an answer). One more takes the place of
 * the oldest of them, so that a local client holding connections cannot lock a scraper out.
 */
export const METRICS_MAX_CONNECTIONS = 64;

/**
 * Serves `node`'s metrics over HTTP (`GET /metrics`), on 127.0.0.1:9464 unless told otherwise.
 * Read-only: other methods get 405, other paths 404. Closes when the node closes.
 */
export async function serveMetrics(node: Node, opts: MetricsOptions = {}): Promise<MetricsHandle> {
  const host = opts.host ?? DEFAULT_METRICS_HOST;
  const wanted = opts.port ?? DEFAULT_METRICS_PORT;
  const metrics = nodeMetrics(node);
  const hostOk = loopbackHost(host) ? allowedHosts(host) : undefined;
  const server = createServer((req, res) => void answer(metrics.registry, hostOk, req, res));
  keepRoom(server, METRICS_MAX_CONNECTIONS, METRICS_MAX_CONNECTIONS * 2);
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(wanted, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    metrics.stop();
    throw new AempError(
      'ERR_BAD_ARGUMENT',
      `metrics: cannot listen on ${host}:${wanted}: ${(err as Error).message}`,
    );
  }
  server.on('error', () => {});
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : wanted;
  let closing: Promise<void> | undefined;
  const ended = node.nodes$.subscribe({ complete: () => void close() });
  function close(): Promise<void> {
    closing ??= new Promise<void>((resolve) => {
      ended.unsubscribe();
      metrics.stop();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  }
  const shown = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${shown}:${port}/metrics`, host, port, close };
}

/** True for an address only this machine reaches. */
function loopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The Host headers a loopback endpoint answers: loopback names only, so that a web page whose
 * name a DNS server points at 127.0.0.1 (DNS rebinding) cannot read the metrics.
 */
function allowedHosts(host: string): (header: string | undefined) => boolean {
  const names = new Set(['localhost', '127.0.0.1', '[::1]', host.includes(':') ? `[${host}]` : host]);
  return (header) => {
    if (header === undefined) return true;
    const name = header.trim().toLowerCase().replace(/:\d+$/, '');
    return names.has(name);
  };
}

async function answer(
  registry: Registry,
  hostOk: ((header: string | undefined) => boolean) | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  const path = (req.url ?? '').split('?')[0];
  if (hostOk && !hostOk(req.headers.host)) {
    res.writeHead(421, { 'Content-Type': 'text/plain' }).end('unknown host\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  if (path !== '/metrics') {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  try {
    const body = await registry.metrics();
    res.writeHead(200, { 'Content-Type': registry.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics unavailable\n');
  }
}
