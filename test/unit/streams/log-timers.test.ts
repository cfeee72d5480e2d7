/**
 * The timers of logging on a virtual clock: the LogLimiter's summary line after its interval,
 * record times from the clock, a log sink's token refill and its "records dropped" notice, and
 * the delay before a catcher asks a node again after its catcher port died.
 */
import { Observable, Subject, type Subscriber } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { VirtualClock } from '../../../src/streams/clock.js';
import type { DbChange } from '../../../src/streams/db/family-watch.js';
import { LEVEL, LogLimiter } from '../../../src/streams/log/log.js';
import {
  LOG_CATCHER_CONTEXT,
  LOG_CONNECT,
  LogHub,
  logCatcherCounts,
  RECONNECT_MS,
  SINK_BURST,
  SINK_RATE,
} from '../../../src/streams/log/log-catcher.js';
import type { ConnectionStats, Network, NodeStatus } from '../../../src/streams/net/network.js';
import { Node } from '../../../src/streams/node.js';
import { within } from '../../helpers/fake-peer.js';

/** A network with no connections that keeps what the node sends. */
class RecordingNetwork implements Network {
  readonly sent: { node: string; msg: unknown[] }[] = [];
  readonly status = new Subject<NodeStatus>();
  readonly nodes$ = this.status.asObservable();
  readonly binds: readonly string[] = [];
  send(node: string, msg: unknown[]): void {
    this.sent.push({ node, msg });
  }
  sendIfUp(): void {}
  monitor(): () => void {
    return () => {};
  }
  upNodes(): string[] {
    return [];
  }
  nodeIsUp(): boolean | undefined {
    return undefined;
  }
  remoteKilled(): void {}
  stats(): ConnectionStats[] {
    return [];
  }
  backlog$(): Observable<number> {
    return new Observable((sub: Subscriber<number>) => sub.next(0));
  }
  async start(): Promise<void> {}
  async close(): Promise<void> {
    this.status.complete();
  }
}

const open: Node[] = [];

function virtualNode(clock: VirtualClock, net = new RecordingNetwork()): Node {
  const node = new Node({
    clock,
    nodeId: 'vt',
    randomisedId: false,
    runiq: 'r',
    secure: false,
    logger: { log() {} },
    network: () => net,
  });
  open.push(node);
  return node;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => within(n.close(), 5000, 'the node to close')));
  vi.restoreAllMocks();
});

describe('LogLimiter on the clock', () => {
  it('writes the summary of suppressed lines when its interval ends, not before', () => {
    const clock = new VirtualClock();
    const out: string[] = [];
    const limiter = new LogLimiter(() => ({ log: (_l, t) => out.push(t) }), 2, 60_000, clock);
    for (let i = 0; i < 5; i++) limiter.log('refusals from x', LEVEL.warn, `refused ${i}`);
    expect(out).toEqual(['refused 0', 'refused 1']);
    expect(clock.size).toBe(1);
    clock.advance(59_999);
    expect(out).toHaveLength(2);
    clock.advance(1);
    expect(out[2]).toBe('refusals from x: 3 more line(s) like the above suppressed (at most 2 per 60 s)');
    expect(clock.size).toBe(0);
    // A new interval starts with the next line; close() flushes and stops the timer.
    limiter.log('refusals from x', LEVEL.warn, 'again');
    expect(clock.size).toBe(1);
    limiter.close();
    expect(clock.size).toBe(0);
  });
});

describe('log records', () => {
  it('are stamped with the clock’s wall time', () => {
    const clock = new VirtualClock(0, Date.UTC(2030, 0, 1));
    const hub = new LogHub({ log() {} }, clock);
    const times: number[] = [];
    hub.attach((rec) => times.push(rec.time));
    clock.advance(1500);
    hub.log(LEVEL.warn, 'x');
    expect(times).toEqual([Date.UTC(2030, 0, 1) / 1000 + 1.5]);
  });
});

describe('a log sink', () => {
  it('refills its tokens with the clock and reports drops once there is room again', async () => {
    const clock = new VirtualClock();
    const node = virtualNode(clock);
    const got: unknown[][] = [];
    const catcher = node.port((...m: unknown[]) => got.push(m));
    node.sndToFunc(node.id, LOG_CONNECT, 0, catcher, LEVEL.trace);
    await clock.run(0);
    expect(logCatcherCounts(node).sinks).toBe(1);
    await clock.run(0);
    const base = got.length; // the sink's own "starting to propagate" record
    expect(base).toBe(1);

    // A burst: SINK_BURST tokens (one already spent), the rest dropped.
    for (let i = 0; i < SINK_BURST + 500; i++) node.log(LEVEL.info, `r${i}`);
    await clock.run(0);
    expect(got.length - base).toBe(SINK_BURST - 1);

    // Half of the refill time later the next record finds 1000 tokens: the notice and 999 records.
    const half = 50;
    expect((half * SINK_RATE) / 1000).toBe(1000);
    await clock.run(half);
    const before = got.length;
    for (let i = 0; i < 1500; i++) node.log(LEVEL.info, `s${i}`);
    await clock.run(0);
    const sent = got.slice(before);
    expect(sent).toHaveLength(1000);
    expect(sent[0]).toEqual([expect.any(Number), LOG_CATCHER_CONTEXT, LEVEL.warn, '501 records dropped']);

    // The 501 dropped now are reported by the notice timer armed at the first drop (t = 0), at
    // t = 100 ms, with no further record needed.
    const quiet = got.length;
    await clock.run(49);
    expect(got.length).toBe(quiet);
    await clock.run(1);
    expect(got.slice(quiet)).toEqual([
      [expect.any(Number), LOG_CATCHER_CONTEXT, LEVEL.warn, '501 records dropped'],
    ]);
  });
});

describe('a log catcher', () => {
  it('asks a node again RECONNECT_MS after its last request when its catcher port dies', async () => {
    const clock = new VirtualClock();
    const net = new RecordingNetwork();
    const node = virtualNode(clock, net);
    const listed = new Subject<DbChange>();
    vi.spyOn(node.db, 'mon$').mockReturnValue(listed.asObservable());
    const sub = node.logs$(LEVEL.warn).subscribe();
    const requests = () =>
      net.sent.filter((s) => s.node === 'other' && JSON.stringify(s.msg).includes(LOG_CONNECT));

    const entries = { other: ['127.0.0.1:1'] };
    listed.next({
      entries,
      added: ['other'],
      changed: [],
      deleted: [],
      get: (k: string) => (entries as Record<string, unknown>)[k],
    });
    await clock.run(0);
    expect(requests()).toHaveLength(1);

    // The catcher port dies 400 ms later (the connection went down): asked again at 1000 ms.
    await clock.run(400);
    net.status.next({ type: 'down', node: 'other', reason: ['transport_error', 'other', 'gone'] });
    await clock.run(0);
    expect(requests()).toHaveLength(1);
    await clock.run(RECONNECT_MS - 400 - 1);
    expect(requests()).toHaveLength(1);
    await clock.run(1);
    expect(requests()).toHaveLength(2);

    sub.unsubscribe();
    expect(logCatcherCounts(node).catcherPorts).toBe(0);
  });
});
