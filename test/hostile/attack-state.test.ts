/**
 * An authenticated peer cannot grow the node's peer table (issue 14, item 7, network part):
 * every node ID it makes the node address (relayed `snd`, `time` replies to unknown ports)
 * costs a peer object only while that node is being connected to, at most
 * `MAX_CONNECTING_PEERS` of them at once; a connect beyond that fails at once with
 * "too many nodes connecting".
 */
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import {
  MAX_CONNECTING_PEERS,
  type TcpNetwork,
  TOO_MANY_CONNECTING,
} from '../../src/streams/net/tcp-network.js';
import { FakePeer, perlCbor, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const net = (n: object) => (n as { network: TcpNetwork }).network;

/** Resolves once `pred()` holds, checking after every event-loop turn; rejects after `ms`. */
function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  let done = false;
  return within(
    new Promise<void>((resolve) => {
      const check = () => {
        if (pred()) resolve();
        else if (!done) setImmediate(check);
      };
      check();
    }),
    ms,
    what,
  ).finally(() => {
    done = true;
  });
}

async function victim(nodeid: string, opts: Parameters<typeof testNode>[0] = {}) {
  const n = testNode({ nodeid, binds: ['127.0.0.1:0'], secret: SECRET, ...opts });
  await within(n.ready, WAIT_MS, 'the node to listen');
  return n;
}

/** An authenticated fake peer of `n`. */
async function insider(n: { binds: readonly string[] }, nodeId: string): Promise<FakePeer> {
  const fake = await FakePeer.dial(n.binds[0]!);
  await fake.handshake({ nodeId, secret: SECRET });
  return fake;
}

/** Writes `msgs` in one go, then a `time` request, and waits for its reply (all were processed). */
async function relay(fake: FakePeer, selfId: string, msgs: unknown[][]): Promise<void> {
  fake.write(Buffer.concat([...msgs.map(perlCbor), perlCbor(['', 'time', `${selfId}#done`])]));
  await fake.nextMatching((m) => m[0] === 'done', 20_000);
}

describe('the peer table (item 7)', () => {
  it.each([
    ['an ordinary node', false],
    ['a secure node', true],
  ])(
    '%s: 20,000 relayed snd and time replies to unknown node IDs leave no peer objects behind',
    async (_what, secure) => {
      const n = await victim(secure ? 'table-secure' : 'table-victim', { secure });
      const fake = await insider(n, 'insider');
      const msgs: unknown[][] = [];
      for (let i = 0; i < 10_000; i++) {
        msgs.push(['', 'snd', `unknown${i}#p`, 'x']);
        msgs.push(['', 'time', `other${i}#r`]);
      }
      await relay(fake, 'insider', msgs);
      // Each unknown node failed with "no known address" (no master, no seeds).
      await until(() => net(n).peerCount <= 1, WAIT_MS, 'the peer table to shrink to the insider');
      console.log(`peer objects after 20,000 sends to unknown nodes: ${net(n).peerCount}`);
      expect(net(n).peerCount).toBe(1);
      expect(n.upNodes()).toEqual(['insider']);
    },
    30_000,
  );

  it(`at most MAX_CONNECTING_PEERS (${MAX_CONNECTING_PEERS}) nodes are being connected to; one more fails at once`, async () => {
    const n = await victim('cap-connecting', { connect_interval: 3 });
    // A master that never answers g_find: every connect waits for its deadline.
    n.db.lookup = () => new Promise(() => {});
    const fake = await insider(n, 'insider');
    const msgs: unknown[][] = [];
    for (let i = 0; i < 3000; i++) msgs.push(['', 'snd', `slow${i}#p`, 'x']);
    await relay(fake, 'insider', msgs);
    expect(net(n).peerCount).toBe(MAX_CONNECTING_PEERS + 1);

    // A monitor on one more node fires at once, before any deadline.
    const reason = await within(
      firstValueFrom(n.mon$('late#x')),
      1000,
      'the monitor of a node beyond the cap',
    );
    expect(reason).toEqual(['transport_error', 'late', TOO_MANY_CONNECTING]);
    expect(net(n).peerCount).toBe(MAX_CONNECTING_PEERS + 1);
    expect(n.logs.some((l) => l.text.startsWith('connect refused:'))).toBe(true);
    expect(n.logs.filter((l) => l.text.startsWith('connect refused:')).length).toBeLessThan(10);

    // The deadlines end every connect; nothing is left but the insider.
    expect(await within(firstValueFrom(n.mon$('slow0#x')), 10_000, 'the connect deadline')).toEqual([
      'transport_error',
      'slow0',
      'connect timeout',
    ]);
    await until(() => net(n).peerCount === 1, WAIT_MS, 'the peer table to shrink to the insider');
  }, 30_000);

  it('a monitored node that failed is forgotten once its monitors fired; node_is_up still knows nodes that were up', async () => {
    const n = await victim('forget-victim');
    expect(await within(firstValueFrom(n.mon$('nowhere#x')), WAIT_MS, 'no known address')).toEqual([
      'transport_error',
      'nowhere',
      'no known address',
    ]);
    expect(net(n).peerCount).toBe(0);
    const fake = await insider(n, 'was-up');
    await until(() => n.nodeIsUp('was-up') === true, WAIT_MS, 'the insider to be up');
    fake.destroy();
    await until(() => n.nodeIsUp('was-up') === false, WAIT_MS, 'the insider to be down');
    expect(net(n).peerCount).toBe(0);
    expect(n.nodeIsUp('nowhere')).toBeUndefined();
  });
});
