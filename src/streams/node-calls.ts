/**
 * Request/reply: `call` (a promise of the one reply), `cal$` (an Observable of it) and `cal`
 * (Perl's shape: a callback and an optional timeout in seconds). Each sends `[...msg,
 * replyPort]` from a private reply port that lives until the reply, the end of the call or the
 * node's close, and watches the called port through the monitor all calls to it share.
 */
import {
  config,
  Observable,
  type Observer,
  Subscriber,
  Subscription,
  type TeardownLogic,
  TimeoutError,
  type Unsubscribable,
} from 'rxjs';
import { AempError, KilledError, type KillReason } from '../errors.js';
import type { Timer } from './clock.js';
import type { Watcher, WatchGroup } from './kernel/call-watches.js';
import type { Kernel } from './kernel/kernel.js';
import type { ReplyPort } from './kernel/reply-table.js';
import { LEVEL, type Logger } from './log/log.js';
import type { NodeTimers } from './node-timers.js';

/** What calls need of their node. */
export interface CallEnv {
  readonly kernel: Kernel;
  readonly timers: NodeTimers;
  readonly logger: Logger;
  /** True once the node's `close()` started. */
  closed(): boolean;
}

/** Options of `node.call`. */
export interface CallOptions {
  /**
   * Seconds to wait for the reply (on the node's clock); then the promise rejects with rxjs's
   * `TimeoutError` and the reply port is gone. Default: no limit.
   */
  timeout?: number;
}

/**
 * One call in flight: the reply port's sink, a member of its port's watch group and the owner
 * of the timeout, in one object. Subclasses say where the outcome goes.
 */
abstract class Call implements ReplyPort, Watcher {
  // Assigned in the constructor, not declared with initializers: in V8 (Node 20), field
  // initializers in a base class make every `new` of a subclass about 25 ns slower, once per call.
  declare watchGroup: WatchGroup | undefined;
  declare watchPrev: Watcher | undefined;
  declare watchNext: Watcher | undefined;
  declare replySeq: number;
  declare replyId: string;
  declare replyRecord: object | undefined;
  declare protected readonly env: CallEnv;
  declare protected readonly port: string;
  declare protected open: boolean;
  declare protected timer: Timer | undefined;
  declare protected done: boolean;

  constructor(env: CallEnv, port: string) {
    this.env = env;
    this.port = port;
    this.watchGroup = undefined;
    this.watchPrev = undefined;
    this.watchNext = undefined;
    this.replySeq = 0;
    this.replyId = '';
    this.replyRecord = undefined;
    this.open = false;
    this.timer = undefined;
    this.done = false;
  }

  /** Sends the request (the message with the reply port appended) unless the call already ended. */
  protected start(msg: readonly unknown[], timeout: number | undefined): void {
    const { kernel } = this.env;
    const id = kernel.openReply(this);
    this.open = true;
    kernel.callWatches.join(this.port, this);
    if (this.done) return;
    if (timeout !== undefined) this.timer = this.env.timers.after(timeout, () => this.timedOut());
    kernel.sndAppend(this.port, msg, id);
  }

  protected abstract replied(reply: unknown[]): void;
  protected abstract failed(err: unknown): void;

  /** The reply. */
  next(reply: unknown[]): void {
    if (this.done) return;
    this.done = true;
    // The outcome first, then the cleanup: a caller awaiting this reply and calling the same
    // port again then finds the port's monitor still set.
    this.replied(reply);
    this.end();
  }

  /** The reply port was killed: by `close()`, or by someone who got its ID. */
  complete(): void {
    this.error(new KilledError(this.replyId, []));
  }

  error(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failed(
      this.env.closed()
        ? new AempError('ERR_NODE_CLOSED', `node ${this.env.kernel.nodeId} closed before the reply`)
        : err,
    );
    this.end();
  }

  /** The called port died. */
  fire(reason: KillReason): void {
    // While the node closes, the called port's end is the node's (its ports die with `[]`,
    // remote monitors with `node shutting down`).
    this.error(new KilledError(this.port, reason));
  }

  protected timedOut(): void {
    this.timer = undefined;
    this.error(new TimeoutError());
  }

