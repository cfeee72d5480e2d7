/**
 * Network-wide logs (AnyEvent::MP::LogCatcher, spec logcatcher-dataconn.md §2).
 *
 * Source side: the function `AnyEvent::MP::LogCatcher::connect(VERSION, PORT, LEVEL)` attaches
 * a sink to this node's log that sends every record of level ≤ LEVEL to PORT as
 * `[TIME, CONTEXT, LEVEL, MESSAGE]`, and detaches when PORT dies (it is monitored, so the
 * catcher node gets `mon1`). Each sink is bounded: a token bucket caps records per second and
 * records are dropped while the connection to the catcher has more than a set backlog; the
 * drops are counted and reported in the stream as one record "N records dropped".
 *
 * Catcher side: `node.logs$(level)` watches the `'l` family; for every listed node other than
 * this one it makes a port and asks that node to `connect` it; when the port dies while the
 * node is still listed it asks again (at most once a second per node). Unsubscribing kills the
 * ports (the sources see `kil0` and detach) and drops every monitor and timer.
 *
 *   source log ──> sink (level, rate, backlog) ──snd──> catcher port ──> logs$ subscriber
 *
 * Records a node caught are never handed to its own sinks again (no loops). The service
 * `AnyEvent::MP::LogCatcher::catch(LEVEL)` re-logs caught records into the node's logger as
 * `[node±diff] message`, as Perl's catcher does; `catch(null)` stops it.
 */
import { Observable, type Subscription } from 'rxjs';
import { formatReason } from '../../errors.js';
import { nodeOf } from '../../protocol/ids.js';
import { type Clock, realClock, type Timer } from '../clock.js';
import type { NodeDb } from '../db/node-db.js';
import type { Kernel } from '../kernel/kernel.js';
import type { NodeFunction } from '../kernel/registry.js';
import type { NodeStatus } from '../net/network.js';
import { LEVEL, type Logger, type LogLevel, logText } from './log.js';

/** The function a catcher calls on each source. */
export const LOG_CONNECT = 'AnyEvent::MP::LogCatcher::connect';
/** The service that makes a node a catcher. */
export const LOG_CATCH = 'AnyEvent::MP::LogCatcher::catch';
/** The context title of the catcher's own records (drop notices, attach notes). */
export const LOG_CATCHER_CONTEXT = 'AnyEvent::MP::LogCatcher';

/** Records per second one sink sends at most (token bucket refill). */
export const SINK_RATE = 20_000;
/** Records one sink may send in a burst (bucket size). */
export const SINK_BURST = 2_000;
/** Bytes waiting for the catcher's socket above which a sink drops records. */
export const SINK_MAX_BACKLOG = 256 * 1024;
/** Sinks one node serves at once; further `connect` requests are refused. */
export const MAX_SINKS = 256;
/** Minimum milliseconds between two requests of one catcher to one node. */
export const RECONNECT_MS = 1000;
/**
 * Nodes one `logs$` asks for records at most (a port and a connection each): a peer can list
 * any number of made-up nodes in `'l`. Nodes listed past it are not asked (logged once).
 */
export const MAX_LOG_SOURCES = 1024;
/** @internal Characters of a caught message that the catcher's own log line shows. */
const CAUGHT_TEXT_MAX = 4096;

/** One log record of some node (`node.logs$`). */
export interface LogRecord {
  /** The node that logged it. */
  readonly node: string;
  /** That node's wall clock when it logged the record, seconds since the epoch. */
  readonly time: number;
  /** The log context (Perl: the package, e.g. `main`; aemp's own lines: `aemp`). */
  readonly context: string;
  /** 1 fatal … 9 trace. */
  readonly level: LogLevel;
  /** The text, as the node wrote it (not escaped: escape before printing). */
  readonly message: string;
}

type LocalRecord = Omit<LogRecord, 'node'>;
type LocalSink = (rec: LocalRecord) => void;

/**
 * The node's logger: writes to the configured logger and hands each record to the attached
 * sinks. Records made while a sink is being fed (a send that logs) go only to the logger.
 */
export class LogHub implements Logger {
  private readonly sinks = new Set<LocalSink>();
  private feeding = false;

