import { config, firstValueFrom, lastValueFrom, TimeoutError as RxTimeoutError, timeout } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { AempError, KilledError } from '../../../src/index.js';
import { VirtualClock } from '../../../src/streams/clock.js';
import { WAIT_MS, within } from '../../helpers/fake-peer.js';
import { deferred, testNode, turn } from '../../helpers/node.js';

/** An offline node on a virtual clock, and the number of timers its clock holds at the start. */
function virtualNode(): { n: ReturnType<typeof testNode>; clock: VirtualClock; base: number } {
  const clock = new VirtualClock();
  const n = testNode({ clock });
  return { n, clock, base: clock.size };
}

describe('timeouts in virtual time', () => {
  it('cal with a timeout calls back without arguments exactly at the deadline, then the reply port is gone', async () => {
    const { n, clock, base } = virtualNode();
    const silent = n.port(() => {});
    const calls: unknown[][] = [];
    const reply = n.cal(silent, 'hello', (...r: unknown[]) => calls.push(r), 2.5);
    await turn();
    expect(clock.size).toBe(base + 1);
    clock.advance(2499);
    expect(calls).toEqual([]);
    expect(n.kernel.hasPort(reply)).toBe(true);
    clock.advance(1);
    expect(calls).toEqual([[]]);
    expect(n.kernel.hasPort(reply)).toBe(false);
    expect(clock.size).toBe(base);
    clock.advance(10_000);
    expect(calls).toEqual([[]]);
  });

  it('a cal reply before the timeout cancels the timer', async () => {
    const { n, clock, base } = virtualNode();
    const server = n.port((x: number, reply: string) => n.snd(reply, x * 2));
    const got = deferred<unknown[]>();
    n.cal(server, 21, (...r: unknown[]) => got.resolve(r), 60);
    expect(await within(got.promise, 2000, 'the reply')).toEqual([42]);
    expect(clock.size).toBe(base);
  });

  it('cal$ under rxjs timeout on the node clock errors at the deadline and removes its reply port', async () => {
    const { n, clock } = virtualNode();
    const silent = n.port(() => {});
    const before = new Set(n.kernel.portIds());
    let err: unknown;
    n.cal$(silent, 'q')
      .pipe(timeout({ first: 5000, scheduler: clock.scheduler }))
      .subscribe({ error: (e: unknown) => (err = e) });
    await turn();
    expect(n.kernel.portCount).toBe(before.size + 1);
    clock.advance(4999);
    expect(err).toBeUndefined();
    clock.advance(1);
    expect(err).toBeInstanceOf(RxTimeoutError);
    expect(new Set(n.kernel.portIds())).toEqual(before);
  });

  it('after fires callbacks and messages at their time, in order', async () => {
    const { n, clock } = virtualNode();
    const seen: string[] = [];
    const p = n.port((...m: unknown[]) => seen.push(`${String(m[0])}@${clock.now()}`));
    n.after(3, () => seen.push(`cb3@${clock.now()}`));
    n.after(1, p, 'msg1');
    n.after(0, () => seen.push(`cb0@${clock.now()}`));
    await clock.run(999);
    expect(seen).toEqual(['cb0@0']);
    await clock.run(1);
    expect(seen).toEqual(['cb0@0', 'msg1@1000']);
    await clock.run(2000);
    expect(seen).toEqual(['cb0@0', 'msg1@1000', 'cb3@3000']);
  });

  it('close() cancels pending after and cal timers', async () => {
    const { n, clock, base } = virtualNode();
    let fired = false;
    n.after(5, () => (fired = true));
    const calls: unknown[][] = [];
    n.cal(
      n.port(() => {}),
      'q',
      (...r: unknown[]) => calls.push(r),
      5,
    );
    expect(clock.size).toBe(base + 2);
    await n.close();
    // The reply port died with the node: the callback got no reply.
    expect(calls).toEqual([[]]);
    expect(clock.size).toBe(0);
    clock.advance(10_000);
    expect(fired).toBe(false);
    expect(calls).toEqual([[]]);
  });

  it("the time request answers the clock's wall time", async () => {
    const clock = new VirtualClock(0, Date.UTC(2030, 0, 1));
    const n = testNode({ clock });
    clock.advance(1500);
    const reply = await within(lastValueFrom(n.cal$(n.id, 'time')), 2000, 'the time reply');
    expect(reply).toEqual([Date.UTC(2030, 0, 1) / 1000 + 1.5]);
  });
});

