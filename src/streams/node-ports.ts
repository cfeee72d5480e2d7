/**
 * Port streams (`node.port$()`): the Observable of a local port's messages, the subscriber that
 * turns a throwing callback into the port's death, and the two ways of getting one (a port the
 * stream owns, or an existing port it only observes).
 */
import {
  Observable,
  type Observer,
  type Operator,
  Subscriber,
  type Subscription,
  share,
  type TeardownLogic,
} from 'rxjs';
import { AempError, dieReason, formatReason, KilledError } from '../errors.js';
import { nodeOf, portNameOf } from '../protocol/ids.js';
import { errText, type Kernel } from './kernel/kernel.js';
import { LEVEL } from './log/log.js';

/**
 * The messages of a local port, with the port's ID (`node.port$()`).
 *
 * Errors in the port's pipeline kill the port with `['die', message]`, never the process: a
 * subscriber whose `next` throws, and an error that reaches the end of a chain built with
 * `pipe` on this stream (an operator that threw), kill the port at once, as a throwing `rcv`
 * handler does. The error still reaches the subscriber's `error` callback; without one it is
 * logged instead of being thrown at the process (as rxjs would). The same holds for the
 * port's own error kill (`KilledError`).
 */
export class PortObservable<T = unknown[]> extends Observable<T> {
  /**
   * @param id The port's ID.
   * @param kernel The kernel of the port's node.
   * @internal
   */
  constructor(
    readonly id: string,
    private readonly kernel: Kernel,
    subscribe?: (this: Observable<T>, subscriber: Subscriber<T>) => TeardownLogic,
  ) {
    super(subscribe);
  }

  /**
   * @internal Operators applied with `pipe` give a stream of the same port, with the same
   * error rule.
   */
  override lift<R>(operator?: Operator<T, R>): Observable<R> {
    const o = new PortObservable<R>(this.id, this.kernel);
    o.source = this;
    o.operator = operator;
    return o;
  }

  override subscribe(
    observerOrNext?: Partial<Observer<T>> | ((value: T) => void) | null,
    error?: ((err: any) => void) | null,
    complete?: (() => void) | null,
  ): Subscription {
    // An operator's (or share's, firstValueFrom's) subscriber passes errors on down its chain.
    if (observerOrNext instanceof Subscriber) return super.subscribe(observerOrNext);
    const o: Partial<Observer<T>> =
      typeof observerOrNext === 'function' || observerOrNext == null
        ? { next: observerOrNext ?? undefined, error: error ?? undefined, complete: complete ?? undefined }
        : observerOrNext;
    return super.subscribe(new PortSubscriber(this, o));
  }

  /** @internal What a subscriber's error means for the port: see `subscribe`. */
  failed(err: unknown, o: Partial<Observer<T>>): void {
    const own = err instanceof KilledError && err.port === this.id;
    if (!own) this.die(err);
    if (o.error) this.guarded(() => o.error!(err));
    else
      this.kernel.logger.log(
        LEVEL.error,
        own
          ? `port ${this.id} died with reason: ${formatReason(err.reason)}`
          : `port ${this.id} killed by an error in its stream: ${errText(err)}`,
      );
  }

  /**
   * @internal Kills the port now with `['die', message]` (a port of another node is left
   * alone).
   */
  die(err: unknown): void {
    if (nodeOf(this.id) === this.kernel.nodeId) this.kernel.killNow(portNameOf(this.id), dieReason(err));
  }

  /** @internal Runs an `error`/`complete` callback: the port is dead by then, so a throw is logged. */
  guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.kernel.logger.log(LEVEL.error, `port ${this.id}: a subscriber's callback threw: ${errText(err)}`);
    }
  }
}

/**
 * The subscriber of a user's callbacks on a port stream: a `next` that throws kills the port
 * with `die` (rxjs would report it asynchronously, where it ends the process). One layer, with
 * no wrapper per message beyond the try.
 */
class PortSubscriber<T> extends Subscriber<T> {
  constructor(
    private readonly port: PortObservable<T>,
    private readonly o: Partial<Observer<T>>,
  ) {
    super();
  }

  protected override _next(v: T): void {
    try {
      this.o.next?.(v);
    } catch (err) {
      this.port.die(err);
    }
  }

  protected override _error(err: unknown): void {
    try {
      this.port.failed(err, this.o);
    } finally {
      this.unsubscribe();
    }
  }

  protected override _complete(): void {
    try {
      if (this.o.complete) this.port.guarded(() => this.o.complete!());
    } finally {
      this.unsubscribe();
    }
  }
}

/** The stream of an existing local port `id`, which it never kills (`node.port$(id)`). */
export function observedPort$(kernel: Kernel, id: string): PortObservable {
  return new PortObservable(id, kernel, (sub) => {
    const detach = kernel.attachSink(id, sub);
    if (detach) return detach;
    sub.error(new KilledError(id, ['no_such_port', 'cannot monitor nonexistent port', id]));
    return undefined;
  });
}

/** A stream that owns a new port, created by its first subscriber (`node.port$()`). */
export function ownedPort$(kernel: Kernel): PortObservable {
  const pid = kernel.reservePortId();
  // The port's life: begun by the first subscriber, ended by the last (or by the port's
  // death); `share` counts the subscribers and starts over after that. Messages go from the
  // kernel straight to each subscriber, not through `share`.
  const life = new Observable<never>((sub) => {
    const close = kernel.openPort(pid, { fire: () => sub.complete() });
    if (close) return close;
    sub.error(new AempError('ERR_NODE_CLOSED', `port$: node ${kernel.nodeId} is closed`));
    return undefined;
  }).pipe(share());
  return new PortObservable(pid, kernel, (sub) => {
    let closed: unknown;
    const held = life.subscribe({ error: (err: unknown) => (closed = err) });
    if (closed !== undefined) {
      sub.error(closed);
      return undefined;
    }
    const detach = kernel.attachSink(pid, sub);
    if (!detach) {
      held.unsubscribe();
      sub.error(new KilledError(pid, ['no_such_port', 'cannot monitor nonexistent port', pid]));
      return undefined;
    }
    return () => {
      detach();
      held.unsubscribe();
    };
  });
}
