/**
 * Data connections (AnyEvent::MP::DataConn; spec/protocol.md §13): a raw byte stream between
 * two nodes over a second TCP connection, authenticated like a message connection.
 *
 *   A: node.dataConn$(B, { initFunc, initData, timeout })
 *   A → B  ["", "AnyEvent::MP::DataConn::_expect", ID, CALLERPORT, TIMEOUT, INITFUNC, INITDATA…]
 *   A → B  ["", "snd", TMPPORT]      B → A  [TMPPORT]        (B has taken the expectation)
 *   A dials B: greeting `aemp-dataconn;…;dataconn_id=ID`, the usual auth (and TLS)
 *   B: INITFUNC(...INITDATA, stream)      A: the observable emits the stream
 *
 *   B, nothing within TIMEOUT → kills CALLERPORT with ["AnyEvent::MP::DataConn", null]
 *   A, nothing within TIMEOUT → errors with KilledError(["AnyEvent::MP::DataConn", "<B>: …"])
 *
 * The stream is the socket itself (a `Duplex`, inside TLS when TLS is used): backpressure is
 * the socket's own. A data connection never carries AEMP frames and never counts as the node
 * link. Pending expectations are capped and end at their timeout; an unknown `dataconn_id`,
 * or one expected from another node, is refused before our auth line goes out.
 */
import type { Duplex } from 'node:stream';
import { Observable, type Subscription } from 'rxjs';
import { KilledError, type KillReason } from '../../errors.js';
import { GREETING_KEY } from '../../protocol/constants.js';
import type { Greeting } from '../../protocol/greeting.js';
import type { HandshakeSession } from '../../protocol/handshake.js';
import { nodeOf } from '../../protocol/ids.js';
import type { Clock, Timer } from '../clock.js';
import type { Kernel } from '../kernel/kernel.js';
import { errText } from '../kernel/message-text.js';
import type { RequestHandler } from '../kernel/node-port.js';
import type { NodeFunction, Registry } from '../kernel/registry.js';
import { LEVEL, logText } from '../log/log.js';
import type { Network } from './network.js';
import type { TcpNetwork } from './tcp-network.js';

/** Node-port request announcing a data connection to come. */
export const EXPECT_REQUEST = 'AnyEvent::MP::DataConn::_expect';
/** Node-port request asking the receiver to dial back (answered with a kill: not supported). */
export const CONNECT_REQUEST = 'AnyEvent::MP::DataConn::_connect';
/** First element of every data-connection kill reason. */
export const DATACONN_KILL = 'AnyEvent::MP::DataConn';
/** Expected data connections held at once; one more is refused (its caller port killed). */
export const MAX_EXPECTED_DATACONNS = 1024;
/** Longest wait for an expected data connection, in seconds, whatever the peer asked for. */
export const MAX_DATACONN_TIMEOUT = 3600;
/** Default `timeout` of `dataConn$`, in seconds. */
export const DEFAULT_DATACONN_TIMEOUT = 30;

export interface DataConnOptions {
  /** Name of the function the other node calls as `initFunc(...initData, stream)`. */
  initFunc: string;
  /** Arguments before the stream. */
  initData?: unknown[];
  /** Seconds to get the connection up (default 30); past it the observable errors. */
  timeout?: number;
}

interface Expected {
  readonly src: string;
  readonly callerPort: string;
  readonly initFunc: string;
  readonly initData: unknown[];
  readonly timer: Timer;
}

type DataNetwork = Pick<TcpNetwork, 'dialDataConn'>;

function hasDataConns(network: unknown): network is DataNetwork {
  return typeof (network as { dialDataConn?: unknown }).dialDataConn === 'function';
}

/**
 * The stream comes paused (nothing read is lost before its new owner listens). Like a fresh
 * socket, it starts flowing when its owner attaches a `data` listener; `pipe`, `read` and
 * async iteration work as usual.
 */
function flowOnData(stream: Duplex): void {
  const hook = (event: string | symbol) => {
    if (event !== 'data') return;
    stream.off('newListener', hook);
    process.nextTick(() => {
      if (stream.readableFlowing === false && stream.listenerCount('data') > 0) stream.resume();
    });
  };
  stream.on('newListener', hook);
}

