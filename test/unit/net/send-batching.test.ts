/**
 * When an established connection writes: every message queued up to the end of the current
 * microtask's run goes out in one write, in order, at the place of the microtask queue where a
 * microtask queued by the first of them would run; a write that throws escapes as an uncaught
 * exception (as a throwing `queueMicrotask` callback does), not as an unhandled rejection.
 */

import { decodeMultiple } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import { MemoryNetwork, VirtualClock } from '../../../src/testing.js';
import { escapesOfEachTest } from '../../helpers/escapes.js';
import { within } from '../../helpers/fake-peer.js';
import { network, node, nodeEvent } from './memory-nodes.js';

interface ConnView {
  transport: { write(bytes: Uint8Array | string, done?: () => void): void };
}

/** Two connected nodes; what `a` writes to `b` is recorded (and still delivered). */
async function pair() {
  const net = new MemoryNetwork();
  const a = node(net.host(), new VirtualClock(), { nodeid: 'sb-a', binds: ['10.0.0.1:4040'] });
  const b = node(net.host(), new VirtualClock(), { nodeid: 'sb-b', binds: ['10.0.0.2:4040'] });
  await Promise.all([a.ready, b.ready]);
  network(a).addresses.set('sb-b', ['10.0.0.2:4040']);
  a.snd('sb-b#nobody', 'hello');
  await nodeEvent(a, 'up', 'sb-b');
  const peers = (network(a) as unknown as { peers: { get(id: string): { conn?: ConnView } } }).peers;
  const t = peers.get('sb-b').conn!.transport;
  const writes: unknown[][] = [];
  const write = t.write.bind(t);
  t.write = (bytes, done) => {
    if (typeof bytes !== 'string') writes.push(decodeMultiple(Buffer.from(bytes)) as unknown[]);
    write(bytes, done);
  };
  return { a, t, writes };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('connection writes', () => {
  const escaped = escapesOfEachTest();

  it('sends what one run queues in one write, in order', async () => {
    const { a, writes } = await pair();
    a.snd('sb-b#p', 1);
    a.snd('sb-b#p', 2);
    a.snd('sb-b#p', 3);
    await turn();
    expect(writes).toEqual([
      [
        ['p', 1],
        ['p', 2],
        ['p', 3],
      ],
    ]);
  });

  it('writes a lone message as its frame', async () => {
    const { a, writes } = await pair();
    a.snd('sb-b#p', 'one', 1.5, { k: [2 ** 30] });
    await turn();
    expect(writes).toEqual([[['p', 'one', 1.5, { k: [2 ** 30] }]]]);
  });

  it('writes where a microtask queued by the first message would run', async () => {
    const { a, writes } = await pair();
    // Queued before the first message: its message joins the write.
    queueMicrotask(() => a.snd('sb-b#p', 'before'));
    a.snd('sb-b#p', 'first');
    // Queued after it: the write has happened, its message takes the next one.
    queueMicrotask(() => a.snd('sb-b#p', 'after'));
    void Promise.resolve().then(() => a.snd('sb-b#p', 'after too'));
    await turn();
    expect(writes).toEqual([
      [
        ['p', 'first'],
        ['p', 'before'],
      ],
      [
        ['p', 'after'],
        ['p', 'after too'],
      ],
    ]);
  });

  it('lets an exception of the write escape as an uncaught exception', async () => {
    const { a, t } = await pair();
    const boom = new Error('write failed');
    t.write = () => {
      throw boom;
    };
    const uncaught: unknown[] = [];
    const rejected: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    const onRejected = (err: unknown) => rejected.push(err);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onRejected);
    try {
      a.snd('sb-b#p', 1);
      await within(
        (async () => {
          while (uncaught.length + rejected.length === 0) await turn();
        })(),
        2000,
        'the write error to escape',
      );
      await turn();
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onRejected);
    }
    expect(uncaught).toEqual([boom]);
    expect(rejected).toEqual([]);
    escaped.length = 0;
  });
});
