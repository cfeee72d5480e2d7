/**
 * The node: an Observable of node events that carries the AEMP API (design.md §1–§2).
 *
 *   node.subscribe(ev => …)   kill / up / down events, db events (changes of monitored families)
 *   node.port$(id)            --m--m--|  (normal kill)   --m--#  (error kill: KilledError)
 *   node.mon$(port)           ------r|   (the kill reason once, then complete)
 *   node.cal$(port, …msg)     ------r|   (one reply); # KilledError if the port dies first
 * `close()` kills every local port (normal reason), stops timers and the network, and
 * completes every stream the node owns.
 */
import type { Duplex } from 'node:stream';
import { first, interval, Observable, Subject } from 'rxjs';
import type { KillReason } from '../errors.js';
import { nodeOf } from '../protocol/ids.js';
import { type Clock, realClock } from './clock.js';
import { buildComponents, type NodeSetup } from './components.js';
import type { DbChange } from './db/family-watch.js';
import type { NodeDb } from './db/node-db.js';
import { MAX_VALUES } from './kernel/fifo.js';
import type { Guard, Handler, Kernel, MonEntry } from './kernel/kernel.js';
import type { RequestHandler } from './kernel/node-port.js';
import { type NodeFunction, Registry } from './kernel/registry.js';
import { LEVEL, type Logger, type LogLevel } from './log/log.js';
import { installLogCatcher, LogHub, type LogRecord, logs$ } from './log/log-catcher.js';
import type { DataConnOptions, DataConns } from './net/dataconn.js';
import type { ConnectionStats, Network, NodeStatus } from './net/network.js';
import { type CallEnv, type CallOptions, cal, cal$, call } from './node-calls.js';
import { evalScope, evaluator } from './node-eval.js';
import { observedPort$, ownedPort$, type PortObservable } from './node-ports.js';
import { NodeTimers } from './node-timers.js';

export { PortObservable } from './node-ports.js';

/** An event of the node stream. */
export type NodeEvent =
  | { type: 'kill'; port: string; reason: KillReason }
  | { type: 'up'; node: string }
  | { type: 'down'; node: string; reason: KillReason }
  /** A change of a family monitored with `node.db.mon$` (one event per change, not per subscriber). */
  | ({ type: 'db'; family: string } & DbChange);

export type { NodeSetup };

export class Node extends Observable<NodeEvent> {
  /** This node's ID. */
  readonly id: string;
  /** Resolves once listeners are bound and services ran; rejects if that failed. */
  readonly ready: Promise<void>;
  /** @internal */
  readonly kernel: Kernel;
  /** @internal */
  readonly registry = new Registry();
  /** @internal node-port handlers beyond the built-in catalogue (the `g_*` requests). */
  readonly requests = new Map<string, RequestHandler>();
  /** @internal */
  readonly network: Network;
  /** The distributed database (spec/api.md §15): `set`, `del`, `reg`, queries and `mon$`. */
  readonly db: NodeDb;
  /** Refuse remote code execution (spec §17). */
  secure: boolean;
  /** Called on a restart request (`aemp restart`); set by a supervisor. */
  onRestart: (() => void) | undefined;
  /** @internal Data connections expected and dialled. */
  readonly dataConns: DataConns;

  private readonly events: Subject<NodeEvent>;
  /** Completes when the node has closed (ends `connectionStats$`). */
  private readonly ended = new Subject<void>();
  private readonly runiq: string;
  /** @internal The node's clock. */
  readonly clock: Clock;
  private readonly timers: NodeTimers;
  private readonly calls: CallEnv;
  private readonly logger: Logger;
  private readonly evalJs = evaluator(() => this.evalScope());
  private closing: Promise<void> | undefined;
  /** Set as soon as `close()` starts (before its first step). */
  private isClosed = false;

