/**
 * Child-process nodes for the multiprocess tests (the ?CT_PEER idea): each aemp node runs in
 * its own process (test/fixtures/node-main.ts under tsx) and is driven over IPC. Nodes talk to
 * each other over real loopback TCP; the test never uses that link itself.
 *
 * Every child forked here is SIGKILLed after the test and awaited; afterwards the test process
 * must hold no child-process or TCP handles. Waiting is always for an event or a reply, each
 * with a deadline, never for a fixed time.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import type { Behaviour, CalResult, ChildEvent, Command, FromChild, Request, Results } from './node-ipc.js';

const ENTRY = fileURLToPath(new URL('../fixtures/node-main.ts', import.meta.url));

/** The secret all test nodes share unless a test gives another one. */
export const SECRET = 'multiprocess-test-secret';

/** Default deadline for replies and events. */
const WAIT_MS = 8000;

const live = new Set<NodeProcess>();

/** Handles of the test process that must not outlive a test (vs. the count before any test). */
const WATCHED = ['ProcessWrap', 'TCPSocketWrap', 'TCPServerWrap', 'PipeWrap'] as const;
const baseline = countHandles();

function countHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const w of WATCHED) counts[w] = 0;
  for (const r of process.getActiveResourcesInfo()) if (r in counts) counts[r]!++;
  return counts;
}

afterEach(async () => {
  await Promise.all([...live].map((n) => n.kill()));
  // Closed handles leave the list in the loop's close phase: give it a few turns, no more.
  let counts = countHandles();
  for (let turn = 0; turn < 20 && !sameCounts(counts, baseline); turn++) {
    await new Promise((resolve) => setImmediate(resolve));
    counts = countHandles();
  }
  expect(counts, 'handles left in the test process').toEqual(baseline);
});

function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  return WATCHED.every((w) => a[w] === b[w]);
}

type EventOf<K extends ChildEvent['event']> = Extract<ChildEvent, { event: K }>;

export interface WaitOptions {
  /** Only events at or after this index of `events` count (see `mark()`). */
  from?: number;
  timeoutMs?: number;
}

/** One child process running one node. */
export class NodeProcess {
  readonly events: ChildEvent[] = [];
  /** Node ID and listener addresses, known after `configure`. */
  id = '';
  binds: string[] = [];
  /** Resolves when the child is gone and its IPC channel is closed. */
  readonly gone: Promise<void>;
  exitSignal: NodeJS.Signals | null = null;

  private readonly child: ChildProcess;
  private rid = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly watchers = new Set<() => void>();
  private exited = false;

