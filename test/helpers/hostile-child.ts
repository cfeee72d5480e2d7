/**
 * Child-process nodes for test/hostile/: each runs test/fixtures/hostile-node.ts under tsx with
 * `--expose-gc`, optionally inside a network namespace (`ip netns exec NS node …`), driven over
 * an IPC channel. Every child started here is SIGKILLed and awaited after each test, except
 * `shared` ones (started in beforeAll), which their file kills in afterAll; any child also exits
 * by itself when its IPC channel closes. Waiting is always for an event or a reply, with a
 * deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import type { HostileCommand, HostileEvent, HostileReply, HostileResults } from './hostile-ipc.js';

const ENTRY = fileURLToPath(new URL('../fixtures/hostile-node.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const CHILD_SECRET = 'hostile-test-secret';
const WAIT_MS = 10_000;

const live = new Set<HostileChild>();

afterEach(async () => {
  await Promise.all([...live].map((c) => c.kill()));
});

type EventOf<K extends HostileEvent['event']> = Extract<HostileEvent, { event: K }>;

export interface StartOptions {
  /** Run inside this network namespace (needs root and `ip`). */
  netns?: string;
  /**
   * Not killed after each test (for children started in beforeAll): the caller kills it in
   * afterAll. It also exits by itself when the test process goes away.
   */
  shared?: boolean;
}

export class HostileChild {
  readonly events: HostileEvent[] = [];
  id = '';
  binds: string[] = [];
  hasDb = false;
  readonly gone: Promise<void>;
  private readonly child: ChildProcess;
  private rid = 0;
  private exited = false;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly watchers = new Set<() => void>();

  constructor(
    readonly name: string,
    opts: StartOptions = {},
  ) {
    const nodeArgs = ['--expose-gc', '--import', 'tsx', ENTRY];
    const [cmd, args] = opts.netns
      ? ['ip', ['netns', 'exec', opts.netns, process.execPath, ...nodeArgs]]
      : [process.execPath, nodeArgs];
    this.child = spawn(cmd, args, {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    if (!opts.shared) live.add(this);
    this.child.on('message', (m: HostileReply | HostileEvent) => {
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
      this.child.once('close', () => {
        this.exited = true;
        live.delete(this);
        for (const p of this.pending.values()) p.reject(new Error(`${this.name}: child exited`));
        this.pending.clear();
        for (const w of [...this.watchers]) w();
        resolve();
      });
    });
  }

  get addr(): string {
    return this.binds[0]!;
  }

  get pid(): number {
    return this.child.pid!;
  }

  request<C extends HostileCommand>(c: C, timeoutMs = WAIT_MS): Promise<HostileResults[C['cmd']]> {
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
          resolve(v as HostileResults[C['cmd']]);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...c, rid });
    });
  }

  mark(): number {
    return this.events.length;
  }

  waitFor<E extends HostileEvent>(
    pred: (e: HostileEvent) => e is E,
    { from = 0, timeoutMs = WAIT_MS }: { from?: number; timeoutMs?: number } = {},
  ): Promise<E> {
    let seen = from;
    const scan = (): E | undefined => {
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
        reject(new Error(`${this.name}: no matching event within ${timeoutMs} ms; last: ${this.tail()}`));
      }, timeoutMs);
      this.watchers.add(check);
    });
  }

  all<K extends HostileEvent['event']>(kind: K): EventOf<K>[] {
    return this.events.filter((e): e is EventOf<K> => e.event === kind);
  }

  nodeEvent(
    type: 'up' | 'down',
    node: string,
    opts?: { from?: number; timeoutMs?: number },
  ): Promise<EventOf<'node'>> {
    return this.waitFor(
      (e): e is EventOf<'node'> => e.event === 'node' && e.type === type && e.node === node,
      opts,
    );
  }

  logged(re: RegExp, opts?: { from?: number; timeoutMs?: number }): Promise<EventOf<'log'>> {
    return this.waitFor((e): e is EventOf<'log'> => e.event === 'log' && re.test(e.text), opts);
  }

  received(port: string, opts?: { from?: number; timeoutMs?: number }): Promise<EventOf<'msg'>> {
    return this.waitFor((e): e is EventOf<'msg'> => e.event === 'msg' && e.port === port, opts);
  }

  async configure(opts: Record<string, unknown> = {}): Promise<this> {
    const r = await this.request({ cmd: 'configure', opts: { secret: CHILD_SECRET, ...opts } });
    this.id = r.id;
    this.binds = r.binds;
    this.hasDb = r.hasDb;
    return this;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.exited) this.child.kill(signal);
  }

  async kill(): Promise<void> {
    if (!this.exited) this.child.kill('SIGKILL');
    await this.gone;
  }

  private tail(): string {
    return JSON.stringify(this.events.slice(-6)).slice(0, 2000);
  }
}

/** Starts a child and waits until it listens for commands. */
export async function startChild(name: string, opts: StartOptions = {}): Promise<HostileChild> {
  const c = new HostileChild(name, opts);
  await c.waitFor((e): e is EventOf<'ready'> => e.event === 'ready', { timeoutMs: 20_000 });
  return c;
}

/** Mebibytes with one decimal. */
export function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
