/**
 * Request/reply: `cal` (Perl's shape, a callback and an optional timeout in seconds) and
 * `cal$` (an Observable of the one reply). Both send `[...msg, replyPort]` from a private
 * reply port that lives until the reply, the end of the call or the node's close.
 */
import { Observable, type Subscriber, type Unsubscribable } from 'rxjs';
import { AempError, KilledError, type KillReason } from '../errors.js';
import type { Timer } from './clock.js';
import type { Kernel, MonEntry, PortSink, SinkHandle } from './kernel/kernel.js';
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

/** `cal$(port, ...msg)`: see `Node.cal$`. */
export function cal$(env: CallEnv, port: string, msg: unknown[]): Observable<unknown[]> {
  return new Observable<unknown[]>((sub) => {
    if (env.closed()) {
      sub.error(new AempError('ERR_NODE_CLOSED', `cal$: node ${env.kernel.nodeId} is closed`));
      return;
    }
    return new CallRun(env, port, msg, sub);
  });
}

/**
 * One subscription of `cal$`: it is at once the reply port's sink, the monitor of the called
 * port and the teardown, so a call allocates one object rather than a set of closures.
 */
class CallRun implements PortSink, MonEntry, Unsubscribable {
  private readonly reply: SinkHandle;
  private readonly cancel: () => void;
  private done = false;

  constructor(
    private readonly env: CallEnv,
    private readonly port: string,
    msg: readonly unknown[],
    private readonly sub: Subscriber<unknown[]>,
  ) {
    const { kernel } = env;
    this.reply = kernel.createSinkPort(this);
    this.cancel = kernel.watch(port, this);
    if (!this.done) kernel.snd(port, [...msg, this.reply.id]);
  }

  next(reply: unknown[]): void {
    if (this.done) return;
    this.done = true;
    this.sub.next(reply);
    this.sub.complete();
  }

  /** The reply port was killed: by `close()`, or by someone who got its ID. */
  complete(): void {
    this.error(new KilledError(this.reply.id, []));
  }

  error(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.sub.error(
      this.env.closed()
        ? new AempError('ERR_NODE_CLOSED', `cal$: node ${this.env.kernel.nodeId} closed before the reply`)
        : err,
    );
  }

  fire(reason: KillReason): void {
    // While the node closes, the called port's end is the node's (its ports die with `[]`,
    // remote monitors with `node shutting down`).
    this.error(new KilledError(this.port, reason));
  }

  unsubscribe(): void {
    this.done = true;
    this.cancel();
    this.env.kernel.removeSink(this.reply);
  }
}
