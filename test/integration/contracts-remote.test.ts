/**
 * Contracts of calls and of a closed node with a second node over loopback TCP: a `cal` to a
 * node that is still connecting waits for it; a `cal$` to a remote port pending at `close()`
 * fails with `ERR_NODE_CLOSED`; `nodes$` gives a late subscriber the connections up now.
 */
import { filter, firstValueFrom, lastValueFrom, take } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { expectNodeClosed, failure } from '../helpers/closed-node.js';
import { within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const WAIT_MS = 5000;
const secret = 'contracts-calls';

describe('calls to another node', () => {
  it('a cal to a node that is still connecting waits for it instead of failing at once', async () => {
    const seed = testNode({
      nodeid: 'cc-seed',
      secret,
      binds: ['127.0.0.1:0'],
      services: ['AnyEvent::MP::Global::'],
    });
    await within(seed.ready, WAIT_MS, 'the seed to start');
    // The seed knows nothing of this node yet: it has not connected or published addresses.
    const late = testNode({ nodeid: 'cc-late', secret, binds: ['127.0.0.1:0'], seeds: [...seed.binds] });
    const server = late.port((q: string, reply: string) => late.snd(reply, `${q}-answer`));
    const got = deferred<unknown[]>();
    seed.cal(server, 'q', (...r: unknown[]) => got.resolve(r));
    expect(await within(got.promise, WAIT_MS, 'the reply from the connecting node')).toEqual(['q-answer']);
    const viaObservable = lastValueFrom(seed.cal$(server, 'again'));
    expect(await within(viaObservable, WAIT_MS, 'the cal$ reply')).toEqual(['again-answer']);
  });

  it('cal$ to a remote port pending at close() fails with ERR_NODE_CLOSED', async () => {
    const a = testNode({ nodeid: 'cc-a', secret, binds: ['127.0.0.1:0'] });
    await within(a.ready, WAIT_MS, 'a to start');
    const b = testNode({ nodeid: 'cc-b', secret, binds: ['127.0.0.1:0'], seeds: [...a.binds] });
    await within(
      firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'up' && e.node === b.id))),
      WAIT_MS,
      'b to connect',
    );
    const asked = deferred<void>();
    const remote = b.port(() => asked.resolve());
    const pending = failure(lastValueFrom(a.cal$(remote, 'q')), 'remote cal$ pending at close');
    await within(asked.promise, WAIT_MS, 'the request at b');
    await within(a.close(), WAIT_MS, 'close()');
    expectNodeClosed(await pending);
  });
});

describe('nodes$', () => {
  it('on real connections: a node subscribing after the connection came up learns it', async () => {
    const a = testNode({ nodeid: 'st-a', secret: 'st', binds: ['127.0.0.1:0'] });
    await within(a.ready, WAIT_MS, 'st-a to start');
    const b = testNode({ nodeid: 'st-b', secret: 'st', binds: ['127.0.0.1:0'], seeds: [...a.binds] });
    await within(firstValueFrom(b.nodes$.pipe(take(1))), 10_000, 'st-b to connect to st-a');
    const seen: unknown[] = [];
    a.nodes$.subscribe((e) => seen.push(e)).unsubscribe();
    expect(seen).toEqual([{ type: 'up', node: 'st-b' }]);
  });
});
