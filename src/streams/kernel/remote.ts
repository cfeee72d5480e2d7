/** What the kernel needs from the network layer, and the wire form of a remote message. */
import type { MonEntry } from './port-record.js';

/** @internal What the kernel needs from the network layer. */
export interface Remote {
  /** Queues a wire message `[PORTNAME, …]` for a node, connecting on demand. Never throws. */
  send(nodeId: string, msg: unknown[]): void;
  /** Sends only if a connection to the node is established right now. */
  sendIfUp(nodeId: string, msg: unknown[]): void;
  /** Monitors a port (name `""` = the node) of a remote node; returns the cancel function. */
  monitor(nodeId: string, portName: string, entry: MonEntry): () => void;
}

/** Where a remote destination is: its node and port name (`""` for the node itself). */
export interface RemoteDest {
  readonly node: string;
  readonly name: string;
}

/** The wire form `[PORTNAME, …msg]` (a new array: `unshift` costs several times as much). */
export function wireMessage(name: string, msg: readonly unknown[]): unknown[] {
  const n = msg.length;
  const wire = new Array<unknown>(n + 1);
  wire[0] = name;
  for (let i = 0; i < n; i++) wire[i + 1] = msg[i];
  return wire;
}
