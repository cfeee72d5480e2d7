/**
 * Requests to the node port of a node in another process (`can`, `time`, `eval`), secure mode
 * refusing remote execution, and spawn.
 */
import { describe, expect, it } from 'vitest';
import { startPair } from '../helpers/spawn-node.js';

describe('node-port requests', () => {
  it('can, time and eval are answered by the remote node', async () => {
    const [hub, leaf] = await startPair();

    // can: built-in requests are known, a function name only after its first use.
    for (const tag of ['eval', 'time', 'snd', 'can', 'mon1', 'kil0', 'AnyEvent::MP::_spawn']) {
      expect(await hub.cal(leaf.id, ['can', tag]), tag).toEqual({ reply: [true] });
    }
    expect(await hub.cal(leaf.id, ['can', 'My::Worker::run'])).toEqual({ reply: [false] });
    await hub.snd(leaf.id, 'My::Worker::run', 'arg'); // unresolvable there, but now used once
    await leaf.logged(/unable to resolve function 'My::Worker::run'/);
    expect(await hub.cal(leaf.id, ['can', 'My::Worker::run'])).toEqual({ reply: [true] });

    // time: the remote clock in float seconds.
    const before = Date.now() / 1000;
    const time = await hub.cal(leaf.id, ['time']);
    const after = Date.now() / 1000;
    expect(time).toEqual({ reply: [expect.any(Number)] });
    const [t] = (time as { reply: number[] }).reply;
    expect(t).toBeGreaterThanOrEqual(before - 1);
    expect(t).toBeLessThanOrEqual(after + 1);

    // eval: JavaScript runs on the remote node; errors come back as text.
    expect(await hub.cal(leaf.id, ['eval', '6*7'])).toEqual({ reply: ['', 42] });
    expect(await hub.cal(leaf.id, ['eval', 'NODE'])).toEqual({ reply: ['', leaf.id] });
    expect(await hub.cal(leaf.id, ['eval', '({ a: [1, "ü"] })'])).toEqual({ reply: ['', { a: [1, 'ü'] }] });
    expect(await hub.cal(leaf.id, ['eval', 'Promise.resolve(5)'])).toEqual({ reply: ['', 5] });
    expect(await hub.cal(leaf.id, ['eval', 'undefined'])).toEqual({ reply: [''] });
    expect(await hub.cal(leaf.id, ['eval', 'throw new Error("nope")'])).toEqual({ reply: ['nope'] });
    expect(await hub.cal(leaf.id, ['eval', 'up_nodes()'])).toEqual({ reply: ['', [hub.id]] });

    // eval then time with extra reply elements: both replies, in order.
    const rec = await hub.port('record');
    await hub.snd(leaf.id, 'eval', '6*7', rec, 'eval-reply');
    await hub.snd(leaf.id, 'time', rec, 'time-reply');
    await hub.received(rec, 'time-reply');
    const seen = hub.all('msg').filter((e) => e.port === rec);
    expect(seen.map((e) => e.msg)).toEqual([
      ['eval-reply', '', 42],
      ['time-reply', expect.any(Number)],
    ]);
  });

  it('secure mode refuses eval and spawn (no reply, no port); other requests are answered', async () => {
    const [hub, leaf] = await startPair({}, { secure: true });
    const rec = await hub.port('record');
    await hub.snd(leaf.id, 'eval', '6*7', rec, 'eval-reply');
    await hub.snd(leaf.id, 'time', rec, 'time-reply');
    // Same connection, handled in order: had the eval been answered, its reply came first.
    await hub.received(rec, 'time-reply');
    expect(hub.all('msg').map((e) => e.msg[0])).toEqual(['time-reply']);
    await leaf.logged(/remote execution not allowed \(eval\)/);
    expect(await hub.cal(leaf.id, ['can', 'eval'])).toEqual({ reply: [true] });

    await leaf.request({ cmd: 'register', name: 'Test::Echo::init', behaviour: 'echo' });
    const spawned = await hub.request({ cmd: 'spawn', node: leaf.id, func: 'Test::Echo::init', args: [] });
    const m = await hub.mon(spawned);
    expect((await hub.monFired(m)).reason).toEqual([
      'no_such_port',
      'cannot monitor nonexistent port',
      spawned,
    ]);
    await leaf.logged(/remote execution not allowed \(AnyEvent::MP::_spawn\)/);
    expect(leaf.all('spawned')).toEqual([]);
  });
});

describe('spawn', () => {
  it('runs a registered init function for the new port; cal$ reaches it; unknown names make no port', async () => {
    const [hub, leaf] = await startPair();
    await leaf.request({ cmd: 'register', name: 'Test::Echo::init', behaviour: 'echo' });
    const spawned = await hub.request({
      cmd: 'spawn',
      node: leaf.id,
      func: 'Test::Echo::init',
      args: ['hello', 7, { deep: [null] }],
    });
    expect(spawned.startsWith(`${leaf.id}#`)).toBe(true);
    // Called at once after spawn: the spawn request travels first, so the port exists.
    expect(await hub.cal(spawned, ['ping', 1])).toEqual({ reply: ['ping', 1] });
    const init = await leaf.waitFor(
      (e): e is Extract<typeof e, { event: 'spawned' }> => e.event === 'spawned',
    );
    expect(init).toEqual({ event: 'spawned', port: spawned, args: ['hello', 7, { deep: [null] }] });

    // A port ID names the node as well; a second spawn gets another port.
    const second = await hub.request({ cmd: 'spawn', node: spawned, func: 'Test::Echo::init', args: [] });
    expect(second).not.toBe(spawned);
    expect(second.startsWith(`${leaf.id}#`)).toBe(true);
    expect(await hub.cal(second, ['again'])).toEqual({ reply: ['again'] });

    // An unresolvable init function creates no port: a monitor right after reports no_such_port.
    const nothing = await hub.request({ cmd: 'spawn', node: leaf.id, func: 'No::Such::init', args: [] });
    const m = await hub.mon(nothing);
    expect((await hub.monFired(m)).reason).toEqual([
      'no_such_port',
      'cannot monitor nonexistent port',
      nothing,
    ]);
    expect(leaf.all('spawned')).toHaveLength(2);
  });

  // A Perl package name with one word (`Nope::init`) is not taken for an npm package.
  it('an unresolvable one-word-package init function also gives no_such_port', async () => {
    const [hub, leaf] = await startPair();
    const spawned = await hub.request({ cmd: 'spawn', node: leaf.id, func: 'Nope::init', args: [] });
    const m = await hub.mon(spawned);
    expect((await hub.monFired(m)).reason).toEqual([
      'no_such_port',
      'cannot monitor nonexistent port',
      spawned,
    ]);
  });
});
