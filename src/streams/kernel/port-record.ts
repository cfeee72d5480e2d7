/**
 * What the port table holds: one record per live local port, and the shapes of what hangs on
 * it (handlers, stream sinks, monitor entries), plus the guard that cancels a monitor.
 */
import { Subscription } from 'rxjs';
import type { KillReason } from '../../errors.js';

/** A message handler: called with the message elements (for tag handlers, without the tag). */
export type Handler = (...args: any[]) => void;

/** A receiver of a port's messages, as an rxjs subscriber is. */
export interface PortSink {
  next(msg: unknown[]): void;
  complete(): void;
  error(err: unknown): void;
}

/** A private port made by `Kernel.createSinkPort`. */
export interface SinkHandle {
  readonly id: string;
}

/** One registered monitor action; removal is by identity. */
export interface MonEntry {
  fire(reason: KillReason): void;
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

/** A live local port: its handlers, stream sinks and monitors. */
export class PortRecord {
  dead = false;
  tags: Map<string, Handler> | null = null;
  sinks: PortSink[] | null = null;
  /** The one receiver of a reply port's messages (`createSinkPort`). */
  reply: PortSink | null = null;
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
