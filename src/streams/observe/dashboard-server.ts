/**
 * The dashboard's HTTP server: a read-only page of the network that updates itself.
 *
 *   GET /               the page (HTML, no inline script or style)
 *   GET /dashboard.js   the page's script; /dashboard.css its style sheet; /favicon.svg
 *   GET /vendor/*.js    the graph layout (d3-force and its three dependencies, served from
 *                       node_modules as installed, never from a CDN)
 *   GET /events         Server-Sent Events: one `view` event per snapshot (dashboard-view.ts),
 *                       the latest one at once on connecting
 *
 * Anything else is 404, any other method on these paths 405. It listens on 127.0.0.1 unless
 * told otherwise, and it refuses a request whose Host header is not a loopback name or address
 * or the configured host (a web page that rebinds its own DNS name to 127.0.0.1 cannot read it).
 * Every response carries a Content-Security-Policy that allows only this server's own scripts,
 * styles and event stream, and `X-Content-Type-Options: nosniff`. The page puts peer-supplied
 * text (node IDs, DB keys and values, log lines) into the document as text only.
 *
 * At most `maxClients` event streams are open at once (more get 503), at most twice as many
 * connections plus a few exist at all (a new one takes the place of the oldest idle one, so
 * held connections cannot keep a browser out), a request must arrive within 10 s, and a client that
 * does not read falls behind by at most `maxBacklogBytes` before it is disconnected, so a stuck
 * browser cannot make the node buffer without bound.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Observable, Subscription } from 'rxjs';
import { vendorScripts } from './dashboard-assets.js';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_ICON } from './dashboard-page.js';
import { DASHBOARD_JS } from './dashboard-script.js';
import { type DashboardView, dashboardView, HISTORY_POINTS, MetricHistory } from './dashboard-view.js';
import { keepRoom } from './http-room.js';
import type { NetworkSnapshot } from './snapshot.js';

/** Port of `aemp dashboard` unless `--port` says otherwise. */
export const DASHBOARD_PORT = 4080;
/** Event streams open at once. */
export const DASHBOARD_MAX_CLIENTS = 32;
/**
 * Bytes an event-stream client may fall behind before it is disconnected: several views even
 * at their largest (dashboard-view.ts bounds one to about half a megabyte).
 */
export const DASHBOARD_MAX_BACKLOG = 4 << 20;

export interface DashboardOptions {
  /** Address to listen on. @default '127.0.0.1' */
  host?: string;
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** Open event streams at most. @default 32 */
  maxClients?: number;
  /** Bytes a client may fall behind before it is dropped. @default 4 MiB */
  maxBacklogBytes?: number;
  /** Points per sparkline. @default 60 */
  historyPoints?: number;
}

