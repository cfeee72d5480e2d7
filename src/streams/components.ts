/**
 * The one place a node's parts are built. Each part gets what it needs when it is made (its
 * options and callbacks) and nothing assigns another part's fields afterwards:
 *
 *   kernel     ports and local delivery; remote destinations go to the network, node-port
 *              messages to the node port (both made next, reached through the closures here)
 *   network    connections to other nodes, on the node's clock and transport; messages to the
 *              kernel, address lookups to the database, incoming data connections to DataConns
 *   node port  the request catalogue of spec/api.md §16a
 *   db         the distributed database (its `g_*` requests, the master link)
 *   dataConns  data connections expected and dialled
 *
 * A callback that names a part built later runs only once traffic flows (after `start()`),
 * when every part exists.
 */

import { type Clock, realClock } from './clock.js';
import { NodeDb } from './db/node-db.js';
import { Kernel } from './kernel/kernel.js';
import { createNodePort, type RequestHandler } from './kernel/node-port.js';
import type { Registry } from './kernel/registry.js';
import type { Logger } from './log/log.js';
import { installLogCatcher, type LogHub } from './log/log-catcher.js';
import { DataConns } from './net/dataconn.js';
import type { Network } from './net/network.js';
import type { Node, NodeEvent, NodeSetup } from './node.js';

/** What the node itself contributes to its parts. */
export interface NodeComponentsInit {
  readonly node: Node;
  readonly setup: NodeSetup;
  /** The node's logger (every part logs through it; log catchers read it). */
  readonly logger: LogHub;
  readonly registry: Registry;
  /** The node port's handlers beyond the built-in catalogue (the `g_*` requests). */
  readonly requests: Map<string, RequestHandler>;
  /** Emits an event on the node stream. */
  emit(event: NodeEvent): void;
  /** Runs an `eval` request's code. */
  evalJs(code: string): unknown;
}

/** A node's parts, built in order. */
export interface NodeComponents {
  readonly clock: Clock;
  readonly kernel: Kernel;
  readonly network: Network;
  readonly db: NodeDb;
  readonly dataConns: DataConns;
}

export function buildComponents(init: NodeComponentsInit): NodeComponents {
  const { node, setup, logger, registry, requests, emit } = init;
  const clock = setup.clock ?? realClock;
  let nodePort: ((src: string, msg: unknown[]) => void) | undefined;
  let db: NodeDb | undefined;
  let dataConns: DataConns | undefined;

  const network = setup.network({
    clock,
    receive: (src, msg) => kernel.receive(src, msg),
    dropRemoteMonitors: (src) => kernel.dropRemoteMonitors(src),
    lookup: (nodeId) => (db ? db.lookup(nodeId) : Promise.resolve(null)),
    selfSeed: () => db?.becomeGlobal(),
    dataConnCheck: (g, peerId) => {
      if (!dataConns) throw new Error(`${g.proto}: sub-protocol not supported`);
      dataConns.check(g, peerId);
    },
    dataConnAccepted: (stream, session) => {
      if (dataConns) dataConns.accepted(stream, session);
      else stream.destroy();
    },
  });

  const kernel: Kernel = new Kernel({
    nodeId: setup.nodeId,
    randomisedId: setup.randomisedId,
    logger,
    remote: network,
    nodePort: (src, msg) => nodePort?.(src, msg),
    onKill: (port, reason) => emit({ type: 'kill', port, reason }),
    trace: setup.trace,
    clock,
  });

  nodePort = createNodePort(
    {
      kernel,
      registry,
      logger,
      thisArg: node,
      secure: () => node.secure,
      evalJs: (code) => init.evalJs(code),
      upNodes: () => network.upNodes(),
      remoteKilled: (src, name, reason) => network.remoteKilled(src, name, reason),
      restart: () => node.onRestart?.(),
    },
    requests,
  );

  const database = new NodeDb({
    nodeId: setup.nodeId,
    kernel,
    network,
    requests,
    logger,
    onChange: (family, change) => emit({ type: 'db', family, ...change }),
  });
  db = database;
  // The global database service: `AnyEvent::MP::Global::` as a service makes this node global.
  registry.registerModule('AnyEvent::MP::Global', () => database.becomeGlobal());

  // Data connections: `AnyEvent::MP::DataConn::_expect` and incoming `aemp-dataconn`.
  dataConns = new DataConns(node, network, clock);
  // Network-wide logs: `AnyEvent::MP::LogCatcher::connect` and `::catch`.
  installLogCatcher(node, logger);
  network.nodes$.subscribe((s) => emit(s));

  return { clock, kernel, network, db: database, dataConns };
}
