/**
 * Test support (`aemp/testing`): time that moves only when told, and nodes on an in-memory
 * network, so that tests of timeouts, heartbeats and reconnects run without sockets and
 * without waiting.
 *
 *   const clock = new VirtualClock();
 *   const net = new MemoryNetwork();
 *   const a = memoryNode(net.host(), { nodeid: 'a', binds: ['10.0.0.1:4040'], clock });
 *   const b = memoryNode(net.host(), { nodeid: 'b', binds: ['10.0.0.2:4040'], seeds: ['10.0.0.1:4040'], clock });
 *   await clock.run(30_000);   // thirty seconds of timers, in milliseconds of real time
 *
 * Listen and seed addresses are IP literals with a port (no name lookups); there is no TLS.
 */

import type { TransportFactory } from './protocol/transport.js';
import { type ConfigureOptions, configureNode } from './streams/config/configure.js';
import type { Node } from './streams/node.js';

export {
  MemoryHost,
  type MemoryHostOptions,
  MemoryNetwork,
} from './protocol/memory-transport.js';
export type { Listener, Transport, TransportFactory, TransportHandlers } from './protocol/transport.js';
export { type Clock, type Timer, VirtualClock } from './streams/clock.js';

/**
 * A node whose connections go through `transports` (a `MemoryNetwork` host), configured from
 * `options` as by `configure()`, except that no rc file is read unless `norc: false`.
 */
export function memoryNode(transports: TransportFactory, options: ConfigureOptions = {}): Node {
  return configureNode({ norc: true, ...options }, transports);
}
