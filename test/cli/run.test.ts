/**
 * `aemp run` as a supervisor (design.md §3): the node runs in a child process that is restarted
 * after a crash (with backoff) and at once after a restart request (`aemp restart NODE`);
 * SIGINT and SIGTERM stop everything with status 0 — sent to `aemp run` itself, to a whole
 * process group as Ctrl-C does, or (as npx does) only to the `sh -c` that started it.
 * At the default verbosity stdout has the ID line and the up/down lines, stderr nothing.
 * Waiting is for output lines and exits, with deadlines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, portIsFree } from '../helpers/ports.js';
import {
  aemp,
  aempDone,
  cleanUpAfter,
  deadline,
  networkRc,
  type RunningNode,
  tempDir,
  WAIT_MS,
} from './helpers.js';

cleanUpAfter('each');

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'aemp.js');

/**
 * Starts `aemp run srv` on a free port with `env` added (AEMP_VERBOSE=7 unless given, so that
 * the supervisor's log lines are there to wait for) and waits for its "ID address" line.
 */
async function runNode(env: Record<string, string> = {}): Promise<RunningNode> {
  const port = await freePort();
  const rc = networkRc(port);
  chmodSync(rc, 0o600); // holds a secret: no warning about the file mode
  const proc = aemp(['run', 'srv'], { AEMP_RC: rc, AEMP_VERBOSE: '7', ...env });
  const m = await proc.waitOut(new RegExp(`^(\\S+) 127\\.0\\.0\\.1:${port}$`, 'm'));
  return { proc, id: m[1]!, rc, tool: (args, stdin) => aempDone(args, { AEMP_RC: rc }, stdin) };
}

/** Node ID lines printed by `aemp run` so far. */
function starts(srv: RunningNode): string[] {
  return [...srv.proc.out().matchAll(/^(srv\/\S+) 127\.0\.0\.1:\d+$/gm)].map((m) => m[1]!);
}

/** Waits until the node has announced itself `n` times; returns the last node ID. */
async function started(srv: RunningNode, n: number): Promise<string> {
  await srv.proc.waitOut(new RegExp(`(?:^srv/\\S+ 127\\.0\\.0\\.1:\\d+\\n[^]*){${n}}`, 'm'));
  return starts(srv)[n - 1]!;
}

