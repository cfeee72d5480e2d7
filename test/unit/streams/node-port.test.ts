import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { MAX_USED_FUNCTIONS } from '../../../src/streams/kernel/node-port.js';
import { WAIT_MS, within } from '../../helpers/fake-peer.js';
import { deferred, testNode, turn } from '../../helpers/node.js';

describe('node port requests on the own node', () => {
  it('time replies with float seconds after the reply arguments', async () => {
    const n = testNode();
    const before = Date.now() / 1000;
    const reply = await within(lastValueFrom(n.cal$(n.id, 'time')), WAIT_MS, 'the time reply');
    expect(reply).toHaveLength(1);
    const t = reply[0] as number;
    expect(typeof t).toBe('number');
    expect(t).toBeGreaterThanOrEqual(before - 1);
  });

  it('can reports built-in tags, registered-and-used function names, extra args first', async () => {
    const n = testNode();
    const reply = n.port$();
    const got: unknown[][] = [];
    const done = deferred();
    reply.subscribe((m) => {
      got.push(m);
      if (got.length === 4) done.resolve();
    });
    n.register('Test::f', () => {});
    n.snd(n.id, 'can', 'eval', reply.id, 'x');
    n.snd(n.id, 'can', 'Test::f', reply.id, 'y');
    n.snd(n.id, 'Test::f');
    n.snd(n.id, 'can', 'Test::f', reply.id, 'z');
    n.snd(n.id, 'can', 'nope', reply.id);
    await within(done.promise, WAIT_MS, 'the four can replies');
    expect(got).toEqual([['x', true], ['y', false], ['z', true], [false]]);
  });

  it('can remembers at most MAX_USED_FUNCTIONS used names, so peers cannot grow the set', async () => {
    const n = testNode({ logger: undefined });
    for (let i = 0; i <= MAX_USED_FUNCTIONS; i++) n.snd(n.id, `Junk::f${i}`);
    const first = await within(lastValueFrom(n.cal$(n.id, 'can', 'Junk::f0')), WAIT_MS, 'can Junk::f0');
    const over = await within(
      lastValueFrom(n.cal$(n.id, 'can', `Junk::f${MAX_USED_FUNCTIONS}`)),
      WAIT_MS,
      'can of the name past the cap',
    );
    expect([first, over]).toEqual([[true], [false]]);
  });

  it('snd relays a message', async () => {
    const n = testNode();
    const got = deferred<unknown[]>();
    const p = n.port((...m: unknown[]) => got.resolve(m));
    n.sndOn(n.id, p, 'relayed', 1);
    expect(await within(got.promise, WAIT_MS, 'the relayed message')).toEqual(['relayed', 1]);
  });

  it('eval runs JavaScript with the node API and replies error then results', async () => {
    const n = testNode();
    expect(await within(lastValueFrom(n.cal$(n.id, 'eval', '1+1')), WAIT_MS, 'eval 1+1')).toEqual(['', 2]);
    expect(await within(lastValueFrom(n.cal$(n.id, 'eval', 'NODE')), WAIT_MS, 'eval NODE')).toEqual([
      '',
      n.id,
    ]);
    expect(
      await within(
        lastValueFrom(n.cal$(n.id, 'eval', 'throw new Error("oops")')),
        WAIT_MS,
        'eval of a throw',
      ),
    ).toEqual(['oops']);
    expect(
      await within(lastValueFrom(n.cal$(n.id, 'eval', 'Promise.resolve(7)')), WAIT_MS, 'eval of a promise'),
    ).toEqual(['', 7]);
    expect(await within(lastValueFrom(n.cal$(n.id, 'eval', 'undefined')), WAIT_MS, 'eval undefined')).toEqual(
      [''],
    );
    expect(
      await within(
        lastValueFrom(n.cal$(n.id, 'eval', 'typeof process.pid')),
        WAIT_MS,
        'eval typeof process.pid',
      ),
    ).toEqual(['', 'number']);
  });

  it('eval answers the Perl up_nodes expression as a list', async () => {
    const n = testNode();
    expect(
      await within(
        lastValueFrom(n.cal$(n.id, 'eval', 'AnyEvent::MP::Kernel::up_nodes')),
        WAIT_MS,
        'eval of a Perl function name',
      ),
    ).toEqual(['']);
  });

  it('eval is refused in secure mode; relay and time still work', async () => {
    const n = testNode({ secure: true });
    const got: unknown[][] = [];
    const p = n.port((...m) => got.push(m));
    n.evalOn(n.id, '1+1', p, 'eval');
    n.sndOn(n.id, p, 'relay');
    n.snd(n.id, 'time', p, 'time');
    await turn();
    await turn();
    expect(got.map((m) => m[0])).toEqual(['relay', 'time']);
    expect(n.logs.some((l) => l.text.includes('remote execution not allowed'))).toBe(true);
  });

  it('ignores empty and devnull requests; logs a failing function call', async () => {
    const n = testNode();
    n.snd(n.id);
    n.snd(n.id, '');
    n.snd(n.id, 'devnull', 1, 2);
    await turn();
    expect(n.logs).toEqual([]);
    // A global-database request on a node that is not global: dropped, noted at debug level.
    n.snd(n.id, 'g_whatever', 1);
    await turn();
    expect(n.logs).toEqual([
      { level: 8, text: `ignoring g_whatever from ${n.id}: this node is not a global node` },
    ]);
    n.snd(n.id, 'Unknown::Perl::function', 1);
    const line = await n.logged(/Unknown::Perl::function/);
    expect(line.text).toBe(
      `error processing node message from ${n.id}: unable to resolve function 'Unknown::Perl::function'`,
    );
    expect(line.level).toBe(4);
  });

  it('kil1 kills a local port at once with the reason; mon1/kil0 round trip locally', async () => {
    const n = testNode();
    const p = n.port(() => {});
    const r = deferred<unknown[]>();
    n.mon(p, (...x: unknown[]) => r.resolve(x));
    n.snd(n.id, 'kil1', p.split('#')[1], 'remote', 'kill');
    expect(await within(r.promise, WAIT_MS, 'the kil1 reason at the monitor')).toEqual(['remote', 'kill']);
  });
});