  constructor(
    private readonly base: Logger,
    /** Stamps the records handed to sinks (the node's clock). */
    private readonly clock: Clock = realClock,
  ) {}

  log(level: LogLevel, text: string, context = 'aemp'): void {
    this.base.log(level, text, context);
    if (this.sinks.size === 0 || this.feeding) return;
    this.feeding = true;
    try {
      const rec: LocalRecord = { time: this.clock.epochMs() / 1000, context, level, message: text };
      for (const sink of this.sinks) sink(rec);
    } finally {
      this.feeding = false;
    }
  }

  /** Logs a caught record: to the configured logger only, never to sinks. */
  logCaught(level: LogLevel, text: string, context: string): void {
    this.base.log(level, text, context);
  }

  attach(sink: LocalSink): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  get sinkCount(): number {
    return this.sinks.size;
  }
}

/**
 * What the log machinery uses of its node (a `Node`; named here so that this module does not
 * import node.ts, which imports it).
 */
export interface LogNode {
  readonly id: string;
  readonly clock: Clock;
  readonly kernel: Kernel;
  readonly nodes$: Observable<NodeStatus>;
  readonly db: Pick<NodeDb, 'mon$'>;
  backlog$(node: string): Observable<number>;
  register(name: string, fn: NodeFunction): void;
  sndToFunc(node: string, func: string, ...args: unknown[]): void;
}

/** Per-node state. */
interface CatcherState {
  readonly node: LogNode;
  readonly hub: LogHub;
  /** The node's clock: sink refill and notices, reconnect delays, record times. */
  readonly clock: Clock;
  /** Source-side attachments by catcher port ID. */
  readonly sinks: Map<string, RemoteSink>;
  /** Catcher ports open across all `logs$` subscriptions. */
  catcherPorts: number;
  /** The `catch` service's subscription. */
  service: Subscription | undefined;
}

const states = new WeakMap<LogNode, CatcherState>();

/**
 * Test hook: counts of the log machinery of `node`.
 */
export function logCatcherCounts(node: LogNode): { sinks: number; catcherPorts: number; localSinks: number } {
  const s = states.get(node);
  return { sinks: s?.sinks.size ?? 0, catcherPorts: s?.catcherPorts ?? 0, localSinks: s?.hub.sinkCount ?? 0 };
}

/**
 * Test hook: the catcher ports this node sends records to.
 */
export function logSinkPorts(node: LogNode): string[] {
  return [...(states.get(node)?.sinks.keys() ?? [])];
}

function isLevel(v: unknown): v is LogLevel {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 9;
}

/** One attachment on the source side. */
class RemoteSink {
  private tokens = SINK_BURST;
  private refilled: number;
  private backlog = 0;
  /** Bytes sent in the current run of code, before the connection's batch is written. */
  private unflushed = 0;
  private dropped = 0;
  private notice: Timer | undefined;
  private readonly detachLog: () => void;
  private readonly unwatch: () => void;
  private readonly backlogSub: Subscription;
  private closed = false;

  constructor(
    private readonly state: CatcherState,
    readonly port: string,
    private readonly level: LogLevel,
  ) {
    const { node, hub } = state;
    this.refilled = state.clock.now();
    this.backlogSub = node.backlog$(nodeOf(port)).subscribe((b) => {
      this.backlog = b;
    });
    this.unwatch = node.kernel.watch(port, { fire: () => this.close() });
    this.detachLog = hub.attach((rec) => this.offer(rec));
  }

  private refill(): void {
    const now = this.state.clock.now();
    this.tokens = Math.min(SINK_BURST, this.tokens + ((now - this.refilled) * SINK_RATE) / 1000);
    this.refilled = now;
  }

  private offer(rec: LocalRecord): void {
    if (rec.level > this.level || this.closed) return;
    this.refill();
    if (this.full()) {
      this.dropped++;
      this.armNotice();
      return;
    }
    if (this.dropped > 0) this.sendNotice();
    this.tokens--;
    this.send(rec.time, rec.context, rec.level, rec.message);
  }

  private full(): boolean {
    return this.tokens < 1 || this.backlog + this.unflushed > SINK_MAX_BACKLOG;
  }

