/**
 * The dashboard as a service a node runs itself: `services: [["aemp::dashboard", { port: 4080 }]]`
 * (or just `"aemp::dashboard"`) starts the page of the network as this node sees it, and the
 * node's `close()` stops it. Options: `port` (default 4080), `host` (default 127.0.0.1),
 * `intervalMs` (default 1000). A port that cannot be bound fails the node's start, as any
 * failing service does.
 */
import { LEVEL } from '../log/log.js';
import type { Node } from '../node.js';
import { DASHBOARD_PORT, startDashboard } from './dashboard-server.js';
import { observeNetwork } from './network-view.js';

/** The service's function name. */
export const DASHBOARD_SERVICE = 'aemp::dashboard';

export interface DashboardServiceOptions {
  port?: number;
  host?: string;
  intervalMs?: number;
}

/** The service's options, checked (a wrong one is an error naming it). */
export function dashboardServiceOptions(raw: unknown): Required<DashboardServiceOptions> {
  const out = { port: DASHBOARD_PORT, host: '127.0.0.1', intervalMs: 1000 };
  if (raw === undefined || raw === null) return out;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(`${DASHBOARD_SERVICE}: expected an options object like { "port": 4080 }`);
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o))
    if (!(key in out)) throw new Error(`${DASHBOARD_SERVICE}: unknown option ${JSON.stringify(key)}`);
  if (o.port !== undefined) {
    if (!(Number.isInteger(o.port) && (o.port as number) >= 0 && (o.port as number) <= 65535))
      throw new Error(`${DASHBOARD_SERVICE}: port: expected a port number from 0 to 65535`);
    out.port = o.port as number;
  }
  if (o.host !== undefined) {
    if (typeof o.host !== 'string' || o.host === '')
      throw new Error(`${DASHBOARD_SERVICE}: host: expected an address`);
    out.host = o.host;
  }
  if (o.intervalMs !== undefined) {
    if (!(typeof o.intervalMs === 'number' && Number.isFinite(o.intervalMs) && o.intervalMs >= 100))
      throw new Error(`${DASHBOARD_SERVICE}: intervalMs: expected at least 100`);
    out.intervalMs = o.intervalMs;
  }
  return out;
}

/** Registers the service's function on `node` (before its services run). */
export function installDashboardService(node: Node): void {
  node.register(DASHBOARD_SERVICE, async (raw?: unknown) => {
    const opts = dashboardServiceOptions(raw);
    const dashboard = await startDashboard(
      observeNetwork(node, { intervalMs: opts.intervalMs, families: true, logs: true }),
      { host: opts.host, port: opts.port },
    );
    // The node's streams complete when it closes; the page goes with it.
    node.nodes$.subscribe({ complete: () => void dashboard.close() });
    node.log(LEVEL.info, `dashboard at ${dashboard.url}`, DASHBOARD_SERVICE);
  });
}
