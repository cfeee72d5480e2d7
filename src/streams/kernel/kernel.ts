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
import { Subscription } from 'rxjs';
import { dieReason, formatReason, KilledError, type KillReason } from '../../errors.js';
import { magicIncrement, makeUniq, nodeOf } from '../../protocol/ids.js';
import { LEVEL, type Logger, type LogLevel, LogLimiter, logText } from '../log/log.js';
import { MAX_VALUES, PairFifo } from './fifo.js';

/** A message handler: called with the message elements (for tag handlers, without the tag). */
export type Handler = (...args: any[]) => void;

/** @internal A receiver of a port's messages, as an rxjs subscriber is. */
export interface PortSink {
  next(msg: unknown[]): void;
  complete(): void;
  error(err: unknown): void;
}

/** @internal A private port made by `Kernel.createSinkPort`. */
export interface SinkHandle {
  readonly id: string;
}

/** @internal One registered monitor action; removal is by identity. */
export interface MonEntry {
  fire(reason: KillReason): void;
}

/** @internal What the kernel needs from the network layer. */
export interface Remote {
  /** Queues a wire message `[PORTNAME, …]` for a node, connecting on demand. Never throws. */
  send(nodeId: string, msg: unknown[]): void;
  /** Sends only if a connection to the node is established right now. */
  sendIfUp(nodeId: string, msg: unknown[]): void;
  /** Monitors a port (name `""` = the node) of a remote node; returns the cancel function. */
  monitor(nodeId: string, portName: string, entry: MonEntry): () => void;
}

/** A guard: disposing it cancels what it guards (a monitor, a db entry…). It is a Subscription. */
export class Guard extends Subscription {
  /** @param cancel What disposing the guard does (run once). */
  constructor(cancel?: () => void) {
    super(cancel);
  }

  /** Same as `unsubscribe()`. */
  dispose(): void {
    this.unsubscribe();
  }
}

class PortRecord {
  dead = false;
  tags: Map<string, Handler> | null = null;
  sinks: PortSink[] | null = null;
  mons: MonEntry[] | null = null;
  /** Nodes that sent `mon1` for this port. */
  rmons: Set<string> | null = null;
  constructor(
    readonly name: string,
    readonly id: string,
    /** Default handler; `null` = the port dies on a message no tag handler takes. */
    public dflt: Handler | null,
  ) {}
}

/** Where a remote destination is: its node and port name (`""` for the node itself). */
interface RemoteDest {
  readonly node: string;
  readonly name: string;
}

interface KillOp {
  name: string;
  reason: KillReason;
}

/** Spare queue blocks (128 KB each) kept for good; more are kept only while bursts continue. */
const KEPT_SPARE_BLOCKS = 2;
/** How long after the last burst the queue keeps its extra spare blocks. */
const SPARE_BLOCKS_KEPT_MS = 10_000;
const KILL = { kind: 'kill' } as const;
const NOOP = (): void => {};
const TASK = { kind: 'task' } as const;

/** @internal */
export interface KernelOptions {
  nodeId: string;
  /** True when the node ID got a random part: port names are then just the counter. */
  randomisedId: boolean;
  logger: Logger;
  remote: Remote;
  /** Handles `["", TAG, …]`: `msg` is `[TAG, …]`, `src` the node it came from. */
  nodePort?: (src: string, msg: unknown[]) => void;
  onKill?: (portId: string, reason: KillReason) => void;
  /** Receives a `SND …` line per `snd` and an `RCV …` line per message from a peer (tracing). */
  trace?: (line: string) => void;
}

/** @internal */
export class Kernel {
  readonly nodeId: string;
  readonly prefix: string;
  readonly uniq: string;
  logger: Logger;
  remote: Remote;
  nodePort: (src: string, msg: unknown[]) => void;
  onKill: ((portId: string, reason: KillReason) => void) | undefined;
  readonly trace: ((line: string) => void) | undefined;

  /** The port whose handler runs right now (Perl's `$SELF`). */
  self: string | undefined;
  /** The node the message being handled came from (Perl's `$SRCNODE`). */
  srcNode: string | undefined;
  /**
   * Rate limit for the log lines peers can provoke (failed and refused node-port requests):
   * a few per source and interval, then a count. Stopped by `close()`.
   */
  readonly logLimit = new LogLimiter(() => this.logger);