/** The node as data connections see it. */
export interface DataConnHost {
  readonly id: string;
  /** Refuse remote code execution (no `_expect` then). */
  readonly secure: boolean;
  readonly kernel: Kernel;
  /** The node port's handlers beyond the built-in catalogue. */
  readonly requests: Map<string, RequestHandler>;
  readonly registry: Registry;
  /** A new port of the node's own, as a stream of its messages. */
  port$(): Observable<unknown[]> & { readonly id: string };
}

/** One per node: the expectations it holds and the data connections it dials. */
export class DataConns {
  private readonly expected = new Map<string, Expected>();
  /** Data connections handed out (to init functions and to `dataConn$` subscribers). */
  private readonly live = new Set<Duplex>();

  /**
   * `node` is used once its parts exist (requests at once, the kernel and ports later);
   * `network` dials data connections. Incoming ones reach `check` and `accepted` through the
   * network's environment (components.ts).
   */
  constructor(
    private readonly node: DataConnHost,
    private readonly network: Network,
    private readonly clock: Clock,
  ) {
    node.requests.set(EXPECT_REQUEST, (src, args) => this.expect(src, args));
    node.requests.set(CONNECT_REQUEST, (src, [, callerPort]) => {
      // Dialling back (for a node without listeners) is not offered.
      if (typeof callerPort === 'string' && callerPort.includes('#') && nodeOf(callerPort) === src)
        this.kill(callerPort, [DATACONN_KILL, `${node.id}: dialling back is not supported`]);
    });
  }

  /** Ends every expectation and destroys every data connection (the node is closing). */
  close(): void {
    for (const e of this.expected.values()) e.timer.cancel();
    this.expected.clear();
    for (const s of [...this.live]) s.destroy();
    this.live.clear();
  }

  /** Tracks `stream` until it closes, so that `close()` can end it. */
  private own(stream: Duplex): void {
    this.live.add(stream);
    stream.once('close', () => this.live.delete(stream));
  }

  /** Data connections open now; for tests. */
  get open(): number {
    return this.live.size;
  }

  /** Expectations held now; for tests. */
  get pending(): number {
    return this.expected.size;
  }

  private kill(port: string, reason: KillReason): void {
    try {
      this.node.kernel.kil(port, reason);
    } catch {
      // Not a killable port ID: nothing to tell.
    }
  }

  private log(level: number, text: string): void {
    this.node.kernel.logger.log(level as never, text);
  }

  /** `_expect` from `src`: wait up to TIMEOUT seconds for a data connection carrying ID. */
  private expect(src: string, [id, callerPort, timeout, initFunc, ...initData]: unknown[]): void {
    if (typeof callerPort !== 'string' || !callerPort.includes('#')) return;
    const refuse = (why: string) => this.kill(callerPort, [DATACONN_KILL, why]);
    if (typeof id !== 'string' || id === '' || typeof initFunc !== 'string') {
      refuse('malformed data connection request');
      return;
    }
    if (this.node.secure) {
      // The refusal goes to the requester's own port only: a port of another node, killed by
      // this node, would be killed in its name on a peer's behalf.
      if (nodeOf(callerPort) === src) refuse('remote execution not allowed');
      return;
    }
    if (this.expected.has(id)) {
      refuse(`${logText(id, 100)}: data connection ID already expected`);
      return;
    }
    if (this.expected.size >= MAX_EXPECTED_DATACONNS) {
      refuse(`${this.node.id}: ${MAX_EXPECTED_DATACONNS} data connections pending`);
      return;
    }
    const seconds = typeof timeout === 'number' && timeout > 0 ? Math.min(timeout, MAX_DATACONN_TIMEOUT) : 0;
    // Not keeping the process alive: an expectation alone is no reason to stay.
    const timer: Timer = this.clock.timeout(
      () => {
        if (this.expected.get(id)?.timer !== timer) return;
        this.expected.delete(id);
        this.kill(callerPort, [DATACONN_KILL, null]);
      },
      seconds * 1000,
      false,
    );
    this.expected.set(id, { src, callerPort, initFunc, initData, timer });
  }

