/**
 * Who owns the port behind `port$`, and what an error in a port's stream does.
 *
 * - `port$()` owns its port: created by the first subscribe, killed by the last unsubscribe,
 *   created anew by a later subscribe (under the same reserved ID).
 * - `port$(id)` observes a port made elsewhere and never kills it on unsubscribe.
 * - A subscriber that throws, or an operator in a `pipe` chain that throws, kills the port
 *   with `['die', message]` and never reaches the process as an uncaught exception.
 */
import { firstValueFrom, map, type Observable, take, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AempError, KilledError } from '../../../src/index.js';
import { within as withinMs } from '../../helpers/fake-peer.js';
import { testNode } from '../../helpers/node.js';

/** `promise`, or a rejection naming `what` after `ms`. */
const within = <T>(p: Promise<T>, what: string, ms = 2000): Promise<T> => withinMs(p, ms, what);

/** The first value of `obs`, bounded. */
function first<T>(obs: Observable<T>, what: string): Promise<T> {
  return within(firstValueFrom(obs), what);
}

describe('port$() owns its port', () => {
  it('creates no port until subscribed, however many streams are made', () => {
    const n = testNode();
    const before = n.kernel.portCount;
    const streams = Array.from({ length: 100 }, () => n.port$());
    expect(n.kernel.portCount).toBe(before);
    expect(new Set(streams.map((s) => s.id)).size).toBe(100);
    for (const s of streams) expect(n.portIsLocal(s.id)).toBe(true);
  });

  it('drops a message sent to the reserved ID before anyone subscribes (no_such_port)', async () => {
    const n = testNode();
    const p = n.port$();
    n.snd(p.id, 'too early');
    expect((await first(n.mon$(p.id), 'the monitor of an unsubscribed port$ ID'))[0]).toBe('no_such_port');
    // The ID is still good: a subscriber gets what is sent after it came.
    const got = first(p, "the first message of port$'s first subscriber");
    n.snd(p.id, 'on time');
    expect(await got).toEqual(['on time']);
  });

  it('kills the port on the last unsubscribe and makes a new one on the next subscribe', async () => {
    const n = testNode();
    const p = n.port$();
    const before = n.kernel.portCount;
    const s1 = p.subscribe();
    const s2 = p.subscribe();
    expect(n.kernel.portCount).toBe(before + 1);
    const firstDeath = first(n.mon$(p.id), 'the kill reason of the first port');
    s1.unsubscribe();
    expect(n.kernel.portCount).toBe(before + 1);
    s2.unsubscribe();
    expect(n.kernel.portCount).toBe(before);
    expect(await firstDeath).toEqual([]);

    // Today this errored with no_such_port: the stream could not be subscribed again.
    const again = within(
      firstValueFrom(p.pipe(take(2), toArray())),
      'two messages on the re-subscribed port$',
    );
    expect(n.kernel.portCount).toBe(before + 1);
    n.snd(p.id, 'a');
    n.snd(p.id, 'b');
    expect(await again).toEqual([['a'], ['b']]);
    // take(2) unsubscribed: the second port is gone too.
    expect(n.kernel.portCount).toBe(before);
  });

  it('makes a new port after the old one was killed', async () => {
    const n = testNode();
    const p = n.port$();
    const ended = within(firstValueFrom(p.pipe(toArray())), 'the first port$ subscription to complete');
    n.kil(p.id);
    expect(await ended).toEqual([]);
    const got = first(p, 'a message on the port made after the kill');
    n.snd(p.id, 'again');
    expect(await got).toEqual(['again']);
  });

  it('gives every subscriber of one port every message', async () => {
    const n = testNode();
    const p = n.port$();
    const a = within(firstValueFrom(p.pipe(take(2), toArray())), "subscriber a's two messages");
    const b = within(firstValueFrom(p.pipe(take(2), toArray())), "subscriber b's two messages");
    n.snd(p.id, 1);
    n.snd(p.id, 2);
    expect(await a).toEqual([[1], [2]]);
    expect(await b).toEqual([[1], [2]]);
  });

  it('errors with ERR_NODE_CLOSED when subscribed after close', async () => {
    const n = testNode();
    const p = n.port$();
    await within(n.close(), 'close()');
    const err = await within(
      firstValueFrom(p).catch((e: unknown) => e),
      'the error of port$ on a closed node',
    );
    expect(AempError.is(err) && err.code).toBe('ERR_NODE_CLOSED');
  });
});