  /** Live ports by name (wire messages carry names) and by full ID (local sends). */
  private readonly ports = new Map<string, PortRecord>();
  private readonly byId = new Map<string, PortRecord>();
  /** The local ports each remote node monitors (`mon1`), to forget them when it goes away. */
  private readonly rmonsByNode = new Map<string, Set<PortRecord>>();
  private counter = 'a';
  private readonly queue = new PairFifo();
  /** The last remote destination of `snd`, and where it is. */
  private lastDest: string | undefined;
  private lastRemote: RemoteDest | undefined;
  private scheduled: NodeJS.Immediate | undefined;
  /** Lets go of the queue's spare blocks once local traffic has been quiet for a while. */
  private trimTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: KernelOptions) {
    this.nodeId = opts.nodeId;
    this.prefix = opts.nodeId + '#';
    this.uniq = opts.randomisedId ? '' : makeUniq();
    this.logger = opts.logger;
    this.remote = opts.remote;
    this.nodePort = opts.nodePort ?? (() => {});
    this.onKill = opts.onKill;
    this.trace = opts.trace;
  }

  /** Number of live local ports. */
  get portCount(): number {
    return this.ports.size;
  }

  /** @internal Number of monitors set on this node for a local port (for tests and diagnostics). */
  monitorCount(portId: string): number {
    return this.ports.get(this.localName(portId))?.mons?.length ?? 0;
  }

  /** @internal Number of (node, local port) monitors set by other nodes with `mon1`. */
  get remoteMonitorCount(): number {
    let n = 0;
    for (const ports of this.rmonsByNode.values()) n += ports.size;
    return n;
  }

  /** The next value of the shared name counter (first call returns `b`). */
  nextCounter(): string {
    this.counter = magicIncrement(this.counter);
    return this.counter;
  }

  /** Creates a local port; without a handler it dies on its first unhandled message. */
  createPort(handler?: Handler): string {
    const name = this.uniq + this.nextCounter();
    return this.addPort(name, handler ?? null).id;
  }

  /** True if the local port (ID or name) exists. */
  hasPort(portId: string): boolean {
    return this.ports.has(this.localName(portId));
  }

  /** Port IDs of all live local ports. */
  portIds(): string[] {
    return [...this.ports.values()].map((r) => r.id);
  }

  /** Creates the local port if it does not exist (`rcv` on a missing port re-creates it). */
  ensurePort(portId: string): void {
    this.ensure(portId);
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

  /** Sets the default handler (re-creating the port if it does not exist). */
  setDefault(portId: string, handler: Handler): void {
    this.ensure(portId).dflt = handler;
  }

  /** Sets (or with `null`, removes) a tag handler (re-creating the port if needed). */
  setTag(portId: string, tag: string, handler: Handler | null): void {
    const r = this.ensure(portId);
    if (handler) (r.tags ??= new Map()).set(tag, handler);
    else if (r.tags) {
      r.tags.delete(tag);
      if (r.tags.size === 0) r.tags = null;
    }
  }

  /** Attaches a receiver of the messages no tag handler takes; returns the detach function. */
  attachSink(portId: string, sink: PortSink): (() => void) | undefined {
    const r = this.ports.get(this.localName(portId));
    if (!r) return undefined;
    (r.sinks ??= []).push(sink);
    return () => {
      if (!r.sinks) return;
      const i = r.sinks.indexOf(sink);
      if (i >= 0) r.sinks.splice(i, 1);
      if (r.sinks.length === 0) r.sinks = null;
    };
  }

  /**
   * A new local port ID that no port has yet: a name only, until `openPort` creates the port
   * (messages sent to it before that are dropped, monitors get `no_such_port`).
   */
  reservePortId(): string {
    return this.prefix + this.uniq + this.nextCounter();
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
      this.enqueue(hash < 0 ? '' : dest.slice(hash + 1), msg);
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
        if (this.closed) return;
        this.queue.pushValues(r, n, a, b, c, d);
        this.scheduled ??= setImmediate(this.drain);
        return;
      }
      const to = this.remoteDest(dest);
      if (to !== undefined) {
        const { name } = to;
        const wire =
          n === 0
            ? [name]
            : n === 1
              ? [name, a]
              : n === 2
                ? [name, a, b]
                : n === 3
                  ? [name, a, b, c]
                  : [name, a, b, c, d];
        this.remote.send(to.node, wire);
        return;
      }
    }
    this.snd(dest, n === 0 ? [] : n === 1 ? [a] : n === 2 ? [a, b] : n === 3 ? [a, b, c] : [a, b, c, d]);
  }

  /**
   * The node and port name of `dest` when it is on another node, else undefined. The last
   * destination is remembered, so that a stream of messages to one port cuts and hashes no new
   * strings (the node ID string is then the very one the peer table was last searched with).
   * Only the last: a table of many would cost more for what mostly goes to a new port each
   * time (replies to `cal` reply ports) than it saves.
   */
  private remoteDest(dest: string): RemoteDest | undefined {
    if (dest === this.lastDest) return this.lastRemote;
    const hash = dest.indexOf('#');
    const node = hash < 0 ? dest : dest.slice(0, hash);
    if (node === this.nodeId) return undefined;
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

  /**
   * Creates a private local port whose messages all go to `sink` (no handlers; used for
   * replies). The handle carries the port ID and is what `removeSink` takes back.
   */
  createSinkPort(sink: PortSink): SinkHandle {
    // Found by name only (not in `byId`); a local send to it takes the by-name path.
    const name = this.uniq + this.nextCounter();
    const r = new PortRecord(name, this.prefix + name, null);
    r.sinks = [sink];
    this.ports.set(name, r);
    return r;
  }

  /** Removes a port made by `createSinkPort` now, without telling its sink. */
  removeSink(handle: SinkHandle): void {
    const r = handle as PortRecord;
    if (r.dead) return;
    r.sinks = null;
    if (r.mons === null && r.rmons === null) {
      // Nobody watches it: drop it quietly (no kill event for a private port). Its name is
      // the very string it was stored under, so no new hash is computed.
      this.ports.delete(r.name);
      r.dead = true;
      return;
    }
    this.killNow(r.name, []);
  }

  /** Kills a local port by name right now (the `kil1` request; spec §9). */
  killNow(name: string, reason: KillReason): void {
    const r = this.ports.get(name);
    if (!r) return;
    this.ports.delete(name);
    this.byId.delete(r.id);
    r.dead = true;
    const { mons, sinks, rmons } = r;
    r.mons = r.sinks = r.rmons = null;
    r.tags = null;
    if (mons) {
      for (const m of mons) {
        try {
          m.fire(reason);
        } catch (err) {
          this.logger.log(LEVEL.error, `monitor callback for ${r.id} threw: ${String(err)}`);
        }
      }
    }
    if (rmons) {
      for (const node of rmons) {
        this.remote.sendIfUp(node, ['', 'kil0', name, ...reason]);
        const watched = this.rmonsByNode.get(node);
        watched?.delete(r);
        if (watched?.size === 0) this.rmonsByNode.delete(node);
      }
    }
    if (sinks) {
      const err = reason.length ? new KilledError(r.id, reason) : undefined;
      for (const s of sinks) err ? s.error(err) : s.complete();
    }
    if (!mons && !sinks && !rmons && reason.length) {
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
    const r = this.ports.get(name);
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
      later = this.ports.get(name);
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
    const r = this.ports.get(name);
    if (!r) return false;
    if (on) {
      (r.rmons ??= new Set()).add(src);
      let watched = this.rmonsByNode.get(src);
      if (!watched) this.rmonsByNode.set(src, (watched = new Set()));
      watched.add(r);
    } else this.dropRemoteMonitor(r, src);
    return true;
  }

  /**
   * Forgets every monitor that node `src` set on our ports: its connection is gone, and a new
   * process under the same node ID must not get `kil0` for monitors it never set.
   */
  dropRemoteMonitors(src: string): void {
    const watched = this.rmonsByNode.get(src);
    if (!watched) return;
    for (const r of watched) this.dropRemoteMonitor(r, src);
  }

  private dropRemoteMonitor(r: PortRecord, src: string): void {
    if (r.rmons) {
      r.rmons.delete(src);
      if (r.rmons.size === 0) r.rmons = null;
    }
    const watched = this.rmonsByNode.get(src);
    if (watched) {
      watched.delete(r);
      if (watched.size === 0) this.rmonsByNode.delete(src);
    }
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
      this.runNodePort(src, msg);
      return;
    }
    const r = this.ports.get(name as string);
    if (r) this.deliver(r, msg, src);
  }

  /** Queues a task behind pending deliveries. */
  defer(fn: () => void): void {
    this.push(TASK, fn);
  }

  /** Kills every local port now (normal reason) and drops pending deliveries. */
  close(): void {
    this.closed = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    clearTimeout(this.trimTimer);
    this.trimTimer = undefined;
    this.logLimit.close();
    this.queue.clear();
    for (const name of [...this.ports.keys()]) this.killNow(name, []);
  }

  private localName(portId: string): string {
    return portId.startsWith(this.prefix) ? portId.slice(this.prefix.length) : portId;
  }

  private addPort(name: string, dflt: Handler | null): PortRecord {
    const r = new PortRecord(name, this.prefix + name, dflt);
    this.ports.set(name, r);
    this.byId.set(r.id, r);
    return r;
  }

  private ensure(portId: string): PortRecord {
    if (nodeOf(portId) !== this.nodeId || !portId.includes('#'))
      throw new TypeError(`rcv can only be called on local ports ('${portId}')`);
    const name = this.localName(portId);
    if (name === '') throw new TypeError('rcv: the node port cannot be changed');
    return this.ports.get(name) ?? this.addPort(name, null);
  }

  private enqueue(name: string, msg: unknown[]): void {
    this.push(name, msg);
  }

  private push(target: unknown, payload: unknown): void {
    if (this.closed) return;
    this.queue.push(target, payload);
    this.scheduled ??= setImmediate(this.drain);
  }

  private readonly drain = (): void => {
    this.scheduled = undefined;
    this.queue.drain(this.step);
    if (this.closed) return;
    if (this.queue.length > 0) this.scheduled ??= setImmediate(this.drain);
    else if (this.queue.spareBlocks > KEPT_SPARE_BLOCKS) {
      if (this.trimTimer === undefined) {
        this.trimTimer = setTimeout(this.trim, SPARE_BLOCKS_KEPT_MS);
        this.trimTimer.unref();
      } else this.trimTimer.refresh();
    }
  };

  private readonly trim = (): void => {
    this.trimTimer = undefined;
    if (this.queue.length === 0) this.queue.trim(KEPT_SPARE_BLOCKS);
  };

  private readonly step = (t: unknown, payload: unknown): boolean => {
    if (t instanceof PortRecord) {
      if (!t.dead) this.deliver(t, payload as unknown[], this.nodeId);
    } else if (typeof t === 'string') {
      // Addressed by name before the port existed (e.g. right after a local spawn).
      if (t === '') this.runNodePort(this.nodeId, payload as unknown[]);
      else {
        const r = this.ports.get(t);
        if (r) this.deliver(r, payload as unknown[], this.nodeId);
      }
    } else if (t === KILL) {
      const k = payload as KillOp;
      this.killNow(k.name, k.reason);
    } else {
      (payload as () => void)();
    }
    return this.closed;
  };

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
      if (r.sinks !== null) {
        const sinks = r.sinks;
        if (sinks.length === 1) sinks[0]!.next(msg);
        else for (const s of sinks.slice()) s.next(msg);
        if (r.dflt !== null) r.dflt(...msg);
      } else if (r.dflt !== null) {
        r.dflt(...msg);
      } else {
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

  private runNodePort(src: string, msg: unknown[]): void {
    const prevSrc = this.srcNode;
    this.srcNode = src;
    try {
      this.nodePort(src, msg);
    } catch (err) {
      this.logNodeMessageError(src, err);
    } finally {
      this.srcNode = prevSrc;
    }
  }
}

/** How many characters of a node ID a log line shows. */
const LOG_NODE_ID_MAX = 100;

/** The first message element as shown in `unhandled_message`: 30 chars, printable ASCII. */
function tagText(v: unknown): string {
  const s =
    typeof v === 'string'
      ? v
      : v === undefined || v === null
        ? ''
        : typeof v === 'object'
          ? JSON.stringify(v)
          : String(v);
  return s.slice(0, 30).replace(/[^\x20-\x7e]/g, '.');
}

/** @internal Text of an error for log lines. */
export function errText(err: unknown): string {
  // Errors from a vm context are not `instanceof Error` here, so look at the shape.
  if (typeof err === 'object' && err !== null && typeof (err as Error).message === 'string')
    return (err as Error).message;
  return String(err);
}

/** A message as JSON for trace lines (bigints as digits, bytes as Latin-1 text). */
function traceJson(msg: unknown[]): string {
  try {
    return JSON.stringify(msg, (_key, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v,
    );
  } catch (err) {
    return `[not representable as JSON: ${(err as Error).message}]`;
  }
}

/** The wire form `[PORTNAME, …msg]` (a new array: `unshift` costs several times as much). */
function wireMessage(name: string, msg: readonly unknown[]): unknown[] {
  const n = msg.length;
  const wire = new Array<unknown>(n + 1);
  wire[0] = name;
  for (let i = 0; i < n; i++) wire[i + 1] = msg[i];
  return wire;
}
