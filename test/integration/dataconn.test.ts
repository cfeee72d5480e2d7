/**
 * Data connections between two aemp nodes over loopback (AnyEvent::MP::DataConn): the init
 * function on the other node gets the stream, bytes pass unchanged both ways, backpressure is
 * the socket's own, failures error with the DataConn kill reason, unsubscribing closes both
 * ends, and a data connection is never the node link.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { KilledError, type Node } from '../../src/index.js';
import { expectDataConn, open, readAll } from '../helpers/dataconn.js';
import { FakePeer, SECRET, within as withinMs } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

const WAIT = 5000;

/** `p`, or a rejection naming `what` after `ms`. */
const within = <T>(p: Promise<T>, what: string, ms = WAIT): Promise<T> => withinMs(p, ms, what);

/** Node `b` listening, node `a` knowing it as its seed, connected. */
async function pair(bOpts = {}, aOpts = {}) {
  const b = testNode({ nodeid: 'dc-b', secret: SECRET, binds: ['127.0.0.1:0'], ...bOpts });
  await within(b.ready, 'b ready');
  const a = testNode({
    nodeid: 'dc-a',
    secret: SECRET,
    binds: ['127.0.0.1:0'],
    seeds: [b.binds[0]!],
    ...aOpts,
  });
  const up = firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'dc-b')));
  await within(a.ready, 'a ready');
  await within(up, 'a connected to b');
  return { a, b };
}

function initReceiver(node: Node, name: string) {
  const calls = deferred<{ args: unknown[]; stream: Duplex }>();
  node.register(name, (...args: unknown[]) => {
    calls.resolve({ args: args.slice(0, -1), stream: args[args.length - 1] as Duplex });
  });
  return calls.promise;
}

