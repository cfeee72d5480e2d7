/**
 * What the network counts and reports: the send backlog of each node's connection to those
 * who watch it (`backlog$`), refusals at the caps and failed handshakes (logged through one
 * rate limit, counted for metrics), and heartbeat timeouts.
 */
import { distinctUntilChanged, Observable, type Subscriber } from 'rxjs';
import type { Clock } from '../clock.js';
import { LEVEL, type Logger, type LogLevel, LogLimiter } from '../log/log.js';
import type { Connection } from './connection.js';
import type { NetworkCounts } from './network.js';

/** Distinct handshake failure texts counted apart; further ones count under `other`. */
const MAX_FAILURE_TEXTS = 64;

export interface NetStatsInit {
  readonly clock: Clock;
  readonly logger: Logger;
  /** The established connection to a node, if any. */
  connectionTo(nodeId: string): Connection | undefined;
}

export class NetStats {
  /** Subscribers of `backlog$`, by node ID. */
  private readonly watchers = new Map<string, Set<Subscriber<number>>>();
  private closed = false;
  private readonly refused = new Map<string, number>();
  private readonly failed = new Map<string, number>();
  private heartbeatTimeouts = 0;
  /**
   * Rate limit of the lines a flood can provoke: failed incoming handshakes per remote address,
   * and refusals per kind (a few lines, then a count).
   */
  readonly limiter: LogLimiter;

  constructor(private readonly init: NetStatsInit) {
    this.limiter = new LogLimiter(() => init.logger, undefined, undefined, init.clock);
  }

  backlog$(nodeId: string): Observable<number> {
    return new Observable<number>((sub) => {
      if (this.closed) {
        sub.next(0);
        sub.complete();
        return;
      }
      let set = this.watchers.get(nodeId);
      if (!set) this.watchers.set(nodeId, (set = new Set()));
      set.add(sub);
      const conn = this.init.connectionTo(nodeId);
      if (conn) conn.watchBacklog = true;
      sub.next(conn?.unsentBytes ?? 0);
      const watchers = set;
      return () => {
        watchers.delete(sub);
        if (watchers.size > 0 || this.watchers.get(nodeId) !== watchers) return;
        this.watchers.delete(nodeId);
        const c = this.init.connectionTo(nodeId);
        if (c) c.watchBacklog = false;
      };
    }).pipe(distinctUntilChanged());
  }

  /** True while someone watches the backlog to `nodeId`. */
  watched(nodeId: string): boolean {
    return this.watchers.has(nodeId);
  }

  /** The backlog to `nodeId` is now `bytes`. */
  report(nodeId: string, bytes: number): void {
    const set = this.watchers.get(nodeId);
    if (set) for (const s of [...set]) s.next(bytes);
  }

  /** A connection or connect refused at a cap: logged at info level through the rate limit. */
  refuse(kind: string, text: string): void {
    this.refused.set(kind, (this.refused.get(kind) ?? 0) + 1);
    this.limiter.log(kind, LEVEL.info, text);
  }

  /** A handshake failed with `reason`; an incoming one (`from` its address) is rate limited. */
  handshakeFailed(reason: string, level: LogLevel, line: string, from: string | undefined): void {
    const text = this.failed.has(reason) || this.failed.size < MAX_FAILURE_TEXTS ? reason : 'other';
    this.failed.set(text, (this.failed.get(text) ?? 0) + 1);
    if (from === undefined) this.init.logger.log(level, line);
    else this.limiter.log(`failed incoming handshakes from ${from}`, level, line);
  }

  heartbeatTimedOut(): void {
    this.heartbeatTimeouts++;
  }

  counts(): NetworkCounts {
    return {
      refused: this.refused,
      handshakeFailures: this.failed,
      heartbeatTimeouts: this.heartbeatTimeouts,
    };
  }

  /** Stops the rate limit's timer (the node is closing). */
  stop(): void {
    this.limiter.close();
  }

  /** Nothing is left to send: watchers of a backlog see 0, then the end. */
  close(): void {
    this.closed = true;
    const all = [...this.watchers.values()].flatMap((set) => [...set]);
    this.watchers.clear();
    for (const s of all) {
      s.next(0);
      s.complete();
    }
  }
}
