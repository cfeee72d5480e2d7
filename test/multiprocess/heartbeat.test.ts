/**
 * Fast failure detection (design.md §4): when both nodes advertise the `hb` greeting key they
 * exchange `[""]` on idle connections and declare a silent peer down after the configured
 * number of missed beats. A peer that does not advertise it (a Perl node) is never timed out.
 */
import { describe, expect, it } from 'vitest';
import { startPair } from '../helpers/spawn-node.js';

const HB = { heartbeat_interval: 0.2, heartbeat_misses: 3 };

describe('heartbeat', () => {
  it('a stopped peer (SIGSTOP) is declared down with heartbeat timeout', async () => {
    const [hub, leaf] = await startPair(HB, HB);
    const port = await leaf.port('silent');
    const m = await hub.mon(port);
    const t0 = performance.now();
    leaf.signal('SIGSTOP');
    const fired = await hub.monFired(m, { timeoutMs: 5000 });
    const detectedMs = performance.now() - t0;
    console.log(`SIGSTOP of ${leaf.id} detected after ${detectedMs.toFixed(0)} ms (0.2 s × 3 beats)`);
    // The timing itself is proven in virtual time (test/unit/net/heartbeat.test.ts).
    expect(fired.reason).toEqual(['transport_error', leaf.id, 'heartbeat timeout']);
    const down = await hub.nodeEvent('down', leaf.id);
    expect(down.reason).toEqual(['transport_error', leaf.id, 'heartbeat timeout']);
  });

  it('an idle connection between two heartbeating nodes stays up for many intervals', async () => {
    // Beats every 0.2 s as above, but ten may be missed: a busy test machine that stalls a
    // child for 0.6 s must not turn this into the timeout of the test before.
    const TOLERANT = { ...HB, heartbeat_misses: 10 };
    const [hub, leaf] = await startPair(TOLERANT, TOLERANT);
    const echo = await leaf.port('echo');
    // No traffic from the application: each side hears ten heartbeats (ten intervals) from
    // the other on the connection it had, and nothing goes down meanwhile.
    await Promise.all([
      hub.request({ cmd: 'heard', node: leaf.id, messages: 10, everyMs: 50 }, 10_000),
      leaf.request({ cmd: 'heard', node: hub.id, messages: 10, everyMs: 50 }, 10_000),
    ]);
    expect(hub.all('node').filter((e) => e.type === 'down')).toEqual([]);
    expect(leaf.all('node').filter((e) => e.type === 'down')).toEqual([]);
    expect(await hub.cal(echo, ['still there'])).toEqual({ reply: ['still there'] });
  });

  it('a peer that does not advertise heartbeats is never timed out', async () => {
    const [hub, leaf] = await startPair(HB, { heartbeat_interval: 0 });
    const echo = await leaf.port('echo');
    await hub.request({ cmd: 'idle', ms: 2000 }, 5000);
    expect(hub.all('node').filter((e) => e.type === 'down')).toEqual([]);
    expect(await hub.cal(echo, ['no beats needed'])).toEqual({ reply: ['no beats needed'] });
  });
});