describe('data connections between aemp nodes', () => {
  it('the init function gets the stream with its init data; bytes pass intact both ways', async () => {
    const { a, b } = await pair();
    const remote = initReceiver(b, 'Test::recv');
    const { stream, sub } = open(
      a.dataConn$('dc-b', { initFunc: 'Test::recv', initData: ['x', 42], timeout: 5 }),
    );
    const local = await within(stream, 'the local stream');
    const { args, stream: far } = await within(remote, 'the init function call');
    expect(args).toEqual(['x', 42]);
    const there = randomBytes(300_000);
    const back = randomBytes(200_000);
    const gotThere = readAll(far);
    const gotBack = readAll(local);
    local.end(there);
    far.end(back);
    expect((await within(gotThere, 'bytes a→b')).equals(there)).toBe(true);
    expect((await within(gotBack, 'bytes b→a')).equals(back)).toBe(true);
    sub.unsubscribe();
  });

  it('works the other way round, and to the own node', async () => {
    const { a, b } = await pair();
    const remote = initReceiver(a, 'Test::recv');
    const { stream, sub } = open(b.dataConn$('dc-a#some-port', { initFunc: 'Test::recv', timeout: 5 }));
    const local = await within(stream, 'the stream b→a');
    const { stream: far } = await within(remote, 'the init call on a');
    const got = readAll(far);
    local.end(Buffer.from([0, 255, 128, 10]));
    expect([...(await within(got, 'bytes b→a'))]).toEqual([0, 255, 128, 10]);
    sub.unsubscribe();

    const self = initReceiver(b, 'Test::self');
    const s2 = open(b.dataConn$('dc-b', { initFunc: 'Test::self', timeout: 5 }));
    const mine = await within(s2.stream, 'the stream to the own node');
    const { stream: other } = await within(self, 'the own init call');
    const got2 = readAll(mine);
    other.end('hello self');
    expect((await within(got2, 'bytes to self')).toString()).toBe('hello self');
    s2.sub.unsubscribe();
  });

  it('unsubscribing closes both ends', async () => {
    const { a, b } = await pair();
    const remote = initReceiver(b, 'Test::recv');
    const { stream, sub } = open(a.dataConn$('dc-b', { initFunc: 'Test::recv', timeout: 5 }));
    const local = await within(stream, 'the local stream');
    const { stream: far } = await within(remote, 'the init call');
    const farClosed = new Promise<void>((r) => far.once('close', () => r()));
    far.resume();
    sub.unsubscribe();
    expect(local.destroyed).toBe(true);
    await within(farClosed, 'the far end to close');
  });

  it('closing the nodes ends their data connections (nothing is left holding the process)', async () => {
    const { a, b } = await pair();
    const remote = initReceiver(b, 'Test::recv');
    const { stream, sub } = open(a.dataConn$('dc-b', { initFunc: 'Test::recv', timeout: 5 }));
    const local = await within(stream, 'the local stream');
    const { stream: far } = await within(remote, 'the init call');
    const ended = new Promise<void>((r) => sub.add(() => r()));
    const localClosed = new Promise<void>((r) => local.once('close', () => r()));
    const farClosed = new Promise<void>((r) => far.once('close', () => r()));
    expect([a.dataConns.open, b.dataConns.open]).toEqual([1, 1]);
    await within(b.close(), 'b to close');
    await within(farClosed, 'the far end to close with its node');
    await within(a.close(), 'a to close');
    await within(localClosed, 'the local end to close with its node');
    await within(ended, 'the dataConn$ subscription to end');
    expect([a.dataConns.open, b.dataConns.open]).toEqual([0, 0]);
  });

  it('backpressure: a reader that does not read stops the writer (write() → false) without growing memory', async () => {
    const { a, b } = await pair();
    const remote = initReceiver(b, 'Test::recv');
    const { stream, sub } = open(a.dataConn$('dc-b', { initFunc: 'Test::recv', timeout: 5 }));
    const local = await within(stream, 'the local stream');
    const { stream: far } = await within(remote, 'the init call');
    far.pause();
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    // Write until the stream says stop; the kernel buffers fill, then the writable buffer.
    const stopped = new Promise<void>((resolve) => {
      const pump = () => {
        while (local.write(chunk)) {
          written += chunk.length;
          if (written > 256 * 1024 * 1024) throw new Error('no backpressure after 256 MiB');
        }
        resolve();
      };
      setImmediate(pump);
    });
    await within(stopped, 'write() to return false');
    // What waits in our process is bounded by the high-water mark plus one chunk.
    expect(local.writableLength).toBeLessThanOrEqual(local.writableHighWaterMark + chunk.length);
    // The reader resumes: the writer drains.
    const drained = new Promise<void>((r) => local.once('drain', () => r()));
    far.resume();
    await within(drained, 'drain after the reader resumed');
    sub.unsubscribe();
  });

  it('times out with the DataConn reason when the other node never sees the connection', async () => {
    const { a } = await pair();
    // The target is reachable for messages but no listener address is known for a made-up node.
    const { error, sub } = open(a.dataConn$('dc-nobody', { initFunc: 'Test::recv', timeout: 0.3 }));
    const err = await within(error, 'the timeout error');
    expect(err).toBeInstanceOf(KilledError);
    const reason = (err as KilledError).reason;
    expect(reason[0]).toBe('AnyEvent::MP::DataConn');
    sub.unsubscribe();
  });

  it('an unknown init function ends the stream and kills the caller with the reason', async () => {
    const { a } = await pair();
    const ended = deferred<unknown>();
    const sub = a
      .dataConn$('dc-b', { initFunc: 'No::Such::func', timeout: 5 })
      .subscribe({ next: (s) => s.resume(), error: ended.resolve, complete: () => ended.resolve('closed') });
    const outcome = await within(ended.promise, 'the data connection to end');
    // The kill (node link) and the close (data connection) race: either ends the observable.
    if (outcome !== 'closed') {
      expect(outcome).toBeInstanceOf(KilledError);
      expect((outcome as KilledError).reason).toEqual([
        'AnyEvent::MP::DataConn',
        "unable to resolve function 'No::Such::func'",
      ]);
    }
    sub.unsubscribe();
  });

  it('is never the node link: no up/down events, the message connection stays', async () => {
    const { a, b } = await pair();
    const events: unknown[] = [];
    const watch = [
      a.nodes$.subscribe((e) => events.push(['a', e])),
      b.nodes$.subscribe((e) => events.push(['b', e])),
    ];
    events.length = 0;
    const remote = initReceiver(b, 'Test::recv');
    const { stream, sub } = open(a.dataConn$('dc-b', { initFunc: 'Test::recv', timeout: 5 }));
    const local = await within(stream, 'the stream');
    const { stream: far } = await within(remote, 'the init call');
    const closed = new Promise<void>((r) => far.once('close', () => r()));
    far.resume();
    local.end('x');
    await within(closed, 'the data connection to close');
    sub.unsubscribe();
    // Messages still flow on the node link.
    const reply = await within(firstValueFrom(a.cal$('dc-b', 'time')), 'a time reply over the node link');
    expect(reply.length).toBe(1);
    expect(events).toEqual([]);
    for (const w of watch) w.unsubscribe();
    expect(a.nodeIsUp('dc-b')).toBe(true);
  });

  it('a dialler with the wrong secret is refused and gets no auth line', async () => {
    const { b } = await pair();
    expectDataConn(b, 'dc-a', 'k@dc-a');
    const fake = await FakePeer.dial(b.binds[0]!);
    const hs = await within(
      fake.handshake({ nodeId: 'dc-a', secret: 'wrong', proto: 'aemp-dataconn', role: 'd' }),
      'the refused handshake',
    );
    expect(hs.authWithheld).toBe(true);
    expect(b.dataConns.pending).toBe(1);
  });

  it('an unknown dataconn_id, or one expected from another node, is refused before our auth line', async () => {
    const { b } = await pair();
    const fake = await FakePeer.dial(b.binds[0]!);
    const hs = await within(
      fake.handshake({
        nodeId: 'dc-x',
        secret: SECRET,
        line1: `aemp-dataconn;1;dc-x;hmac_sha3_512;cbor;role=d;dataconn_id=zz@dc-x`,
      }),
      'the refused handshake',
    );
    expect(hs.authWithheld).toBe(true);
    expectDataConn(b, 'dc-a', 'k@dc-a');
    const other = await FakePeer.dial(b.binds[0]!);
    const hs2 = await within(
      other.handshake({
        nodeId: 'dc-x',
        secret: SECRET,
        line1: `aemp-dataconn;1;dc-x;hmac_sha3_512;cbor;role=d;dataconn_id=k@dc-a`,
      }),
      'the refused handshake (other node)',
    );
    expect(hs2.authWithheld).toBe(true);
    expect(b.dataConns.pending).toBe(1);
  });
});