  /** Drops the reply port, the watch and the timer. */
  protected end(): void {
    this.done = true;
    const { kernel } = this.env;
    kernel.callWatches.leave(this);
    if (this.open) {
      this.open = false;
      kernel.closeReply(this);
    }
    if (this.timer !== undefined) {
      this.env.timers.cancel(this.timer);
      this.timer = undefined;
    }
  }
}

/** The call whose promise is being made (one executor for all, instead of a closure each). */
let making: PromiseCall | undefined;
function settleWith(resolve: (reply: unknown[]) => void, reject: (err: unknown) => void): void {
  making!.resolve = resolve;
  making!.reject = reject;
}

/** A call whose outcome settles a promise. */
class PromiseCall extends Call {
  resolve!: (reply: unknown[]) => void;
  reject!: (err: unknown) => void;

  run(msg: readonly unknown[], timeout: number | undefined): Promise<unknown[]> {
    making = this;
    const p = new Promise<unknown[]>(settleWith);
    making = undefined;
    this.start(msg, timeout);
    return p;
  }

  protected replied(reply: unknown[]): void {
    this.resolve(reply);
  }

  protected failed(err: unknown): void {
    this.reject(err);
  }
}

/** A call of one `cal$` subscription; unsubscribing ends it. */
class SubscriberCall extends Call implements Unsubscribable {
  constructor(
    env: CallEnv,
    port: string,
    private readonly sub: Subscriber<unknown[]>,
  ) {
    super(env, port);
  }

  run(msg: readonly unknown[]): this {
    this.start(msg, undefined);
    return this;
  }

  protected replied(reply: unknown[]): void {
    this.sub.next(reply);
    this.sub.complete();
  }

  protected failed(err: unknown): void {
    this.sub.error(err);
  }

  /** Before the outcome, ends the call; during it (rxjs's teardown), the call ends itself. */
  unsubscribe(): void {
    if (!this.done) this.end();
  }
}

/** `call(port, msg, options)`: see `Node.call`. */
export function call(
  env: CallEnv,
  port: string,
  msg: readonly unknown[],
  options: CallOptions | undefined,
): Promise<unknown[]> {
  if (!Array.isArray(msg))
    throw new TypeError('call: the message is an array: node.call(port, [tag, …args])');
  const t = options?.timeout;
  if (t !== undefined && !(typeof t === 'number' && Number.isFinite(t) && t >= 0))
    throw new TypeError(`call: timeout is a number of seconds, not ${String(t)}`);
  if (env.closed())
    return Promise.reject(new AempError('ERR_NODE_CLOSED', `call: node ${env.kernel.nodeId} is closed`));
  return new PromiseCall(env, port).run(msg, t);
}

/** Reports an error no callback took, as rxjs does: thrown later, or to `config.onUnhandledError`. */
function reportLater(err: unknown): void {
  setTimeout(() => {
    const handler = config.onUnhandledError;
    if (handler) handler(err);
    else throw err;
  });
}

/**
 * A call of one `cal$` subscription with a plain observer (`lastValueFrom`, `subscribe(fn)`):
 * it calls the observer itself instead of going through rxjs's subscriber objects, with the
 * same rules (a throwing callback is reported later, never to the caller; an error without an
 * `error` callback too).
 */
class ObserverCall extends Call {
  readonly subscription = new CallSubscription(this);

  constructor(
    env: CallEnv,
    port: string,
    private readonly o: Partial<Observer<unknown[]>>,
  ) {
    super(env, port);
  }

  run(msg: readonly unknown[]): Subscription {
    if (this.env.closed()) {
      this.done = true;
      this.failed(new AempError('ERR_NODE_CLOSED', `cal$: node ${this.env.kernel.nodeId} is closed`));
    } else this.start(msg, undefined);
    return this.subscription;
  }

  protected replied(reply: unknown[]): void {
    const { o } = this;
    try {
      o.next?.(reply);
    } catch (err) {
      reportLater(err);
    }
    try {
      o.complete?.();
    } catch (err) {
      reportLater(err);
    }
    this.subscription.unsubscribe();
  }

