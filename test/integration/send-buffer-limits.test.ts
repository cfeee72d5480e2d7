/**
 * Peers that stop reading while our node keeps sending to them (loopback TCP, fake peers):
 * `max_send_buffer_bytes` bounds what one connection may hold unsent, and
 * `max_total_send_buffer_bytes` what all of them may hold together. Past either, a connection
 * with a backlog is dropped with a `transport_error` saying why; the node and its other
 * connections carry on.
 */
import { filter, firstValueFrom, type Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/index.js';
import { FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode, turn } from '../helpers/node.js';

const MiB = 1024 * 1024;
const CHUNK = 'z'.repeat(64 * 1024);

const subs: Subscription[] = [];
afterEach(() => {
  for (const s of subs.splice(0)) s.unsubscribe();
});

async function flooder(limits: Record<string, number>) {
  const n = testNode({ nodeid: 'flooder', secret: SECRET, binds: ['127.0.0.1:0'], ...limits });
  const downs: Extract<NodeStatus, { type: 'down' }>[] = [];
  subs.push(n.nodes$.subscribe((e) => e.type === 'down' && downs.push(e)));
  await within(n.ready, WAIT_MS, 'the node to listen');
  return Object.assign(n, { downs });
}

/** A fake peer that completes the handshake, is up on our node, then never reads again. */
async function stalledPeer(n: Awaited<ReturnType<typeof flooder>>, id: string): Promise<FakePeer> {
  const up = firstValueFrom(n.nodes$.pipe(filter((e) => e.type === 'up' && e.node === id)));
  const peer = await FakePeer.dial(n.binds[0]!);
  expect((await peer.handshake({ nodeId: id, secret: SECRET })).tokenOk).toBe(true);
  await up;
  peer.raw.pause();
  return peer;
}

/** Sends 64 KiB messages to `targets` in turn, a turn of the event loop apart, until a node
 * goes down; fails after `maxBytes` without one. */
async function floodUntilDown(n: Awaited<ReturnType<typeof flooder>>, targets: string[], maxBytes: number) {
  let sent = 0;
  while (n.downs.length === 0) {
    if (sent > maxBytes) throw new Error(`no connection dropped after ${sent} bytes`);
    for (let i = 0; i < 4; i++)
      for (const t of targets) {
        n.snd(`${t}#nowhere`, CHUNK);
        sent += CHUNK.length;
      }
    await turn();
  }
  return sent;
}

/** Our node still completes a handshake and a request with a new peer. */
async function stillServes(n: Awaited<ReturnType<typeof flooder>>): Promise<void> {
  const good = await FakePeer.dial(n.binds[0]!);
  expect((await good.handshake({ nodeId: 'good', secret: SECRET })).tokenOk).toBe(true);
  good.send(['', 'time', 'good#t']);
  expect(await good.next()).toEqual(['t', expect.any(Number)]);
  good.destroy();
}

describe('send buffer limits', () => {
  it('max_send_buffer_bytes: a peer that never reads is dropped once it holds more', async () => {
    const n = await flooder({ max_send_buffer_bytes: 2 * MiB });
    const peer = await stalledPeer(n, 'stalled');
    const sent = await floodUntilDown(n, ['stalled'], 512 * MiB);
    expect(sent).toBeGreaterThan(2 * MiB);
    expect(n.downs).toEqual([
      {
        type: 'down',
        node: 'stalled',
        reason: [
          'transport_error',
          'stalled',
          expect.stringMatching(/^send buffer overflow \(\d+ bytes unsent, peer not reading\)$/),
        ],
      },
    ]);
    // Reading again, the peer finds the connection closed.
    peer.raw.resume();
    await peer.waitClosed();
    await stillServes(n);
  });

  it('max_total_send_buffer_bytes: one of two never-reading peers is dropped; the other stays', async () => {
    // Each connection alone may hold 64 MiB; together they may hold 4 MiB.
    const n = await flooder({ max_send_buffer_bytes: 64 * MiB, max_total_send_buffer_bytes: 4 * MiB });
    const a = await stalledPeer(n, 'stalled-a');
    const b = await stalledPeer(n, 'stalled-b');
    await floodUntilDown(n, ['stalled-a', 'stalled-b'], 512 * MiB);
    expect(n.downs).toHaveLength(1);
    const [down] = n.downs;
    expect(down!.reason).toEqual([
      'transport_error',
      down!.node,
      expect.stringMatching(
        /^send buffer overflow \(\d+ bytes unsent, all connections over their total limit\)$/,
      ),
    ]);
    // The dropped one held at least 1/64 of the per-connection limit; the survivor is still up
    // and what stays unsent is back under the total limit.
    const survivor = down!.node === 'stalled-a' ? 'stalled-b' : 'stalled-a';
    expect(n.upNodes()).toEqual([survivor]);
    const unsent = n.connectionStats().reduce((sum, s) => sum + s.unsentBytes, 0);
    expect(unsent).toBeLessThanOrEqual(4 * MiB);
    const dropped = down!.node === 'stalled-a' ? a : b;
    dropped.raw.resume();
    await dropped.waitClosed();
    await stillServes(n);
    // The survivor reads again and gets every message sent to it, in order, then a fresh one.
    n.snd(`${survivor}#last`, 'end');
    const peer = down!.node === 'stalled-a' ? b : a;
    peer.raw.resume();
    let frames = 0;
    for (;;) {
      const m = await peer.next(20_000);
      if (m[0] === 'last') {
        expect(m).toEqual(['last', 'end']);
        break;
      }
      expect(m).toEqual(['nowhere', CHUNK]);
      frames++;
    }
    expect(frames).toBeGreaterThan(0);
    peer.destroy();
  }, 60_000);
});
