/**
 * Contracts of calls, registrations and a closed node (issue 16, items 3–5): a `cal` callback
 * gets exactly one outcome and leaves nothing behind, `db.reg` guards remove what they added,
 * and operations of a closed node fail with `ERR_NODE_CLOSED`.
 */
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import * as aemp from '../../../src/index.js';
import { AempError } from '../../../src/index.js';
import { splitHostPort } from '../../../src/protocol/address.js';
import { expectNodeClosed, failure } from '../../helpers/closed-node.js';
import { within } from '../../helpers/fake-peer.js';
import { deferred, testNode, turn } from '../../helpers/node.js';

const WAIT_MS = 5000;

describe('cal with a callback: exactly one outcome, nothing left behind', () => {
  it('a reply, then the called port dying, calls back once; monitor and reply port are gone', async () => {
    const n = testNode();
    const server = n.port((x: number, reply: string) => n.snd(reply, x * 2));
    const calls: unknown[][] = [];
    const first = deferred<void>();
    const reply = n.cal(server, 21, (...r: unknown[]) => {
      calls.push(r);
      first.resolve();
    });
    await within(first.promise, WAIT_MS, 'the reply');
    expect(calls).toEqual([[42]]);
    expect(n.kernel.monitorCount(server)).toBe(0);
    expect(n.kernel.hasPort(reply)).toBe(false);
    n.kil(server);
    // Monitors of a port fire together: once mon$ saw the death, a cal monitor would have too.
    expect(await within(firstValueFrom(n.mon$(server)), WAIT_MS, 'the death of the server')).toEqual([]);
    expect(calls).toEqual([[42]]);
  });

  it('many calls to one port leave no monitor entries on it', async () => {
    const n = testNode();
    const server = n.port((reply: string) => n.snd(reply, 'ok'));
    for (let i = 0; i < 100; i++) {
      const got = deferred<unknown[]>();
      n.cal(server, (...r: unknown[]) => got.resolve(r));
      expect(await within(got.promise, WAIT_MS, `reply ${i}`)).toEqual(['ok']);
    }
    expect(n.kernel.monitorCount(server)).toBe(0);
  });

  it('a timeout calls back once without arguments; a late reply is ignored', async () => {
    const n = testNode();
    let replyTo: string | undefined;
    const asked = deferred<void>();
    const server = n.port((reply: string) => {
      replyTo = reply;
      asked.resolve();
    });
    const calls: unknown[][] = [];
    const timedOut = deferred<void>();
    const reply = n.cal(
      server,
      (...r: unknown[]) => {
        calls.push(r);
        timedOut.resolve();
      },
      0.01,
    );
    await within(asked.promise, WAIT_MS, 'the request');
    await within(timedOut.promise, WAIT_MS, 'the timeout');
    expect(replyTo).toBe(reply);
    n.snd(reply, 'too late');
    await turn();
    await turn();
    expect(calls).toEqual([[]]);
    expect(n.kernel.hasPort(reply)).toBe(false);
  });

  it('a call pending at close() calls back once without arguments; cal() after close() throws', async () => {
    const n = testNode();
    const silent = n.port(() => {});
    const calls: unknown[][] = [];
    n.cal(silent, 'q', (...r: unknown[]) => calls.push(r));
    n.cal(silent, 'q', (...r: unknown[]) => calls.push(r), 60);
    await within(n.close(), WAIT_MS, 'close()');
    expect(calls).toEqual([[], []]);
    let thrown: unknown;
    try {
      n.cal(silent, 'q', () => {});
    } catch (err) {
      thrown = err;
    }
    expectNodeClosed(thrown);
  });
});

describe('db.reg: disposing removes everything the registration added', () => {
  it('1,000 reg/dispose cycles on one port leave no monitor entries and no entry', () => {
    const n = testNode();
    const p = n.port(() => {});
    const before = n.kernel.monitorCount(p);
    for (let i = 0; i < 1000; i++) n.db.reg('workers', p, i).dispose();
    expect(n.kernel.monitorCount(p)).toBe(before);
    expect(n.db.own.workers).toBeUndefined();
  });

  it('a value set after dispose survives the death of the port', async () => {
    const n = testNode();
    const p = n.port(() => {});
    n.db.reg('workers', p, 'registered').dispose();
    n.db.set('workers', p, 'set later');
    n.kil(p);
    expect(await within(firstValueFrom(n.mon$(p)), WAIT_MS, 'the death of the port')).toEqual([]);
    expect((n.db.own.workers as Record<string, unknown> | undefined)?.[p]).toBe('set later');
  });

  it('the port dying removes the entry; disposing afterwards leaves a later value alone', async () => {
    const n = testNode();
    const p = n.port(() => {});
    const guard = n.db.reg('workers', p, 'registered');
    expect(n.kernel.monitorCount(p)).toBe(1);
    n.kil(p);
    expect(await within(firstValueFrom(n.mon$(p)), WAIT_MS, 'the death of the port')).toEqual([]);
    expect(n.db.own.workers).toBeUndefined();
    n.db.set('workers', p, 'set later');
    guard.dispose();
    expect((n.db.own.workers as Record<string, unknown> | undefined)?.[p]).toBe('set later');
  });

  it('registering a port that does not exist removes the entry at once', () => {
    const n = testNode();
    const guard = n.db.reg('workers', `${n.id}#nonexistent`, 1);
    expect(n.db.own.workers).toBeUndefined();
    expect(guard.closed).toBe(true);
  });
});

describe('a closed node fails operations with ERR_NODE_CLOSED', () => {
  it('database queries after close()', async () => {
    const n = testNode();
    await within(n.close(), WAIT_MS, 'close()');
    expectNodeClosed(await failure(firstValueFrom(n.db.keys$('f')), 'keys$ after close'));
    expectNodeClosed(await failure(firstValueFrom(n.db.family$('f')), 'family$ after close'));
    expectNodeClosed(await failure(firstValueFrom(n.db.values$('f')), 'values$ after close'));
  });

  it('database queries pending at close() (no master ever answers)', async () => {
    const n = testNode();
    const pending = failure(firstValueFrom(n.db.keys$('f')), 'keys$ pending at close');
    await within(n.close(), WAIT_MS, 'close()');
    expectNodeClosed(await pending);
  });

  it('cal$ to a local port pending at close(), and cal$ after close()', async () => {
    const n = testNode();
    const silent = n.port(() => {});
    const pending = failure(lastValueFrom(n.cal$(silent, 'q')), 'cal$ pending at close');
    await turn();
    await within(n.close(), WAIT_MS, 'close()');
    expectNodeClosed(await pending);
    expectNodeClosed(await failure(lastValueFrom(n.cal$(silent, 'q')), 'cal$ after close'));
  });
});

describe('error classes and codes', () => {
  it('a malformed address is ERR_BAD_ADDRESS, not a refused connection', () => {
    let thrown: unknown;
    try {
      splitHostPort('no-port-here');
    } catch (err) {
      thrown = err;
    }
    expect(AempError.is(thrown) && thrown.code).toBe('ERR_BAD_ADDRESS');
  });

  it('exports no TimeoutError of its own (RxJS has the one timeout() raises)', () => {
    expect('TimeoutError' in aemp).toBe(false);
  });
});
