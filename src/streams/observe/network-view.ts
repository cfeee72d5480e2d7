/**
 * `observeNetwork(node)`: a picture of the whole network every interval, gathered with the
 * public protocol only.
 *
 *   nodes     the `'l` family (every node with listeners, spec/global.md) ∪ up nodes ∪ this one
 *   stats     `aemp::stats` to each aemp node, all at once, each with a deadline; no answer →
 *             the last known numbers with `kind: 'unknown'`. Perl nodes (a greeting without
 *             aemp's keys) are not asked: their addresses, up/down and our link counters show
 *   rates     per link, from the counter deltas between two answers
 *   families  family names from the global nodes' answers; entries by `db.family$`, bounded
 *   logs      a tail of `node.logs$` (bounded), when asked for
 * Cold: each subscriber polls on its own; unsubscribing stops the timer and every request.
 * Completes when the node closes.
 */
import {
  catchError,
  defer,
  exhaustMap,
  forkJoin,
  interval,
  map,
  Observable,
  type ObservableInput,
  of,
  startWith,
  switchMap,
  timeout,
} from 'rxjs';
import { GREETING_KEY } from '../../protocol/constants.js';
import type { Greeting } from '../../protocol/greeting.js';
import { type Clock, realClock } from '../clock.js';
import { LEVEL, type LogLevel } from '../log/log.js';
import type { Node } from '../node.js';
import type { DbFamilyView, LinkStats, NetworkSnapshot, NodeStats } from './snapshot.js';
import {
  collectStats,
  MAX_STATS_FAMILIES,
  MAX_STATS_LINKS,
  MAX_STATS_NAME,
  STATS_REQUEST,
  type StatsAnswer,
  type StatsSource,
} from './stats-request.js';

export interface ObserveOptions {
  /** Milliseconds between two pictures (default 1000, at least 100). */
  intervalMs?: number;
  /** Read DB families and their entries (default true). */
  families?: boolean;
  /** Keep a tail of the network's log records (default false: it makes every node send logs). */
  logs?: boolean;
  /** The most severe … least severe level of log records kept (default `LEVEL.info`). */
  logLevel?: LogLevel;
  /** Milliseconds a node may take to answer (default: the interval). */
  timeoutMs?: number;
}

/** Families read per picture, entries shown per family, log records kept. */
export const MAX_VIEW_FAMILIES = 32;
export const MAX_VIEW_ENTRIES = 100;
export const MAX_VIEW_LOGS = 200;
/** Nodes polled per picture, links per picture. */
export const MAX_VIEW_NODES = 256;
export const MAX_VIEW_LINKS = 5000;
/** A log message longer than this is kept cut short. */
const MAX_LOG_TEXT = 2000;
/** A DB value longer than this (as JSON) is shown cut short. */
const MAX_VALUE_TEXT = 500;
/** Greeting keys only aemp nodes send (Perl's greeting has none of them). */
const AEMP_KEYS = [GREETING_KEY.TIEBREAK, GREETING_KEY.HEARTBEAT, GREETING_KEY.ROLE];

/** What the view reads of the node beyond its public API (the same parts the node port uses). */
interface ViewParts {
  readonly clock: Clock;
  readonly source: StatsSource;
  peerGreeting(nodeId: string): Greeting | undefined;
}

function partsOf(node: Node): ViewParts {
  const n = node as unknown as StatsSource & {
    network: StatsSource['network'] & { peerGreeting?(id: string): Greeting | undefined };
  };
  return {
    clock: n.kernel.clock ?? realClock,
    source: n,
    peerGreeting: (id) => n.network.peerGreeting?.(id),
  };
}

/** aemp, Perl, or not known (not connected): from the greeting of the connection. */
export function kindOfGreeting(g: Greeting | undefined): NodeStats['kind'] {
  if (!g) return 'unknown';
  return AEMP_KEYS.some((k) => g.keys.has(k)) ? 'aemp' : 'perl';
}