export interface DashboardServer {
  /** `http://host:port/` of the page. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Open event streams now. */
  readonly clients: number;
  /** Event-stream clients disconnected so far for falling behind. */
  readonly dropped: number;
  /** Event-stream requests refused so far because `maxClients` were open. */
  readonly refused: number;
  /** Snapshots received so far. */
  readonly updates: number;
  /** Stops listening, ends every stream and the snapshot subscription. */
  close(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

function isLoopbackName(host: string): boolean {
  const h = host.toLowerCase();
  return (
    h === 'localhost' ||
    h.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) ||
    h === '::1' ||
    h === '[::1]'
  );
}

/** The host name of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), lower case. */
export function hostOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/**
 * Whether a request with this Host header may be answered: loopback names and addresses
 * always, the configured listen host, and — when listening on every interface — any IP
 * address literal (a rebinding attack needs a DNS name; an address cannot be rebound).
 */
export function hostAllowed(header: string | undefined, listenHost: string): boolean {
  if (!header) return false;
  const h = hostOf(header);
  if (isLoopbackName(h)) return true;
  const configured = listenHost.toLowerCase();
  if (h === configured || h === `[${configured}]`) return true;
  if (configured === '0.0.0.0' || configured === '::' || configured === '') {
    return /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^\[[0-9a-f:.]+\]$/.test(h);
  }
  return false;
}

interface Client {
  res: ServerResponse;
}

/**
 * Starts the dashboard for `snapshots` (subscribed at once, until `close()`). Resolves when
 * listening; rejects if the address cannot be bound.
 */
export async function startDashboard(
  snapshots: Observable<NetworkSnapshot>,
  opts: DashboardOptions = {},
): Promise<DashboardServer> {
  const listenHost = opts.host ?? '127.0.0.1';
  const maxClients = opts.maxClients ?? DASHBOARD_MAX_CLIENTS;
  const maxBacklog = opts.maxBacklogBytes ?? DASHBOARD_MAX_BACKLOG;
  const history = new MetricHistory(opts.historyPoints ?? HISTORY_POINTS);
  const assets = new Map<string, { type: string; body: string }>([
    ['/', { type: 'text/html; charset=utf-8', body: DASHBOARD_HTML }],
    ['/dashboard.js', { type: 'text/javascript; charset=utf-8', body: DASHBOARD_JS }],
    ['/dashboard.css', { type: 'text/css; charset=utf-8', body: DASHBOARD_CSS }],
    ['/favicon.svg', { type: 'image/svg+xml', body: DASHBOARD_ICON }],
  ]);
  for (const [path, body] of vendorScripts())
    assets.set(path, { type: 'text/javascript; charset=utf-8', body });

  const clients = new Set<Client>();
  let latest: string | undefined;
  let dropped = 0;
  let refused = 0;
  let updates = 0;
  let closed = false;

  const drop = (c: Client) => {
    if (!clients.delete(c)) return;
    c.res.destroy();
  };

  /**
   * Writes one event. A client that has more than the bound still unsent when the next event
   * is due is dropped instead (so a reading client may be one event plus the bound behind).
   */
  const send = (c: Client, frame: string) => {
    if (c.res.destroyed) return drop(c);
    if (c.res.writableLength > maxBacklog) {
      dropped++;
      return drop(c);
    }
    c.res.write(frame);
  };

  const onView = (v: DashboardView) => {
    updates++;
    latest = `event: view\ndata: ${JSON.stringify(v)}\n\n`;
    for (const c of [...clients]) send(c, latest);
  };

  const reply = (res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}) => {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      Connection: 'close',
      ...extra,
    });
    res.end(text);
  };

  const openStream = (req: IncomingMessage, res: ServerResponse) => {
    if (clients.size >= maxClients) {
      refused++;
      return reply(res, 503, 'too many dashboard clients\n', { 'Retry-After': '5' });
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      Connection: 'keep-alive',
    });
    const c: Client = { res };
    clients.add(c);
    req.socket.setNoDelay(true);
    res.on('close', () => clients.delete(c));
    send(c, 'retry: 2000\n\n');
    if (latest !== undefined) send(c, latest);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (!hostAllowed(req.headers.host, listenHost)) return reply(res, 403, 'host not allowed\n');
    // The path as sent, without the query: no decoding, no normalisation, exact matches only.
    const path = (req.url ?? '').split('?', 1)[0]!;
    const asset = assets.get(path);
    if (!asset && path !== '/events') return reply(res, 404, 'not found\n');
    if (req.method !== 'GET') return reply(res, 405, 'method not allowed\n', { Allow: 'GET' });
    if (path === '/events') return openStream(req, res);
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': asset!.type,
      'Content-Length': Buffer.byteLength(asset!.body),
    });
    res.end(asset!.body);
  };

  const server: Server = createServer(handle);
  // Connections of all kinds are bounded too (event streams plus as many page loads), one that
  // does not finish its request soon is closed, and a new one takes the place of the oldest
  // idle one: held sockets cannot pile up or keep a browser out.
  const sockets = keepRoom(server, maxClients + 16, maxClients * 2 + 16);
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  // A malformed request gets the connection closed, never an exception.
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  let sub: Subscription | undefined = snapshots.subscribe({
    next: (s) => {
      let v: DashboardView;
      try {
        v = history.record(dashboardView(s));
      } catch {
        // A snapshot that cannot be shown is skipped; the next one may be fine.
        return;
      }
      onView(v);
    },
    // The page keeps showing the last picture; `close()` still ends everything.
    error: () => {},
  });

  return {
    url: `http://${shownHost}:${addr.port}/`,
    host: addr.address,
    port: addr.port,
    get clients() {
      return clients.size;
    },
    get dropped() {
      return dropped;
    },
    get refused() {
      return refused;
    },
    get updates() {
      return updates;
    },
    close(): Promise<void> {
      if (closed) return Promise.resolve();
      closed = true;
      sub?.unsubscribe();
      sub = undefined;
      for (const c of [...clients]) drop(c);
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      return done;
    },
  };
}
