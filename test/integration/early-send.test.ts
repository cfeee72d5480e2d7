/**
 * A node that has seeds but has not connected to any yet (right after `configure()`, before
 * `ready`): sends and monitors wait for the seed to answer instead of failing at once.
 */
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { WAIT_MS, within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const secret = 'early-send-test';

describe('sending before the seeds answered', () => {
  it('a message to a port on the seed, sent right after configure(), is delivered', async () => {
    const seed = testNode({
      nodeid: 'early-seed',
      secret,
      binds: ['127.0.0.1:0'],
      services: ['AnyEvent::MP::Global::'],
    });
    await within(seed.ready, WAIT_MS, 'the seed to listen');
    const got = deferred<unknown[]>();
    const inbox = seed.port((...m: unknown[]) => got.resolve(m));

    const w = testNode({ nodeid: 'early-w', secret, binds: ['127.0.0.1:0'], seeds: [...seed.binds] });
    const reasons: unknown[][] = [];
    w.mon(inbox, (...r: unknown[]) => reasons.push(r));
    w.snd(inbox, 'hello', 1);
    expect(await within(got.promise, WAIT_MS, 'the early message')).toEqual(['hello', 1]);
    expect(reasons).toEqual([]);

    // A port of a node the seed knows: found through the database, still before w's ready.
    const x = testNode({ nodeid: 'early-x', secret, binds: ['127.0.0.1:0'], seeds: [...seed.binds] });
    await within(x.ready, WAIT_MS, 'x to listen');
    const xGot = deferred<unknown[]>();
    const xInbox = x.port((...m: unknown[]) => xGot.resolve(m));
    if (!seed.nodeIsUp(x.id))
      await within(
        firstValueFrom(seed.nodes$.pipe(filter((e) => e.type === 'up' && e.node === x.id))),
        WAIT_MS,
        'x to connect to the seed',
      );
    const v = testNode({ nodeid: 'early-v', secret, binds: ['127.0.0.1:0'], seeds: [...seed.binds] });
    v.snd(xInbox, 'via', 'lookup');
    expect(await within(xGot.promise, WAIT_MS, 'the message sent via lookup')).toEqual(['via', 'lookup']);
  });
});