describe('cal', () => {
  it('appends a reply port, calls back with the reply and kills the reply port', async () => {
    const n = testNode();
    const server = n.port((a: number, b: number, reply: string) => n.snd(reply, a + b, 'sum'));
    const got = deferred<unknown[]>();
    const reply = n.cal(server, 2, 3, (...r: unknown[]) => got.resolve(r), 5);
    expect(n.portIsLocal(reply)).toBe(true);
    expect(await within(got.promise, WAIT_MS, 'the reply')).toEqual([5, 'sum']);
    await turn();
    const after = await within(firstValueFrom(n.mon$(reply)), WAIT_MS, 'the reply port to be gone');
    expect(after[0]).toBe('no_such_port');
  });

  it('with a timeout calls back without arguments when it expires (real time)', async () => {
    const n = testNode();
    const silent = n.port(() => {});
    const got = deferred<unknown[]>();
    const reply = n.cal(silent, 'hello', (...r: unknown[]) => got.resolve(r), 0.02);
    expect(await within(got.promise, WAIT_MS, 'the timeout callback')).toEqual([]);
    await turn();
    expect((await within(firstValueFrom(n.mon$(reply)), WAIT_MS, 'the reply port to be gone'))[0]).toBe(
      'no_such_port',
    );
  });

  it('without a timeout monitors the port and calls back without arguments when it dies', async () => {
    const n = testNode();
    const doomed = n.port(() => n.kil(n.self!, 'nope'));
    const got = deferred<unknown[]>();
    n.cal(doomed, 'q', (...r: unknown[]) => got.resolve(r));
    expect(await within(got.promise, WAIT_MS, 'the callback on the death')).toEqual([]);
  });

  it('requires a callback', () => {
    const n = testNode();
    expect(() => n.cal(n.port(), 'x', 5)).toThrow(/callback/);
  });
});

describe('cal$', () => {
  it('emits one reply then completes', async () => {
    const n = testNode();
    const echo = n.port((...m: unknown[]) => n.snd(m[m.length - 1] as string, ...m.slice(0, -1)));
    expect(await within(lastValueFrom(n.cal$(echo, 'x', 1)), WAIT_MS, 'the cal$ reply')).toEqual(['x', 1]);
  });

  it('errors with KilledError when the port dies first', async () => {
    const n = testNode();
    const dies = n.port(() => {
      throw new Error('bad request');
    });
    const err = (await within(
      firstValueFrom(n.cal$(dies, 'q')),
      WAIT_MS,
      'cal$ of a dying port to fail',
    ).catch((e: unknown) => e)) as KilledError;
    expect(err.reason).toEqual(['die', 'bad request']);
  });

  it('errors on a deadline and kills its reply port (real time)', async () => {
    const n = testNode();
    const silent = n.port(() => {});
    const before = new Set(n.kernel.portIds());
    const err = await within(
      firstValueFrom(n.cal$(silent, 'q').pipe(timeout(20))),
      WAIT_MS,
      'cal$ past its deadline to fail',
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RxTimeoutError);
    await turn();
    expect(new Set(n.kernel.portIds())).toEqual(before);
  });
});