/** One picture of the network every `intervalMs`, the first at once. */
export function observeNetwork(node: Node, opts: ObserveOptions = {}): Observable<NetworkSnapshot> {
  return new Observable<NetworkSnapshot>((sub) => {
    const parts = partsOf(node);
    const { clock } = parts;
    const intervalMs = Math.max(100, opts.intervalMs ?? 1000);
    const waitMs = Math.max(10, Math.min(opts.timeoutMs ?? intervalMs, intervalMs));
    const state = new ViewState(node.id);
    const logs: NetworkSnapshot['logs'] = [];
    if (opts.logs)
      sub.add(
        node.logs$(opts.logLevel ?? LEVEL.info).subscribe((r) => {
          logs.push({
            time: Math.round(r.time * 1000),
            node: r.node.slice(0, MAX_STATS_NAME),
            level: r.level,
            message: r.message.length > MAX_LOG_TEXT ? `${r.message.slice(0, MAX_LOG_TEXT)}…` : r.message,
          });
          if (logs.length > MAX_VIEW_LOGS) logs.splice(0, logs.length - MAX_VIEW_LOGS);
        }),
      );

    /** A request with a deadline on the node's clock; `fallback` when it fails or is late. */
    const bounded = <T>(req: ObservableInput<T>, fallback: T): Observable<T> =>
      defer(() => req).pipe(
        timeout({ first: waitMs, scheduler: clock.scheduler }),
        catchError(() => of(fallback)),
      );

    const poll = defer(() => {
      const listed = bounded(node.db.family$("'l"), {} as Record<string, unknown>);
      return listed.pipe(
        switchMap((l) => {
          const ids = state.nodeList(l, node.upNodes());
          const asks = ids.map((id) => {
            if (id === node.id) return of<Answer>({ id, stats: collectStats(parts.source) });
            const kind = kindOfGreeting(parts.peerGreeting(id));
            if (kind === 'perl') return of<Answer>({ id, kind });
            if (kind === 'unknown' && node.nodeIsUp(id) !== true) {
              // Not connected: connect with a no-op first; the greeting tells its kind next time.
              node.snd(id, 'devnull');
              return of<Answer>({ id, kind });
            }
            return bounded(
              node.cal$(id, STATS_REQUEST).pipe(map((r): Answer => ({ id, stats: statsOf(r[0], id) }))),
              { id } as Answer,
            );
          });
          return forkJoin(asks.length > 0 ? asks : [of<Answer>({ id: node.id })]).pipe(
            switchMap((answers) => {
              const names = opts.families === false ? [] : state.familyNames(answers);
              const reads = names.map((f) =>
                bounded(node.db.family$(f).pipe(map((r) => familyView(f, r))), state.lastFamily(f)),
              );
              return (reads.length > 0 ? forkJoin(reads) : of([] as DbFamilyView[])).pipe(
                map((families) => state.picture(clock.epochMs(), clock.now(), l, answers, families, logs)),
              );
            }),
          );
        }),
      );
    });

    // The node's end is the view's end.
    sub.add(node.nodes$.subscribe({ complete: () => sub.complete() }));
    if (sub.closed) return;
    sub.add(
      interval(intervalMs, clock.scheduler)
        .pipe(
          startWith(-1),
          exhaustMap(() => poll),
        )
        .subscribe(sub),
    );
  });
}

/** One node's part of a poll: its answer, or what else is known. */
interface Answer {
  id: string;
  stats?: StatsAnswer | undefined;
  kind?: NodeStats['kind'];
}

/** A stats answer, if it looks like one and names the node asked: the peer's numbers, checked. */
function statsOf(v: unknown, id: string): StatsAnswer | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const s = v as Record<string, unknown>;
  if (s.node !== id) return undefined;
  const loop = s.loopDelayMs as Record<string, unknown> | undefined;
  const db = s.db as Record<string, unknown> | undefined;
  const links = Array.isArray(s.links) ? s.links.slice(0, MAX_STATS_LINKS) : [];
  const familyKeys = Array.isArray(s.familyKeys) ? s.familyKeys.slice(0, MAX_STATS_FAMILIES) : [];
  return {
    node: id,
    kind: 'aemp',
    global: s.global === true,
    addresses: addressesOf(s.addresses),
    at: count(s.at) ?? Date.now(),
    ports: count(s.ports),
    monitors: count(s.monitors),
    heapUsed: count(s.heapUsed),
    rss: count(s.rss),
    ...(typeof loop === 'object' && loop !== null
      ? { loopDelayMs: { p50: count(loop.p50) ?? 0, max: count(loop.max) ?? 0 } }
      : {}),
    ...(typeof db === 'object' && db !== null
      ? { db: { families: count(db.families) ?? 0, keys: count(db.keys) ?? 0 } }
      : {}),
    heartbeatMisses: count(s.heartbeatMisses),
    links: links.flatMap((l) => linkFrom(l, id)),
    familyKeys: familyKeys.flatMap((f): [string, number][] =>
      Array.isArray(f) && typeof f[0] === 'string' && f[0].length <= MAX_STATS_NAME
        ? [[f[0], count(f[1]) ?? 0]]
        : [],
    ),
  };
}

/** A non-negative finite number, or undefined. */
function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** One link of node `from`'s answer, checked (none if it is no link of that node). */
function linkFrom(v: unknown, from: string): LinkStats[] {
  if (typeof v !== 'object' || v === null) return [];
  const l = v as Record<string, unknown>;
  if (l.from !== from || typeof l.to !== 'string' || l.to.length > MAX_STATS_NAME) return [];
  return [
    {
      from,
      to: l.to,
      up: l.up === true,
      messagesIn: count(l.messagesIn) ?? 0,
      messagesOut: count(l.messagesOut) ?? 0,
      bytesIn: count(l.bytesIn) ?? 0,
      bytesOut: count(l.bytesOut) ?? 0,
      msgRateIn: 0,
      msgRateOut: 0,
      byteRateIn: 0,
      byteRateOut: 0,
      queued: count(l.queued) ?? 0,
      unsentBytes: count(l.unsentBytes) ?? 0,
    },
  ];
}

