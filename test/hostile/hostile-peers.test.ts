/**
 * Hostile peers against a listening node over loopback TCP. In every test a well-behaved peer
 * (the bystander) is connected before the attack and must still get replies afterwards; the
 * attacking connection must end with a logged reason, or stay up where AEMP says it should.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/testing.js';
import {
  FakePeer,
  perlCbor,
  perlGreeting,
  perlNonce,
  SECRET,
  WAIT_MS,
  within,
} from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

type TestNode = ReturnType<typeof testNode>;

async function listening(opts: Parameters<typeof testNode>[0] = {}): Promise<TestNode> {
  const n = testNode({ nodeid: 'target', secret: SECRET, binds: ['127.0.0.1:0'], ...opts });
  await within(n.ready, WAIT_MS, 'the node to listen');
  return n;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A good peer, connected before the attack; `check()` proves it is still served. */
async function bystander(n: TestNode): Promise<{ check(): Promise<void> }> {
  const fake = await FakePeer.dial(n.binds[0]!);
  await fake.handshake({ nodeId: 'bystander', secret: SECRET });
  let k = 0;
  const check = async () => {
    const tag = `b${++k}`;
    fake.send(['', 'time', `bystander#${tag}`]);
    expect(await fake.next()).toEqual([tag, expect.any(Number)]);
    expect(n.upNodes()).toContain('bystander');
  };
  await check();
  return { check };
}

/** An attacker that completed the handshake (the node sees it up). */
async function authenticated(n: TestNode, nodeId: string, framing: 'cbor' | 'json' = 'cbor') {
  const fake = await FakePeer.dial(n.binds[0]!);
  await fake.handshake({ nodeId, secret: SECRET, framings: framing, sendFraming: framing });
  fake.send(['', 'time', `${nodeId}#hs`]);
  expect(await fake.next()).toEqual(['hs', expect.any(Number)]);
  return fake;
}

async function lostWith(n: TestNode, nodeId: string, re: RegExp): Promise<string> {
  const line = await within(
    n.logged(new RegExp(`^connection to ${escapeRe(nodeId)} lost: `)),
    WAIT_MS,
    'log',
  );
  expect(line.text).toMatch(re);
  return line.text;
}

