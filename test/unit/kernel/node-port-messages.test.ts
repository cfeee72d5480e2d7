/**
 * How the node port gets its messages: one from a connection is nobody else's, and is taken
 * apart in place (no copy per message); one a local sender queued is still the sender's.
 */
import { describe, expect, it } from 'vitest';
import { Kernel, type Remote } from '../../../src/streams/kernel/kernel.js';
import { createNodePort, type RequestHandler } from '../../../src/streams/kernel/node-port.js';
import { Registry } from '../../../src/streams/kernel/registry.js';
import { WAIT_MS, within } from '../../helpers/fake-peer.js';
import { deferred } from '../../helpers/node.js';

function kernelWithProbe() {
  const got: unknown[][] = [];
  let arrived = deferred();
  const probe: RequestHandler = (_src, args) => {
    got.push(args);
    arrived.resolve();
  };
  const remote: Remote = { send: () => {}, sendIfUp: () => {}, monitor: () => () => {} };
  const logger = { log() {} };
  const k = new Kernel({
    nodeId: 'me/x',
    randomisedId: false,
    logger,
    remote,
    nodePort: (kernel) =>
      createNodePort(
        {
          kernel,
          registry: new Registry(),
          logger,
          thisArg: null,
          secure: () => false,
          evalJs: () => undefined,
          upNodes: () => [],
          remoteKilled: () => {},
        },
        new Map([['g_probe', probe]]),
      ),
  });
  const next = async (what: string) => {
    await within(arrived.promise, WAIT_MS, what);
    arrived = deferred();
    return got.at(-1)!;
  };
  return { k, next };
}

describe('node port messages', () => {
  it("a peer's message is taken apart in place; a local sender's array is left as it was", async () => {
    const { k, next } = kernelWithProbe();
    const wire: unknown[] = ['', 'g_probe', 1, { a: 2 }];
    k.receive('peer/y', wire);
    const fromPeer = await next("the peer's g_probe");
    expect(fromPeer).toBe(wire);
    expect(fromPeer).toEqual([1, { a: 2 }]);

    const mine: unknown[] = ['g_probe', 3];
    k.snd('me/x#', mine);
    const fromHere = await next('the local g_probe');
    expect(fromHere).toEqual([3]);
    expect(fromHere).not.toBe(mine);
    expect(mine).toEqual(['g_probe', 3]);
    k.close();
  });
});
