/**
 * The seed loop (global.md §3): every seed address not connected to its node is dialled, again
 * and again with a retry that starts at 0.6–1.2 s and doubles up to `monitor_timeout`; a lost
 * seed connection restarts it with the short retry (`seed_again`). A seed address behind which
 * this node itself answers is dropped (and makes this node global).
 */
import { REASON } from '../../protocol/constants.js';
import type { Greeting } from '../../protocol/greeting.js';
import type { Clock, Timer } from '../clock.js';
import { LEVEL, type Logger } from '../log/log.js';
import { resolveDescriptors } from './binds.js';

export interface SeedLoopInit {
  readonly clock: Clock;
  readonly nodeId: string;
  readonly hostname: string;
  /** The configured seeds (transport descriptors). */
  readonly seeds: readonly string[];
  /** Seconds: the longest retry. */
  readonly monitorTimeout: number;
  readonly logger: Logger;
  /** The address book shared with the dialler: a seed's node is reachable at its address. */
  readonly addresses: Map<string, readonly string[]>;
  /** True if the node is connected now. */
  isUp(nodeId: string): boolean;
  /** True while one of our dials to `addr` is in its handshake. */
  dialling(addr: string): boolean;
  /** Dials `addr`; `onGreeting` sees the peer's greeting and throws to fail the connection. */
  dial(addr: string, onGreeting: (g: Greeting) => void): void;
  /** One of our seed addresses is this node itself. */
  selfSeed(): void;
}

export class SeedLoop {
  /** Seed address → node ID last seen behind it. */
  private readonly seedNodes = new Map<string, string | undefined>();
  /** Seconds until the next round. */
  private retry = 0;
  private timer: Timer | undefined;
  private stopped = false;

  constructor(private readonly init: SeedLoopInit) {}

  /** True if seeds are configured (a node without seeds has no master unless it turns global). */
  get hasSeeds(): boolean {
    // Configured seeds count before start() resolved them: a send made right after configure()
    // waits for the seeds (up to connect_interval) instead of failing at once.
    return this.init.seeds.length > 0 || this.seedNodes.size > 0;
  }

  /** Resolves the seeds and starts the loop. */
  async start(): Promise<void> {
    const seeds = await resolveDescriptors(this.init.seeds, {
      hostname: this.init.hostname,
      warn: (why) => this.init.logger.log(LEVEL.error, `seed skipped: ${why}`),
    });
    for (const s of seeds) this.seedNodes.set(s, undefined);
    if (seeds.length > 0 && !this.stopped) this.again();
  }

  /** True if `id` is the node last seen behind one of our seed addresses. */
  isSeedNode(id: string): boolean {
    for (const v of this.seedNodes.values()) if (v === id) return true;
    return false;
  }

  /** Restarts the loop with a short delay (global.md §3 `seed_again`). */
  again(): void {
    this.retry = (1 + Math.random()) * 0.6;
    if (!this.timer) this.round();
  }

  private round(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const todo = [...this.seedNodes].filter(([, id]) => id === undefined || !this.init.isUp(id));
    if (todo.length === 0) return;
    for (const [addr] of todo) if (!this.init.dialling(addr)) this.dialSeed(addr);
    this.retry = Math.min(this.retry * 2, this.init.monitorTimeout);
    this.timer = this.init.clock.timeout(() => this.round(), this.retry * 1000);
  }

  /** Dials `addr` as a seed. */
  dialSeed(addr: string): void {
    this.init.dial(addr, (g) => {
      if (g.nodeId === this.init.nodeId) {
        this.seedNodes.delete(addr);
        this.init.selfSeed();
        throw new Error(REASON.SELF_CONNECT);
      }
      // A different node behind the seed address now: forget the address of the one before.
      const { addresses } = this.init;
      const before = this.seedNodes.get(addr);
      if (before !== undefined && before !== g.nodeId && addresses.get(before)?.[0] === addr)
        addresses.delete(before);
      this.seedNodes.set(addr, g.nodeId);
      addresses.set(g.nodeId, [addr]);
    });
  }

  /** No more rounds (the node is closing). */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }
}