describe('slow and oversized handshakes', () => {
  it('a greeting trickled one byte per 150 ms outlives each read timeout but not the whole-handshake deadline', async () => {
    // Time is virtual: the node's timers run when the test moves its clock, one byte per step.
    const clock = new VirtualClock();
    const n = await listening({ monitor_timeout: 0.5, handshake_timeout: 1, clock });
    const good = await bystander(n);
    const fake = await FakePeer.dial(n.binds[0]!);
    const greeting = `${perlGreeting({ nodeId: 'trickler', peeraddr: fake.peeraddr })}\n`;
    const failed = n.logged(/handshake failed: /).then((line) => ({ line, at: clock.now() }));
    const t0 = clock.now();
    let sent = 0;
    // Every byte restarts the 0.5 s read timeout; the 1 s handshake_timeout still ends it.
    while (!fake.isClosed && sent < greeting.length - 1) {
      fake.write(greeting.slice(sent, sent + 1));
      sent++;
      await clock.run(150); // the trickle's pace
    }
    await fake.waitClosed(3000);
    const { line, at } = await within(failed, WAIT_MS, 'the failed handshake in the log');
    console.log(
      `trickle: ${sent} bytes, closed after ${at - t0} virtual ms (monitor_timeout 0.5 s, handshake_timeout 1 s)`,
    );
    expect(sent).toBeGreaterThan(4); // more than one read timeout's worth of trickling
    expect(at - t0).toBeGreaterThanOrEqual(1000);
    expect(at - t0).toBeLessThan(1150);
    expect(line.text).toBe(`${fake.localAddr}: handshake failed: handshake not completed within 1 s`);
    await good.check();
  });

  it('a trickle cannot grow a line past 4096 bytes: one byte per write, no LF → closed at the limit', async () => {
    const n = await listening({ monitor_timeout: 1 });
    const good = await bystander(n);
    const fake = await FakePeer.dial(n.binds[0]!);
    for (let i = 0; i < 4200 && !fake.isClosed; i++) {
      fake.write('a');
      if (i % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await fake.waitClosed();
    const line = await within(n.logged(/handshake failed: /), WAIT_MS, 'log');
    expect(line.text).toMatch(/handshake failed: handshake line too long \(\d+ bytes or more, limit 4096 /);
    await good.check();
  });

  it('a 10 MB handshake line is cut off at 4 KiB; the writer sees the connection die', async () => {
    const n = await listening();
    const good = await bystander(n);
    const fake = await FakePeer.dial(n.binds[0]!);
    const t0 = performance.now();
    fake.write(Buffer.alloc(10 * 1024 * 1024, 0x61));
    await fake.waitClosed();
    const ms = performance.now() - t0;
    console.log(`10 MB handshake line: closed after ${ms.toFixed(0)} ms (${fake.closeText})`);
    const line = await within(n.logged(/handshake failed: /), WAIT_MS, 'log');
    expect(line.text).toMatch(/handshake line too long/);
    expect(n.upNodes()).toEqual(['bystander']);
    await good.check();
  });
});

describe('oversized, endless and deeply nested frames', () => {
  it('a 10 MB JSON frame is accepted under the default 16 MiB limit and delivered whole', async () => {
    const n = await listening();
    const good = await bystander(n);
    let got: unknown[] | undefined;
    const port = n.port((...m: unknown[]) => {
      got = m;
    });
    const fake = await authenticated(n, 'bigjson', 'json');
    const big = 'y'.repeat(10 * 1024 * 1024);
    fake.write(JSON.stringify([port.split('#')[1], 'big', big]));
    fake.send(['', 'time', 'bigjson#after']);
    expect(await fake.next()).toEqual(['after', expect.any(Number)]);
    expect(got?.[0]).toBe('big');
    expect(String(got?.[1]).length).toBe(big.length);
    await good.check();
  });

  it.each([
    [
      'JSON',
      'json' as const,
      () => Buffer.from(`["x","${'z'.repeat(3 * 1024 * 1024)}"]`),
      /JSON frame exceeds 1048576/,
    ],
    [
      'CBOR (indefinite array, endless items)',
      'cbor' as const,
      // two bytes per item (18 64 = 100), so that the bytes, not max_frame_items, run out first
      () => Buffer.concat([Buffer.from([0x9f]), Buffer.alloc(3 * 1024 * 1024, '1864', 'hex')]),
      /CBOR frame exceeds 1048576/,
    ],
  ])('%s: a frame growing past max_frame_bytes 1 MiB ends the connection', async (_w, framing, bytes, re) => {
    const n = await listening({ max_frame_bytes: 1024 * 1024 });
    const good = await bystander(n);
    const fake = await authenticated(n, `endless-${framing}`, framing);
    fake.write(bytes());
    await fake.waitClosed();
    await lostWith(n, `endless-${framing}`, re);
    await good.check();
  });

  it.each([
    ['CBOR array of 2^64-1 items', Buffer.from([0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
    [
      'CBOR byte string of 2^64-1 bytes',
      Buffer.from([0x82, 0x40, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ],
    ['CBOR text string of 2^32-1 bytes', Buffer.from([0x82, 0x40, 0x7a, 0xff, 0xff, 0xff, 0xff])],
    ['CBOR map of 2^32-1 pairs', Buffer.from([0x82, 0x40, 0xba, 0xff, 0xff, 0xff, 0xff])],
  ])('%s: refused at the length head, before any payload', async (_w, head) => {
    const n = await listening();
    const good = await bystander(n);
    const fake = await authenticated(n, 'liar');
    fake.write(head);
    await fake.waitClosed();
    await lostWith(n, 'liar', /^connection to liar lost: protocol error: CBOR frame exceeds/);
    await good.check();
  });

  it.each([
    ['CBOR: 200,000 nested one-element arrays', 'cbor' as const, Buffer.alloc(200_000, 0x81)],
    ['CBOR: 200,000 nested indefinite arrays', 'cbor' as const, Buffer.alloc(200_000, 0x9f)],
    [
      'CBOR: tags nested 200,000 deep',
      'cbor' as const,
      Buffer.concat([Buffer.from([0x81]), Buffer.alloc(200_000, 0xc6)]),
    ],
    ['JSON: 200,000 nested arrays', 'json' as const, Buffer.alloc(200_000, 0x5b)],
    ['JSON: 200,000 nested objects', 'json' as const, Buffer.from(`[${'{"a":'.repeat(200_000)}`)],
  ])('%s → connection closed, no stack overflow', async (_w, framing, bytes) => {
    const n = await listening();
    const good = await bystander(n);
    const fake = await authenticated(n, 'deep', framing);
    fake.write(bytes);
    await fake.waitClosed();
    await lostWith(
      n,
      'deep',
      /^connection to deep lost: protocol error: bad (CBOR|JSON) frame: nested deeper than 500 levels$/,
    );
    await good.check();
  });

  it('invalid UTF-8 in a JSON frame → closed; the frames before it are delivered', async () => {
    const n = await listening();
    const good = await bystander(n);
    const seen: unknown[][] = [];
    const port = n.port((...m: unknown[]) => seen.push(m));
    const name = port.split('#')[1]!;
    const fake = await authenticated(n, 'badutf8', 'json');
    fake.write(
      Buffer.concat([
        Buffer.from(`["${name}","before"]`),
        Buffer.from(`["${name}","`),
        Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
        Buffer.from('"]'),
      ]),
    );
    await fake.waitClosed();
    await lostWith(n, 'badutf8', /protocol error: bad JSON frame: invalid UTF-8/);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([['before']]);
    await good.check();
  });
});

describe('messages nobody can take', () => {
  it('to nonexistent ports, odd port names and unknown requests: dropped, the connection stays up', async () => {
    const n = await listening();
    const good = await bystander(n);
    const fake = await authenticated(n, 'lost');
    const junk: unknown[][] = [
      ['nosuchport', 'hello'],
      ['no#such#port', 1],
      [42, 'numeric port name'],
      [null, 'null port name'],
      [{ a: 1 }, 'object port name'],
      [['x'], 'array port name'],
      [true],
      [],
      ['', 'kil1', 'nosuchport', 'reason'],
      ['', 'mon0', 'nosuchport'],
      ['', 'snd', 'target#nosuchport', 'relayed'],
      ['', 'snd', 'elsewhere#p', 'to an unknown node'],
      ['', 42],
      ['', 'Not::A::function', 1],
      ['', 'constructor'],
      ['', '__proto__'],
      ['', 'toString'],
      ['', 'hasOwnProperty', 'x'],
      ['__proto__', 'x'],
      ['constructor', 'x'],
    ];
    for (let i = 0; i < 200; i++) for (const m of junk) fake.send(m);
    // mon1 of a missing port: the only request that answers.
    fake.send(['', 'mon1', 'nosuchport']);
    expect(await fake.next()).toEqual([
      '',
      'kil0',
      'nosuchport',
      'no_such_port',
      'cannot monitor nonexistent port',
      'target#nosuchport',
    ]);
    fake.send(['', 'time', 'lost#still-here']);
    expect(await fake.next()).toEqual(['still-here', expect.any(Number)]);
    expect(fake.isClosed).toBe(false);
    expect(n.upNodes().sort()).toEqual(['bystander', 'lost']);
    await good.check();
  });
});

describe('request names that are Object.prototype properties', () => {
  // Only the request table's own names count, never names inherited from Object.prototype.
  it('can → false for constructor, toString, hasOwnProperty, __proto__, valueOf', async () => {
    const n = await listening();
    const fake = await authenticated(n, 'asker');
    const names = ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf'];
    for (const [i, name] of names.entries()) fake.send(['', 'can', name, `asker#c${i}`]);
    const answers: unknown[] = [];
    for (const _ of names) answers.push((await fake.next())[1]);
    const falsy = (v: unknown) => v === false || v === '' || v === 0;
    expect(answers.map(falsy)).toEqual(names.map(() => true));
  });
});

describe('a peer that claims to be a node it is not', () => {
  it('greeting with a valid-looking nonce, then frames instead of an auth line → closed, nothing delivered', async () => {
    const n = await listening();
    const good = await bystander(n);
    const seen: unknown[][] = [];
    const port = n.port((...m: unknown[]) => seen.push(m));
    const fake = await FakePeer.dial(n.binds[0]!);
    fake.write(`${perlGreeting({ nodeId: 'bystander2', peeraddr: fake.peeraddr })}\n${perlNonce()}\n`);
    fake.write(perlCbor([port.split('#')[1]!, 'no auth line at all']));
    fake.write('\n');
    await fake.waitClosed();
    await within(n.logged(/handshake failed: /), WAIT_MS, 'log');
    expect(seen).toEqual([]);
    await good.check();
  });
});
