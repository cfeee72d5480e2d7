/**
 * Three "hosts": three network namespaces joined by veth pairs on one bridge (10.213.0.0/24),
 * one node process in each (`ip netns exec NS node …`), every node a seed of the others, with
 * fast heartbeats. One host is cut off (its link goes down): the others must report it down
 * by heartbeat timeout (how soon is proven in virtual time, test/unit/net/heartbeat.test.ts);
 * when the link comes back it must rejoin.
 *
 * Needs root and iproute2 (`ip netns add`); otherwise the test is skipped with the reason.
 * Every namespace, veth pair and the bridge are removed in afterAll, even after a failure.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostileChild, startChild } from '../helpers/hostile-child.js';

const HB_INTERVAL = 0.2;
const HB_MISSES = 3;
/** A database family every host registers itself in. */
const FAMILY = 'hostile-hosts';
const tag = randomBytes(2).toString('hex');
const BRIDGE = `aebr${tag}`;
const hosts = [1, 2, 3].map((i) => ({
  ns: `aemp-${tag}-${i}`,
  veth: `aev${tag}${i}`,
  peer: `aev${tag}${i}p`,
  ip: `10.213.0.${i}`,
}));

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // cleanup of something that may not exist
  }
}

/** Why the test cannot run here, or undefined. */
function unavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 `ip` not found';
  }
  const probe = `aemp-probe-${tag}`;
  try {
    ip('netns', 'add', probe);
  } catch (err) {
    return `\`ip netns add\` failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  quietly(() => ip('netns', 'del', probe));
  return undefined;
}

const skipReason = unavailable();
if (skipReason) console.warn(`netns multi-host test skipped: ${skipReason}`);

let nodes: HostileChild[] = [];

/** Waits until `n`'s merged view of FAMILY has exactly `want`; returns the ms it took (a figure). */
async function dbKeysBecome(n: HostileChild, want: string[], timeoutMs = 8000): Promise<number> {
  const t0 = performance.now();
  await n.request({ cmd: 'dbKeys', family: FAMILY, want, timeoutMs }, timeoutMs + 2000);
  return performance.now() - t0;
}
let setupDone = false;

function cleanup(): void {
  for (const h of hosts) {
    quietly(() => ip('netns', 'del', h.ns));
    quietly(() => ip('link', 'del', h.veth));
  }
  quietly(() => ip('link', 'del', BRIDGE));
}

describe.skipIf(skipReason !== undefined)('three hosts in network namespaces', () => {
  beforeAll(async () => {
    try {
      ip('link', 'add', BRIDGE, 'type', 'bridge');
      ip('link', 'set', BRIDGE, 'up');
      for (const h of hosts) {
        ip('netns', 'add', h.ns);
        ip('link', 'add', h.veth, 'type', 'veth', 'peer', 'name', h.peer);
        ip('link', 'set', h.peer, 'netns', h.ns);
        ip('-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', h.peer);
        ip('-n', h.ns, 'link', 'set', h.peer, 'up');
        ip('-n', h.ns, 'link', 'set', 'lo', 'up');
        ip('link', 'set', h.veth, 'master', BRIDGE);
        ip('link', 'set', h.veth, 'up');
      }
      nodes = await Promise.all(
        hosts.map((h, i) => startChild(`host${i + 1}`, { netns: h.ns, shared: true })),
      );
      const addrs = hosts.map((h) => `${h.ip}:4040`);
      await Promise.all(
        nodes.map((n, i) =>
          n.configure({
            nodeid: `host${i + 1}`,
            binds: [addrs[i]],
            seeds: addrs.filter((_, j) => j !== i),
            heartbeat_interval: HB_INTERVAL,
            heartbeat_misses: HB_MISSES,
            monitor_timeout: 2,
            connect_interval: 1,
          }),
        ),
      );
      await Promise.all(
        nodes.flatMap((n) =>
          nodes.filter((o) => o !== n).map((o) => n.nodeEvent('up', o.id, { timeoutMs: 15_000 })),
        ),
      );
      await Promise.all(
        nodes.map((n, i) => n.request({ cmd: 'dbSet', family: FAMILY, key: n.id, value: hosts[i]!.ip })),
      );
      setupDone = true;
    } catch (err) {
      await Promise.all(nodes.map((n) => n.kill()));
      cleanup();
      throw err;
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    cleanup();
  });

  it('a host cut off is reported down by the others by heartbeat timeout, and rejoins when healed', async () => {
    expect(setupDone).toBe(true);
    const [a, b, c] = nodes as [HostileChild, HostileChild, HostileChild];
    const ids = nodes.map((n) => n.id);
    expect(a.hasDb).toBe(true);
    await Promise.all(nodes.map((n) => dbKeysBecome(n, ids)));
    const echo = await c.request({ cmd: 'port', kind: 'echo' });
    expect(await a.request({ cmd: 'cal', to: echo, msg: ['before'], timeoutMs: 3000 })).toEqual({
      reply: ['before'],
    });
    const monA = await a.request({ cmd: 'mon', port: echo });
    const marks = nodes.map((n) => n.mark());

    const t0 = performance.now();
    ip('link', 'set', hosts[2]!.veth, 'down');
    const [downA, downB] = await Promise.all([
      a
        .nodeEvent('down', c.id, { from: marks[0], timeoutMs: 10_000 })
        .then((e) => [e, performance.now() - t0] as const),
      b
        .nodeEvent('down', c.id, { from: marks[1], timeoutMs: 10_000 })
        .then((e) => [e, performance.now() - t0] as const),
    ]);
    const [downC1, downC2] = await Promise.all([
      c.nodeEvent('down', a.id, { from: marks[2], timeoutMs: 10_000 }),
      c.nodeEvent('down', b.id, { from: marks[2], timeoutMs: 10_000 }),
    ]);
    const fired = await a.waitFor(
      (e): e is Extract<typeof e, { event: 'mon' }> => e.event === 'mon' && e.mon === monA,
    );
    // The two connected hosts are unaffected.
    expect(await a.request({ cmd: 'upNodes' })).toEqual([b.id]);
    // host3's database entries vanish from the views of the hosts that lost it.
    const [vanishA, vanishB] = await Promise.all([
      dbKeysBecome(a, [a.id, b.id]),
      dbKeysBecome(b, [a.id, b.id]),
    ]);
    const vanishMs = performance.now() - t0;

    console.log(
      `cut-off host detected down by host1 after ${downA[1].toFixed(0)} ms, by host2 after ${downB[1].toFixed(0)} ms ` +
        `(heartbeat ${HB_INTERVAL} s × ${HB_MISSES}); reasons ${JSON.stringify(downA[0].reason)}; its DB entries ` +
        `gone from both views ${vanishMs.toFixed(0)} ms after the cut (waits ${vanishA.toFixed(0)}/${vanishB.toFixed(0)} ms)`,
    );
    // Found by the heartbeat; when, is proven in virtual time (test/unit/net/heartbeat.test.ts).
    for (const [e] of [downA, downB])
      expect(e.reason).toEqual(['transport_error', c.id, 'heartbeat timeout']);
    expect(downC1.reason?.[2]).toBe('heartbeat timeout');
    expect(downC2.reason?.[2]).toBe('heartbeat timeout');
    expect(fired.reason).toEqual(['transport_error', c.id, 'heartbeat timeout']);

    const t1 = performance.now();
    ip('link', 'set', hosts[2]!.veth, 'up');
    await Promise.all([
      a.nodeEvent('up', c.id, { from: marks[0], timeoutMs: 15_000 }),
      b.nodeEvent('up', c.id, { from: marks[1], timeoutMs: 15_000 }),
      c.nodeEvent('up', a.id, { from: marks[2], timeoutMs: 15_000 }),
      c.nodeEvent('up', b.id, { from: marks[2], timeoutMs: 15_000 }),
    ]);
    const rejoinMs = performance.now() - t1;
    await Promise.all(nodes.map((n) => dbKeysBecome(n, ids)));
    const dbBackMs = performance.now() - t1;
    console.log(
      `healed host rejoined (up on all sides) after ${rejoinMs.toFixed(0)} ms; its DB entries back everywhere after ${dbBackMs.toFixed(0)} ms`,
    );
    // Connections may have switched while both sides re-dialled; wait for a quiet state.
    expect(await a.request({ cmd: 'cal', to: echo, msg: ['after'], timeoutMs: 5000 })).toEqual({
      reply: ['after'],
    });
    for (const n of nodes) expect((await n.request({ cmd: 'upNodes' })).sort()).toHaveLength(2);
  }, 60_000);
});
