import { describe, expect, it } from 'vitest';
import { nodeOf, portNameOf } from '../../../src/index.js';
import { WAIT_MS, within } from '../../helpers/fake-peer.js';
import { deferred, testNode, turn } from '../../helpers/node.js';

describe('ids', () => {
  it('splits port IDs at the first #', () => {
    expect(nodeOf('a/b#c#d')).toBe('a/b');
    expect(nodeOf('n1')).toBe('n1');
    expect(portNameOf('a/b#c#d')).toBe('c#d');
    expect(portNameOf('n1')).toBe('');
  });

  it('expands a trailing / and %u into the random part, %n into the host name', () => {
    const a = testNode({ nodeid: 'x/' });
    expect(a.id).toMatch(/^x\/[0-9A-Za-z]{9}[0-9A-Z]$/);
    const b = testNode({ nodeid: 'y/%u/z' });
    expect(b.id).toMatch(/^y\/[0-9A-Za-z]{9}[0-9A-Z]\/z$/);
    const c = testNode({ nodeid: 'fixed' });
    expect(c.id).toBe('fixed');
  });

  it('names ports with the counter only on a randomised node ID, never reusing a name', () => {
    const n = testNode({ nodeid: 'r/' });
    expect(n.port()).toBe(`${n.id}#b`);
    expect(n.port()).toBe(`${n.id}#c`);
    const f = testNode({ nodeid: 'fixed-id' });
    const ids = new Set(Array.from({ length: 1000 }, () => f.port()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^fixed-id#[0-9A-Za-z]{9}[a-z]+$/);
  });

  it('tells local from remote ports', () => {
    const n = testNode();
    expect(n.portIsLocal(n.port())).toBe(true);
    expect(n.portIsLocal(n.id)).toBe(true);
    expect(n.portIsLocal('other#b')).toBe(false);
  });
});

describe('snd and rcv', () => {
  it('delivers asynchronously, in order, to the default handler', async () => {
    const n = testNode();
    const got: unknown[][] = [];
    const p = n.port((...m) => got.push(m));
    n.snd(p, 'a', 1);
    n.snd(p, 'b', { x: [2] });
    expect(got).toEqual([]);
    await turn();
    expect(got).toEqual([
      ['a', 1],
      ['b', { x: [2] }],
    ]);
  });

  it('matches tags exactly, strips the tag, replaces and removes tag handlers', async () => {
    const n = testNode();
    const seen: string[] = [];
    const p = n.port((...m) => seen.push(`default:${m.join(',')}`));
    n.rcv(p, 'ping', (...a: unknown[]) => seen.push(`ping:${a.join(',')}`));
    n.snd(p, 'ping', 1, 2);
    n.snd(p, 'pin', 3);
    n.snd(p, 'PING', 4);
    await turn();
    n.rcv(p, 'ping', (...a: unknown[]) => seen.push(`ping2:${a.join(',')}`));
    n.snd(p, 'ping', 5);
    await turn();
    n.rcv(p, 'ping', null);
    n.snd(p, 'ping', 6);
    await turn();
    expect(seen).toEqual(['ping:1,2', 'default:pin,3', 'default:PING,4', 'ping2:5', 'default:ping,6']);
  });

  it('rcv sets several tags and a default left to right and returns the port', async () => {
    const n = testNode();
    const seen: string[] = [];
    const p = n.port();
    expect(
      n.rcv(
        p,
        'a',
        () => seen.push('a'),
        'b',
        () => seen.push('b'),
        () => seen.push('dflt'),
      ),
    ).toBe(p);
    n.snd(p, 'b');
    n.snd(p, 'a');
    n.snd(p, 'c');
    await turn();
    expect(seen).toEqual(['b', 'a', 'dflt']);
  });

  it('rcv on a missing local port creates it; on a remote port it throws', async () => {
    const n = testNode();
    const id = `${n.id}#made-up`;
    const d = deferred<unknown[]>();
    n.rcv(id, (...m: unknown[]) => d.resolve(m));
    n.snd(id, 'hi');
    expect(await within(d.promise, WAIT_MS, 'the message at the port')).toEqual(['hi']);
    expect(() => n.rcv('elsewhere#x', () => {})).toThrow(/local ports/);
  });

  it('drops messages to unknown ports silently', async () => {
    const n = testNode();
    n.snd(`${n.id}#nope`, 'x');
    n.snd(`${n.id}#nope#deeper`, 'y');
    await turn();
    expect(n.logs).toEqual([]);
  });

  it('a port without handler dies with unhandled_message on its first message', async () => {
    const n = testNode();
    const p = n.port();
    const reason = deferred<unknown[]>();
    n.mon(p, (...r: unknown[]) => reason.resolve(r));
    n.snd(p, `weird\ttag\u00e9${'x'.repeat(40)}`, 1);
    expect(await within(reason.promise, WAIT_MS, 'the kill reason')).toEqual([
      'unhandled_message',
      `no callback found for message 'weird.tag.${'x'.repeat(20)}'`,
    ]);
  });

  it('a port with only tag handlers dies on a message that matches no tag', async () => {
    const n = testNode();
    const p = n.port();
    n.rcv(p, 'ok', () => {});
    const reason = deferred<unknown[]>();
    n.mon(p, (...r: unknown[]) => reason.resolve(r));
    n.snd(p, 'ok');
    n.snd(p, 'other');
    expect(await within(reason.promise, WAIT_MS, 'the unhandled_message kill')).toEqual([
      'unhandled_message',
      "no callback found for message 'other'",
    ]);
  });

  it('delivers a burst of 1,000,000 messages complete and in order', async () => {
    const n = testNode();
    const total = 1_000_000;
    let next = 0;
    let bad = 0;
    const done = deferred();
    const p = n.port((_tag: unknown, i: unknown) => {
      if (i !== next) bad++;
      next++;
      if (next === total) done.resolve();
    });
    for (let i = 0; i < total; i++) n.snd(p, 'm', i);
    await within(done.promise, WAIT_MS, 'the handler to run');
    expect(next).toBe(total);
    expect(bad).toBe(0);
  });
});

describe('port context', () => {
  it('runs handlers with self set, and a throwing handler kills only its own port with die', async () => {
    const n = testNode();
    let seenSelf: string | undefined;
    const bad = n.port(() => {
      seenSelf = n.self;
      throw new Error('oops\n');
    });
    const good = n.port(() => {});
    const badReason = deferred<unknown[]>();
    n.mon(bad, (...r: unknown[]) => badReason.resolve(r));
    let goodDied = false;
    n.mon(good, () => {
      goodDied = true;
    });
    n.snd(bad, 'x');
    n.snd(good, 'y');
    expect(await within(badReason.promise, WAIT_MS, 'the die reason')).toEqual(['die', 'oops']);
    expect(seenSelf).toBe(bad);
    expect(n.self).toBeUndefined();
    n.snd(good, 'still alive');
    await turn();
    expect(goodDied).toBe(false);
    expect(n.logs).toEqual([]);
  });

  it('peval and psub run code in a port context and kill it on exceptions', async () => {
    const n = testNode();
    const p = n.port(() => {});
    expect(n.peval(p, () => n.self)).toBe(p);
    const reason = deferred<unknown[]>();
    n.mon(p, (...r: unknown[]) => reason.resolve(r));
    let wrapped: (() => void) | undefined;
    n.peval(p, () => {
      wrapped = n.psub(() => {
        throw 'string failure\n';
      });
    });
    expect(() => n.psub(() => {})).toThrow(/port context/);
    wrapped!();
    expect(await within(reason.promise, WAIT_MS, 'the die reason of a string throw')).toEqual([
      'die',
      'string failure',
    ]);
  });
});
