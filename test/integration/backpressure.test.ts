/**
 * Backpressure made visible: `snd` never blocks, but `node.backlog$(peer)` shows the bytes the
 * peer has not taken yet and `node.drain$(peer, maxBytes)` waits for them to fall. The peer is a
 * raw socket that completes the handshake and then stops reading (loopback TCP).
 */
import { filter, firstValueFrom, type Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { FakePeer, SECRET, within as withinMs } from '../helpers/fake-peer.js';
import { testNode, turn } from '../helpers/node.js';

const MiB = 1024 * 1024;
const CHUNK = 'z'.repeat(64 * 1024);

const subs: Subscription[] = [];
afterEach(() => {
  for (const s of subs.splice(0)) s.unsubscribe();
});

/** `promise`, or a rejection naming what it waited for after `ms`. */
const within = <T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> => withinMs(p, ms, what);

async function sender() {
  const n = testNode({
    nodeid: 'bp-sender',
    secret: SECRET,
    binds: ['127.0.0.1:0'],
    max_send_buffer_bytes: 256 * MiB,
  });
  await within(n.ready, 'the node to listen');
  return n;
}

/** A fake peer that completes the handshake, is up on `n`, then stops reading. */
async function slowReader(n: Awaited<ReturnType<typeof sender>>, id: string): Promise<FakePeer> {
  const up = within(
    firstValueFrom(n.nodes$.pipe(filter((e) => e.type === 'up' && e.node === id))),
    `${id} to be up`,
  );
  const peer = await within(FakePeer.dial(n.binds[0]!), `a TCP connection for ${id}`);
  expect((await peer.handshake({ nodeId: id, secret: SECRET })).tokenOk).toBe(true);
  await up;
  peer.raw.pause();
  return peer;
}

/** Sends 64 KiB messages to `id`, a turn of the event loop apart, until its backlog passes `bytes`. */
async function fillBacklog(
  n: Awaited<ReturnType<typeof sender>>,
  id: string,
  bytes: number,
): Promise<number> {
  let backlog = 0;
  subs.push(n.backlog$(id).subscribe((b) => (backlog = b)));
  let sent = 0;
  while (backlog <= bytes) {
    if (sent > 256 * MiB) throw new Error(`backlog still ${backlog} after ${sent} bytes`);
    for (let i = 0; i < 4; i++) n.snd(`${id}#nowhere`, CHUNK);
    sent += 4 * CHUNK.length;
    await turn();
  }
  return backlog;
}

describe('backlog$ and drain$', () => {
  it('show a slow reader filling the send buffer and the buffer draining once it reads', async () => {
    const n = await sender();
    const peer = await slowReader(n, 'slow');
    const seen: number[] = [];
    subs.push(n.backlog$('slow').subscribe((b) => seen.push(b)));
    // The current value at once (nothing sent yet).
    expect(seen).toEqual([0]);

    const high = await fillBacklog(n, 'slow', 2 * MiB);
    expect(high).toBeGreaterThan(2 * MiB);
    expect(seen.at(-1)).toBe(high);
    expect(n.connectionStats().find((s) => s.node === 'slow')!.unsentBytes).toBe(high);
    // Values only change, never repeat.
    expect(seen.every((b, i) => i === 0 || b !== seen[i - 1])).toBe(true);

    // drain$ waits while the peer does not read...
    let drained: number | undefined;
    const waiting = firstValueFrom(n.drain$('slow', 64 * 1024)).then((b) => (drained = b));
    await turn();
    expect(drained).toBeUndefined();
    // ...and emits once it reads again, without anything else being sent.
    peer.raw.resume();
    expect(await within(waiting, 'the backlog to fall to 64 KiB')).toBeLessThanOrEqual(64 * 1024);
    await within(firstValueFrom(n.backlog$('slow').pipe(filter((b) => b === 0))), 'an empty send buffer');
    expect(n.upNodes()).toEqual(['slow']);
  }, 60_000);

  it('drain$ emits at once when the backlog is already low, also for a node never connected', async () => {
    const n = await sender();
    expect(await within(firstValueFrom(n.drain$('nobody-here')), 'drain$ of an idle node')).toBe(0);
  });

  it('a connection that goes away leaves no backlog; close emits 0 and completes', async () => {
    const n = await sender();
    const peer = await slowReader(n, 'gone');
    await fillBacklog(n, 'gone', MiB);
    const down = within(
      firstValueFrom(n.nodes$.pipe(filter((e) => e.type === 'down' && e.node === 'gone'))),
      'gone to be down',
    );
    const zero = within(
      firstValueFrom(n.backlog$('gone').pipe(filter((b) => b === 0))),
      'backlog 0 after down',
    );
    peer.destroy();
    await down;
    expect(await zero).toBe(0);

    // A watcher when the node closes: 0 (if not already), then completion.
    const peer2 = await slowReader(n, 'open');
    await fillBacklog(n, 'open', MiB);
    const values: number[] = [];
    const ended = new Promise<void>((resolve) =>
      subs.push(n.backlog$('open').subscribe({ next: (b) => values.push(b), complete: resolve })),
    );
    await within(n.close(), 'close of the node with a full send buffer');
    await within(ended, 'backlog$ to complete on close');
    expect(values.at(-1)).toBe(0);
    // After close: 0 and completion at once.
    const after: number[] = [];
    let done = false;
    n.backlog$('open').subscribe({ next: (b) => after.push(b), complete: () => (done = true) });
    expect([after, done]).toEqual([[0], true]);
    peer2.destroy();
  }, 60_000);
});
