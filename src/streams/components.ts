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

import type { KillReason } from '../errors.js';
import { type Clock, realClock } from './clock.js';
import { type DbChange, DbChangeEvent } from './db/family-watch.js';
import { NodeDb } from './db/node-db.js';
import { Kernel } from './kernel/kernel.js';
import { createNodePort, type RequestHandler } from './kernel/node-port.js';
import type { Registry } from './kernel/registry.js';
import type { Logger } from './log/log.js';
import { type DataConnHost, DataConns } from './net/dataconn.js';
import type { Network, NetworkEnv, NodeStatus } from './net/network.js';

/**
 * Everything a node is built from (`configure` produces it from the configuration).
 */
export interface NodeSetup {
  nodeId: string;
  randomisedId: boolean;
  runiq: string;
  secure: boolean;
  logger: Logger;
  /** Where trace lines go (`AEMP_TRACE`); none = no tracing. */
  trace?: ((line: string) => void) | undefined;
  /** Builds the network layer (handed the node's side, `NetworkEnv`). */
  network: (env: NetworkEnv) => Network;
  /** The clock of every timer of the node (default: real time). */
  clock?: Clock | undefined;
}

/** An event the parts report on the node stream (the node's `NodeEvent`). */
export type PartEvent =
  | { type: 'kill'; port: string; reason: KillReason }
  | NodeStatus
  | ({ type: 'db'; family: string } & DbChange);

/** The node as its parts see it. */
export interface NodeHandle extends DataConnHost {
  /** Called on a restart request (`aemp restart`). */
  readonly onRestart: (() => void) | undefined;
}

/** What the node itself contributes to its parts. */
export interface NodeComponentsInit {
  readonly node: NodeHandle;
  readonly setup: NodeSetup;
  /** The node's logger (every part logs through it). */
  readonly logger: Logger;
  readonly registry: Registry;
  /** The node port's handlers beyond the built-in catalogue (the `g_*` requests). */
  readonly requests: Map<string, RequestHandler>;
  /** Emits an event on the node stream. */
  emit(event: PartEvent): void;
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
    nodePort: (k) =>
      createNodePort(
        {
          kernel: k,
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
      ),
    onKill: (port, reason) => emit({ type: 'kill', port, reason }),
    trace: setup.trace,
    clock,
  });

  const database = new NodeDb({
    nodeId: setup.nodeId,
    kernel,
    network,
    requests,
    logger,
    // `entries` stays lazy: a change's snapshot is only built when someone reads it; the event
    // itself only while the node stream has a subscriber (see `reportChanges`).
    onChange: (family, change) => emit(new DbChangeEvent(family, change)),
  });
  db = database;
  // The global database service: `AnyEvent::MP::Global::` as a service makes this node global.
  registry.registerModule('AnyEvent::MP::Global', () => database.becomeGlobal());

  // Data connections: `AnyEvent::MP::DataConn::_expect` and incoming `aemp-dataconn`.
  dataConns = new DataConns(node, network, clock);
  network.nodes$.subscribe((s) => emit(s));

  return { clock, kernel, network, db: database, dataConns };
}