  private send(time: number, context: string, level: LogLevel, message: string): void {
    // Writes are batched and go out in a microtask; until then the batch is counted here.
    if (this.unflushed === 0)
      queueMicrotask(() => {
        this.unflushed = 0;
      });
    this.unflushed += 32 + context.length + message.length;
    this.state.node.kernel.snd(this.port, [time, context, level, message]);
  }

  private sendNotice(): void {
    const n = this.dropped;
    this.dropped = 0;
    this.tokens--;
    this.send(this.state.clock.epochMs() / 1000, LOG_CATCHER_CONTEXT, LEVEL.warn, `${n} records dropped`);
  }

  /** Reports the drops once there is room again, even if no further record comes. */
  private armNotice(): void {
    if (this.notice !== undefined) return;
    this.notice = this.state.clock.timeout(
      () => {
        this.notice = undefined;
        if (this.closed || this.dropped === 0) return;
        this.refill();
        if (!this.full()) this.sendNotice();
        else this.armNotice();
      },
      100,
      false,
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.notice?.cancel();
    this.detachLog();
    this.unwatch();
    this.backlogSub.unsubscribe();
    if (this.state.sinks.get(this.port) === this) this.state.sinks.delete(this.port);
    this.state.hub.log(
      LEVEL.debug,
      `stopped propagating log messages to ${logText(this.port, 200)}`,
      LOG_CATCHER_CONTEXT,
    );
  }
}

/**
 * Installs the log machinery of `node`: the `connect` and `catch` functions.
 */
export function installLogCatcher(node: LogNode, hub: LogHub): void {
  const state: CatcherState = {
    node,
    hub,
    clock: node.clock,
    sinks: new Map(),
    catcherPorts: 0,
    service: undefined,
  };
  states.set(node, state);

  node.register(LOG_CONNECT, (_version: unknown, port: unknown, level: unknown) => {
    if (typeof port !== 'string' || !port.includes('#')) throw new Error('not a valid port');
    if (!isLevel(level)) throw new Error(`${String(level)}: not a valid logging level`);
    state.sinks.get(port)?.close();
    if (state.sinks.size >= MAX_SINKS) throw new Error(`too many log catchers (at most ${MAX_SINKS})`);
    state.sinks.set(port, new RemoteSink(state, port, level));
    hub.log(LEVEL.debug, `starting to propagate log messages to ${logText(port, 200)}`, LOG_CATCHER_CONTEXT);
  });

  node.register(LOG_CATCH, (level: unknown) => {
    state.service?.unsubscribe();
    state.service = undefined;
    if (level === null || level === undefined) return;
    if (!isLevel(level)) throw new Error(`${String(level)}: not a valid logging level`);
    state.service = logs$(node, level, { own: false }).subscribe((rec) => {
      const text = `[${rec.node}${timeDiff(rec.time, state.clock)}] ${rec.message}`;
      hub.logCaught(
        Math.max(LEVEL.alert, rec.level) as LogLevel,
        logText(text, CAUGHT_TEXT_MAX),
        logText(rec.context, 200),
      );
    });
  });
}

/** Perl's `±0.002s` suffix: shown when `time` and `clock`'s time differ by at least 1 ms. */
export function timeDiff(time: number, clock: Clock = realClock): string {
  const d = clock.epochMs() / 1000 - time;
  if (!Number.isFinite(d) || Math.abs(d) < 1e-3) return '';
  return `${d > 0 ? '+' : '-'}${Math.abs(d).toFixed(3)}s`;
}

/** A record value from the wire as text (CBOR byte strings may arrive as bytes). */
function wireText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
  if (v === undefined || v === null) return '';
  try {
    return String(v);
  } catch {
    // An object whose `toString` is no function.
    return formatReason([v]);
  }
}

/** A number from the wire; NaN for what has none (an object whose `valueOf` is no function). */
function wireNumber(v: unknown): number {
  try {
    return Number(v);
  } catch {
    return Number.NaN;
  }
}

/** A level from the wire: integers 1…9 kept, out-of-range values clamped, junk read as alert. */
function wireLevel(v: unknown): LogLevel {
  const n = wireNumber(v);
  if (!Number.isFinite(n)) return LEVEL.alert;
  return Math.min(9, Math.max(1, Math.trunc(n))) as LogLevel;
}