/** A family's entries, bounded, values cut short when long. */
function familyView(family: string, record: Record<string, unknown>): DbFamilyView {
  const keys = Object.keys(record);
  const entries = keys.slice(0, MAX_VIEW_ENTRIES).map((key) => ({ key, value: shortValue(record[key]) }));
  return { family, entries, truncated: keys.length > MAX_VIEW_ENTRIES };
}

function shortValue(v: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch {
    return '(not shown)';
  }
  if (text === undefined || text.length <= MAX_VALUE_TEXT) return v;
  return `${text.slice(0, MAX_VALUE_TEXT)}…`;
}

/** What a view remembers between two pictures: last answers and counters (for rates). */
class ViewState {
  private readonly last = new Map<string, NodeStats>();
  private readonly counters = new Map<string, { t: number; link: LinkStats }>();
  private readonly families = new Map<string, DbFamilyView>();

  constructor(private readonly observer: string) {}

  /** The nodes to poll: this one, then the listed and the connected ones (bounded). */
  nodeList(listed: Record<string, unknown>, up: readonly string[]): string[] {
    const ids = new Set<string>([this.observer]);
    for (const id of [...Object.keys(listed), ...up])
      if (ids.size < MAX_VIEW_NODES && id.length <= MAX_STATS_NAME) ids.add(id);
    return [...ids];
  }

  /** Family names from the global nodes' answers (and this node's own), bounded. */
  familyNames(answers: readonly Answer[]): string[] {
    const names = new Set<string>();
    const ordered = [...answers].sort(
      (a, b) => Number(b.stats?.global ?? false) - Number(a.stats?.global ?? false),
    );
    for (const a of ordered)
      for (const [f] of a.stats?.familyKeys ?? []) if (names.size < MAX_VIEW_FAMILIES) names.add(String(f));
    return [...names].sort();
  }

  lastFamily(family: string): DbFamilyView {
    return this.families.get(family) ?? { family, entries: [], truncated: false };
  }

  picture(
    at: number,
    now: number,
    listed: Record<string, unknown>,
    answers: readonly Answer[],
    families: readonly DbFamilyView[],
    logs: NetworkSnapshot['logs'],
  ): NetworkSnapshot {
    const nodes: NodeStats[] = [];
    const links: LinkStats[] = [];
    const seen = new Set<string>();
    for (const a of answers) {
      const addresses = addressesOf(listed[a.id]);
      let s: NodeStats;
      if (a.stats) {
        const { familyKeys: _f, truncated: _t, ...rest } = a.stats;
        s = { ...rest, links: (rest.links ?? []).map((l) => this.rated(l, now)) };
      } else if (a.kind === 'perl') {
        // What is known of a Perl node: its addresses and up/down (our link to it is among
        // this node's links).
        s = { node: a.id, kind: 'perl', global: false, addresses, at, links: [] };
      } else {
        const before = this.last.get(a.id);
        s = before
          ? { ...before, kind: 'unknown' }
          : { node: a.id, kind: 'unknown', global: false, addresses, at };
      }
      if (s.addresses.length === 0 && addresses.length > 0) s = { ...s, addresses };
      this.last.set(a.id, s);
      seen.add(a.id);
      nodes.push(s);
      for (const l of s.links ?? []) if (links.length < MAX_VIEW_LINKS) links.push(l);
    }
    // Nodes no longer listed nor up are forgotten.
    for (const id of [...this.last.keys()]) if (!seen.has(id)) this.last.delete(id);
    for (const key of [...this.counters.keys()])
      if (!seen.has(key.slice(0, key.indexOf('\0')))) this.counters.delete(key);
    for (const f of families) this.families.set(f.family, f);
    for (const name of [...this.families.keys()])
      if (!families.some((f) => f.family === name)) this.families.delete(name);
    return { at, observer: this.observer, nodes, links, families: [...families], logs: [...logs] };
  }

  /** The link with its rates since the previous picture (per second). */
  private rated(l: LinkStats, now: number): LinkStats {
    const key = `${l.from}\0${l.to}`;
    const prev = this.counters.get(key);
    this.counters.set(key, { t: now, link: l });
    if (!prev || now <= prev.t) return l;
    const dt = (now - prev.t) / 1000;
    const rate = (a: number, b: number) => (a >= b ? (a - b) / dt : 0);
    return {
      ...l,
      msgRateIn: rate(l.messagesIn, prev.link.messagesIn),
      msgRateOut: rate(l.messagesOut, prev.link.messagesOut),
      byteRateIn: rate(l.bytesIn, prev.link.bytesIn),
      byteRateOut: rate(l.bytesOut, prev.link.bytesOut),
    };
  }
}

function addressesOf(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, 16) : [];
}