  protected failed(err: unknown): void {
    const { o } = this;
    try {
      if (o.error) o.error(err);
      else reportLater(err);
    } catch (thrown) {
      reportLater(thrown);
    }
    this.subscription.unsubscribe();
  }

  /** Unsubscribed before the outcome. */
  stop(): void {
    if (!this.done) this.end();
  }
}

/** What `cal$(…).subscribe(observer)` returns: unsubscribing ends the call. */
class CallSubscription extends Subscription {
  constructor(private readonly call: ObserverCall) {
    super();
  }

  override unsubscribe(): void {
    if (this.closed) return;
    this.call.stop();
    super.unsubscribe();
  }
}

/** An rxjs subscriber's subscription of a `cal$` (`this` is the `CallObservable`). */
function subscribeCall(this: Observable<unknown[]>, sub: Subscriber<unknown[]>): TeardownLogic {
  const { env, port, msg } = this as CallObservable;
  if (env.closed()) {
    sub.error(new AempError('ERR_NODE_CLOSED', `cal$: node ${env.kernel.nodeId} is closed`));
    return undefined;
  }
  return new SubscriberCall(env, port, sub).run(msg);
}

/**
 * The Observable of `cal$`: a subscriber of an operator chain (or any rxjs `Subscriber`) takes
 * rxjs's own path; a plain observer or callback is served by an `ObserverCall`.
 */
class CallObservable extends Observable<unknown[]> {
  constructor(
    readonly env: CallEnv,
    readonly port: string,
    readonly msg: readonly unknown[],
  ) {
    // rxjs calls it as a method of this Observable: one function for all calls.
    super(subscribeCall);
  }

  override subscribe(
    observerOrNext?: Partial<Observer<unknown[]>> | ((value: unknown[]) => void) | null,
    error?: ((err: any) => void) | null,
    complete?: (() => void) | null,
  ): Subscription {
    if (
      observerOrNext instanceof Subscriber ||
      typeof (observerOrNext as Unsubscribable | null)?.unsubscribe === 'function'
    )
      return super.subscribe(observerOrNext as Subscriber<unknown[]>);
    const o: Partial<Observer<unknown[]>> =
      typeof observerOrNext === 'function' || observerOrNext == null
        ? { next: observerOrNext ?? undefined, error: error ?? undefined, complete: complete ?? undefined }
        : observerOrNext;
    return new ObserverCall(this.env, this.port, o).run(this.msg);
  }
}

/** `cal$(port, ...msg)`: see `Node.cal$`. */
export function cal$(env: CallEnv, port: string, msg: unknown[]): Observable<unknown[]> {
  return new CallObservable(env, port, msg);
}

/** `cal(port, ...msg, cb[, timeout])`: see `Node.cal`. Returns the reply port ID. */
export function cal(env: CallEnv, port: string, args: unknown[]): string {
  const { kernel } = env;
  let timeout: unknown;
  if (typeof args[args.length - 1] !== 'function') timeout = args.pop();
  const cb = args.pop();
  if (typeof cb !== 'function') throw new TypeError('cal: a callback is required');
  if (env.closed()) throw new AempError('ERR_NODE_CLOSED', `cal: node ${kernel.nodeId} is closed`);
  let done = false;
  let timer: Timer | undefined;
  let unwatch: (() => void) | undefined;
  const finish = (reply: unknown[]): void => {
    if (done) return;
    done = true;
    if (timer) env.timers.cancel(timer);
    unwatch?.();
    kernel.removeSink(handle);
    try {
      cb(...reply);
    } catch (err) {
      env.logger.log(LEVEL.error, `cal callback for ${handle.id} threw: ${String(err)}`);
    }
  };
  // The reply port's sink: the reply, or the end of the port (close() kills it).
  const handle = kernel.createSinkPort({
    next: (m) => finish(m),
    complete: () => finish([]),
    error: () => finish([]),
  });
  if (timeout !== undefined && timeout !== null) timer = env.timers.after(Number(timeout), () => finish([]));
  else unwatch = kernel.watch(port, { fire: () => finish([]) });
  if (done) unwatch?.();
  else kernel.snd(port, [...args, handle.id]);
  return handle.id;
}