/** The process ID of the node process the supervisor started `n`-th. */
async function nodePid(srv: RunningNode, n: number): Promise<number> {
  const m = await srv.proc.waitErr(
    new RegExp(`(?:aemp info: supervising node process (\\d+)\\n[^]*?){${n}}`),
  );
  return Number(m[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('aemp run', () => {
  it('restart NODE: an empty line; the node process is replaced at once', async () => {
    const srv = await runNode();
    const firstPid = await nodePid(srv, 1);
    expect(await srv.tool(['restart', srv.id])).toEqual({ code: 0, out: '\n', err: '' });
    await srv.proc.waitErr(/aemp note: restarting the node\n/);
    const second = await started(srv, 2);
    expect(second).not.toBe(srv.id); // "srv/" gets a new random suffix per start
    expect(alive(firstPid)).toBe(false);
    expect((await srv.tool(['eval', second, 'NODE'])).out).toBe(`"${second}"\n`);
    srv.proc.child.kill('SIGTERM');
    expect(await srv.proc.exited()).toBe(0);
  });

  it('a node that crashes or is killed is restarted with growing delays; SIGTERM then exits 0', async () => {
    const srv = await runNode();
    // The eval scope has no `process`; reach the real one through a host function.
    const crash = await srv.tool([
      'eval',
      srv.id,
      'node.constructor.constructor("return process")().exit(3)',
    ]);
    expect(crash.code).toBe(255); // the connection closed before an answer
    expect(crash.err).toMatch(/^transport_error /);
    await srv.proc.waitErr(/aemp error: node process \d+ exited with status 3, restarting in 0\.25 s\n/);
    await started(srv, 2);

    const pid = await nodePid(srv, 2);
    process.kill(pid, 'SIGKILL');
    await srv.proc.waitErr(
      new RegExp(`aemp error: node process ${pid} was killed by SIGKILL, restarting in 0\\.5 s\\n`),
    );
    const third = await started(srv, 3);
    expect((await srv.tool(['eval', third, '1+1'])).out).toBe('2\n');

    const last = await nodePid(srv, 3);
    srv.proc.child.kill('SIGTERM');
    expect(await srv.proc.exited()).toBe(0);
    expect(alive(last)).toBe(false);
  });

  it('an invalid configuration is reported at once and not retried', async () => {
    const r = await aempDone(['run', 'monitor_timeout', 'soon'], { AEMP_RC: join(tempDir(), 'rc') });
    expect(r.code).toBe(255);
    expect(r.err).toMatch(/^invalid configuration: key "monitor_timeout"/);
    expect(r.err).not.toMatch(/supervising/);
  });

  it('without an rc file: a global seed on 127.0.0.1:4040 that the tool reaches; a second one joins it', async (ctx) => {
    if (!(await portIsFree(4040))) ctx.skip();
    const rc = join(tempDir(), 'none');
    const p = aemp(['run'], { AEMP_RC: rc });
    const [, id] = (await p.waitOut(/^(\S+) 127\.0\.0\.1:4040$/m)) as unknown as [string, string];
    const r = await aempDone(['eval', id, 'NODE'], { AEMP_RC: rc });
    expect(r).toEqual({ code: 0, out: `"${id}"\n`, err: '' });

    // A second `aemp run`: 4040 is taken, so it listens elsewhere and joins the first.
    const q = aemp(['run'], { AEMP_RC: rc });
    const [, id2, port2] = (await q.waitOut(/^(\S+) 127\.0\.0\.1:(\d+)$/m)) as unknown as string[];
    expect(port2).not.toBe('4040');
    expect(id2).not.toBe(id);
    const r2 = await aempDone(['eval', id2!, 'up_nodes()'], { AEMP_RC: rc });
    expect(r2.code).toBe(0);
    expect(r2.out).toContain(id);

    q.child.kill('SIGINT');
    p.child.kill('SIGINT');
    expect(await q.exited()).toBe(0);
    expect(await p.exited()).toBe(0);
  });
});

describe('aemp run output', () => {
  it('default verbosity: the ID line, then up/down lines; an aemp command ending is a plain down line', async () => {
    const srv = await runNode({ AEMP_VERBOSE: '' });
    // The command's node is the only one connected; the seed monitors it and keeps the reason.
    const first = await srv.tool([
      'eval',
      srv.id,
      '(() => { const [who] = up_nodes(); mon(who, (...r) => { node.lastDown = r; }); return who; })()',
    ]);
    expect(first.code, first.err).toBe(0);
    const tool = JSON.parse(first.out) as string;
    expect(tool).toMatch(/^aemp\//);
    await srv.proc.waitOut(new RegExp(`^down ${esc(tool)}$`, 'm'));
    // Monitors still get AEMP's kill reason for the lost connection.
    const second = await srv.tool(['eval', srv.id, 'node.lastDown']);
    expect(second).toEqual({
      code: 0,
      out: `["transport_error","${tool}","connection closed by peer"]\n`,
      err: '',
    });
    await srv.proc.waitOut(/^down aemp\/\S+\n[\s\S]*^down aemp\/\S+\n/m); // the second command's too
    srv.proc.child.kill('SIGINT');
    expect(await srv.proc.exited()).toBe(0);
    const lines = srv.proc.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${esc(srv.id)} 127\\.0\\.0\\.1:\\d+$`));
    expect(lines.slice(1, 3)).toEqual([`up ${tool}`, `down ${tool}`]);
    expect(lines.slice(3)).toEqual([
      expect.stringMatching(/^up aemp\//),
      expect.stringMatching(/^down aemp\/\S+$/),
    ]);
    expect(srv.proc.err()).toBe('');
  });
});

describe('stopping aemp run', () => {
  /** `sh -c` processes started here; their process groups are killed after each test. */
  const shells = new Set<ChildProcess>();
  afterEach(() => {
    for (const sh of shells) {
      try {
        process.kill(-sh.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    shells.clear();
  });

  /**
   * `aemp run srv` under `sh -c` in a process group of its own, followed by a line with its
   * exit status (so the shell does not simply exec it, as npm's shell does not either).
   */
  async function runUnderShell(env: Record<string, string>) {
    const port = await freePort();
    const rc = networkRc(port);
    chmodSync(rc, 0o600);
    const script = `${env.TRAP ?? ''}"${process.execPath}" "${BIN}" run srv; echo "aemp run exited with status $?"`;
    const sh = spawn('sh', ['-c', script], {
      detached: true,
      env: { ...process.env, AEMP_RC: rc, AEMP_VERBOSE: '7', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    shells.add(sh);
    let out = '';
    let err = '';
    sh.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
    sh.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
    // 'close': the shell exited and every process holding its pipes (aemp run, the node) too.
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      sh.on('close', (code, signal) => resolve({ code, signal })),
    );
    const until = (what: string, test: () => RegExpMatchArray | null) =>
      deadline(
        new Promise<RegExpMatchArray>((resolve) => {
          const check = () => {
            const m = test();
            if (!m) return;
            sh.stdout!.off('data', check);
            sh.stderr!.off('data', check);
            resolve(m);
          };
          sh.stdout!.on('data', check);
          sh.stderr!.on('data', check);
          check();
        }),
        WAIT_MS,
        what,
      );
    await until('the ID line', () => out.match(new RegExp(`^\\S+ 127\\.0\\.0\\.1:${port}$`, 'm')));
    const [, pid] = await until('the node process ID', () => err.match(/supervising node process (\d+)\n/));
    return {
      sh,
      nodePid: Number(pid),
      out: () => out,
      err: () => err,
      closed: () => deadline(closed, WAIT_MS, 'sh -c aemp run and its processes to end'),
    };
  }

  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s to aemp run: exit status 0, the node process gone',
    async (sig) => {
      const srv = await runNode();
      const pid = await nodePid(srv, 1);
      srv.proc.child.kill(sig);
      expect(await srv.proc.exited()).toBe(0);
      expect(alive(pid)).toBe(false);
      expect(srv.proc.err()).toContain(
        `aemp note: ${sig === 'SIGINT' ? 'SIGTERM' : sig}, shutting down ${srv.id}\n`,
      );
    },
  );

  it('Ctrl-C (SIGINT to the whole process group, shell wrapper included): aemp run exits 0', async () => {
    // The shell traps SIGINT so that it lives on to report aemp run's status.
    const run = await runUnderShell({ TRAP: `trap 'echo interrupted' INT; ` });
    process.kill(-run.sh.pid!, 'SIGINT');
    expect(await run.closed()).toEqual({ code: 0, signal: null });
    expect(run.out()).toMatch(/aemp run exited with status 0\n$/);
    expect(alive(run.nodePid)).toBe(false);
  });

  it('as under npx: SIGTERM to the sh -c only kills the shell; aemp run sees its parent go and stops', async () => {
    // npm forwards SIGTERM to the `sh -c` running the bin, which dies of it. (npm forwards SIGINT
    // too, but the shell waits for its command then: only Ctrl-C, which reaches the whole
    // process group, or a signal to aemp run itself stops it.)
    const run = await runUnderShell({ npm_command: 'exec' });
    run.sh.kill('SIGTERM');
    expect(await run.closed()).toEqual({ code: null, signal: 'SIGTERM' });
    expect(run.err()).toContain('aemp note: the parent process (npm) went away, stopping\n');
    expect(run.err()).toMatch(/aemp note: SIGTERM, shutting down srv\/\S+\n/);
    expect(alive(run.nodePid)).toBe(false);
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