  /** @internal Nodes are made by `configure()`. */
  constructor(setup: NodeSetup, start: (node: Node) => Promise<void> = async () => {}) {
    const events = new Subject<NodeEvent>();
    // The database builds change events only while the stream has a subscriber.
    let observedChanged = (): void => {};
    super((subscriber) => {
      const sub = events.subscribe(subscriber);
      observedChanged();
      return () => {
        sub.unsubscribe();
        observedChanged();
      };
    });
    this.events = events;
    this.id = setup.nodeId;
    this.runiq = setup.runiq;
    this.secure = setup.secure;
    this.clock = setup.clock ?? realClock;
    this.timers = new NodeTimers(this.clock);
    const logHub = new LogHub(setup.logger, this.clock);
    this.logger = logHub;
    const parts = buildComponents({
      node: this,
      setup,
      logger: logHub,
      registry: this.registry,
      requests: this.requests,
      emit: (e) => {
        if (events.observed) events.next(e);
      },
      evalJs: (code) => this.evalJs(code),
    });
    this.kernel = parts.kernel;
    this.network = parts.network;
    this.db = parts.db;
    observedChanged = () => parts.db.reportChanges(events.observed);
    this.dataConns = parts.dataConns;
    // Network-wide logs: `AnyEvent::MP::LogCatcher::connect` and `::catch`.
    installLogCatcher(this, logHub);
    this.ready = this.network.start().then(() => {
      this.db.start(this.network.binds);
      return start(this);
    });
    this.ready.catch((err) => {
      if (!this.closing) this.logger.log(LEVEL.error, `node ${this.id} failed to start: ${String(err)}`);
    });
    this.calls = { kernel: this.kernel, timers: this.timers, logger: logHub, closed: () => this.isClosed };
  }

  /** The bound listener addresses (`host:port`), known once `ready` resolved. */
  get binds(): readonly string[] {
    return this.network.binds;
  }

  /** The port whose handler is running (Perl's `$SELF`), undefined outside handlers. */
  get self(): string | undefined {
    return this.kernel.self;
  }

  /** The node the message being handled came from (Perl's `$SRCNODE`). */
  get srcNode(): string | undefined {
    return this.kernel.srcNode;
  }

  /** True if the port ID (or node ID) belongs to this node (`port_is_local`). */
  portIsLocal(port: string): boolean {
    return nodeOf(port) === this.id;
  }

  /**
   * Creates a local port (`port`). Without a handler the port dies with `unhandled_message`
   * on the first message that no tag handler or `port$` subscriber takes.
   */
  port(handler?: Handler): string {
    return this.kernel.createPort(handler);
  }

  /**
   * The messages of a local port as an Observable (each message is an array); every subscriber
   * gets every message. Tag handlers set with `rcv` take their messages first. Completes on a
   * normal kill, errors with `KilledError` on an error kill.
   *
   * - `port$()` owns its port. The ID (`.id`) is chosen at once but is only a name until the
   *   first subscribe creates the port; the last unsubscribe kills it (normally) and a later
   *   subscribe creates a new port under the same ID, as does a subscribe after the port died.
   *   Messages sent to the ID while nobody subscribes are dropped (monitors: `no_such_port`).
   * - `port$(id)` observes an existing local port (made with `port()`, `rcv`, …) and never
   *   kills it: unsubscribing only detaches. It can be subscribed again while the port lives;
   *   for a port that does not exist (any more) it errors at once with `no_such_port`.
   *
   * An error in the port's pipeline kills the port with `['die', message]`: see
   * {@link PortObservable}.
   */
  port$(id?: string): PortObservable {
    return id === undefined ? ownedPort$(this.kernel) : observedPort$(this.kernel, id);
  }

