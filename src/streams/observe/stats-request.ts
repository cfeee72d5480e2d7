/**
 * The read-only stats request of the node port: `["", "aemp::stats", REPLYPORT, …]` answers
 * `[…, STATS]` where STATS is this node's `NodeStats` (ports, monitors, memory, event-loop
 * delay, database size, heartbeat timeouts, the counters of its links, the database families
 * it knows). It reads and changes nothing, so secure mode answers it too.
 *
 * Cheap and bounded: at most `MAX_STATS_LINKS` links and `MAX_STATS_FAMILIES` family names go
 * out, long peer-chosen names are left out, and each requesting node gets at most a few answers
 * per second (`STATS_BURST`, refilled at `STATS_PER_SECOND`), all nodes together at most
 * `STATS_TOTAL_PER_SECOND`; requests beyond that get no answer.
 *
 * Perl nodes do not know the request (it would call a function of that name): ask only nodes
 * whose greeting carries aemp's keys.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import type { Clock } from '../clock.js';
import type { ConnectionStats } from '../net/network.js';
import type { LinkStats, NodeStats } from './snapshot.js';

/**
 * The tag of the stats request: shaped like a function name in the lower-case package `aemp`,
 * which no Perl module uses, so it names no function a node could be asked to call.
 */
export const STATS_REQUEST = 'aemp::stats';
/** Links listed in one answer at most (the busiest are not chosen: the first ones found). */
export const MAX_STATS_LINKS = 1000;
/** Family names listed in one answer at most. */
export const MAX_STATS_FAMILIES = 200;
/** Node IDs and family names longer than this are left out of an answer. */
export const MAX_STATS_NAME = 256;
/** Answers one requesting node can get at once, and how many more per second. */
export const STATS_BURST = 5;
export const STATS_PER_SECOND = 5;
/** Answers per second to all requesting nodes together (with a burst of as many). */
export const STATS_TOTAL_PER_SECOND = 50;
/** Requesting nodes whose allowance is remembered (the oldest is forgotten first). */
const MAX_REQUESTERS = 1024;

/** One connection's counters as the network reports them. */
export type ConnCounters = ConnectionStats;

/** What the stats come from: the parts of a node, described by shape. */
export interface StatsSource {
  readonly id: string;
  readonly binds: readonly string[];
  readonly kernel: {
    readonly portCount: number;
    readonly remoteMonitorCount: number;
    readonly clock?: Clock;
    snd(port: string, msg: unknown[]): void;
  };
  readonly network: {
    stats(): readonly ConnCounters[];
    /** Completes when the node closes (ends what the answers keep: the delay histogram). */
    readonly nodes$?: { subscribe(o: { complete(): void }): unknown };
    counts?(): {
      readonly heartbeatTimeouts: number;
      readonly refused?: ReadonlyMap<string, number>;
      readonly handshakeFailures?: ReadonlyMap<string, number>;
    };
  };
  readonly db: {
    readonly isGlobal: boolean;
    readonly known?: ReadonlyMap<string, ReadonlyMap<string, unknown>>;
  };
}

/** The answer's extra fields beyond `NodeStats`. */
export interface StatsAnswer extends NodeStats {
  /** True when links or families were left out (caps or long names). */
  truncated?: boolean;
  /** Families the node knows with their key counts (a global node: the merged view). */
  familyKeys?: [string, number][];
}

/** A token bucket on the node's clock. */
class Allowance {
  private tokens: number;
  private at: number;
  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The rate limits of one node's stats answers. */
class StatsLimits {
  private readonly perNode = new Map<string, Allowance>();
  private readonly total: Allowance;
  answered = 0;
  refused = 0;
  constructor(private readonly clock: () => number) {
    this.total = new Allowance(STATS_TOTAL_PER_SECOND, STATS_TOTAL_PER_SECOND, clock());
  }
  allow(src: string): boolean {
    const now = this.clock();
    let a = this.perNode.get(src);
    if (!a) {
      if (this.perNode.size >= MAX_REQUESTERS) this.perNode.delete(this.perNode.keys().next().value!);
      a = new Allowance(STATS_BURST, STATS_PER_SECOND, now);
      this.perNode.set(src, a);
    }
    const ok = a.take(now) && this.total.take(now);
    if (ok) this.answered++;
    else this.refused++;
    return ok;
  }
}

const limits = new WeakMap<object, StatsLimits>();

/** Milliseconds between the event-loop delay histogram's samples. */
export const LOOP_RESOLUTION_MS = 10;

/**
 * The delay of a histogram of `monitorEventLoopDelay` in ms. Node records the whole time
 * between two of its samples, so an idle loop reads as the sampling interval itself: that
 * interval is taken off (never below 0).
 */
export function loopDelayMs(h: Pick<IntervalHistogram, 'count' | 'percentile' | 'max'>): {
  p50: number;
  max: number;
} {
  if (h.count === 0) return { p50: 0, max: 0 };
  const ms = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS) : 0);
  return { p50: ms(h.percentile(50)), max: ms(h.max) };
}

