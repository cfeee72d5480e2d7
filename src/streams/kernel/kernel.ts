/**
 * The local kernel: the port table, local delivery, kills and monitors (spec/api.md §5–§11,
 * §18, §19).
 *
 * Exchange with the rest of the node:
 *   snd(local)   → one FIFO queue, drained on the next event-loop turn (order per sender kept)
 *   snd(remote)  → Remote.send(node, [PORTNAME, …msg])
 *   kil(local)   → queued behind earlier messages (always deferred); kil(remote) → `kil1`
 *   port death   → local monitors fire, `kil0` to every node that sent `mon1` for the port
 *   receive()    → messages from a connection, delivered at once in port context
 * Node-port (`""`) messages go to the `nodePort` handler with their source node.
 */
import { dieReason, formatReason, KilledError, type KillReason } from '../../errors.js';
import { type Clock, realClock } from '../clock.js';
import {
  LEVEL,
  LOG_BURST,
  LOG_SUMMARY_INTERVAL_MS,
  type Logger,
  type LogLevel,
  LogLimiter,
  logText,
} from '../log/log.js';
import { CallWatches } from './call-watches.js';
import { DeliveryQueue } from './delivery-queue.js';
import type { MAX_VALUES } from './fifo.js';
import { errText, tagText, traceJson } from './message-text.js';
import { Guard, type Handler, type MonEntry, PortRecord } from './port-record.js';
import { PortTable } from './port-table.js';
import { type Remote, type RemoteDest, wireAppend, wireMessage, wireValues } from './remote.js';
import { RemoteMonitors } from './remote-monitors.js';

export { errText } from './message-text.js';
export { Guard, type Handler, type MonEntry, type PortSink, type SinkHandle } from './port-record.js';
export type { Remote } from './remote.js';

interface KillOp {
  name: string;
  reason: KillReason;
}

const KILL = { kind: 'kill' } as const;
const NOOP = (): void => {};
const TASK = { kind: 'task' } as const;

export interface KernelOptions {
  nodeId: string;
  /** True when the node ID got a random part: port names are then just the counter. */
  randomisedId: boolean;
  logger: Logger;
  remote: Remote;
  /**
   * Makes the handler of `["", TAG, …]` (`msg` is `[TAG, …]`, `src` the node it came from) for
   * this kernel, once it is built: the kernel calls it directly, with nothing in between.
   * `owned`: `msg` is a message from a connection, which nothing else holds (the handler may
   * take it apart instead of copying it).
   */
  nodePort?: (kernel: Kernel) => (src: string, msg: unknown[], owned?: boolean) => void;
  onKill?: (portId: string, reason: KillReason) => void;
  /** Receives a `SND …` line per `snd` and an `RCV …` line per message from a peer (tracing). */
  trace?: (line: string) => void;
  /** The node's clock (default: real time). */
  clock?: Clock;
}

export class Kernel extends PortTable {
  logger: Logger;
  remote: Remote;
  nodePort: (src: string, msg: unknown[], owned?: boolean) => void;
  onKill: ((portId: string, reason: KillReason) => void) | undefined;
  readonly trace: ((line: string) => void) | undefined;
  readonly clock: Clock;

  /** The port whose handler runs right now (Perl's `$SELF`). */
  self: string | undefined;
  /** The node the message being handled came from (Perl's `$SRCNODE`). */
  srcNode: string | undefined;
  /**
   * Rate limit for the log lines peers can provoke (failed and refused node-port requests):
   * a few per source and interval, then a count. Stopped by `close()`.
   */
  readonly logLimit: LogLimiter;
  /** The monitors of called ports, one per port however many calls wait on it. */
  readonly callWatches = new CallWatches((portId, entry) => this.watch(portId, entry));

  /** The local ports each remote node monitors (`mon1`), to forget them when it goes away. */
  private readonly rmons = new RemoteMonitors();
  private readonly queue: DeliveryQueue;
  /** The last remote destination of `snd`, and where it is. */
  private lastDest: string | undefined;
  private lastRemote: RemoteDest | undefined;
  private closed = false;

  constructor(opts: KernelOptions) {
    super(opts.nodeId, opts.randomisedId);
    this.logger = opts.logger;
    this.remote = opts.remote;
    this.nodePort = NOOP;
    this.onKill = opts.onKill;
    this.trace = opts.trace;
    this.clock = opts.clock ?? realClock;
    this.logLimit = new LogLimiter(() => this.logger, LOG_BURST, LOG_SUMMARY_INTERVAL_MS, this.clock);
    this.queue = new DeliveryQueue(this.clock, this.step);
    if (opts.nodePort) this.nodePort = opts.nodePort(this);
  }

