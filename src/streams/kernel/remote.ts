/** What the kernel needs from the network layer, and the wire forms of remote messages. */
import type { MonEntry } from './port-record.js';

/** What the kernel needs from the network layer. */
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

/**
 * The first `n` of `a`…`d` as a message, after the port name `name` for the wire form (none
 * for the local form).
 */
export function wireValues(
  name: string | undefined,
  n: number,
  a: unknown,
  b: unknown,
  c: unknown,
  d: unknown,
): unknown[] {
  if (name === undefined)
    return n === 0 ? [] : n === 1 ? [a] : n === 2 ? [a, b] : n === 3 ? [a, b, c] : [a, b, c, d];
  return n === 0
    ? [name]
    : n === 1
      ? [name, a]
      : n === 2
        ? [name, a, b]
        : n === 3
          ? [name, a, b, c]
          : [name, a, b, c, d];
}

/** `[...msg, last]`, after the port name `name` for the wire form (none for the local form). */
export function wireAppend(name: string | undefined, msg: readonly unknown[], last: unknown): unknown[] {
  const n = msg.length;
  const at = name === undefined ? 0 : 1;
  const out = new Array<unknown>(n + 1 + at);
  if (name !== undefined) out[0] = name;
  for (let i = 0; i < n; i++) out[i + at] = msg[i];
  out[n + at] = last;
  return out;
}