describe('cal$ with a plain observer', () => {
  it('unsubscribing before the reply removes the reply port; a late reply is dropped', async () => {
    const n = testNode();
    let replyTo = '';
    const server = n.port((reply: string) => {
      replyTo = reply;
    });
    const got: unknown[] = [];
    const s = n.cal$(server).subscribe((r) => got.push(r));
    await turn();
    expect(n.kernel.hasPort(replyTo)).toBe(true);
    s.unsubscribe();
    expect(s.closed).toBe(true);
    expect(n.kernel.hasPort(replyTo)).toBe(false);
    n.snd(replyTo, 'late');
    await turn();
    expect(got).toEqual([]);
  });

  it('closes its subscription after the reply and runs teardowns added to it', async () => {
    const n = testNode();
    const echo = n.port((reply: string) => n.snd(reply, 'ok'));
    const done = deferred<unknown[]>();
    const s = n.cal$(echo).subscribe({ next: (r) => done.resolve(r) });
    let tornDown = false;
    s.add(() => (tornDown = true));
    expect(await within(done.promise, 2000, 'the reply')).toEqual(['ok']);
    expect(s.closed).toBe(true);
    expect(tornDown).toBe(true);
  });

  it('a throwing next callback or a missing error callback is reported as rxjs reports it, never thrown at the node', async () => {
    const n = testNode();
    const reported = deferred<unknown>();
    const errors: unknown[] = [];
    const previous = config.onUnhandledError;
    config.onUnhandledError = (err) => {
      errors.push(err);
      if (errors.length === 2) reported.resolve(errors);
    };
    try {
      const echo = n.port((reply: string) => n.snd(reply, 'ok'));
      let completed = false;
      n.cal$(echo).subscribe({
        next: () => {
          throw new Error('next threw');
        },
        complete: () => (completed = true),
      });
      const dies = n.port(() => {
        throw new Error('bad request');
      });
      n.cal$(dies).subscribe(() => {});
      await within(reported.promise, 2000, 'two reported errors');
      expect(completed).toBe(true);
      expect((errors.find((e) => (e as Error).message === 'next threw') as Error).message).toBe('next threw');
      const killed = errors.find(
        (e) => e !== errors.find((x) => (x as Error).message === 'next threw'),
      ) as KilledError;
      expect([killed.port, killed.reason]).toEqual([dies, ['die', 'bad request']]);
    } finally {
      config.onUnhandledError = previous;
    }
  });

  it('on a closed node errors at once with ERR_NODE_CLOSED', async () => {
    const n = testNode();
    await n.close();
    let err: unknown;
    const s = n.cal$(`${n.id}#x`).subscribe({ error: (e: unknown) => (err = e) });
    expect((err as AempError).code).toBe('ERR_NODE_CLOSED');
    expect(s.closed).toBe(true);
  });
});

