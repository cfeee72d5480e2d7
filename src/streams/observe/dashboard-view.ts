/**
 * What the dashboard page is sent: a network snapshot reduced to what the page draws, with
 * every peer-supplied value turned into bounded plain text (a DB value is whatever a peer put
 * there: it arrives as a string of at most {@link VALUE_TEXT_MAX} characters, never as an
 * object for the page to interpret), links merged into one entry per pair of nodes, and a
 * short history per metric for the sparklines.
 *
 * Everything here is pure: `dashboardView(snapshot)` and `MetricHistory.record(view)`.
 */
import type { DbFamilyView, LinkStats, NetworkSnapshot, NodeStats } from './snapshot.js';

/** Characters of a DB key, value, node ID or address kept for the page. */
export const VALUE_TEXT_MAX = 200;
/** DB entries per family sent to the page. */
export const FAMILY_ENTRIES_MAX = 50;
/** DB families sent to the page (so one view is at most about half a megabyte). */
export const FAMILIES_MAX = 20;
/** Log lines sent to the page (the newest). */
export const LOG_LINES_MAX = 100;
/** Nodes and links sent to the page. */
export const GRAPH_ITEMS_MAX = 500;
/** Points kept per metric for a sparkline. */
export const HISTORY_POINTS = 60;

export interface NodeView {
  id: string;
  kind: NodeStats['kind'];
  global: boolean;
  addresses: string[];
  ports: number | null;
  heapUsed: number | null;
  rss: number | null;
  loopP50: number | null;
  loopMax: number | null;
  dbFamilies: number | null;
  dbKeys: number | null;
}

/** One pair of nodes `a` < `b`; `ab` is the direction a → b. */
export interface LinkView {
  a: string;
  b: string;
  msgRateAB: number;
  msgRateBA: number;
  byteRateAB: number;
  byteRateBA: number;
  /** Messages waiting for the connection, both ends together. */
  queued: number;
  /** Bytes written but not yet taken by the operating system, both ends together. */
  unsentBytes: number;
}

export interface FamilyView {
  family: string;
  entries: { key: string; value: string }[];
  truncated: boolean;
}

export interface LogView {
  time: number;
  node: string;
  level: number;
  message: string;
}

export interface DashboardView {
  at: number;
  observer: string;
  nodes: NodeView[];
  links: LinkView[];
  families: FamilyView[];
  logs: LogView[];
  /** Per metric ({@link metricKey}), oldest first. */
  history: Record<string, number[]>;
}

/** `text` cut to `max` characters (an ellipsis marks the cut). */
export function clip(text: string, max = VALUE_TEXT_MAX): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * A DB value as bounded text: JSON where it is JSON, byte strings as `<N bytes>`, bigints in
 * digits, anything that cannot be rendered as `<unprintable>`. The rendering stops early for
 * large values (JSON.stringify of a huge array is still linear, but the result is cut).
 */
