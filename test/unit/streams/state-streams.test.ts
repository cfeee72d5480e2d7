/**
 * The node's state streams (README "Observable contracts"): `nodes$` starts with the nodes up
 * now, then the live events, with nothing lost or seen twice in between; the node stream itself
 * is hot (no replay); `connectionStats$` is cold and polls on the rxjs scheduler; `db.mon$`
 * gives a late subscriber a full snapshot; `db.family$` asks again for each subscriber.
 *
 * Timing is checked in virtual time (TestScheduler) against a scripted network layer.
 */
import { firstValueFrom, Observable, Subject, type Subscriber, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { type Clock, realClock } from '../../../src/streams/clock.js';
import type { DbChange } from '../../../src/streams/db/family-watch.js';
import type { ConnectionStats, Network, NodeStatus } from '../../../src/streams/net/network.js';
import { Node, type NodeEvent } from '../../../src/streams/node.js';
import { within as withinMs } from '../../helpers/fake-peer.js';
import { deferred, testNode } from '../../helpers/node.js';

/** `promise`, or a rejection naming what it waited for after `ms`. */
const within = <T>(p: Promise<T>, what: string, ms = 5000): Promise<T> => withinMs(p, ms, what);

/** A network layer driven by the test: `push` changes the state and emits the event. */
class ScriptedNetwork implements Network {
  readonly up = new Set<string>();
  /** Subscriptions to `nodes$` now open (the node and its database hold two). */
  watchers = 0;
  statsCalls = 0;
  private readonly status = new Subject<NodeStatus>();
  readonly nodes$ = new Observable<NodeStatus>((sub) => {
    this.watchers++;
    const s = this.status.subscribe(sub);
    return () => {
      this.watchers--;
      s.unsubscribe();
    };
  });
  readonly binds: readonly string[] = [];

  push(e: NodeStatus): void {
    if (e.type === 'up') this.up.add(e.node);
    else this.up.delete(e.node);
    this.status.next(e);
  }
  end(): void {
    this.up.clear();
    this.status.complete();
  }
  send(): void {}
  sendIfUp(): void {}
  monitor(): () => void {
    return () => {};
  }
  upNodes(): string[] {
    return [...this.up];
  }
  nodeIsUp(id: string): boolean | undefined {
    return this.up.has(id) ? true : undefined;
  }
  remoteKilled(): void {}
  stats(): ConnectionStats[] {
    this.statsCalls++;
    return [];
  }
  backlog$(): Observable<number> {
    return new Observable((sub: Subscriber<number>) => sub.next(0));
  }
  async start(): Promise<void> {}
  async close(): Promise<void> {
    this.end();
  }
}

function scriptedNode(net: ScriptedNetwork, clock?: Clock): Node {
  return new Node({
    clock,
    nodeId: 'scripted',
    randomisedId: false,
    runiq: 'r',
    secure: true,
    logger: { log() {} },
    network: () => net,
  });
}

const upE = (node: string): NodeStatus => ({ type: 'up', node });
const downE = (node: string): NodeStatus => ({
  type: 'down',
  node,
  reason: ['transport_error', node, 'gone'],
});

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/** A clock whose rxjs scheduler is the test scheduler (the node's interval operators use it). */
function testSchedulerClock(s: TestScheduler): Clock {
  return { ...realClock, now: () => s.now(), scheduler: s };
}

/** Feeds a hot marble stream of node events into the scripted network (and ends it). */
function drive(net: ScriptedNetwork, events: Observable<NodeStatus>): void {
  events.subscribe({ next: (e) => net.push(e), complete: () => net.end() });
}

describe('nodes$', () => {
  const values = { x: upE('x'), y: upE('y'), X: downE('x'), z: upE('z') };

  it('a late subscriber first gets the nodes up now, then live events, then completion', () => {
    scheduler().run(({ hot, expectObservable }) => {
      const net = new ScriptedNetwork();
      const node = scriptedNode(net);
      drive(net, hot('-x-y------X-|', values));
      expectObservable(node.nodes$, '-----^').toBe('-----(xy)-X-|', values);
      // From the start it is the plain event sequence.
      expectObservable(node.nodes$).toBe('-x-y------X-|', values);
    });
  });

  it('unsubscribing stops the events and releases the live subscription', () => {
    scheduler().run(({ hot, expectObservable, flush }) => {
      const net = new ScriptedNetwork();
      const node = scriptedNode(net);
      const base = net.watchers;
      drive(net, hot('-x-y-------z--X--', values));
      expectObservable(node.nodes$, '-----^----!').toBe('-----(xy)--', values);
      flush();
      expect(net.watchers).toBe(base);
    });
  });

  it('the snapshot is delivered synchronously on subscribe', () => {
    const net = new ScriptedNetwork();
    const node = scriptedNode(net);
    net.push(upE('a'));
    net.push(upE('b'));
    net.push(downE('a'));
    const seen: NodeStatus[] = [];
    node.nodes$.subscribe((e) => seen.push(e)).unsubscribe();
    expect(seen).toEqual([upE('b')]);
  });

  it('events caused while the snapshot is delivered follow it: none lost, none twice', () => {
    const net = new ScriptedNetwork();
    const node = scriptedNode(net);
    net.push(upE('x'));
    net.push(upE('y'));
    const seen: NodeStatus[] = [];
    const sub = node.nodes$.subscribe((e) => {
      seen.push(e);
      // The first snapshot event makes x go down and z come up at once.
      if (seen.length === 1) {
        net.push(downE('x'));
        net.push(upE('z'));
      }
    });
    net.push(downE('y'));
    sub.unsubscribe();
    expect(seen).toEqual([upE('x'), upE('y'), downE('x'), upE('z'), downE('y')]);
  });

  it('a subscriber after close gets an empty snapshot and completion', async () => {
    const net = new ScriptedNetwork();
    const node = scriptedNode(net);
    net.push(upE('x'));
    await node.close();
    const all = await within(firstValueFrom(node.nodes$.pipe(toArray())), 'nodes$ to complete after close');
    expect(all).toEqual([]);
  });
});

describe('the node stream', () => {
  it('is hot: a late subscriber gets no replay of ups, only later events', () => {
    scheduler().run(({ hot, expectObservable }) => {
      const net = new ScriptedNetwork();
      const node = scriptedNode(net);
      drive(net, hot('-x-y------X', { x: upE('x'), y: upE('y'), X: downE('x') }));
      expectObservable(node as Observable<NodeEvent>, '-----^').toBe('----------X', { X: downE('x') });
    });
  });
});

describe('connectionStats$', () => {
  it('emits at once for each subscriber (a late one too), then every interval; unsubscribing stops it', () => {
    const sched = scheduler();
    sched.run(({ expectObservable, flush }) => {
      const net = new ScriptedNetwork();
      const node = scriptedNode(net, testSchedulerClock(sched));
      expectObservable(node.connectionStats$(3), '^--------!').toBe('a--a--a--', { a: [] });
      expectObservable(node.connectionStats$(3), '----^----!').toBe('----a--a--', { a: [] });
      flush();
      // 3 + 2 polls, none after unsubscribing.
      expect(net.statsCalls).toBe(5);
    });
  });

  it('completes when the node closes; after close it completes at once without a value', async () => {
    const net = new ScriptedNetwork();
    const node = scriptedNode(net);
    const seen: ConnectionStats[][] = [];
    let completed = false;
    node
      .connectionStats$(60_000)
      .subscribe({ next: (s) => seen.push(s), complete: () => (completed = true) });
    expect(seen).toEqual([[]]);
    await node.close();
    expect(completed).toBe(true);
    const after: ConnectionStats[][] = [];
    let afterDone = false;
    node.connectionStats$().subscribe({ next: (s) => after.push(s), complete: () => (afterDone = true) });
    expect([after, afterDone]).toEqual([[], true]);
  });
});

describe('db streams', () => {
  it('db.mon$: a late subscriber gets the whole family as a snapshot (next turn), then the same deltas', async () => {
    const g = testNode({ nodeid: 'st-g', services: ['AnyEvent::MP::Global::'] });
    await within(g.ready, 'the global node to start');
    const early: DbChange[] = [];
    const late: DbChange[] = [];
    const s1 = g.db.mon$('st').subscribe((c) => early.push(c));
    g.db.set('st', 'a', 1);
    const snapshot = deferred();
    const s2 = g.db.mon$('st').subscribe((c) => {
      late.push(c);
      if (late.length === 1) snapshot.resolve();
    });
    // A change before the late snapshot is delivered is part of it, not a delta of its own.
    g.db.set('st', 'b', 2);
    await within(snapshot.promise, 'the late db.mon$ snapshot');
    g.db.set('st', 'c', 3);
    s2.unsubscribe();
    g.db.set('st', 'd', 4);
    s1.unsubscribe();
    expect(early.map((c) => c.added)).toEqual([[], ['a'], ['b'], ['c'], ['d']]);
    expect(late.map((c) => [c.added, { ...c.entries }])).toEqual([
      [['a', 'b'], { a: 1, b: 2 }],
      [['c'], { a: 1, b: 2, c: 3 }],
    ]);
  });

  it('db.family$ is cold: each subscription asks again', async () => {
    const g = testNode({ nodeid: 'st-f', services: ['AnyEvent::MP::Global::'] });
    await within(g.ready, 'the global node to start');
    const family = g.db.family$('fam');
    g.db.set('fam', 'a', 1);
    expect(await within(firstValueFrom(family), 'the first family$ answer')).toEqual({ a: 1 });
    g.db.set('fam', 'b', 2);
    expect(await within(firstValueFrom(family), 'the second family$ answer')).toEqual({ a: 1, b: 2 });
  });
});