describe('call', () => {
  it('resolves with the reply; the reply port is gone by the time the caller runs', async () => {
    const n = testNode();
    const server = n.port((a: number, b: number, reply: string) => n.snd(reply, a + b, 'sum'));
    const before = n.kernel.portCount;
    let replyPort = '';
    const spy = n.port((...m: unknown[]) => {
      replyPort = m[m.length - 1] as string;
      n.snd(server, ...m);
    });
    const reply = await within(n.call(spy, [2, 3]), 2000, 'the reply');
    expect(reply).toEqual([5, 'sum']);
    expect(replyPort.startsWith(`${n.id}#`)).toBe(true);
    expect(n.kernel.hasPort(replyPort)).toBe(false);
    expect(n.kernel.portCount).toBe(before + 1);
  });

  it('rejects with KilledError when the called port dies first', async () => {
    const n = testNode();
    const dies = n.port(() => {
      throw new Error('bad request');
    });
    const err = (await within(
      n.call(dies, ['q']).catch((e: unknown) => e),
      2000,
      'the rejection',
    )) as KilledError;
    expect(err.port).toBe(dies);
    expect(err.reason).toEqual(['die', 'bad request']);
  });

  it('rejects with no_such_port for a local port that does not exist', async () => {
    const n = testNode();
    const err = (await within(
      n.call(`${n.id}#nope`).catch((e: unknown) => e),
      2000,
      'the rejection',
    )) as KilledError;
    expect(err.reason[0]).toBe('no_such_port');
    expect(n.kernel.portCount).toBe(0);
  });

  it('rejects with TimeoutError at the timeout in virtual time; a late reply is dropped', async () => {
    const { n, clock, base } = virtualNode();
    let replyTo = '';
    const slow = n.port((reply: string) => {
      replyTo = reply;
    });
    let outcome: unknown;
    n.call(slow, [], { timeout: 1.5 }).then(
      (v) => (outcome = v),
      (e: unknown) => (outcome = e),
    );
    await turn();
    expect(n.kernel.hasPort(replyTo)).toBe(true);
    await clock.run(1499);
    expect(outcome).toBeUndefined();
    await clock.run(1);
    expect(outcome).toBeInstanceOf(RxTimeoutError);
    expect(n.kernel.hasPort(replyTo)).toBe(false);
    expect(clock.size).toBe(base);
    expect((await within(firstValueFrom(n.mon$(replyTo)), 2000, 'the monitor'))[0]).toBe('no_such_port');
  });

  it('rejects with ERR_NODE_CLOSED when the node is closed or closes before the reply', async () => {
    const n = testNode();
    const silent = n.port(() => {});
    const pending = n.call(silent, ['q']).catch((e: unknown) => e);
    await turn();
    await n.close();
    expect(((await within(pending, 2000, 'the rejection')) as AempError).code).toBe('ERR_NODE_CLOSED');
    const after = await within(
      n.call(silent).catch((e: unknown) => e),
      2000,
      'the rejection after close',
    );
    expect((after as AempError).code).toBe('ERR_NODE_CLOSED');
  });

  it('takes the message as an array and the timeout as seconds, and says so otherwise', () => {
    const n = testNode();
    const p = n.port(() => {});
    expect(() => n.call(p, 'add' as unknown as unknown[])).toThrow(/message is an array/);
    for (const timeout of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number])
      expect(() => n.call(p, [], { timeout }), String(timeout)).toThrow(/timeout is a number of seconds/);
    expect(n.kernel.portCount).toBe(1);
  });

  it('many calls in flight to one port share one monitor, gone after the last reply', async () => {
    const n = testNode();
    const held: string[] = [];
    const server = n.port((reply: string) => held.push(reply));
    const calls = Array.from({ length: 50 }, () => n.call(server));
    await turn();
    expect(held).toHaveLength(50);
    expect(n.kernel.monitorCount(server)).toBe(1);
    for (const [i, r] of held.entries()) n.snd(r, i);
    const replies = await within(Promise.all(calls), 2000, 'fifty replies');
    expect(replies).toEqual(held.map((_, i) => [i]));
    await turn();
    expect(n.kernel.monitorCount(server)).toBe(0);
    expect(n.kernel.callWatches.size).toBe(0);
  });

  it('its reply port is a real port: it can be monitored and killed, which ends the call', async () => {
    const n = testNode();
    let replyTo = '';
    const server = n.port((reply: string) => {
      replyTo = reply;
    });
    const pending = n.call(server).catch((e: unknown) => e);
    await turn();
    const watched = firstValueFrom(n.mon$(replyTo));
    n.kil(replyTo, 'stop');
    const err = (await within(pending, 2000, 'the rejection')) as KilledError;
    expect(err.port).toBe(replyTo);
    expect(err.reason).toEqual(['stop']);
    expect(await within(watched, 2000, 'the monitor')).toEqual(['stop']);
    expect(n.kernel.hasPort(replyTo)).toBe(false);
  });

  it('a monitor on the reply port fires with a normal kill when the reply ends the call', async () => {
    const n = testNode();
    let replyTo = '';
    const server = n.port((reply: string) => {
      replyTo = reply;
    });
    const pending = n.call(server);
    await turn();
    const watched = firstValueFrom(n.mon$(replyTo));
    n.snd(replyTo, 'ok');
    expect(await within(pending, 2000, 'the reply')).toEqual(['ok']);
    expect(await within(watched, 2000, 'the monitor')).toEqual([]);
  });
});

