/**
 * A child process driven over IPC, shared by the multiprocess and hostile test harnesses:
 * commands go out with a request ID and come back as `{ rid, ok, value | error }`; everything
 * else the child sends is an event (`{ event, … }`), kept in `events`. Every wait has a deadline
 * and fails at once if the child exits.
 */
import type { ChildProcess } from 'node:child_process';

type Reply = { rid: number; ok: true; value: unknown } | { rid: number; ok: false; error: string };

export interface WaitOptions {
  /** Only events at or after this index of `events` count (see `mark()`). */
  from?: number;
  timeoutMs?: number;
}

export class IpcChild<
  C extends { cmd: string },
  R extends { [K in C['cmd']]: unknown },
  E extends { event: string },
> {
  readonly events: E[] = [];
  /** Resolves when the child is gone and its IPC channel is closed. */
  readonly gone: Promise<void>;
  exitSignal: NodeJS.Signals | null = null;
  protected exited = false;
  private rid = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly watchers = new Set<() => void>();

  constructor(
    readonly name: string,
    protected readonly child: ChildProcess,
    private readonly waitMs: number,
  ) {
    child.on('message', (m: Reply | E) => {
      if ('event' in m) {
        this.events.push(m);
        for (const w of [...this.watchers]) w();
        return;
      }
      const p = this.pending.get(m.rid);
      this.pending.delete(m.rid);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(new Error(`${this.name}: ${m.error}`));
    });
    this.gone = new Promise((resolve) => {
      child.once('close', (_code, signal) => {
        this.exited = true;
        this.exitSignal = signal;
        for (const p of this.pending.values()) p.reject(new Error(`${this.name}: child exited (${signal})`));
        this.pending.clear();
        for (const w of [...this.watchers]) w();
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a command and resolves with its reply. */
  request<X extends C>(c: X, timeoutMs = this.waitMs): Promise<R[X['cmd']]> {
    if (this.exited) return Promise.reject(new Error(`${this.name}: child is gone`));
    const rid = ++this.rid;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new Error(`${this.name}: no reply to ${c.cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(rid, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as R[X['cmd']]);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...c, rid });
    });
  }

  /** Index of the next event: pass as `from` to wait only for events after this point. */
  mark(): number {
    return this.events.length;
  }

  /** The first event from `from` on that satisfies `pred`, waiting for it if needed. */
  waitFor<X extends E>(
    pred: (e: E) => e is X,
    { from = 0, timeoutMs = this.waitMs }: WaitOptions = {},
  ): Promise<X> {
    let seen = from;
    const scan = (): X | undefined => {
      for (; seen < this.events.length; seen++) {
        const e = this.events[seen]!;
        if (pred(e)) return e;
      }
      return undefined;
    };
    const hit = scan();
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.watchers.delete(check);
      };
      const check = () => {
        const e = scan();
        if (e) {
          done();
          resolve(e);
        } else if (this.exited) {
          done();
          reject(new Error(`${this.name}: child exited while waiting; last events: ${this.tail()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`${this.name}: no matching event within ${timeoutMs} ms; last events: ${this.tail()}`),
        );
      }, timeoutMs);
      this.watchers.add(check);
    });
  }

  /** Events of one kind so far. */
  all<K extends E['event']>(kind: K): Extract<E, { event: K }>[] {
    return this.events.filter((e): e is Extract<E, { event: K }> => e.event === kind);
  }

  /** Sends a signal without waiting for the child to end (e.g. SIGSTOP / SIGCONT). */
  signal(signal: NodeJS.Signals): void {
    if (!this.exited) this.child.kill(signal);
  }

  /** Ends the child with `signal` (default SIGKILL) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.exited) this.child.kill(signal);
    await this.gone;
  }

  private tail(): string {
    return JSON.stringify(this.events.slice(-8)).slice(0, 2000);
  }
}