  /** @internal Number of (node, local port) monitors set by other nodes with `mon1`. */
  get remoteMonitorCount(): number {
    return this.rmons.count;
  }

  /**
   * Creates port `name` holding its messages until the returned release function runs; then
   * the held messages are delivered in order (used while a spawn init function loads).
   */
  hold(name: string): () => void {
    const held: [string, unknown[]][] = [];
    const keep: Handler = (...m: unknown[]) => {
      held.push([this.srcNode ?? this.nodeId, m]);
    };
    const r = this.ports.get(name) ?? this.addPort(name, keep);
    return () => {
      if (r.dflt === keep) r.dflt = null;
      for (const [src, m] of held) if (!r.dead) this.deliver(r, m, src);
      held.length = 0;
    };
  }

  /**
   * Creates the local port `portId` (or takes the existing one) for a stream that owns it;
   * `onDeath` fires when the port dies. Returns the close function, which kills that very port
   * now with a normal reason (not a later port of the same ID) without firing `onDeath`;
   * `undefined` once the kernel is closed.
   */
  openPort(portId: string, onDeath: MonEntry): (() => void) | undefined {
    if (this.closed) return undefined;
    const r = this.ensure(portId);
    (r.mons ??= []).push(onDeath);
    return () => {
      if (r.dead) return;
      this.unmonitor(r, onDeath);
      if (this.ports.get(r.name) === r) this.killNow(r.name, []);
    };
  }

  /** True once `close()` ran. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends `msg` to a port ID or node ID (spec §8). Never throws for unreachable targets. */
  snd(dest: string, msg: unknown[]): void {
    if (this.trace !== undefined) {
      const hash = dest.indexOf('#');
      const to = hash < 0 ? [dest, null] : [dest.slice(0, hash), dest.slice(hash + 1)];
      this.trace(`SND ${to[0]} <- ${traceJson([to[1], ...msg])}`);
    }
    // Fast path: a live local port, found by the caller's ID string (its hash is cached).
    const r = this.byId.get(dest);
    if (r !== undefined) {
      this.push(r, msg);
      return;
    }
    const d = this.remoteDest(dest);
    if (d === undefined) {
      const hash = dest.indexOf('#');
      this.push(hash < 0 ? '' : dest.slice(hash + 1), msg);
    } else {
      this.remote.send(d.node, wireMessage(d.name, msg));
    }
  }

  /**
   * `snd` with the message given as its first `n` values (`n` ≤ {@link MAX_VALUES}): a live
   * local port gets them queued inline, so its message array is made only on delivery, and a
   * remote port gets the wire message `[PORTNAME, …values]` made at once.
   */
  sndValues(dest: string, n: number, a: unknown, b: unknown, c: unknown, d: unknown): void {
    if (this.trace === undefined) {
      const r = this.byId.get(dest);
      if (r !== undefined) {
        this.queue.pushValues(r, n, a, b, c, d);
        return;
      }
      const to = this.remoteDest(dest);
      if (to !== undefined) {
        this.remote.send(to.node, wireValues(to.name, n, a, b, c, d));
        return;
      }
    }
    this.snd(dest, wireValues(undefined, n, a, b, c, d));
  }

  /**
   * `snd(dest, [...msg, last])` (a request with its reply port), making only the one array the
   * destination needs: a remote port gets the wire message `[PORTNAME, ...msg, last]` at once.
   */
  sndAppend(dest: string, msg: readonly unknown[], last: unknown): void {
    if (this.trace === undefined && !this.byId.has(dest)) {
      const to = this.remoteDest(dest);
      if (to !== undefined) {
        this.remote.send(to.node, wireAppend(to.name, msg, last));
        return;
      }
    }
    this.snd(dest, wireAppend(undefined, msg, last));
  }

  /**
   * The node and port name of `dest` when it is on another node, else undefined. The last
   * destination is remembered, so that a stream of messages to one port cuts and hashes no new
   * strings (the node ID string is then the very one the peer table was last searched with).
   * Only the last: a table of many would cost more for what mostly goes to a new port each
   * time (replies to `cal` reply ports) than it saves; those still find their node ID string
   * when it is the last one's.
   */
  private remoteDest(dest: string): RemoteDest | undefined {
    if (dest === this.lastDest) return this.lastRemote;
    const hash = dest.indexOf('#');
    const last = this.lastRemote;
    let node: string;
    // `indexOf(…) === 0` rather than `startsWith`: V8's `startsWith` costs about 50 ns more, paid
    // for every reply a node sends to a caller's reply port.
    if (last !== undefined && hash === last.node.length && dest.indexOf(last.node) === 0) node = last.node;
    else {
      node = hash < 0 ? dest : dest.slice(0, hash);
      if (node === this.nodeId) return undefined;
    }
    const d: RemoteDest = { node, name: hash < 0 ? '' : dest.slice(hash + 1) };
    this.lastDest = dest;
    this.lastRemote = d;
    return d;
  }

