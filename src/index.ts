/**
 * aemp: Erlang-style message passing for Node.js, wire-compatible with AnyEvent::MP 2.02.
 *
 * @example
 * ```ts
 * import { configure } from 'aemp';
 * const node = configure({ nodeid: 'demo/' });
 * const p = node.port$();
 * p.subscribe((msg) => console.log('got', msg));
 * node.snd(p.id, 'hello', 42);
 * ```
 * @packageDocumentation
 */

/* Node */

export type { ConfigureOptions } from './streams/config/configure.js';
export { configure } from './streams/config/configure.js';
export type { ConnectionStats, NodeStatus } from './streams/net/network.js';
export type { Node, NodeEvent, PortObservable } from './streams/node.js';
export type { CallOptions } from './streams/node-calls.js';

/* Ports and monitors */

export { nodeOf, portNameOf } from './protocol/ids.js';
export type { Handler } from './streams/kernel/kernel.js';
export { Guard } from './streams/kernel/kernel.js';
export type { NodeFunction } from './streams/kernel/registry.js';

/* Distributed database */

export type { DbChange } from './streams/db/family-watch.js';
export type { NodeDb } from './streams/db/node-db.js';
export type { DbRecord } from './streams/db/records.js';

/* Logging */

export type { Logger, LogLevel } from './streams/log/log.js';
export { envLogLevel, LEVEL, memoryLogger, stderrLogger } from './streams/log/log.js';
export { LOG_CATCH, LOG_CONNECT, type LogRecord } from './streams/log/log-catcher.js';

/* Errors */

export type { ErrorCode, KillReason } from './errors.js';
export {
  AempError,
  AuthError,
  ConfigError,
  ConnectionError,
  formatReason,
  KilledError,
  ProtocolError,
  UsageError,
} from './errors.js';

/* Byte strings from Perl: the UTF-8 reading, raw bytes and back (see protocol/text.ts) */

export { byteString, bytesOf, utf8Bytes, utf8Text } from './protocol/text.js';

/* The per-user secret of the zero-config network */

export { localSecret } from './streams/config/user-secret.js';

/* Observing the network: the stats request, network pictures, Prometheus metrics */

export {
  type MetricsHandle,
  type MetricsOptions,
  serveMetrics,
} from './streams/observe/metrics.js';
export { type ObserveOptions, observeNetwork } from './streams/observe/network-view.js';
export type {
  DbFamilyView,
  LinkStats,
  NetworkSnapshot,
  NodeStats,
} from './streams/observe/snapshot.js';
export { STATS_REQUEST } from './streams/observe/stats-request.js';

/* Live dashboard (a read-only web page of the network) */

export {
  DASHBOARD_PORT,
  type DashboardOptions,
  type DashboardServer,
  startDashboard,
} from './streams/observe/dashboard-server.js';
