/**
 * Per-connection counters (design.md §4): messages and bytes each way, messages waiting for a
 * connection, unsent bytes; `connectionStats$` polls them and completes when the node closes.
 */
import { filter, firstValueFrom, lastValueFrom, skip, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { WAIT_MS, within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const secret = 'stats-test';

describe('connection statistics', () => {
  it('count messages and bytes both ways on both nodes', async () => {
    const a = testNode({ nodeid: 'sa', secret, binds: ['127.0.0.1:0'] });
    await within(a.ready, WAIT_MS, 'sa to listen');
    const b = testNode({ nodeid: 'sb', secret, binds: ['127.0.0.1:0'], seeds: [...a.binds] });
    await within(b.ready, WAIT_MS, 'sb to listen');
    await within(
      firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'sb'))),
      WAIT_MS,
      'sb to connect to sa',
    );
    const before = a.connectionStats().find((s) => s.node === 'sb')!;
    expect(before.up).toBe(true);

    const all = deferred();
    let n = 0;
    const p = b.port(() => {
      if (++n === 10) all.resolve();
    });
    for (let i = 0; i < 10; i++) a.snd(p, 'payload', 'x'.repeat(100));
    await within(all.promise, WAIT_MS, 'the ten messages at sb');

    const sent = a.connectionStats().find((s) => s.node === 'sb')!;
    const got = b.connectionStats().find((s) => s.node === 'sa')!;
    expect(sent.messagesOut - before.messagesOut).toBeGreaterThanOrEqual(10);
    expect(sent.bytesOut - before.bytesOut).toBeGreaterThanOrEqual(10 * 100);
    expect(got.messagesIn).toBeGreaterThanOrEqual(10);
    expect(got.bytesIn).toBeGreaterThanOrEqual(10 * 100);
    expect(sent.queued).toBe(0);
  });

  it('a node still being connected shows its queued messages', () => {
    const a = testNode({ nodeid: 'sq', secret, connect_interval: 30 });
    a.snd('sq-nowhere#p', 'one');
    a.snd('sq-nowhere#p', 'two');
    expect(a.connectionStats()).toContainEqual(
      expect.objectContaining({ node: 'sq-nowhere', up: false, queued: 2, messagesOut: 0 }),
    );
  });

  it('connectionStats$ emits at once, then per interval, and completes on close', async () => {
    const a = testNode({ nodeid: 'sp', secret });
    const first = await within(firstValueFrom(a.connectionStats$(20)), WAIT_MS, 'the first stats');
    expect(first).toEqual([]);
    const twoMore = lastValueFrom(a.connectionStats$(20).pipe(skip(1), take(2), toArray()));
    expect(await twoMore).toHaveLength(2);
    const untilClose = lastValueFrom(a.connectionStats$(1000).pipe(toArray()));
    await a.close();
    expect((await untilClose).length).toBeGreaterThanOrEqual(1);
    // After close it completes at once.
    expect(
      await within(
        lastValueFrom(a.connectionStats$(1000).pipe(toArray())),
        WAIT_MS,
        'connectionStats$ after close to complete',
      ),
    ).toEqual([]);
  });
});
