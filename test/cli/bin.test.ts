/**
 * The `aemp` bin as a child process: help, usage errors and their exit status, and `run`
 * starting a node that prints its ID and addresses and exits 0 on SIGTERM.
 */
import { describe, expect, it } from 'vitest';
import { aemp, aempDone, cleanUpAfter, tempRc } from './helpers.js';

cleanUpAfter('each');

describe('aemp bin', () => {
  it('--help prints one line per subcommand and exits 0', async () => {
    const r = await aempDone(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of [
      'run',
      'snd',
      'cal',
      'mon',
      'eval',
      'trace',
      'restart',
      'shell',
      'gensecret',
      'gencert',
    ]) {
      expect(r.out).toMatch(new RegExp(`^ {2}${cmd}\\b`, 'm'));
    }
    expect(r.out).toMatch(/^ {2}setmonitor_timeout VALUE +set monitor_timeout/m);
  });

  it('rejects an unknown command and a missing command with exit 2', async () => {
    const [a, b] = await Promise.all([aempDone(['frobnicate']), aempDone([])]);
    expect(a).toEqual({ code: 2, out: '', err: 'frobnicate: no such aemp command (try aemp --help)\n' });
    expect(b).toEqual({ code: 2, out: '', err: 'Usage: aemp subcommand ... (try aemp --help)\n' });
  });

  it('run starts a node, prints its ID and address, and exits 0 on SIGTERM', async () => {
    const rc = tempRc('{"version": 1, "secret": "cli-test"}');
    const p = aemp(['run', 'nodeid', 'clitest/', 'binds', '["127.0.0.1:0"]'], { AEMP_RC: rc });
    const [line] = await p.waitOut(/^.*\n/);
    expect(line).toMatch(/^clitest\/[0-9A-Za-z]{10} 127\.0\.0\.1:\d+\n$/);
    p.child.kill('SIGTERM');
    expect(await p.exited()).toBe(0);
  });
});
