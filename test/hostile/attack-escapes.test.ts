/**
 * Peer data that reaches code running outside any try: a delivery-queue turn, a promise
 * callback, a monitor. Each test performs one attack over loopback TCP with an authenticated
 * fake peer and checks that nothing escaped to the process (an uncaught exception or an
 * unhandled rejection ends a real node) and that what the node owes its own callers (a
 * call's outcome, a stream's error) still arrives.
 */
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { ArgQueue } from '../../src/cli/args.js';
import * as protocol from '../../src/cli/node-commands.js';
import { Session } from '../../src/cli/session.js';
import { formatReason, KilledError } from '../../src/errors.js';
import { MAX_NESTED_REPLIES } from '../../src/streams/kernel/node-port.js';
import { escapesOfEachTest } from '../helpers/escapes.js';
import { nodeWithFakeMaster } from '../helpers/fake-master.js';
import { FakePeer, perlCbor, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';
import { pair, roundTrip } from '../helpers/peer-pair.js';

const escaped = escapesOfEachTest();

type Framing = 'cbor' | 'json';

/** A kill reason no formatting survives as is: JSON fails on the big integer, String on `toString`. */
const HOSTILE = { toString: 1, n: 2n ** 63n };
/** The same value as JSON text (the decoder reads integers past 2^53 as bigint). */
const HOSTILE_JSON = `{"toString":1,"n":${2n ** 63n}}`;

/** Sends `["", TAG, …plain, HOSTILE]` in the fake's framing. */
function sendWithHostile(fake: FakePeer, framing: Framing, plain: string[]): void {
  if (framing === 'cbor') fake.send([...plain, HOSTILE]);
  else fake.write(`[${plain.map((s) => JSON.stringify(s)).join(',')},${HOSTILE_JSON}]`);
}

/** Resolves on the next turn after `p` (a throw from a later callback is then seen). */
async function afterTurns<T>(p: Promise<T>, n = 3): Promise<T> {
  const v = await p;
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  return v;
}

async function victimWithPeer(framing: Framing, nodeid: string) {
  const node = testNode({ nodeid, secret: SECRET, binds: ['127.0.0.1:0'] });
  await within(node.ready, WAIT_MS, 'the victim to listen');
  const fake = await FakePeer.dial(node.binds[0]!);
  await fake.handshake({ nodeId: 'evil', secret: SECRET, framings: framing, sendFraming: framing });
  // Up on the victim's side once a request is answered.
  fake.send(['', 'time', 'evil#up']);
  await fake.nextMatching((m) => m[0] === 'up');
  return { node, fake };
}

/** The victim still serves the peer: a `time` request is answered. */
async function stillAnswers(fake: FakePeer): Promise<void> {
  fake.send(['', 'time', 'evil#alive']);
  expect(await fake.nextMatching((m) => m[0] === 'alive')).toEqual(['alive', expect.any(Number)]);
}

describe.each<Framing>(['cbor', 'json'])('kill reasons that cannot be formatted (%s)', (framing) => {
  it('kil0 for a port a local port is linked to: the link kills it; nothing escapes', async () => {
    const { node, fake } = await victimWithPeer(framing, `esc-link-${framing}`);
    const local = node.port(() => {});
    node.mon('evil#p', local);
    expect((await fake.nextMatching((m) => m[1] === 'mon1'))[2]).toBe('p');
    const killed = firstValueFrom(node.pipe(filter((e) => e.type === 'kill' && e.port === local)));
    sendWithHostile(fake, framing, ['', 'kil0', 'p', 'die']);
    const ev = await afterTurns(within(killed, WAIT_MS, `the kill of ${local}`));
    expect(ev).toMatchObject({ type: 'kill', reason: ['die', expect.anything()] });
    expect(escaped).toEqual([]);
    await stillAnswers(fake);
  });

  it('kil0 for a called port: the call fails with the reason', async () => {
    const { node, fake } = await victimWithPeer(framing, `esc-call-${framing}`);
    const outcome = node.call('evil#p', ['q']).then(
      () => 'replied',
      (err: unknown) => err,
    );
    expect((await fake.nextMatching((m) => m[1] === 'mon1'))[2]).toBe('p');
    sendWithHostile(fake, framing, ['', 'kil0', 'p', 'die']);
    const err = await afterTurns(within(outcome, WAIT_MS, 'the call to end'));
    expect(err).toBeInstanceOf(KilledError);
    expect((err as KilledError).reason[0]).toBe('die');
    expect(escaped).toEqual([]);
    await stillAnswers(fake);
  });

  it('kil1 of a port$ port: its subscriber gets the error', async () => {
    const { node, fake } = await victimWithPeer(framing, `esc-kil1-${framing}`);
    const p$ = node.port$();
    const ended = new Promise<unknown>((resolve) =>
      p$.subscribe({ error: resolve, complete: () => resolve('completed') }),
    );
    const name = p$.id.slice(p$.id.indexOf('#') + 1);
    sendWithHostile(fake, framing, ['', 'kil1', name, 'die']);
    const err = await afterTurns(within(ended, WAIT_MS, `the end of ${p$.id}`));
    expect(err).toBeInstanceOf(KilledError);
    expect(escaped).toEqual([]);
    await stillAnswers(fake);
  });

  it('a message to a port without handler whose first value cannot be shown: unhandled_message', async () => {
    const { node, fake } = await victimWithPeer(framing, `esc-unhandled-${framing}`);
    const local = node.port();
    const reason = firstValueFrom(node.mon$(local));
    sendWithHostile(fake, framing, [local.slice(local.indexOf('#') + 1)]);
    expect((await afterTurns(within(reason, WAIT_MS, `the death of ${local}`)))[0]).toBe('unhandled_message');
    expect(escaped).toEqual([]);
  });
});

describe('formatReason', () => {
  it('renders any decoded value, big integers as digits', () => {
    expect(formatReason(['die', HOSTILE])).toBe(`die {"toString":1,"n":"${2n ** 63n}"}`);
    expect(formatReason([[{ toString: 1 }, 1n]])).toBe('[{"toString":1},"1"]');
    // Values both renderings take stay as they were.
    expect(formatReason(['x', 5n, { a: 1 }, [1, 'b']])).toBe('x 5 {"a":1} [1,"b"]');
  });
});

describe("replies a peer addresses to the node's own node port", () => {
  it.each([
    ['time', (to: unknown[]) => ['', 'time', ...to]],
    ['can', (to: unknown[]) => ['', 'can', 'devnull', ...to]],
    ['aemp::stats', (to: unknown[]) => ['', 'aemp::stats', ...to]],
    // An answer that comes later, from a promise.
    ['eval', (to: unknown[]) => ['', 'eval', 'Promise.resolve(1)', ...to]],
  ])(
    '%s: the reply runs as the asking peer’s request, so its entries go with the peer',
    async (tag, request) => {
      const node = testNode({
        nodeid: `esc-reply-${tag.replace(/\W/g, '')}`,
        secret: SECRET,
        binds: ['127.0.0.1:0'],
      });
      await within(node.ready, WAIT_MS, 'the node to listen');
      node.db.becomeGlobal();
      const fake = await FakePeer.dial(node.binds[0]!);
      await fake.handshake({ nodeId: 'evil', secret: SECRET });
      const family = `injected-${tag}`;
      // The reply `[…, 'g_upd', FAMILY, {k: 'v'}, ANSWER]` goes to the node port: a g_upd.
      for (const own of [node.id, `${node.id}#`])
        fake.send(request([own, 'g_upd', family, { [`k-${own.length}`]: 'v' }]));
      fake.send(['', 'time', 'evil#done']);
      await fake.nextMatching((m) => m[0] === 'done');
      // Several turns: a reply through the local queue is handled on a later one.
      await afterTurns(Promise.resolve(), 5);
      // Handled, as the peer's entries.
      expect(node.db.known.get(family)?.size).toBe(2);
      const gone = firstValueFrom(node.nodes$.pipe(filter((e) => e.type === 'down' && e.node === 'evil')));
      fake.destroy();
      await within(gone, WAIT_MS, 'the node to see the peer go');
      await afterTurns(Promise.resolve(), 5);
      expect(node.db.known.has(family)).toBe(false);
      expect(node.db.sizes().global?.shards).toBe(1);
      expect(escaped).toEqual([]);
    },
  );
});

describe('spawn requests naming the node port (a node that is not secure)', () => {
  it.each([
    ['an init function from a module, not exported', 'fs::nope'],
    ['a registered init function that rejects', 'Esc::rejects'],
    ['a registered init function that throws', 'Esc::throws'],
  ])('%s: ignored; nothing escapes, no port is left', async (_what, func) => {
    const node = testNode({
      nodeid: `esc-spawn-${func.replace(/\W/g, '')}`,
      secret: SECRET,
      binds: ['127.0.0.1:0'],
    });
    node.register('Esc::rejects', () => Promise.reject(new Error('no')));
    node.register('Esc::throws', () => {
      throw new Error('no');
    });
    await within(node.ready, WAIT_MS, 'the node to listen');
    const ports = node.kernel.portCount;
    const fake = await FakePeer.dial(node.binds[0]!);
    await fake.handshake({ nodeId: 'evil', secret: SECRET });
    fake.send(['', 'AnyEvent::MP::_spawn', '', func]);
    // A module import takes a while: a second, valid spawn of the same function after it shows
    // when the first was handled.
    const marker = node.port$();
    const dead = new Promise<unknown>((resolve) =>
      marker.subscribe({ error: resolve, complete: () => resolve([]) }),
    );
    fake.send(['', 'AnyEvent::MP::_spawn', marker.id.slice(marker.id.indexOf('#') + 1), func]);
    await afterTurns(within(dead, WAIT_MS, 'the second spawn to fail'));
    expect(escaped).toEqual([]);
    expect(node.kernel.portCount).toBe(ports);
    await stillAnswers(fake);
  });
});

describe('thrown values from a peer that cannot be shown (a node that is not secure)', () => {
  it('eval rejecting with an object whose toString is no function: the reply carries a text', async () => {
    const { fake } = await victimWithPeer('cbor', 'esc-eval');
    fake.send(['', 'eval', 'Promise.reject({toString: 1, n: 2n ** 70n})', 'evil#r']);
    const [tag, err] = await afterTurns(fake.nextMatching((m) => m[0] === 'r'));
    expect(tag).toBe('r');
    expect(err).toContain('"toString":1');
    expect(escaped).toEqual([]);
  });

  it('a called function rejecting with a value from the request: logged', async () => {
    const { node, fake } = await victimWithPeer('json', 'esc-func');
    node.register('Esc::refuse', (v: unknown) => Promise.reject(v));
    fake.write(`["","Esc::refuse",${HOSTILE_JSON}]`);
    const line = await afterTurns(
      within(node.logged(/^error processing node message from evil: /), WAIT_MS, 'the log line'),
    );
    expect(line.text).toContain('"toString":1');
    expect(escaped).toEqual([]);
    await stillAnswers(fake);
  });
});

describe('log records from a source node', () => {
  it.each<Framing>(['cbor', 'json'])(
    'values that cannot be shown (%s): the record arrives, the catcher port lives on',
    async (framing) => {
      const node = testNode({ nodeid: `esc-logs-${framing}`, secret: SECRET, binds: ['127.0.0.1:0'] });
      await within(node.ready, WAIT_MS, 'the node to listen');
      node.db.becomeGlobal();
      const records: { node: string; time: number; context: string; message: string }[] = [];
      const sub = node.logs$().subscribe((r) => {
        if (r.node === 'evil') records.push(r);
      });
      const fake = await FakePeer.dial(node.binds[0]!);
      await fake.handshake({ nodeId: 'evil', secret: SECRET, framings: framing, sendFraming: framing });
      // Listed in 'l: the catcher asks it for its records.
      fake.send(['', 'g_slave', { "'l": { evil: ['127.0.0.1:1'] } }]);
      const ask = await fake.nextMatching((m) => m[1] === 'AnyEvent::MP::LogCatcher::connect');
      const port = String(ask[3]);
      const name = port.slice(port.indexOf('#') + 1);
      if (framing === 'cbor') fake.send([name, HOSTILE, HOSTILE, 3, HOSTILE]);
      else fake.write(`[${JSON.stringify(name)},${HOSTILE_JSON},${HOSTILE_JSON},3,${HOSTILE_JSON}]`);
      fake.send([name, 1.5, 'ctx', 3, 'second']);
      fake.send(['', 'time', 'evil#done']);
      await fake.nextMatching((m) => m[0] === 'done');
      await afterTurns(Promise.resolve(), 5);
      expect(records.map((r) => r.message)).toEqual([expect.stringContaining('toString'), 'second']);
      expect(records[0]!.context).toContain('toString');
      expect(Number.isFinite(records[0]!.time)).toBe(true);
      // The first port still takes records: the catcher did not ask again.
      expect(fake.pending.length).toBe(0);
      expect(escaped).toEqual([]);
      sub.unsubscribe();
    },
  );
});

describe('integers of millions of digits', () => {
  // Reading a decimal integer exactly costs more than linear time (4 million digits: about a
  // second of the event loop), and so does writing one: beyond EXACT_INTEGER_DIGITS a frame's
  // integer is read as a floating-point number, in both framings.
  it.each<Framing>(['cbor', 'json'])('%s: read as a floating-point number, not exactly', async (framing) => {
    const { node, fake } = await victimWithPeer(framing, `esc-bigint-${framing}`);
    const got: unknown[][] = [];
    const port = node.port((...m: unknown[]) => got.push(m));
    const name = port.slice(port.indexOf('#') + 1);
    const digits = 1 << 20;
    if (framing === 'json') {
      fake.write(
        `[${JSON.stringify(name)},${'9'.repeat(digits)},-${'9'.repeat(digits)},${'9'.repeat(4096)}]`,
      );
    } else {
      // Tags 2 and 3: big integers as their bytes.
      const bytes = Buffer.alloc(digits / 2, 0xff);
      const small = Buffer.alloc(1700, 0xff);
      const bignum = (tag: number, b: Buffer) =>
        Buffer.concat([
          Buffer.from([0xc0 + tag, 0x5a]),
          Buffer.from(Uint32Array.of(b.length).buffer).reverse(),
          b,
        ]);
      fake.write(
        Buffer.concat([
          Buffer.from([0x84]),
          perlCbor(name),
          bignum(2, bytes),
          bignum(3, bytes),
          bignum(2, small),
        ]),
      );
    }
    await stillAnswers(fake);
    await afterTurns(Promise.resolve());
    expect(got.length).toBe(1);
    const [big, negative, largestExact] = got[0]!;
    expect(big).toBe(Infinity);
    expect(negative).toBe(-Infinity);
    // At the limit: still exact.
    expect(typeof largestExact).toBe('bigint');
    expect(escaped).toEqual([]);
  });
});

describe('database lists with values that cannot be shown', () => {
  it('g_upd with such a key in its delete list: the set part still reaches the monitors', async () => {
    const node = testNode({ nodeid: 'esc-db-upd', secret: SECRET, binds: ['127.0.0.1:0'] });
    await within(node.ready, WAIT_MS, 'the node to listen');
    node.db.becomeGlobal();
    const fake = await FakePeer.dial(node.binds[0]!);
    await fake.handshake({ nodeId: 'evil', secret: SECRET });
    fake.send(['', 'g_mon1', 'fam']);
    expect(await fake.nextMatching((m) => m[1] === 'g_chg1')).toEqual(['', 'g_chg1', 'fam', null]);
    fake.send(['', 'g_upd', 'fam', { k: 1 }, ['gone', HOSTILE]]);
    const chg = await fake.nextMatching((m) => m[1] === 'g_chg2');
    expect(chg.slice(0, 4)).toEqual(['', 'g_chg2', 'fam', { k: 1 }]);
    expect(node.db.known.get('fam')?.get('k')).toBe(1);
    expect(escaped).toEqual([]);
  });

  it("a master's g_reply to keys$ with such a key: the query completes", async () => {
    const { node, master } = await nodeWithFakeMaster('esc-db-keys', 'evil-master');
    await master.nextMatching((m) => m[1] === 'g_slave' && m.length > 2);
    const keys = firstValueFrom(node.db.keys$('fam'));
    const [, , family, id] = await master.nextMatching((m) => m[1] === 'g_db_keys');
    expect(family).toBe('fam');
    master.send(['', 'g_reply', id, ['a', HOSTILE]]);
    const got = await afterTurns(within(keys, WAIT_MS, 'the keys of fam'));
    expect(got[0]).toBe('a');
    expect(got[1]).toContain('toString');
    expect(escaped).toEqual([]);
  });
});

describe('requests whose replies go to the node port again and again', () => {
  /** `["", "time", OWN, "time", OWN, …, "evil#r"]` with `n` replies to the node's own port. */
  const chain = (own: string, n: number, tags = ['time']) => {
    const msg: unknown[] = ['', 'time'];
    for (let i = 0; i < n; i++) {
      const tag = tags[i % tags.length]!;
      msg.push(own, ...(tag === 'can' ? ['can', 'time'] : tag === 'snd' ? ['snd', own, 'time'] : [tag]));
    }
    msg.push('evil#r');
    return msg;
  };

  it(`up to MAX_NESTED_REPLIES (${MAX_NESTED_REPLIES}) nested are answered; a chain of 20,000 is dropped at that depth`, async () => {
    const { node, fake } = await victimWithPeer('cbor', 'esc-chain');
    fake.send(chain(node.id, MAX_NESTED_REPLIES));
    const answer = await fake.nextMatching((m) => m[0] === 'r');
    expect(answer.length).toBe(MAX_NESTED_REPLIES + 2);
    // Each level would copy the rest of the message (and, nested, keep its copy).
    fake.send(chain(node.id, 20_000));
    fake.send(chain(`${node.id}#`, 20_000, ['time', 'can', 'snd']));
    await stillAnswers(fake);
    await within(
      node.logged(/^dropping a reply of evil to this node: more than 16 nested/),
      WAIT_MS,
      'the log line',
    );
    expect(fake.pending.length).toBe(0);
    expect(escaped).toEqual([]);
  });
});

describe('the CLI printing a kill reason JSON cannot take', () => {
  it('aemp mon: the reason is printed, not a TypeError', async () => {
    const { victim, attacker } = await pair('attack-escapes-cli');
    const doomed = victim.port(() => {});
    const out: string[] = [];
    const s = Object.create(Session.prototype) as Session;
    Object.assign(s, {
      io: { out: (t: string) => out.push(t), err: (t: string) => out.push(t), env: {}, stdin: process.stdin },
      tool: async () => attacker,
      reach: async () => {},
    });
    const mon = protocol.mon(s, new ArgQueue([doomed]));
    await roundTrip(attacker, victim);
    victim.kil(doomed, 'die', { n: 2n ** 63n });
    await within(mon, WAIT_MS, 'aemp mon to print');
    expect(out.join('')).toBe('die {"n":9223372036854776000} \n');
    expect(escaped).toEqual([]);
  });
});
