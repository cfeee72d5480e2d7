/**
 * Tracing (spec/api.md §20): one `SND node <- [port, …]` line per `snd` (the node port shown as
 * null) and one `RCV node -> [port, …]` line per message from another node; `AEMP_TRACE` or
 * `PERL_ANYEVENT_MP_TRACE` turns it on for stderr.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { WAIT_MS, within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/trace-main.ts', import.meta.url));

function runTraced(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', FIXTURE],
      { env: { ...process.env, AEMP_TRACE: '', PERL_ANYEVENT_MP_TRACE: '', ...env }, timeout: 15_000 },
      (err, _out, stderr) => (err ? reject(err) : resolve(stderr)),
    );
  });
}

describe('tracing', () => {
  it('traces every snd, local ones and the node port included', async () => {
    const lines: string[] = [];
    const n = testNode({ nodeid: 'tr', trace: (l: string) => lines.push(l) });
    const got = deferred<unknown[]>();
    const p = n.port((...m: unknown[]) => got.resolve(m));
    n.snd(p, 'hello', 1, { big: 2n ** 64n });
    await within(got.promise, WAIT_MS, 'the local message');
    const name = p.slice(p.indexOf('#') + 1);
    expect(lines).toContain(`SND tr <- ["${name}","hello",1,{"big":"18446744073709551616"}]`);
    n.snd('tr', 'devnull', 'x');
    expect(lines.at(-1)).toBe('SND tr <- [null,"devnull","x"]');
  });

  it('traces messages from other nodes as RCV with the source node', async () => {
    const secret = 'trace-test';
    const lines: string[] = [];
    const a = testNode({ nodeid: 'tra', secret, binds: ['127.0.0.1:0'] });
    await within(a.ready, WAIT_MS, 'tra to listen');
    const b = testNode({
      nodeid: 'trb',
      secret,
      binds: ['127.0.0.1:0'],
      seeds: [...a.binds],
      trace: (l: string) => lines.push(l),
    });
    const got = deferred<unknown[]>();
    const p = b.port((...m: unknown[]) => got.resolve(m));
    await within(b.ready, WAIT_MS, 'trb to listen');
    await within(
      firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'trb'))),
      WAIT_MS,
      'trb to connect to tra',
    );
    a.snd(p, 'over', 'the wire');
    await within(got.promise, WAIT_MS, 'the message from trb');
    const name = p.slice(p.indexOf('#') + 1);
    expect(lines).toContain(`RCV tra -> ["${name}","over","the wire"]`);
  });

  it('AEMP_TRACE and PERL_ANYEVENT_MP_TRACE write the lines to stderr; unset, nothing', async () => {
    const line = /^SND traced <- \["[^"]+","hi",1\]$/m;
    expect(await runTraced({ AEMP_TRACE: '1' })).toMatch(line);
    expect(await runTraced({ PERL_ANYEVENT_MP_TRACE: '1' })).toMatch(line);
    expect(await runTraced({})).not.toMatch(/SND/);
  });
});
