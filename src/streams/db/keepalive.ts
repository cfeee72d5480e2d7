/**
 * Keeps a global node connected to every other global node (spec/global.md §8). The global
 * service feeds it the `'g` family: added keys → `add`, deleted keys → `del`; and connection
 * events: `up`, `lost`.
 *
 *   add(n) first time, n not connected → n down, retry at once, then after 0.6–1.2 s, doubling
 *                                        up to monitor_timeout, while anything is down
 *   lost(n) (a kept node)              → n down, retry restarts short
 *   up(n)                              → n no longer down; timer stops when nothing is down
 *   del(n) last reference              → forgotten
 * A retry starts the network's connect procedure for each down node without queueing a
 * message (addresses from the merged `'l` family; unknown → "no known address").
 * At most {@link MAX_KEPT_NODES} nodes are kept: any slave can write `'g` entries, and each
 * kept node costs a dial per retry.
 */

import { type Clock, realClock, type Timer } from '../clock.js';

/**
 * Global nodes kept connected at most. Real networks have a handful; further `'g` keys are
 * not dialled (`full` is told), so that made-up entries cannot make this node dial without end.
 */
export const MAX_KEPT_NODES = 256;

export interface KeepaliveEnv {
  isUp(node: string): boolean;
  connect(node: string): void;
  /** Upper bound of the retry interval, seconds (`monitor_timeout`). */
  maxRetry(): number;
  /** `node` was not kept: {@link MAX_KEPT_NODES} are kept already. */
  full?(node: string): void;
  /** The clock of the retry timer (the node's; default real time). */
  clock?: Clock | undefined;
}

export class Keepalive {
  private readonly refs = new Map<string, number>();
  private readonly down = new Set<string>();
  private retry = 0;
  private timer: Timer | undefined;
  private closed = false;
  private readonly clock: Clock;

  constructor(private readonly env: KeepaliveEnv) {
    this.clock = env.clock ?? realClock;
  }

  /** Number of nodes kept (connected or not). */
  get size(): number {
    return this.refs.size;
  }

  /** Nodes currently kept but not connected. */
  get downNodes(): string[] {
    return [...this.down];
  }

  add(node: string): void {
    const known = this.refs.get(node);
    if (known === undefined && this.refs.size >= MAX_KEPT_NODES) {
      this.env.full?.(node);
      return;
    }
    const count = (known ?? 0) + 1;
    this.refs.set(node, count);
    if (count === 1 && !this.env.isUp(node)) {
      this.down.add(node);
      this.again();
    }
  }

  del(node: string): void {
    const count = this.refs.get(node);
    if (count === undefined) return;
    if (count > 1) {
      this.refs.set(node, count - 1);
      return;
    }
    this.refs.delete(node);
    this.down.delete(node);
    if (this.down.size === 0) this.stop();
  }

  up(node: string): void {
    if (this.down.delete(node) && this.down.size === 0) this.stop();
  }

  lost(node: string): void {
    if (!this.refs.has(node) || this.closed) return;
    this.down.add(node);
    this.again();
  }

  close(): void {
    this.closed = true;
    this.stop();
  }

  private again(): void {
    this.retry = (1 + Math.random()) * 0.3;
    this.all();
  }

  private all(): void {
    this.stop();
    if (this.closed || this.down.size === 0) return;
    for (const n of [...this.down]) this.env.connect(n);
    this.retry = Math.min(this.retry * 2, this.env.maxRetry());
    this.timer = this.clock.timeout(() => this.all(), this.retry * 1000);
  }

  private stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
