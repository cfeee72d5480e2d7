/**
 * Child-process nodes for test/hostile/: each runs test/fixtures/hostile-node.ts under tsx with
 * `--expose-gc`, optionally inside a network namespace (`ip netns exec NS node …`), driven over
 * an IPC channel. Every child started here is SIGKILLed and awaited after each test, except
 * `shared` ones (started in beforeAll), which their file kills in afterAll; any child also exits
 * by itself when its IPC channel closes. Waiting is always for an event or a reply, with a
 * deadline.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import type { HostileCommand, HostileEvent, HostileResults } from './hostile-ipc.js';
import { IpcChild } from './ipc-child.js';

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

export class HostileChild extends IpcChild<HostileCommand, HostileResults, HostileEvent> {
  id = '';
  binds: string[] = [];
  hasDb = false;

  constructor(name: string, opts: StartOptions = {}) {
    const nodeArgs = ['--expose-gc', '--import', 'tsx', ENTRY];
    const [cmd, args] = opts.netns
      ? ['ip', ['netns', 'exec', opts.netns, process.execPath, ...nodeArgs]]
      : [process.execPath, nodeArgs];
    super(
      name,
      spawn(cmd, args, {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      }),
      WAIT_MS,
    );
    if (!opts.shared) live.add(this);
    void this.gone.then(() => live.delete(this));
  }

  get addr(): string {
    return this.binds[0]!;
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
