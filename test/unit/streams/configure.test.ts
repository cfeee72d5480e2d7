/**
 * configure() end to end: services run in order at start, a failing service or `eval` rejects
 * `node.ready` with a message naming it, and invalid configuration throws at once.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AempError, envLogLevel, LEVEL } from '../../../src/index.js';
import { WAIT_MS, within } from '../../helpers/fake-peer.js';
import { testNode } from '../../helpers/node.js';

describe('configure', () => {
  it('runs services in order (function names with and without arguments), then eval', async () => {
    const calls: unknown[] = [];
    (globalThis as { __aempCalls?: unknown[] }).__aempCalls = calls;
    const n = testNode({
      services: [
        './test/fixtures/service-module.ts::first',
        ['./test/fixtures/service-module.ts::second', 1, 'b'],
      ],
      // eval runs in its own context: it leaves a mark through the node API.
      eval: 'node.register("Evaled::mark", () => NODE)',
    });
    await within(n.ready, WAIT_MS, 'the node to start');
    expect(calls).toEqual([['first'], ['second', 1, 'b']]);
    expect(n.registry.lookup('Evaled::mark')?.()).toBe(n.id);
  });

  it('a failing service rejects ready with a message naming the service', async () => {
    const n = testNode({ services: ['No::Such::service'] });
    const err = await within(n.ready, WAIT_MS, 'ready to fail').catch((e: unknown) => e);
    expect(AempError.is(err) && err.code).toBe('ERR_CONFIG_INVALID');
    expect((err as Error).message).toBe(
      `service "No::Such::service" failed: unable to resolve function 'No::Such::service'`,
    );
  });

  it('a failing eval rejects ready', async () => {
    const n = testNode({ eval: 'throw new Error("bad setup")' });
    expect(
      (
        (await within(n.ready, WAIT_MS, 'ready to fail with the eval error').catch(
          (e: unknown) => e,
        )) as Error
      ).message,
    ).toBe('eval failed: bad setup');
  });

  it('invalid configuration throws a ConfigError naming the key', () => {
    expect(() => testNode({ monitor_timeout: 'soon' })).toThrow(/key "monitor_timeout"/);
    expect(() => testNode({ nodeid: 'a#b' })).toThrow(/key "nodeid".*"#"/);
  });

  it('an rc file that cannot be parsed is reported at error level (shown by default) and not used', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aemp-configure-'));
    const rc = join(dir, 'rc');
    writeFileSync(rc, '{ "secret": "x", oops }');
    const saved = process.env.AEMP_RC;
    process.env.AEMP_RC = rc;
    try {
      const n = testNode({ norc: false });
      const line = n.logs.find((l) => l.text.includes(rc));
      expect(line?.level).toBe(LEVEL.error);
      expect(line?.level).toBeLessThanOrEqual(envLogLevel({}));
      expect(readFileSync(rc, 'utf8')).toBe('{ "secret": "x", oops }');
    } finally {
      if (saved === undefined) delete process.env.AEMP_RC;
      else process.env.AEMP_RC = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