  /** Kills a port (spec §9): local kills are deferred behind queued messages. */
  kil(portId: string, reason: KillReason): void {
    const hash = portId.indexOf('#');
    const name = hash < 0 ? '' : portId.slice(hash + 1);
    if (name === '') throw new TypeError(`kil: cannot kill a node port ('${portId}')`);
    const node = portId.slice(0, hash);
    if (node === this.nodeId) {
      this.push(KILL, { name, reason } satisfies KillOp);
    } else {
      this.remote.send(node, ['', 'kil1', name, ...reason]);
    }
  }

  /** Kills a local port by name right now (the `kil1` request; spec §9). */
  killNow(name: string, reason: KillReason): void {
    const r = this.find(name);
    if (!r) return;
    this.ports.delete(name);
    this.byId.delete(r.id);
    r.dead = true;
    const { mons, sinks, rmons, reply } = r;
    r.mons = r.sinks = r.rmons = r.reply = null;
    r.tags = null;
    if (mons) {
      for (const m of mons) {
        try {
          m.fire(reason);
        } catch (err) {
          this.logger.log(LEVEL.error, `monitor callback for ${r.id} threw: ${errText(err)}`);
        }
      }
    }
    if (rmons) {
      for (const node of rmons) {
        this.remote.sendIfUp(node, ['', 'kil0', name, ...reason]);
        this.rmons.forget(r, node);
      }
    }
    if (sinks || reply) {
      const err = reason.length ? new KilledError(r.id, reason) : undefined;
      if (reply) err ? reply.error(err) : reply.complete();
      if (sinks) for (const s of sinks) err ? s.error(err) : s.complete();
    }
    if (!mons && !sinks && !rmons && !reply && reason.length) {
      // The reason may come from a peer (`kil1`): escaped and cut short.
      this.logger.log(
        LEVEL.error,
        `unmonitored local port ${logText(name)} died with reason: ${logText(formatReason(reason))}`,
      );
    }
    this.onKill?.(r.id, reason);
  }

  /**
   * Monitors a port (spec §10). The entry fires once with the kill reason. For a missing local
   * port it fires with `no_such_port` at once, or behind the queue if deliveries are pending.
   */
  monitor(portId: string, entry: MonEntry): Guard {
    return new Guard(this.watch(portId, entry));
  }

  /** `monitor` without the guard object: returns the cancel function (internal fast path). */
  watch(portId: string, entry: MonEntry): () => void {
    const to = this.remoteDest(portId);
    if (to !== undefined) return this.remote.monitor(to.node, to.name, entry);
    const hash = portId.indexOf('#');
    const name = hash < 0 ? '' : portId.slice(hash + 1);
    if (name === '') return NOOP;
    const r = this.find(name);
    if (r) {
      (r.mons ??= []).push(entry);
      return () => this.unmonitor(r, entry);
    }
    const reason = ['no_such_port', 'cannot monitor nonexistent port', portId];
    if (this.queue.length === 0) {
      entry.fire(reason);
      return NOOP;
    }
    // Deliveries are pending (one may create the port, e.g. a local spawn): check behind them.
    let cancelled = false;
    let later: PortRecord | undefined;
    this.push(TASK, () => {
      if (cancelled) return;
      later = this.find(name);
      if (later) (later.mons ??= []).push(entry);
      else entry.fire(reason);
    });
    return () => {
      cancelled = true;
      if (later) this.unmonitor(later, entry);
    };
  }

  private unmonitor(r: PortRecord, entry: MonEntry): void {
    if (!r.mons) return;
    const i = r.mons.indexOf(entry);
    if (i >= 0) r.mons.splice(i, 1);
    if (r.mons.length === 0) r.mons = null;
  }

  /** Registers (or with `false` drops) a remote node's monitor of a local port (`mon1`/`mon0`). */
  remoteMonitor(src: string, name: string, on: boolean): boolean {
    const r = on ? this.find(name) : this.ports.get(name);
    if (!r) return false;
    if (on) this.rmons.add(r, src);
    else this.rmons.drop(r, src);
    return true;
  }

  /**
   * Forgets every monitor that node `src` set on our ports: its connection is gone, and a new
   * process under the same node ID must not get `kil0` for monitors it never set.
   */
  dropRemoteMonitors(src: string): void {
    this.rmons.dropNode(src);
  }