describe('after', () => {
  it('calls a callback or sends a message later (real time)', async () => {
    const n = testNode();
    const got = deferred<unknown[]>();
    const p = n.port((...m: unknown[]) => got.resolve(m));
    const cb = deferred();
    n.after(0.01, () => cb.resolve());
    n.after(0.01, p, 'tick', 1);
    await within(cb.promise, WAIT_MS, 'the delayed callback');
    expect(await within(got.promise, WAIT_MS, 'the delayed message')).toEqual(['tick', 1]);
  });
});

describe('spawn and snd_to_func on the own node', () => {
  it('runs a registered init function with the new port as context; the port gets messages', async () => {
    const n = testNode();
    const got = deferred<unknown[]>();
    n.register('Test::Echo::init', (greeting: string) => {
      const self = n.self!;
      n.rcv(self, 'say', (...m: unknown[]) => got.resolve([greeting, ...m]));
    });
    const p = n.spawn(n.id, 'Test::Echo::init', 'hi');
    expect(p.startsWith(`${n.id}#`)).toBe(true);
    n.snd(p, 'say', 'there');
    expect(await within(got.promise, WAIT_MS, 'the messages at the spawned port')).toEqual(['hi', 'there']);
  });

  it('an init function that throws kills the new port with die (seen by a monitor)', async () => {
    const n = testNode();
    n.register('Test::Bad::init', () => {
      n.rcv(n.self!, () => {});
      throw new Error('init failed');
    });
    const p = n.spawn(n.id, 'Test::Bad::init');
    const reason = deferred<unknown[]>();
    await turn();
    n.mon(p, (...r: unknown[]) => reason.resolve(r));
    expect(await within(reason.promise, WAIT_MS, 'the die reason at the monitor')).toEqual([
      'die',
      'init failed',
    ]);
  });

  it('an unresolvable function never creates the port', async () => {
    const n = testNode();
    const p = n.spawn(n.id, 'No::Such::func');
    await turn();
    await turn();
    expect((await within(firstValueFrom(n.mon$(p)), WAIT_MS, 'the port never created'))[0]).toBe(
      'no_such_port',
    );
  });

  it('requires a fully-qualified name', () => {
    const n = testNode();
    expect(() => n.spawn(n.id, 'plain')).toThrow(/fully-qualified/);
  });

  it('snd_to_func calls a registered function with the arguments', async () => {
    const n = testNode();
    const got = deferred<unknown[]>();
    n.register('Test::f', (...a: unknown[]) => got.resolve(a));
    n.sndToFunc(n.id, 'Test::f', 1, 'two');
    expect(await within(got.promise, WAIT_MS, 'the call of the function')).toEqual([1, 'two']);
  });

  it('resolves module exports given as path::export', async () => {
    const n = testNode();
    const p = n.spawn(n.id, './test/fixtures/spawn-module.ts::init', 'from module');
    const reply = await within(lastValueFrom(n.cal$(p, 'who')), WAIT_MS, 'the reply of the resolved module');
    expect(reply).toEqual(['from module', p]);
  });

  it('secure mode refuses spawn and function calls, even locally, and logs it', async () => {
    const n = testNode({ secure: '1' });
    let called = false;
    n.register('Test::f', () => {
      called = true;
    });
    n.register('Test::init', () => {
      called = true;
    });
    n.sndToFunc(n.id, 'Test::f');
    n.spawn(n.id, 'Test::init');
    await turn();
    expect(called).toBe(false);
    expect(n.logs.filter((l) => l.text.includes('remote execution not allowed'))).toHaveLength(2);
  });
});
