/**
 * `aemp run` as a supervisor (design.md §3): the node runs in a child process that is restarted
 * after a crash (with backoff) and at once after a restart request (`aemp restart NODE`);
 * SIGTERM stops everything with status 0. Waiting is for output lines, with deadlines.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { portIsFree } from '../helpers/ports.js';
import { aemp, aempDone, cleanUpAfter, type RunningNode, runNode, tempDir } from './helpers.js';

cleanUpAfter('each');

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
  const m = await srv.proc.waitErr(new RegExp(`(?:supervising node process (\\d+)\\n[^]*?){${n}}`));
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
    await srv.proc.waitErr(/aemp: restarting the node\n/);
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
    await srv.proc.waitErr(/node process \d+ exited with status 3, restarting in 0\.25 s\n/);
    await started(srv, 2);

    const pid = await nodePid(srv, 2);
    process.kill(pid, 'SIGKILL');
    await srv.proc.waitErr(new RegExp(`node process ${pid} was killed by SIGKILL, restarting in 0\\.5 s\\n`));
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
