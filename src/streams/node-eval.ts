/**
 * JavaScript for `eval` requests (`eval_on`) and the `eval` configuration key: one vm context
 * per node, holding the node and its API under the names Perl code would use.
 */
import { createContext, runInContext } from 'node:vm';
import { AempError } from '../errors.js';
import { nodeOf, portNameOf } from '../protocol/ids.js';

/**
 * How long an `eval` request may run synchronously. This bounds CPU time spent inside the
 * code (Node's vm watchdog), not a wait, so it is real time even on a node with a virtual
 * clock.
 */
const EVAL_TIMEOUT_MS = 10_000;

/** What the eval scope offers of the node (the node itself satisfies it). */
export interface EvalNode {
  readonly id: string;
  snd(port: string, ...msg: unknown[]): void;
  kil(port: string, ...reason: unknown[]): void;
  mon(port: string, ...args: unknown[]): unknown;
  port(handler?: (...args: any[]) => void): string;
  rcv(port: string, ...args: any[]): string;
  spawn(node: string, func: string, ...args: unknown[]): string;
  cal(port: string, ...args: unknown[]): string;
  upNodes(): string[];
}

/** The names an `eval` sees: the node and its API. */
export function evalScope(node: EvalNode): Record<string, unknown> {
  // Like Perl's eval, this is full code execution (refused in secure mode), so the process
  // and the timers are there too.
  return {
    node,
    NODE: node.id,
    console,
    process,
    Buffer,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    setImmediate,
    snd: node.snd.bind(node),
    kil: node.kil.bind(node),
    mon: node.mon.bind(node),
    port: node.port.bind(node),
    rcv: node.rcv.bind(node),
    spawn: node.spawn.bind(node),
    cal: node.cal.bind(node),
    up_nodes: () => node.upNodes(),
    node_of: nodeOf,
    port_name: portNameOf,
    AempError,
  };
}

/** An evaluator of `eval` requests whose context (made from `scope()`) is created on first use. */
export function evaluator(scope: () => Record<string, unknown>): (code: string) => unknown {
  let context: object | undefined;
  return (code) => {
    context ??= createContext(scope());
    return runInContext(code, context, { timeout: EVAL_TIMEOUT_MS, filename: 'aemp-eval' });
  };
}