describe('port$(id) observes a port it does not own', () => {
  it('never kills the port on unsubscribe and can be subscribed again', async () => {
    const n = testNode();
    const id = n.port();
    const s = n.port$(id);
    const before = n.kernel.portCount;
    const one = first(s, 'the first message on port$(id)');
    n.snd(id, 'one');
    expect(await one).toEqual(['one']);
    expect(n.kernel.portCount).toBe(before);
    const two = first(s, 'the message on port$(id) subscribed again');
    n.snd(id, 'two');
    expect(await two).toEqual(['two']);
    expect(n.kernel.hasPort(id)).toBe(true);
  });
});

describe('an error in a port stream kills the port with die, not the process', () => {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  beforeEach(() => {
    uncaught.length = 0;
    process.on('uncaughtException', onUncaught);
  });
  afterEach(async () => {
    // rxjs reports an unhandled subscriber error with setTimeout(…, 0); a timer set now fires
    // after any such report that was queued before it, so by then it would have been counted.
    await within(new Promise((resolve) => setTimeout(resolve, 0)), 'timers queued by the test');
    process.off('uncaughtException', onUncaught);
    expect(uncaught).toEqual([]);
  });

  it('a throwing next kills an owned port with die', async () => {
    const n = testNode();
    const p = n.port$();
    p.subscribe(() => {
      throw new Error('subscriber broke');
    });
    const reason = first(n.mon$(p.id), 'the kill reason of the port whose subscriber threw');
    n.snd(p.id, 'boom');
    expect(await reason).toEqual(['die', 'subscriber broke']);
    expect(n.kernel.hasPort(p.id)).toBe(false);
  });

  it('a throwing next kills a port observed with port$(id) with die, and tells the other subscribers', async () => {
    const n = testNode();
    const id = n.port();
    const other = within(
      firstValueFrom(n.port$(id).pipe(toArray())).catch((e: unknown) => e),
      'the error of the well-behaved subscriber',
    );
    n.port$(id).subscribe({
      next: () => {
        throw new Error('second subscriber broke');
      },
    });
    const reason = first(n.mon$(id), 'the kill reason of the observed port');
    n.snd(id, 'boom');
    expect(await reason).toEqual(['die', 'second subscriber broke']);
    const err = await other;
    expect(err).toBeInstanceOf(KilledError);
    expect((err as KilledError).reason).toEqual(['die', 'second subscriber broke']);
  });

  it('a throwing operator in a pipe chain kills the port with die (was: a normal kill)', async () => {
    const n = testNode();
    const p = n.port$();
    const seen = new Promise<unknown>((resolve) =>
      p
        .pipe(
          map((m) => {
            if (m[0] === 'bad') throw new Error('operator broke');
            return m;
          }),
        )
        .subscribe({ error: resolve }),
    );
    const reason = first(n.mon$(p.id), 'the kill reason of the port whose operator threw');
    n.snd(p.id, 'bad');
    expect(await reason).toEqual(['die', 'operator broke']);
    // The subscriber's error callback still gets the operator's error.
    expect(((await within(seen, 'the error callback')) as Error).message).toBe('operator broke');
  });

  it('a throwing operator with no error callback kills the port with die and is logged', async () => {
    const n = testNode();
    const p = n.port$();
    p.pipe(
      map(() => {
        throw new Error('unwatched operator broke');
      }),
    ).subscribe(() => {});
    const reason = first(n.mon$(p.id), 'the kill reason of the port');
    n.snd(p.id, 'x');
    expect(await reason).toEqual(['die', 'unwatched operator broke']);
    expect(n.logs.some((l) => /unwatched operator broke/.test(l.text))).toBe(true);
  });

  it('an error kill reaching a subscriber with no error callback is logged, not thrown', async () => {
    const n = testNode();
    const id = n.port();
    n.port$(id).subscribe(() => {});
    const reason = first(n.mon$(id), 'the kill reason');
    n.kil(id, 'custom');
    expect(await reason).toEqual(['custom']);
    expect(n.logs.some((l) => l.text.includes(`port ${id} died with reason: custom`))).toBe(true);
  });
});
