import { firstValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { AempError, KilledError } from '../../../src/index.js';
import { WAIT_MS, within } from '../../helpers/fake-peer.js';
import { deferred, testNode, turn } from '../../helpers/node.js';

describe('kil', () => {
  it('is deferred, and a normal kill gives monitors an empty reason', async () => {
    const n = testNode();
    const got: unknown[] = [];
    const p = n.port((...m) => got.push(m));
    const reason = deferred<unknown[]>();
    n.mon(p, (...r: unknown[]) => reason.resolve(r));
    n.snd(p, 'before');
    n.kil(p);
    n.snd(p, 'after');
    expect(got).toEqual([]);
    expect(await within(reason.promise, WAIT_MS, 'the monitor of the killed port')).toEqual([]);
    expect(got).toEqual([['before']]);
    await turn();
    expect(got).toEqual([['before']]);
  });

  it('an unmonitored error kill is logged; an unmonitored normal kill is not', async () => {
    const n = testNode();
    const a = n.port(() => {});
    const b = n.port(() => {});
    n.kil(a, 'boom', 42);
    n.kil(b);
    await turn();
    expect(n.logs.map((l) => l.text)).toEqual([
      `unmonitored local port ${a.split('#')[1]} died with reason: boom 42`,
    ]);
    expect(n.logs[0]!.level).toBe(4);
  });

  it('killing a nonexistent port is a no-op; killing a node port throws', async () => {
    const n = testNode();
    n.kil(`${n.id}#ghost`, 'x');
    await turn();
    expect(n.logs).toEqual([]);
    expect(() => n.kil(n.id)).toThrow(/node port/);
    expect(() => n.kil(`${n.id}#`)).toThrow(/node port/);
  });
});

describe('mon', () => {
  it('callback form gets the reason once', async () => {
    const n = testNode();
    const p = n.port(() => {});
    const calls: unknown[][] = [];
    n.mon(p, (...r: unknown[]) => calls.push(r));
    n.kil(p, 'bad', 'thing');
    await turn();
    await turn();
    expect(calls).toEqual([['bad', 'thing']]);
  });

  it('link form kills the receiving port only for an error kill', async () => {
    const n = testNode();
    const a = n.port(() => {});
    const b = n.port(() => {});
    const watcherA = n.port(() => {});
    const watcherB = n.port(() => {});
    n.mon(a, watcherA);
    n.mon(b, watcherB);
    const ra = deferred<unknown[]>();
    n.mon(watcherA, (...r: unknown[]) => ra.resolve(r));
    let bDied = false;
    n.mon(watcherB, () => {
      bDied = true;
    });
    n.kil(a, 'crash');
    n.kil(b);
    expect(await within(ra.promise, WAIT_MS, 'the crash reason')).toEqual(['crash']);
    await turn();
    expect(bDied).toBe(false);
    expect(n.portIsLocal(watcherB)).toBe(true);
  });

  it('self form links to the port in whose context mon is called, and needs a context', async () => {
    const n = testNode();
    const target = n.port(() => {});
    const linked = n.port(() => {});
    n.peval(linked, () => n.mon(target));
    const r = deferred<unknown[]>();
    n.mon(linked, (...x: unknown[]) => r.resolve(x));
    expect(() => n.mon(target)).toThrow(/port context/);
    n.kil(target, 'linked death');
    expect(await within(r.promise, WAIT_MS, 'the linked death')).toEqual(['linked death']);
  });

  it('message form sends msg plus reason, even for a normal kill', async () => {
    const n = testNode();
    const inbox: unknown[][] = [];
    const rcv = n.port((...m) => inbox.push(m));
    const a = n.port(() => {});
    const b = n.port(() => {});
    n.mon(a, rcv, 'died', 'a');
    n.mon(b, rcv, 'died', 'b');
    n.kil(a, 'why');
    n.kil(b);
    await turn();
    await turn();
    expect(inbox).toEqual([
      ['died', 'a', 'why'],
      ['died', 'b'],
    ]);
  });

  it('fires no_such_port at once for a missing port, including after a kill', async () => {
    const n = testNode();
    const ghost = `${n.id}#ghost`;
    const calls: unknown[][] = [];
    n.mon(ghost, (...r: unknown[]) => calls.push(r));
    expect(calls).toEqual([['no_such_port', 'cannot monitor nonexistent port', ghost]]);
    const p = n.port(() => {});
    n.kil(p);
    await turn();
    n.mon(p, (...r: unknown[]) => calls.push(r));
    expect(calls[1]).toEqual(['no_such_port', 'cannot monitor nonexistent port', p]);
  });

  it('a guard disposed before the kill never fires; another monitor still does', async () => {
    const n = testNode();
    const p = n.port(() => {});
    let fired = 0;
    const g = n.mon(p, () => fired++);
    const other = deferred<unknown[]>();
    n.mon(p, (...r: unknown[]) => other.resolve(r));
    g.dispose();
    n.kil(p, 'x');
    expect(await within(other.promise, WAIT_MS, 'the other monitor')).toEqual(['x']);
    expect(fired).toBe(0);
  });

  it('monGuard holds references until the port dies', async () => {
    const n = testNode();
    const p = n.port(() => {});
    const g = n.monGuard(p, { big: 'object' });
    expect(g.closed).toBe(false);
    n.kil(p);
    await turn();
    g.dispose();
    expect(g.closed).toBe(true);
  });

  it('monitoring the own node never fires', async () => {
    const n = testNode();
    let fired = false;
    const g = n.mon(n.id, () => {
      fired = true;
    });
    await turn();
    expect(fired).toBe(false);
    g.dispose();
  });

  it('a remote port on an unreachable node reports transport_error (offline node)', async () => {
    const n = testNode();
    const reason = await within(
      firstValueFrom(n.mon$('elsewhere#x')),
      WAIT_MS,
      'transport_error for the unreachable node',
    );
    expect(reason).toEqual(['transport_error', 'elsewhere', 'no known address']);
  });
});

describe('observables', () => {
  it('port$ emits messages and completes on a normal kill', async () => {
    const n = testNode();
    const p = n.port();
    const all = firstValueFrom(n.port$(p).pipe(toArray()));
    n.snd(p, 'a', 1);
    n.snd(p, 'b');
    n.kil(p);
    expect(await all).toEqual([['a', 1], ['b']]);
  });

  it('port$ errors with KilledError carrying the reason on an error kill', async () => {
    const n = testNode();
    const p = n.port$();
    const failed = new Promise<unknown>((resolve) => p.subscribe({ error: resolve }));
    n.snd(p.id, 'x');
    n.kil(p.id, 'custom', { why: 1 });
    const err = await failed;
    expect(err).toBeInstanceOf(KilledError);
    expect(AempError.is(err) && err.code).toBe('ERR_KILLED');
    expect((err as KilledError).reason).toEqual(['custom', { why: 1 }]);
  });

  it('port$ of a missing port errors at once with no_such_port', async () => {
    const n = testNode();
    const err = await within(
      firstValueFrom(n.port$(`${n.id}#nope`)),
      WAIT_MS,
      'port$ of a missing port to fail',
    ).catch((e: unknown) => e);
    expect((err as KilledError).reason[0]).toBe('no_such_port');
  });

  it('an owned port$ port is killed normally when its last subscriber leaves', async () => {
    const n = testNode();
    const p = n.port$();
    const r = deferred<unknown[]>();
    const s1 = p.subscribe();
    const s2 = p.subscribe();
    n.mon(p.id, (...x: unknown[]) => r.resolve(x));
    s1.unsubscribe();
    await turn();
    expect(n.portIsLocal(p.id) && (await Promise.race([r.promise, turn().then(() => 'alive')]))).toBe(
      'alive',
    );
    s2.unsubscribe();
    expect(await within(r.promise, WAIT_MS, 'the kill reason')).toEqual([]);
  });

  it('a borrowed port$ leaves the port alive when unsubscribed', async () => {
    const n = testNode();
    const p = n.port(() => {});
    n.port$(p).subscribe().unsubscribe();
    let died = false;
    n.mon(p, () => {
      died = true;
    });
    n.snd(p, 'still handled');
    await turn();
    expect(died).toBe(false);
  });

  it('mon$ emits the reason once then completes', async () => {
    const n = testNode();
    const p = n.port(() => {});
    const all = firstValueFrom(n.mon$(p).pipe(toArray()));
    n.kil(p, 'r1');
    expect(await all).toEqual([['r1']]);
  });

  it('the node stream reports kills and completes on close', async () => {
    const n = testNode();
    const events = firstValueFrom(n.pipe(toArray()));
    const p = n.port(() => {});
    n.kil(p, 'gone');
    await turn();
    await n.close();
    expect(await events).toEqual([{ type: 'kill', port: p, reason: ['gone'] }]);
  });
});