  /** Runs `fn` with `portId` as port context; an exception kills that port with `die`. */
  peval<T>(portId: string, fn: () => T): T | undefined {
    const prev = this.self;
    this.self = portId;
    try {
      return fn();
    } catch (err) {
      this.kil(portId, dieReason(err));
      return undefined;
    } finally {
      this.self = prev;
    }
  }

  /** A message from a connection: `[PORTNAME, …]` from node `src`, handled at once. */
  receive(src: string, msg: unknown[]): void {
    if (this.trace !== undefined) this.trace(`RCV ${src} -> ${traceJson(msg)}`);
    const name = msg.shift();
    if (name === '') {
      this.runNodePort(src, msg, true);
      return;
    }
    if (typeof name === 'string') this.deliverNamed(name, msg, src);
  }

  /** Queues a task behind pending deliveries. */
  defer(fn: () => void): void {
    this.push(TASK, fn);
  }

  /** Kills every local port now (normal reason) and drops pending deliveries. */
  close(): void {
    this.closed = true;
    this.logLimit.close();
    this.queue.close();
    for (const name of [...this.ports.keys()]) this.killNow(name, []);
    for (const p of this.replies.all()) this.killNow(this.uniq + p.replySeq, []);
  }

  private push(target: unknown, payload: unknown): void {
    this.queue.push(target, payload);
  }

  private readonly step = (t: unknown, payload: unknown): boolean => {
    if (t instanceof PortRecord) {
      if (!t.dead) this.deliver(t, payload as unknown[], this.nodeId);
    } else if (typeof t === 'string') {
      // Addressed by name before the port existed (e.g. right after a local spawn).
      if (t === '') this.runNodePort(this.nodeId, payload as unknown[]);
      else this.deliverNamed(t, payload as unknown[], this.nodeId);
    } else if (t === KILL) {
      const k = payload as KillOp;
      this.killNow(k.name, k.reason);
    } else {
      (payload as () => void)();
    }
    return this.closed;
  };

  /** Delivers to the port named `name`: a reply port in the table or a port record. */
  private deliverNamed(name: string, msg: unknown[], src: string): void {
    const p = this.replyOf(name);
    if (p === undefined) {
      const r = this.ports.get(name);
      if (r !== undefined) this.deliver(r, msg, src);
      return;
    }
    const prevSelf = this.self;
    const prevSrc = this.srcNode;
    this.self = p.replyId;
    this.srcNode = src;
    try {
      p.next(msg);
    } catch (err) {
      this.kil(p.replyId, dieReason(err));
    } finally {
      this.self = prevSelf;
      this.srcNode = prevSrc;
    }
  }

  private deliver(r: PortRecord, msg: unknown[], src: string): void {
    const prevSelf = this.self;
    const prevSrc = this.srcNode;
    this.self = r.id;
    this.srcNode = src;
    try {
      if (r.tags !== null && typeof msg[0] === 'string') {
        const h = r.tags.get(msg[0]);
        if (h !== undefined) {
          msg.shift();
          h(...msg);
          return;
        }
      }
      if (r.reply !== null) r.reply.next(msg);
      if (r.sinks !== null) {
        const sinks = r.sinks;
        if (sinks.length === 1) sinks[0]!.next(msg);
        else for (const s of sinks.slice()) s.next(msg);
        if (r.dflt !== null) r.dflt(...msg);
      } else if (r.dflt !== null) {
        r.dflt(...msg);
      } else if (r.reply === null) {
        this.kil(r.id, ['unhandled_message', `no callback found for message '${tagText(msg[0])}'`]);
      }
    } catch (err) {
      this.kil(r.id, dieReason(err));
    } finally {
      this.self = prevSelf;
      this.srcNode = prevSrc;
    }
  }

  /**
   * Logs a line a peer provoked: `text` (made with `logText` for anything the peer chose) goes
   * through the rate limit for `kind` from `src`.
   */
  logFromPeer(kind: string, src: string, level: LogLevel, text: string): void {
    this.logLimit.log(`${kind} from ${logText(src, LOG_NODE_ID_MAX)}`, level, text);
  }

  /** `error processing node message from SRC: ERR`, escaped and rate-limited. */
  logNodeMessageError(src: string, err: unknown): void {
    this.logFromPeer(
      'node message errors',
      src,
      LEVEL.error,
      `error processing node message from ${logText(src, LOG_NODE_ID_MAX)}: ${logText(errText(err))}`,
    );
  }

  private runNodePort(src: string, msg: unknown[], owned = false): void {
    const prevSrc = this.srcNode;
    this.srcNode = src;
    try {
      this.nodePort(src, msg, owned);
    } catch (err) {
      this.logNodeMessageError(src, err);
    } finally {
      this.srcNode = prevSrc;
    }
  }
}

/** How many characters of a node ID a log line shows. */
const LOG_NODE_ID_MAX = 100;
