/**
 * `aemp dashboard [NODE] [--port N] [--host H]`: serves a live page of the network (nodes and
 * links as a graph, rates, backlog, memory, event-loop delay, DB families, a log tail) at
 * http://127.0.0.1:4080/ until SIGINT or SIGTERM (then exit status 0). The pictures come from
 * the tool's own node (observeNetwork); with NODE, that node is connected to first.
 *
 * The page is read-only and listens on loopback unless `--host` says otherwise; see
 * streams/observe/dashboard-server.ts for what it serves and refuses.
 */
import { DASHBOARD_PORT, type DashboardServer, observeNetwork, startDashboard } from '../index.js';
import { type ArgQueue, asText, die, usage } from './args.js';
import { shownText } from './node-commands.js';
import type { Session } from './session.js';
import { untilStopped } from './until-stopped.js';

/** Milliseconds between two pictures of the network. */
export const DASHBOARD_INTERVAL_MS = 1000;

export interface DashboardArgs {
  node?: string;
  port: number;
  host: string;
}

/** Reads `[NODE] [--port N] [--host H]` in any order (every remaining argument). */
export function dashboardArgs(q: ArgQueue): DashboardArgs {
  const out: DashboardArgs = { port: DASHBOARD_PORT, host: '127.0.0.1' };
  const args = q.rest().map(asText);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--port' || a === '--host') {
      const v = args[++i];
      if (v === undefined) throw usage(`aemp dashboard: ${a} needs a value`);
      if (a === '--host') out.host = v;
      else {
        const port = Number(v);
        if (!(Number.isInteger(port) && port >= 0 && port <= 65535))
          throw usage(`aemp dashboard: --port ${v}: expected a port number from 0 to 65535`);
        out.port = port;
      }
    } else if (a.startsWith('--')) {
      throw usage(`aemp dashboard: ${a}: unknown option (--port N, --host H)`);
    } else if (out.node === undefined) {
      out.node = a;
    } else {
      throw usage(`aemp dashboard: ${a}: only one NODE`);
    }
  }
  return out;
}

export async function dashboard(s: Session, q: ArgQueue): Promise<void> {
  const args = dashboardArgs(q);
  const node = await s.tool();
  if (args.node !== undefined) {
    await s.connectTo(args.node);
  }
  let server: DashboardServer;
  try {
    server = await startDashboard(
      observeNetwork(node, { intervalMs: DASHBOARD_INTERVAL_MS, families: true, logs: true }),
      { host: args.host, port: args.port },
    );
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw die(`aemp dashboard: cannot listen on ${shownText(args.host)} port ${args.port}: ${why}`);
  }
  s.io.out(`aemp dashboard: ${server.url} (Ctrl-C ends it)\n`);
  await untilStopped(() => undefined);
  await server.close();
}