  /**
   * Sets handlers of a local port (`rcv`): `rcv(port, fn)` sets the default handler,
   * `rcv(port, tag, fn, tag2, fn2, …)` tag handlers, `rcv(port, tag, null)` removes one.
   * A missing local port is created. Returns the port ID.
   */
  rcv(port: string, ...args: (string | Handler | null | undefined)[]): string {
    this.kernel.ensurePort(port);
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (typeof a === 'function') this.kernel.setDefault(port, a);
      else if (typeof a === 'string') {
        const cb = args[++i];
        if (cb !== null && cb !== undefined && typeof cb !== 'function')
          throw new TypeError(`rcv: the handler for tag '${a}' is not a function`);
        this.kernel.setTag(port, a, cb ?? null);
      } else throw new TypeError('rcv: expected a handler or a tag');
    }
    return port;
  }

  /** Sends a message to a port or node (`snd`). Never throws for unreachable destinations. */
  snd(port: string, ...msg: unknown[]): void;
  snd(port: string, a?: unknown, b?: unknown, c?: unknown, d?: unknown): void {
    // Up to MAX_VALUES (four) values travel as arguments, so no rest array is made here: a
    // local port gets them queued inline, a remote one a wire message made at once. Larger
    // messages take the general path.
    // biome-ignore lint/complexity/noArguments: counting the values without a rest array
    const n = arguments.length - 1;
    if (n <= MAX_VALUES) this.kernel.sndValues(port, n, a, b, c, d);
    // biome-ignore lint/complexity/noArguments: the message beyond four values
    else this.kernel.snd(port, Array.prototype.slice.call(arguments, 1));
  }

  /** Kills a port (`kil`): no reason = normal exit, otherwise an error kill. */
  kil(port: string, ...reason: unknown[]): void {
    this.kernel.kil(port, reason);
  }

  /**
   * Monitors a port or node (`mon`), one-shot; returns a guard that cancels it:
   * - `mon(port, cb)` calls `cb(...reason)`;
   * - `mon(port, rcvPort)` kills `rcvPort` with the reason, only for an error kill (a link);
   * - `mon(port)` the same with the current port context (`self`);
   * - `mon(port, rcvPort, ...msg)` sends `[...msg, ...reason]` to `rcvPort`.
   */
  mon(port: string, ...args: unknown[]): Guard {
    return this.kernel.monitor(port, this.monEntry(args));
  }

  /** Monitors `port` only to keep `refs` alive until it dies or the guard is disposed. */
  monGuard(port: string, ...refs: unknown[]): Guard {
    // The entry holds the references; it is dropped when the port dies or the guard goes.
    const entry: MonEntry & { refs?: unknown[] } = {
      refs,
      fire: () => {
        entry.refs = undefined;
      },
    };
    return this.kernel.monitor(port, entry);
  }

  /** The kill reason of `port`, once, then complete (`[]` for a normal kill). */
  mon$(port: string): Observable<KillReason> {
    return new Observable<KillReason>((sub) => {
      const guard = this.kernel.monitor(port, {
        fire: (reason) => {
          sub.next(reason);
          sub.complete();
        },
      });
      return () => guard.unsubscribe();
    });
  }

  /**
   * Request/reply in Perl's shape (`cal port, @msg, $cb[, $timeout]`): sends `[...msg,
   * replyPort]` and calls `cb` exactly once: `cb(...reply)` with the reply, or `cb()` without
   * arguments when the timeout (seconds) expires, when `port` dies first (watched only without
   * a timeout, as in Perl), or when the node closes. Then the reply port and the monitor are
   * gone. Unlike Perl, a death of `port` after the reply calls nothing. Throws `AempError`
   * `ERR_NODE_CLOSED` after `close()`. Returns the reply port ID.
   */
  cal(port: string, ...args: unknown[]): string {
    return cal(this.calls, port, args);
  }

  /**
   * Request/reply as an Observable: sends `[...msg, replyPort]`, emits the reply (an array),
   * then completes. Errors with `KilledError` if `port` dies first, and with `AempError`
   * `ERR_NODE_CLOSED` if the node is closed or closes before the reply. Unsubscribing removes
   * the reply port and the monitor. Deadlines compose: `cal$(…).pipe(timeout(5000))`.
   */
  cal$(port: string, ...msg: unknown[]): Observable<unknown[]> {
    return cal$(this.calls, port, msg);
  }

  /**
   * Request/reply as a promise: sends `[...msg, replyPort]` and resolves with the reply (an
   * array). Rejects with `KilledError` if `port` dies first, with rxjs's `TimeoutError` after
   * `options.timeout` seconds, and with `AempError` `ERR_NODE_CLOSED` if the node is closed or
   * closes before the reply; the reply port and the monitor are gone by then. The cheapest
   * way to await a reply: no Observable is made. Throws `TypeError` if `msg` is not an array
   * or `timeout` not a finite number of seconds ≥ 0.
   */
  call(port: string, msg: readonly unknown[] = [], options?: CallOptions): Promise<unknown[]> {
    return call(this.calls, port, msg, options);
  }

  /** After `seconds`, calls `cb` or sends `msg` to `port` (`after`). Cleared by `close()`. */
  after(seconds: number, cbOrPort: (() => void) | string, ...msg: unknown[]): void {
    this.timers.after(seconds, () => {
      if (typeof cbOrPort === 'function') cbOrPort();
      else this.kernel.snd(cbOrPort, msg);
    });
  }

  /**
   * Creates a port on `node` (a node or port ID) whose init function `func` (a registered
   * name containing `::`) runs there with the new port as context (`spawn`). Returns the new
   * port ID at once.
   */
  spawn(node: string, func: string, ...args: unknown[]): string {
    if (!func.includes('::')) throw new TypeError(`spawn: '${func}' is not a fully-qualified function name`);
    const target = nodeOf(node);
    const name = this.runiq + this.kernel.nextCounter();
    this.kernel.snd(target, ['AnyEvent::MP::_spawn', name, func, ...args]);
    return `${target}#${name}`;
  }

  /** Calls the function named `func` with `args` on `node` (`snd_to_func`). */
  sndToFunc(node: string, func: string, ...args: unknown[]): void {
    this.kernel.snd(nodeOf(node), [func, ...args]);
  }

  /** Has `node` perform `snd(...msg)` (`snd_on`, a relay). */
  sndOn(node: string, ...msg: unknown[]): void {
    this.kernel.snd(nodeOf(node), ['snd', ...msg]);
  }

  /** Evaluates JavaScript on `node`; with `reply` given, the result goes to `reply` (`eval_on`). */
  evalOn(node: string, code: string, ...reply: unknown[]): void {
    this.kernel.snd(nodeOf(node), ['eval', code, ...reply]);
  }

  /**
   * Registers a function callable by name (spawn init functions, `snd_to_func`, services).
   * It is called with the node as `this`; a spawn init function runs with `node.self` set.
   */
  register(name: string, fn: NodeFunction): void {
    this.registry.register(name, fn);
  }

  /** Runs `fn` in the context of `port`; an exception kills that port with `['die', msg]`. */
  peval<T>(port: string, fn: () => T): T | undefined {
    return this.kernel.peval(port, fn);
  }

  /** Wraps `fn` so that it later runs in the current port context (`psub`). */
  psub<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R | undefined {
    const self = this.kernel.self;
    if (self === undefined) throw new TypeError('psub called outside of port context');
    return (...args: A) => this.kernel.peval(self, () => fn(...args));
  }

  /**
   * Connection up/down events (`mon_nodes`), starting with the current state: each subscriber
   * first gets `{type: 'up', node}` for every node connected now (synchronously, in
   * subscribe), then the live events. Completes when the node closes.
   */
  get nodes$(): Observable<NodeStatus> {
    return new Observable<NodeStatus>((sub) => {
      // Live events are subscribed to before the snapshot is taken; those that happen while the
      // snapshot is being delivered (a subscriber's own doing) follow it, so none is lost or
      // seen twice.
      let held: NodeStatus[] | undefined = [];
      let ended = false;
      const live = this.network.nodes$.subscribe({
        next: (e) => (held ? held.push(e) : sub.next(e)),
        complete: () => (held ? (ended = true) : sub.complete()),
      });
      for (const node of this.network.upNodes()) sub.next({ type: 'up', node });
      while (held.length > 0) sub.next(held.shift()!);
      held = undefined;
      if (ended) sub.complete();
      return live;
    });
  }

  /**
   * A data connection to `node` (a node or port ID; AnyEvent::MP::DataConn): emits one
   * `Duplex` (the authenticated socket, raw bytes, the socket's own backpressure) once it is
   * up, and completes when it closes. The other node calls the function named `initFunc` as
   * `initFunc(...initData, stream)`. Errors with `KilledError` (reason
   * `["AnyEvent::MP::DataConn", text|null]`) on failure or after `timeout` seconds (default 30);
   * unsubscribing closes the stream. Keep the subscription while using the stream.
   */
  dataConn$(node: string, options: DataConnOptions): Observable<Duplex> {
    return this.dataConns.connect$(node, options);
  }

  /** Counters of every established connection and of nodes still being connected. */
  connectionStats(): ConnectionStats[] {
    return this.network.stats();
  }

  /**
   * `connectionStats()` at once and then every `intervalMs`; completes when the node closes.
   * Unsubscribing stops the timer.
   */
  connectionStats$(intervalMs = 1000): Observable<ConnectionStats[]> {
    return new Observable<ConnectionStats[]>((sub) => {
      sub.add(this.ended.subscribe({ complete: () => sub.complete() }));
      if (sub.closed) return;
      sub.next(this.connectionStats());
      sub.add(interval(intervalMs, this.clock.scheduler).subscribe(() => sub.next(this.connectionStats())));
    });
  }

  /**
   * The send backlog to `node` (a node or port ID): bytes written to its connection that the
   * operating system has not taken yet, because the peer reads slower than we send. Emits the
   * current value at once, then every change (after each write and as the peer takes data); 0
   * while not connected (messages then wait in `connectionStats().queued`). When the node
   * closes it emits 0 and completes. `snd` never blocks: a producer watches this to pause.
   */
  backlog$(node: string): Observable<number> {
    return this.network.backlog$(nodeOf(node));
  }

  /**
   * Emits the backlog to `node` once it is at most `maxBytes` (at once if it already is), then
   * completes: `await firstValueFrom(node.drain$(peer, 64 * 1024))`. A closing node emits 0.
   */
  drain$(node: string, maxBytes = 0): Observable<number> {
    return this.backlog$(node).pipe(first((bytes) => bytes <= maxBytes));
  }

  /**
   * Logs `message` at `level` (1 fatal … 9 trace) in `context` through the node's logger; log
   * catchers attached to this node get it too.
   */
  log(level: LogLevel, message: string, context = 'main'): void {
    this.logger.log(level, message, context);
  }

  /**
   * The log records of every node in the network (those listed in the `'l` family) and of
   * this node, at `level` and more severe: `{ node, time, context, level, message }`. Each
   * other node is asked (`AnyEvent::MP::LogCatcher::connect`) to send its records to a port of
   * this node, again when that port dies while the node is still listed. Unsubscribing kills
   * the ports, so the sources detach. A source that had to drop records (rate or backlog cap)
   * says so in a record `N records dropped`. Messages are peer text: escape before printing.
   */
  logs$(level: LogLevel = LEVEL.trace): Observable<LogRecord> {
    return logs$(this, level);
  }

  /** IDs of nodes with an established connection (`up_nodes`). */
  upNodes(): string[] {
    return this.network.upNodes();
  }

  /** True for the own node or a connected node; false if known but down; else undefined. */
  nodeIsUp(node: string): boolean | undefined {
    return node === this.id ? true : this.network.nodeIsUp(node);
  }

  /** Kills every local port, stops timers and the network; the process is then free to exit. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.isClosed = true;
      this.timers.close();
      this.kernel.close();
      this.db.close();
      this.dataConns.close();
      await this.network.close();
      this.ended.complete();
      this.events.complete();
    })();
    return this.closing;
  }

  private monEntry(args: unknown[]): MonEntry {
    const [first, ...msg] = args;
    if (typeof first === 'function') return { fire: (reason) => first(...reason) };
    const rcv = first === undefined ? this.kernel.self : first;
    if (typeof rcv !== 'string') throw new TypeError('mon: need a callback, a port, or port context');
    if (args.length <= 1) return { fire: (reason) => reason.length > 0 && this.kernel.kil(rcv, reason) };
    return { fire: (reason) => this.kernel.snd(rcv, [...msg, ...reason]) };
  }

  /** @internal What `eval` requests and the `eval` config key see: the node and its API. */
  evalScope(): Record<string, unknown> {
    return evalScope(this);
  }
}
