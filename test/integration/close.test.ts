import { filter, firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { AempError, configure, KilledError, memoryLogger } from '../../src/index.js';
import { CLOSE_GRACE_MS } from '../../src/streams/net/tcp-network.js';
import { WAIT_MS, within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';
import { listening } from '../helpers/ports.js';

function activeHandles(): string[] {
  return process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
}

describe('close', () => {
  it('kills every local port normally, completes streams and leaves nothing running', async () => {
    const baseline = activeHandles();
    const n = configure({ nodeid: 'closing/', norc: true, binds: [], logger: memoryLogger() });
    await within(n.ready, WAIT_MS, 'the node to start');
    const p = n.port$();
    const msgs = firstValueFrom(p.pipe(toArray()));
    const q = n.port(() => {});
    const reasons: unknown[][] = [];
    n.mon(q, (...r: unknown[]) => reasons.push(r));
    n.after(60, () => {});
    n.cal(q, 'never answered', () => {}, 60);
    n.snd(p.id, 'queued but dropped');
    const events = firstValueFrom(n.pipe(toArray()));
    await within(n.close(), WAIT_MS, 'close of the node with ports, timers and a call');
    expect(await msgs).toEqual([]);
    expect(reasons).toEqual([[]]);
    expect((await events).every((e) => e.type === 'kill')).toBe(true);
    expect(n.kernel.portCount).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(activeHandles()).toEqual(baseline);
    await within(n.close(), WAIT_MS, 'a second close of the closed node');
  });

  it('ends monitors and calls of remote ports with a transport_error; reports dropped queued messages', async () => {
    const secret = 'close-test';
    const a = testNode({ nodeid: 'close-a/', secret, binds: ['127.0.0.1:0'] });
    await within(a.ready, WAIT_MS, 'a to listen');
    const b = testNode({ nodeid: 'close-b/', secret, binds: ['127.0.0.1:0'], seeds: [...a.binds] });
    await within(b.ready, WAIT_MS, 'b to listen');
    await within(
      firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'up' && e.node === b.id))),
      WAIT_MS,
      'b to connect to a',
    );
    const remote = b.port(() => {}); // never answers
    const monitored = firstValueFrom(a.mon$(remote));
    const call = lastValueFrom(a.cal$(remote, 'hello'));
    const callFailed = call.then(
      () => null,
      (e: unknown) => e,
    );
    await within(a.close(), WAIT_MS, 'close of a with b connected');
    expect(await monitored).toEqual(['transport_error', b.id, 'node shutting down']);
    // The call failed because this node closed, not because the port died.
    const err = await callFailed;
    expect(err).not.toBeInstanceOf(KilledError);
    expect(AempError.is(err) && err.code).toBe('ERR_NODE_CLOSED');
  });

  it('a message sent right before close() to a node still being connected is delivered', async () => {
    const secret = 'close-test';
    const b = testNode({ nodeid: 'close-b2', secret, binds: ['127.0.0.1:0'] });
    await within(b.ready, WAIT_MS, 'b to listen');
    const got = deferred<unknown[]>();
    const inbox = b.port((...m: unknown[]) => got.resolve(m));
    // b is a's seed, so a can reach it; the connection is not up when close() starts.
    const a = testNode({ nodeid: 'close-a2', secret, binds: ['127.0.0.1:0'], seeds: [...b.binds] });
    a.snd(inbox, 'last words');
    await within(a.close(), CLOSE_GRACE_MS + WAIT_MS, 'close of a while it connects to b');
    expect(await within(got.promise, WAIT_MS, 'the last message at b')).toEqual(['last words']);
  });

  it('close() waits at most a second for a connection that does not come up, then drops and says so', async () => {
    // A seed that accepts TCP connections and never says a word.
    const { server: silent, port } = await listening();
    try {
      const a = testNode({ nodeid: 'close-a3', secret: 'x', binds: [], seeds: [`127.0.0.1:${port}`] });
      a.snd('close-silent-seed/#p', 'lost');
      // The grace's timing is proven in virtual time (test/unit/net/handshake-timing.test.ts).
      await within(a.close(), CLOSE_GRACE_MS + WAIT_MS, 'close() past the grace for the silent seed');
      expect(a.logs.some((l) => /close-silent-seed\/: 1 message\(s\) dropped/.test(l.text))).toBe(true);
    } finally {
      silent.close();
    }
  });
});