export interface LogsOptions {
  /** Include this node's own records. @default true */
  own?: boolean;
}

/**
 * The log records of every node in the `'l` family (and this node's own) at `level` and
 * more severe. See the module comment.
 * Use `node.logs$`.
 */
export function logs$(node: LogNode, level: LogLevel, options: LogsOptions = {}): Observable<LogRecord> {
  if (!isLevel(level)) throw new TypeError(`logs$: ${String(level)} is not a logging level (1…9)`);
  return new Observable<LogRecord>((sub) => {
    const state = states.get(node);
    if (!state) throw new Error('logs$: the node has no log hub');
    const { kernel } = node;
    const { clock } = state;
    let done = false;
    /** Nodes listed in `'l` now. */
    const listed = new Set<string>();
    /** The current catcher port per source node, with its cleanup. */
    const ports = new Map<string, { port: string; unwatch: () => void }>();
    const lastRequest = new Map<string, number>();
    const timers = new Map<string, Timer>();
    /** The nodes past MAX_LOG_SOURCES were reported. */
    let warned = false;

    const detachOwn =
      options.own === false
        ? undefined
        : state.hub.attach((rec) => {
            if (rec.level <= level) sub.next({ node: node.id, ...rec });
          });

    const dropPort = (src: string, kill: boolean): void => {
      const p = ports.get(src);
      if (!p) return;
      ports.delete(src);
      state.catcherPorts--;
      p.unwatch();
      if (kill) kernel.kil(p.port, []);
    };

    const request = (src: string): void => {
      timers.delete(src);
      if (done || !listed.has(src) || ports.has(src)) return;
      lastRequest.set(src, clock.now());
      const port = kernel.createPort((time: unknown, context: unknown, lvl: unknown, message: unknown) => {
        if (done) return;
        const t = wireNumber(time);
        sub.next({
          node: src,
          time: Number.isFinite(t) ? t : clock.epochMs() / 1000,
          context: wireText(context),
          level: wireLevel(lvl),
          message: wireText(message),
        });
      });
      state.catcherPorts++;
      const unwatch = kernel.watch(port, {
        fire: () => {
          if (ports.get(src)?.port !== port) return;
          dropPort(src, false);
          schedule(src);
        },
      });
      ports.set(src, { port, unwatch });
      node.sndToFunc(src, LOG_CONNECT, 0, port, level);
    };

    /** Asks `src` again, at most once per RECONNECT_MS. */
    const schedule = (src: string): void => {
      if (done || !listed.has(src) || timers.has(src)) return;
      const wait = (lastRequest.get(src) ?? -Infinity) + RECONNECT_MS - clock.now();
      if (wait <= 0) {
        request(src);
        return;
      }
      timers.set(
        src,
        clock.timeout(() => request(src), wait, false),
      );
    };

    const unlist = (src: string): void => {
      listed.delete(src);
      lastRequest.delete(src);
      timers.get(src)?.cancel();
      timers.delete(src);
      dropPort(src, true);
    };

    // A port is linked to its node: when the connection goes, the port goes with its reason.
    const nodesSub = node.nodes$.subscribe((s) => {
      if (s.type !== 'down') return;
      const p = ports.get(s.node);
      if (p) kernel.kil(p.port, s.reason);
    });

    const dbSub = node.db.mon$("'l").subscribe({
      next: (change) => {
        const now = new Set(Object.keys(change.entries));
        for (const src of [...listed]) if (!now.has(src)) unlist(src);
        let over = 0;
        for (const src of now) {
          if (src === node.id || listed.has(src)) continue;
          if (listed.size >= MAX_LOG_SOURCES) {
            over++;
            continue;
          }
          listed.add(src);
          request(src);
        }
        if (over > 0 && !warned) {
          warned = true;
          state.hub.log(
            LEVEL.warn,
            `${over} nodes listed in 'l past the ${MAX_LOG_SOURCES} a catcher asks: their records are not caught`,
            LOG_CATCHER_CONTEXT,
          );
        }
      },
      complete: () => sub.complete(),
    });

    return () => {
      done = true;
      dbSub.unsubscribe();
      nodesSub.unsubscribe();
      detachOwn?.();
      for (const src of [...listed]) unlist(src);
    };
  });
}