  constructor(readonly name: string) {
    this.child = fork(ENTRY, [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    live.add(this);
    this.child.on('message', (m: FromChild) => {
      if ('event' in m) {
        this.events.push(m);
        for (const w of [...this.watchers]) w();
      } else {
        const p = this.pending.get(m.rid);
        this.pending.delete(m.rid);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(new Error(`${this.name}: ${m.error}`));
      }
    });
    this.gone = new Promise((resolve) => {
      this.child.once('close', (_code, signal) => {
        this.exited = true;
        this.exitSignal = signal;
        live.delete(this);
        for (const p of this.pending.values()) p.reject(new Error(`${this.name}: child exited (${signal})`));
        this.pending.clear();
        for (const w of [...this.watchers]) w();
        resolve();
      });
    });
  }

  /** The first listener address (`127.0.0.1:PORT`). */
  get addr(): string {
    return this.binds[0]!;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a command and resolves with its reply. */
  request<C extends Command>(c: C, timeoutMs = WAIT_MS): Promise<Results[C['cmd']]> {
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
          resolve(v as Results[C['cmd']]);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...c, rid } as Request);
    });
  }

  /** Index of the next event: pass as `from` to wait only for events after this point. */
  mark(): number {
    return this.events.length;
  }

  /** The first event from `from` on that satisfies `pred`, waiting for it if needed. */
  waitFor<E extends ChildEvent>(
    pred: (e: ChildEvent) => e is E,
    { from = 0, timeoutMs = WAIT_MS }: WaitOptions = {},
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
        reject(
          new Error(`${this.name}: no matching event within ${timeoutMs} ms; last events: ${this.tail()}`),
        );
      }, timeoutMs);
      this.watchers.add(check);
    });
  }

  /** Events of one kind so far. */
  all<K extends ChildEvent['event']>(kind: K): EventOf<K>[] {
    return this.events.filter((e): e is EventOf<K> => e.event === kind);
  }

  /** The `mon` event of monitor `mon`. */
  monFired(mon: number, opts?: WaitOptions): Promise<EventOf<'mon'>> {
    return this.waitFor((e): e is EventOf<'mon'> => e.event === 'mon' && e.mon === mon, opts);
  }

  /** An `up`/`down` event for `node`. */
  nodeEvent(type: 'up' | 'down', node: string, opts?: WaitOptions): Promise<EventOf<'node'>> {
    return this.waitFor(
      (e): e is EventOf<'node'> => e.event === 'node' && e.type === type && e.node === node,
      opts,
    );
  }

  /** A message seen by a `record` port, optionally with a given first element. */
  received(port: string, tag?: unknown, opts?: WaitOptions): Promise<EventOf<'msg'>> {
    return this.waitFor(
      (e): e is EventOf<'msg'> =>
        e.event === 'msg' && e.port === port && (tag === undefined || e.msg[0] === tag),
      opts,
    );
  }

  /** A log line matching `re`. */
  logged(re: RegExp, opts?: WaitOptions): Promise<EventOf<'log'>> {
    return this.waitFor((e): e is EventOf<'log'> => e.event === 'log' && re.test(e.text), opts);
  }

  async configure(opts: Record<string, unknown> = {}): Promise<this> {
    const r = await this.request({ cmd: 'configure', opts: { secret: SECRET, ...opts } });
    this.id = r.id;
    this.binds = r.binds;
    return this;
  }

  port(behaviour: Behaviour): Promise<string> {
    return this.request({ cmd: 'port', behaviour });
  }

  async snd(to: string, ...msg: unknown[]): Promise<void> {
    await this.request({ cmd: 'snd', to, msg });
  }

  async kil(port: string, ...reason: unknown[]): Promise<void> {
    await this.request({ cmd: 'kil', port, reason });
  }

  mon(port: string): Promise<number> {
    return this.request({ cmd: 'mon', port });
  }

  cal(to: string, msg: unknown[], timeoutMs = 5000): Promise<CalResult> {
    return this.request({ cmd: 'cal', to, msg, timeoutMs }, timeoutMs + WAIT_MS);
  }

  upNodes(): Promise<string[]> {
    return this.request({ cmd: 'upNodes' });
  }

  /** Ends the child with `signal` (default SIGKILL) and waits until it is gone. */
  /** Sends a signal without waiting for the child to end (e.g. SIGSTOP / SIGCONT). */
  signal(signal: NodeJS.Signals): void {
    if (!this.exited) this.child.kill(signal);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.exited) this.child.kill(signal);
    await this.gone;
  }

  private tail(): string {
    return JSON.stringify(this.events.slice(-8));
  }
}

/** Forks a child (not yet configured) and waits until it listens for commands. */
export async function forkNode(name: string): Promise<NodeProcess> {
  const n = new NodeProcess(name);
  await n.waitFor((e): e is EventOf<'ready'> => e.event === 'ready', { timeoutMs: 15_000 });
  return n;
}

/** Forks and configures a node; `nodeid` defaults to a randomised `mp-<name>/`. */
export async function startNode(name: string, opts: Record<string, unknown> = {}): Promise<NodeProcess> {
  const n = await forkNode(name);
  return n.configure({ nodeid: `mp-${name}/`, ...opts });
}

/**
 * Starts `hub` and `leaf`, the leaf having the hub as its seed, and waits until both report the
 * connection up.
 */
export async function startPair(
  hubOpts: Record<string, unknown> = {},
  leafOpts: Record<string, unknown> = {},
): Promise<[hub: NodeProcess, leaf: NodeProcess]> {
  const [hub, leaf] = await Promise.all([forkNode('hub'), forkNode('leaf')]);
  await hub.configure({ nodeid: 'mp-hub/', ...hubOpts });
  await leaf.configure({ nodeid: 'mp-leaf/', seeds: [hub.addr], ...leafOpts });
  await Promise.all([hub.nodeEvent('up', leaf.id), leaf.nodeEvent('up', hub.id)]);
  return [hub, leaf];
}

/**
 * Starts a hub and `count` leaves that all have the hub as their seed (configured at the same
 * time), and waits until every connection is reported up on both ends.
 */
export async function startStar(
  count: number,
  leafOpts: Record<string, unknown> = {},
): Promise<[hub: NodeProcess, leaves: NodeProcess[]]> {
  const names = Array.from({ length: count }, (_, i) => `leaf${i + 1}`);
  const [hub, ...leaves] = await Promise.all([forkNode('hub'), ...names.map((n) => forkNode(n))]);
  await hub!.configure({ nodeid: 'mp-hub/' });
  await Promise.all(
    leaves.map((l) => l.configure({ nodeid: `mp-${l.name}/`, seeds: [hub!.addr], ...leafOpts })),
  );
  await Promise.all(leaves.flatMap((l) => [l.nodeEvent('up', hub!.id), hub!.nodeEvent('up', l.id)]));
  return [hub!, leaves];
}
