/**
 * The `aemp` CLI against a hostile node. `aemp trace` asks every node a node names for its
 * neighbours, recursively: a node that names 10,000 made-up nodes in one answer (and could
 * name 10,000 new ones in every further answer) must not make the tool ask them all.
 * `aemp logs` prints what every listed node sends to its catcher ports: a record time no
 * date can show must not end the tool with an exception.
 */
import { describe, expect, it } from 'vitest';
import { ArgQueue, CliExit } from '../../src/cli/args.js';
import { logs } from '../../src/cli/logs.js';
import { MAX_TRACE_NODES, trace } from '../../src/cli/node-commands.js';
import { Session } from '../../src/cli/session.js';
import type { Node } from '../../src/index.js';
import { escapesOfEachTest } from '../helpers/escapes.js';
import { FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const escaped = escapesOfEachTest();

/** A session whose tool node is `node`, writing into `out` and `err`. */
function sessionOn(node: Node, out: string[], err: string[]): Session {
  const s = Object.create(Session.prototype) as Session;
  Object.assign(s, {
    io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), env: {}, stdin: process.stdin },
    tool: async () => node,
    reach: async () => {},
  });
  return s;
}

describe('aemp trace against a node that names the world', () => {
  it(`10,000 made-up neighbours in one answer: at most ${MAX_TRACE_NODES} nodes asked, exit 1 saying so`, async () => {
    const tool = testNode({ nodeid: 'r4-trace-tool', secret: SECRET, binds: ['127.0.0.1:0'] });
    try {
      await within(tool.ready, WAIT_MS, 'the tool node to listen');
      const fake = await FakePeer.dial(tool.binds[0]!);
      await fake.handshake({ nodeId: 'evil', secret: SECRET });
      fake.send(['', 'time', 'evil#up']);
      await fake.nextMatching((m) => m[0] === 'up');

      let asked = 0;
      const counted = Object.create(tool) as Node;
      counted.cal$ = (...args: Parameters<Node['cal$']>) => {
        asked++;
        return tool.cal$(...args);
      };
      const out: string[] = [];
      const err: string[] = [];
      const run = trace(sessionOn(counted, out, err), new ArgQueue(['evil']));
      const req = await fake.nextMatching((m) => m[0] === '' && m[1] === 'eval');
      const reply = String(req.at(-1));
      const names = Array.from({ length: 10_000 }, (_, i) => `made-up-${i}`);
      fake.send([reply.slice(reply.indexOf('#') + 1), null, ...names]);

      const outcome = await within(
        run.then(
          () => undefined,
          (e: unknown) => e,
        ),
        60_000,
        'aemp trace to end',
      );
      expect(asked).toBeLessThanOrEqual(MAX_TRACE_NODES);
      expect(outcome).toBeInstanceOf(CliExit);
      expect((outcome as CliExit).message).toMatch(
        new RegExp(`stopped at ${MAX_TRACE_NODES} nodes: ${10_000 + 1 - MAX_TRACE_NODES} more not asked`),
      );
      expect(out.length).toBeLessThanOrEqual(MAX_TRACE_NODES + 1);
      fake.destroy();
      expect(escaped).toEqual([]);
    } finally {
      await tool.close();
    }
  });
});

describe('aemp logs against a node sending records', () => {
  it('times no date can show (1e300 s, -1e20 s) are printed as numbers; the tool goes on', async () => {
    const tool = testNode({ nodeid: 'r4-logs-tool', secret: SECRET, binds: ['127.0.0.1:0'] });
    let run: Promise<void> | undefined;
    try {
      await within(tool.ready, WAIT_MS, 'the tool node to listen');
      tool.db.becomeGlobal();
      const out: string[] = [];
      const err: string[] = [];
      run = logs(sessionOn(tool, out, err), new ArgQueue([]));
      const fake = await FakePeer.dial(tool.binds[0]!);
      await fake.handshake({ nodeId: 'evil', secret: SECRET });
      // Listed in 'l: the catcher asks it for its records.
      fake.send(['', 'g_slave', { "'l": { evil: ['127.0.0.1:1'] } }]);
      const ask = await fake.nextMatching((m) => m[1] === 'AnyEvent::MP::LogCatcher::connect');
      const port = String(ask[3]);
      const name = port.slice(port.indexOf('#') + 1);
      fake.send([name, 1e300, 'ctx', 3, 'far future']);
      fake.send([name, -1e20, 'ctx', 3, 'far past']);
      fake.send([name, 1.5, 'ctx', 3, 'last']);
      fake.send(['', 'time', 'evil#done']);
      await fake.nextMatching((m) => m[0] === 'done');
      await within(
        new Promise<void>((resolve) => {
          const check = () => (out.some((l) => l.includes('last')) ? resolve() : setImmediate(check));
          check();
        }),
        WAIT_MS,
        'the last record to be printed',
      );
      expect(out.join('')).toContain('1e+300 crit  ctx: [evil');
      expect(out.join('')).toContain('-100000000000000000000 crit  ctx: [evil');
      expect(out.join('')).toContain('1970-01-01T00:00:01.500Z crit  ctx: [evil');
      fake.destroy();
      expect(escaped).toEqual([]);
    } finally {
      await tool.close();
      if (run) await within(run, WAIT_MS, 'aemp logs to end with its node');
    }
  });
});