/** The event-loop delay histogram of this process, while a node that answered is open. */
let loopDelay: IntervalHistogram | undefined;
let loopUsers = 0;

function useLoopDelay(node: StatsSource): void {
  const ended = node.network.nodes$;
  if (!ended) return;
  if (loopUsers++ === 0) {
    loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    loopDelay.enable();
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    if (--loopUsers === 0) {
      loopDelay?.disable();
      loopDelay = undefined;
    }
  };
  ended.subscribe({ complete: release });
}

/** The rate limits of `node`'s answers, made (with the delay histogram) on first use. */
function limitsOf(node: StatsSource): StatsLimits {
  let l = limits.get(node);
  if (!l) {
    const clock = node.kernel.clock;
    l = new StatsLimits(clock ? () => clock.now() : () => performance.now());
    limits.set(node, l);
    useLoopDelay(node);
  }
  return l;
}

/** Answered and refused stats requests of a node so far (for tests and metrics). */
export function statsRequestCounts(node: object): { answered: number; refused: number } {
  const l = limits.get(node);
  return { answered: l?.answered ?? 0, refused: l?.refused ?? 0 };
}

/**
 * Handles `["", "aemp::stats", REPLYPORT, …]` from node `src` on `node`: `reply` gets the
 * answer's values (default: sent to REPLYPORT after the request's extra values).
 */
export function answerStats(
  node: unknown,
  src: string,
  to: unknown[],
  reply?: (values: unknown[]) => void,
): void {
  if (!isStatsSource(node) || typeof to[0] !== 'string') return;
  if (!limitsOf(node).allow(src)) return;
  const stats = collectStats(node);
  if (reply) reply([stats]);
  else node.kernel.snd(to[0], [...to.slice(1), stats]);
}

function isStatsSource(v: unknown): v is StatsSource {
  const n = v as Partial<StatsSource> | null;
  return (
    typeof n === 'object' && n !== null && typeof n.id === 'string' && !!n.kernel && !!n.network && !!n.db
  );
}

/** Event-loop delay since the previous call (ms; zeros while no histogram runs). */
export function loopDelaySinceLast(): { p50: number; max: number } {
  if (!loopDelay) return { p50: 0, max: 0 };
  const { p50, max } = loopDelayMs(loopDelay);
  loopDelay.reset();
  return { p50: round(p50), max: round(max) };
}

const round = (x: number): number => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : 0);

/** This node's own stats: what the stats request answers. */
export function collectStats(node: StatsSource): StatsAnswer {
  limitsOf(node);
  const clock = node.kernel.clock;
  const at = clock ? clock.epochMs() : Date.now();
  let truncated = false;
  const links: LinkStats[] = [];
  for (const c of node.network.stats()) {
    if (links.length >= MAX_STATS_LINKS || c.node.length > MAX_STATS_NAME) {
      truncated = true;
      continue;
    }
    links.push(linkOf(node.id, c));
  }
  const known = node.db.known;
  let keys = 0;
  const familyKeys: [string, number][] = [];
  if (known)
    for (const [family, entries] of known) {
      keys += entries.size;
      if (familyKeys.length < MAX_STATS_FAMILIES && family.length <= MAX_STATS_NAME)
        familyKeys.push([family, entries.size]);
      else truncated = true;
    }
  const mem = process.memoryUsage();
  return {
    node: node.id,
    kind: 'aemp',
    global: node.db.isGlobal,
    addresses: [...node.binds],
    at,
    ports: node.kernel.portCount,
    monitors: node.kernel.remoteMonitorCount,
    heapUsed: mem.heapUsed,
    rss: mem.rss,
    loopDelayMs: loopDelaySinceLast(),
    db: { families: known?.size ?? 0, keys },
    heartbeatMisses: node.network.counts?.().heartbeatTimeouts ?? 0,
    links,
    familyKeys,
    ...(truncated ? { truncated } : {}),
  };
}

/** A connection's counters as a link seen from `from` (rates are the observer's to compute). */
export function linkOf(from: string, c: ConnCounters): LinkStats {
  return {
    from,
    to: c.node,
    up: c.up,
    messagesIn: c.messagesIn,
    messagesOut: c.messagesOut,
    bytesIn: c.bytesIn,
    bytesOut: c.bytesOut,
    msgRateIn: 0,
    msgRateOut: 0,
    byteRateIn: 0,
    byteRateOut: 0,
    queued: c.queued,
    unsentBytes: c.unsentBytes,
  };
}