  /** An incoming data connection authenticated: is it expected, and from this node? */
  check(g: Greeting, peerId: string): void {
    const id = g.keys.get(GREETING_KEY.DATACONN_ID);
    const e = id === undefined ? undefined : this.expected.get(id);
    if (!e) throw new Error(`data connection refused: unknown dataconn_id ${logText(id ?? '', 100)}`);
    if (e.src !== peerId)
      throw new Error(
        `data connection refused: ${logText(id!, 100)} was not expected from ${logText(peerId, 100)}`,
      );
  }

  /** The stream of an expected data connection: hand it to the init function. */
  accepted(stream: Duplex, session: HandshakeSession): void {
    const id = session.peerGreeting.keys.get(GREETING_KEY.DATACONN_ID) ?? '';
    const e = this.expected.get(id);
    stream.on('error', () => {});
    flowOnData(stream);
    if (!e) {
      stream.destroy();
      return;
    }
    this.expected.delete(id);
    e.timer.cancel();
    this.own(stream);
    const failed = (err: unknown) => {
      const text = errText(err);
      this.log(LEVEL.error, `data connection ${logText(id, 100)}: init function failed: ${logText(text)}`);
      stream.destroy();
      this.kill(e.callerPort, [DATACONN_KILL, text]);
    };
    const run = (fn: NodeFunction) => {
      try {
        const result = fn.apply(this.node, [...e.initData, stream]);
        if (result && typeof (result as PromiseLike<unknown>).then === 'function')
          (result as PromiseLike<unknown>).then(undefined, failed);
      } catch (err) {
        failed(err);
      }
    };
    const fn = this.node.registry.lookup(e.initFunc);
    if (fn) run(fn);
    else void this.node.registry.resolve(e.initFunc).then(run);
  }

  /** `node.dataConn$`: see there. */
  connect$(target: string, options: DataConnOptions): Observable<Duplex> {
    return new Observable<Duplex>((sub) => {
      const node = this.node;
      const network = this.network;
      const nodeId = nodeOf(target);
      const timeout = options.timeout ?? DEFAULT_DATACONN_TIMEOUT;
      if (typeof options.initFunc !== 'string' || options.initFunc === '') {
        sub.error(new TypeError('dataConn$: initFunc must be a function name'));
        return undefined;
      }
      if (!(timeout > 0)) {
        sub.error(new TypeError('dataConn$: timeout must be a positive number of seconds'));
        return undefined;
      }
      if (!hasDataConns(network)) {
        sub.error(new TypeError('dataConn$: this node has no TCP network'));
        return undefined;
      }
      const caller = node.port$();
      const roundTrip = node.port$();
      const fail = (reason: KillReason) => sub.error(new KilledError(caller.id, reason));
      const held: Subscription[] = [];
      let cancelDial: (() => void) | undefined;
      let stream: Duplex | undefined;
      const timer = this.clock.timeout(
        () => fail([DATACONN_KILL, `${nodeId}: unable to establish connection within ${timeout} seconds`]),
        timeout * 1000,
      );
      const release = () => {
        timer.cancel();
        for (const s of held.splice(0)) s.unsubscribe();
      };
      // The other node kills the caller port when it gives up (timeout, refusal, init failure).
      held.push(caller.subscribe({ error: (err: unknown) => sub.error(err) }));
      held.push(
        roundTrip.subscribe({
          next: () => {
            if (cancelDial || stream) return;
            cancelDial = network.dialDataConn(nodeId, id, (error, s) => {
              cancelDial = undefined;
              if (error !== undefined || !s) return fail([DATACONN_KILL, error ?? 'no stream']);
              stream = s;
              this.own(s);
              // The caller port lives on with the stream: a kill from the other node (its init
              // function failed) still ends the observable with the reason.
              timer.cancel();
              s.on('error', () => {});
              s.once('close', () => sub.complete());
              flowOnData(s);
              sub.next(s);
            });
          },
          error: (err: unknown) => sub.error(err),
        }),
      );
      const id = `${node.kernel.nextCounter()}@${node.id}`;
      if (!sub.closed) {
        node.kernel.snd(nodeId, [
          EXPECT_REQUEST,
          id,
          caller.id,
          timeout,
          options.initFunc,
          ...(options.initData ?? []),
        ]);
        node.kernel.snd(nodeId, ['snd', roundTrip.id]);
      }
      return () => {
        release();
        cancelDial?.();
        stream?.destroy();
      };
    });
  }
}
