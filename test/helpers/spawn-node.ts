/**
 * Child-process nodes for the multiprocess tests (the ?CT_PEER idea): each aemp node runs in
 * its own process (test/fixtures/node-main.ts under tsx) and is driven over IPC. Nodes talk to
 * each other over real loopback TCP; the test never uses that link itself.
 *
 * Every child forked here is SIGKILLed after the test and awaited; afterwards the test process
 * must hold no child-process or TCP handles. Waiting is always for an event or a reply, each
 * with a deadline, never for a fixed time.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { IpcChild, type WaitOptions } from './ipc-child.js';
import type { Behaviour, CalResult, ChildEvent, Command, Results } from './node-ipc.js';

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

export type { WaitOptions };

/** One child process running one node. */
export class NodeProcess extends IpcChild<Command, Results, ChildEvent> {
  /** Node ID and listener addresses, known after `configure`. */
  id = '';
  binds: string[] = [];

  constructor(name: string) {
    super(
      name,
      fork(ENTRY, [], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      }),
      WAIT_MS,
    );
    live.add(this);
    void this.gone.then(() => live.delete(this));
  }

  /** The first listener address (`127.0.0.1:PORT`). */
  get addr(): string {
    return this.binds[0]!;
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
