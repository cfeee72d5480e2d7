/**
 * The data shape of a network observation: what each node says about
 * itself (answer of the read-only `aemp::stats` request), the links between
 * nodes with their rates, a bounded view of the global DB and a log tail.
 * Consumers (`aemp top`, the dashboard, metrics) read these; fields may be
 * added later as optional ones, never renamed.
 */

/** What one node says about itself (the read-only stats request's answer), plus what is known otherwise. */
export interface NodeStats {
  node: string;
  /** 'aemp' = answered the stats request; 'perl' = a Perl AEMP node (greeting without aemp's keys); 'unknown' = no answer yet. */
  kind: 'aemp' | 'perl' | 'unknown';
  global: boolean;
  addresses: string[];
  /** Epoch ms when these numbers were taken. */
  at: number;
  ports?: number;
  monitors?: number;
  heapUsed?: number;
  rss?: number;
  /** Event-loop delay over the last interval, ms (p50 and max). */
  loopDelayMs?: { p50: number; max: number };
  db?: { families: number; keys: number };
  heartbeatMisses?: number;
  links?: LinkStats[];
}

/** One direction-pair of a connection as seen from `from`. Counters are totals; rates are per second over the last interval. */
export interface LinkStats {
  from: string;
  to: string;
  up: boolean;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  msgRateIn: number;
  msgRateOut: number;
  byteRateIn: number;
  byteRateOut: number;
  queued: number;
  unsentBytes: number;
}

export interface DbFamilyView {
  family: string;
  entries: { key: string; value: unknown }[];
  truncated: boolean;
}

/** One picture of the network, emitted every interval by `observeNetwork(node, {intervalMs})`. */
export interface NetworkSnapshot {
  at: number;
  /** The node doing the observing. */
  observer: string;
  nodes: NodeStats[];
  links: LinkStats[];
  families: DbFamilyView[];
  /** Newest last, bounded. `time` in epoch ms; `message` is peer text (escape it before showing). */
  logs: { time: number; node: string; level: number; message: string }[];
}