export function valueText(v: unknown, max = VALUE_TEXT_MAX): string {
  if (typeof v === 'string') return clip(v, max);
  try {
    const s = JSON.stringify(v, (_k, x: unknown) => {
      if (typeof x === 'bigint') return x.toString();
      if (x instanceof Uint8Array) return `<${x.length} bytes>`;
      if (x instanceof Map) return Object.fromEntries(x);
      return x;
    });
    return clip(s ?? String(v), max);
  } catch {
    return '<unprintable>';
  }
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function rate(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

function nodeView(n: NodeStats): NodeView {
  return {
    id: clip(String(n.node)),
    kind: n.kind === 'aemp' || n.kind === 'perl' ? n.kind : 'unknown',
    global: n.global === true,
    addresses: (Array.isArray(n.addresses) ? n.addresses : []).slice(0, 8).map((a) => clip(String(a))),
    ports: num(n.ports),
    heapUsed: num(n.heapUsed),
    rss: num(n.rss),
    loopP50: num(n.loopDelayMs?.p50),
    loopMax: num(n.loopDelayMs?.max),
    dbFamilies: num(n.db?.families),
    dbKeys: num(n.db?.keys),
  };
}

/**
 * One entry per pair of nodes that both appear in `nodes` and have an established connection.
 * A direction's rate is taken from the sending side's view where it is known (its out rate),
 * else from the receiving side's (its in rate).
 */
function linkViews(links: readonly LinkStats[], nodes: ReadonlySet<string>): LinkView[] {
  const pairs = new Map<string, { a: string; b: string; views: LinkStats[] }>();
  for (const l of links) {
    const from = clip(String(l.from));
    const to = clip(String(l.to));
    if (!l.up || from === to || !nodes.has(from) || !nodes.has(to)) continue;
    const [a, b] = from < to ? [from, to] : [to, from];
    const key = `${a}\n${b}`;
    let p = pairs.get(key);
    if (!p) pairs.set(key, (p = { a, b, views: [] }));
    p.views.push({ ...l, from, to });
  }
  const out: LinkView[] = [];
  for (const { a, b, views } of pairs.values()) {
    const fromA = views.find((v) => v.from === a);
    const fromB = views.find((v) => v.from === b);
    out.push({
      a,
      b,
      msgRateAB: fromA ? rate(fromA.msgRateOut) : rate(fromB?.msgRateIn),
      msgRateBA: fromB ? rate(fromB.msgRateOut) : rate(fromA?.msgRateIn),
      byteRateAB: fromA ? rate(fromA.byteRateOut) : rate(fromB?.byteRateIn),
      byteRateBA: fromB ? rate(fromB.byteRateOut) : rate(fromA?.byteRateIn),
      queued: rate(fromA?.queued) + rate(fromB?.queued),
      unsentBytes: rate(fromA?.unsentBytes) + rate(fromB?.unsentBytes),
    });
    if (out.length >= GRAPH_ITEMS_MAX) break;
  }
  return out.sort((x, y) => (x.a === y.a ? (x.b < y.b ? -1 : 1) : x.a < y.a ? -1 : 1));
}

function familyView(f: DbFamilyView): FamilyView {
  const entries = Array.isArray(f.entries) ? f.entries : [];
  return {
    family: clip(String(f.family)),
    entries: entries.slice(0, FAMILY_ENTRIES_MAX).map((e) => ({
      key: clip(String(e.key)),
      value: valueText(e.value),
    })),
    truncated: f.truncated === true || entries.length > FAMILY_ENTRIES_MAX,
  };
}

/** The page's picture of `s` (without history: see {@link MetricHistory}). */
export function dashboardView(s: NetworkSnapshot): DashboardView {
  const nodes = (Array.isArray(s.nodes) ? s.nodes : []).slice(0, GRAPH_ITEMS_MAX).map(nodeView);
  const ids = new Set(nodes.map((n) => n.id));
  const logs = Array.isArray(s.logs) ? s.logs.slice(-LOG_LINES_MAX) : [];
  return {
    at: num(s.at) ?? 0,
    observer: clip(String(s.observer)),
    nodes,
    links: linkViews(Array.isArray(s.links) ? s.links : [], ids),
    families: (Array.isArray(s.families) ? s.families : []).slice(0, FAMILIES_MAX).map(familyView),
    logs: logs.map((l) => ({
      time: num(l.time) ?? 0,
      node: clip(String(l.node)),
      level: num(l.level) ?? 0,
      message: clip(String(l.message), 500),
    })),
    history: {},
  };
}

/**
 * The history key of a metric: `["node", id, "rss"]`, `["link", a, b, "msgs"]`… as JSON, so
 * that no node ID can make two keys equal.
 */
export function metricKey(...parts: string[]): string {
  return JSON.stringify(parts);
}

/** The metrics a sparkline is kept for, per node and per link. */
function metrics(v: DashboardView): [string, number][] {
  const out: [string, number][] = [];
  for (const n of v.nodes) {
    if (n.rss !== null) out.push([metricKey('node', n.id, 'rss'), n.rss]);
    if (n.heapUsed !== null) out.push([metricKey('node', n.id, 'heap'), n.heapUsed]);
    if (n.loopMax !== null) out.push([metricKey('node', n.id, 'loop'), n.loopMax]);
  }
  for (const l of v.links) {
    out.push([metricKey('link', l.a, l.b, 'msgs'), l.msgRateAB + l.msgRateBA]);
    out.push([metricKey('link', l.a, l.b, 'bytes'), l.byteRateAB + l.byteRateBA]);
  }
  return out;
}

/**
 * The last `points` values of every metric of the views recorded. A metric whose node or link
 * is gone from a view is forgotten, so the history is bounded by what the network has now.
 */
export class MetricHistory {
  private readonly series = new Map<string, number[]>();

  constructor(private readonly points = HISTORY_POINTS) {}

  /** Adds `v`'s values and returns `v` with the history filled in. */
  record(v: DashboardView): DashboardView {
    const now = metrics(v);
    const present = new Set(now.map(([k]) => k));
    for (const k of this.series.keys()) if (!present.has(k)) this.series.delete(k);
    const history: Record<string, number[]> = Object.create(null);
    for (const [k, value] of now) {
      let s = this.series.get(k);
      if (!s) this.series.set(k, (s = []));
      s.push(value);
      if (s.length > this.points) s.splice(0, s.length - this.points);
      history[k] = [...s];
    }
    return { ...v, history };
  }

  /** Number of metrics kept. */
  get size(): number {
    return this.series.size;
  }
}
