/**
 * Network-wide logs (AnyEvent::MP::LogCatcher) over loopback TCP: an aemp catcher collecting
 * other aemp nodes and itself, a Perl-like catcher and a Perl-like source in Perl's wire shapes
 * (test/fixtures/logcatcher.ts), re-connection, teardown, secure mode and the bounds of a sink.
 */
import { filter, firstValueFrom, type Observable, ReplaySubject, type Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogRecord } from '../../src/index.js';
import {
  LOG_CONNECT,
  logCatcherCounts,
  logSinkPorts,
  SINK_BURST,
  SINK_MAX_BACKLOG,
} from '../../src/streams/log/log-catcher.js';
import { PERL_CATCHER_PORT, PERL_CONNECT_HEX, PERL_MON1_VALUE } from '../fixtures/logcatcher.js';
import { FakePeer, type Frame, perlCbor, SECRET, within } from '../helpers/fake-peer.js';
import { testNode, turn } from '../helpers/node.js';

const WAIT_MS = 5000;
const subs: Subscription[] = [];
afterEach(() => {
  for (const s of subs.splice(0)) s.unsubscribe();
});

async function listening(nodeid: string, opts: Record<string, unknown> = {}) {
  const n = testNode({ nodeid, secret: SECRET, binds: ['127.0.0.1:0'], ...opts });
  await within(n.ready, WAIT_MS, 'the node to listen');
  return n;
}

/** Records of `logs$`, replayed to every waiter. */
function collect(src: Observable<LogRecord>) {
  const seen = new ReplaySubject<LogRecord>();
  subs.push(src.subscribe(seen));
  const wait = (pred: (r: LogRecord) => boolean, what: string) =>
    within(firstValueFrom(seen.pipe(filter(pred))), WAIT_MS, what);
  return { wait, sub: subs[subs.length - 1]! };
}

const attached = (from: string) => (r: LogRecord) =>
  r.node === from && /^starting to propagate log messages to /.test(r.message);

/** Text of a value our node sent (CBOR text or byte string). */
const str = (v: unknown) => (Buffer.isBuffer(v) ? v.toString('latin1') : v);

async function frameWhere(fake: FakePeer, pred: (v: unknown[]) => boolean, what: string): Promise<Frame> {
  for (;;) {
    const f = await within(fake.nextFrame(WAIT_MS), WAIT_MS, what);
    if (pred(f.value.map(str))) return f;
  }
}

async function cluster() {
  const seed = await listening('lc-seed', { services: ['AnyEvent::MP::Global::'] });
  const seeds = [seed.binds[0]];
  const a = await listening('lc-a', { seeds });
  const b = await listening('lc-b', { seeds });
  const c = await listening('lc-c', { seeds });
  return { seed, a, b, c };
}

describe('aemp catcher of aemp nodes', () => {
  it('gets the records of two other nodes and its own, in AnyEvent::Log levels', async () => {
    const { a, b, c } = await cluster();
    const { wait } = collect(c.logs$(7));
    c.log(5, 'own record', 'main');
    const own = await wait((r) => r.message === 'own record', 'own record');
    expect(own).toMatchObject({ node: 'lc-c', context: 'main', level: 5 });
    // Level 8 notes are above 7: wait for attachment through the sink counts instead.
    await within(a.logged(/starting to propagate log messages to lc-c#/), WAIT_MS, 'a attached');
    await within(b.logged(/starting to propagate log messages to lc-c#/), WAIT_MS, 'b attached');
    a.log(4, 'from a', 'My::App');
    b.log(7, 'from b');
    b.log(8, 'too verbose for level 7');
    b.log(6, 'after the verbose one');
    const ra = await wait((r) => r.message === 'from a', 'record of a');
    expect(ra).toMatchObject({ node: 'lc-a', context: 'My::App', level: 4 });
    expect(typeof ra.time).toBe('number');
    const rb = await wait((r) => r.message === 'from b', 'record of b');
    expect(rb).toMatchObject({ node: 'lc-b', context: 'main', level: 7 });
    await wait((r) => r.message === 'after the verbose one', 'b level 6');
  });

  it('asks again when the port dies while the node is listed; unsubscribing tears down', async () => {
    const { seed, a, c } = await cluster();
    const ports0 = c.kernel.portCount;
    const { wait, sub } = collect(c.logs$(9));
    await wait(attached('lc-a'), 'first attachment of a');
    await wait(attached('lc-seed'), 'attachment of the seed');
    const [first] = logSinkPorts(a);
    expect(first).toMatch(/^lc-c#/);
    // Kill the catcher's port from the source side: the catcher asks again with a new port.
    a.kil(first!, 'die', 'test kill');
    await wait((r) => attached('lc-a')(r) && !r.message.endsWith(first!), 'second attachment of a');
    expect(logSinkPorts(a)).toHaveLength(1);
    expect(logSinkPorts(a)[0]).not.toBe(first);
    expect(logCatcherCounts(c).catcherPorts).toBeGreaterThanOrEqual(2);

    const stopLine = (port: string) => new RegExp(`stopped propagating log messages to ${port}$`);
    const stopped = a.logged(stopLine(logSinkPorts(a)[0]!));
    const stoppedSeed = seed.logged(stopLine(logSinkPorts(seed)[0]!));
    const localBefore = logCatcherCounts(c).localSinks;
    sub.unsubscribe();
    expect(logCatcherCounts(c)).toMatchObject({ catcherPorts: 0, localSinks: localBefore - 1 });
    await within(stopped, WAIT_MS, 'a detaching');
    await within(stoppedSeed, WAIT_MS, 'seed detaching');
    expect(logCatcherCounts(a).sinks).toBe(0);
    expect(c.kernel.portCount).toBe(ports0); // the kills were delivered by now
    expect(a.kernel.remoteMonitorCount).toBe(0);
    expect(c.kernel.remoteMonitorCount).toBe(0);
  });

  it('the catch service re-logs caught records as [node±diff] message, escaped', async () => {
    const { a, c } = await cluster();
    c.sndToFunc(c.id, 'AnyEvent::MP::LogCatcher::catch', 6);
    await within(a.logged(/starting to propagate log messages to lc-c#/), WAIT_MS, 'a attached');
    a.log(5, 'line1\nline2\u001b[31m', 'Some::Pkg');
    const line = await within(c.logged(/^\[lc-a[+-]?[0-9.s]*\] line1/), WAIT_MS, 'caught line');
    expect(line.level).toBe(5);
    expect(line.text).toMatch(/\] line1\\nline2\\e\[31m$/);
    // Caught records are not sent on: a second catcher of c gets c's own records only.
    c.sndToFunc(c.id, 'AnyEvent::MP::LogCatcher::catch', null);
  });
});

describe('Perl-shaped peers', () => {
  it('a Perl catcher: connect request from the vector, mon1 back, records [PORT, TIME, TITLE, LEVEL, MSG]', async () => {
    const w = await listening('W');
    const fake = await FakePeer.dial(w.binds[0]!);
    await fake.handshake({ secret: SECRET, nodeId: 'C', framings: 'cbor' });
    fake.write(Buffer.from(PERL_CONNECT_HEX, 'hex'));
    const name = PERL_CATCHER_PORT.slice(2);
    await frameWhere(
      fake,
      (v) => v[0] === PERL_MON1_VALUE[0] && v[1] === PERL_MON1_VALUE[1] && v[2] === name,
      'mon1',
    );
    w.log(5, 'hello from W', 'main');
    const rec = await frameWhere(fake, (v) => v[0] === name && v[4] === 'hello from W', 'record');
    const [, time, title, level] = rec.value.map(str);
    expect(title).toBe('main');
    expect(level).toBe(5);
    expect(typeof time).toBe('number');
    expect(rec.bytes.includes(0xfb)).toBe(true); // TIME a float64, as Perl sends it
    expect(logCatcherCounts(w).sinks).toBe(1);
    // The catcher's port dies: W detaches at once.
    const stopped = w.logged(/stopped propagating log messages to C#bAMSYAq3xc/);
    fake.send(['', 'kil0', name]);
    await within(stopped, WAIT_MS, 'detach on kil0');
    expect(logCatcherCounts(w).sinks).toBe(0);
  });

  it('rejects a level that is not 1…9 (Perl bug: catch(undef) sends null)', async () => {
    const w = await listening('W2');
    const fake = await FakePeer.dial(w.binds[0]!);
    await fake.handshake({ secret: SECRET, nodeId: 'C', framings: 'cbor' });
    fake.send(['', LOG_CONNECT, 0, 'C#p1', null]);
    await within(w.logged(/not a valid logging level/), WAIT_MS, 'refusal');
    expect(logCatcherCounts(w).sinks).toBe(0);
  });

  it('a secure node refuses connect, as Perl does (logs may hold sensitive text)', async () => {
    const w = await listening('W3', { secure: true });
    const fake = await FakePeer.dial(w.binds[0]!);
    await fake.handshake({ secret: SECRET, nodeId: 'C', framings: 'cbor' });
    fake.write(Buffer.from(PERL_CONNECT_HEX, 'hex'));
    await within(w.logged(/remote execution not allowed/), WAIT_MS, 'refusal');
    expect(logCatcherCounts(w).sinks).toBe(0);
  });

  it('a Perl source: byte strings, latin1 text and float time are read; levels clamped', async () => {
    const c = await listening('C4', { services: ['AnyEvent::MP::Global::'] });
    const fake = await FakePeer.dial(c.binds[0]!);
    await fake.handshake({ secret: SECRET, nodeId: 'W4', framings: 'cbor' });
    const { wait } = collect(c.logs$(9));
    c.db.set("'l", 'W4', ['127.0.0.1:1']);
    const req = await frameWhere(fake, (v) => v[1] === LOG_CONNECT, 'connect request');
    const [, , version, port, level] = req.value.map(str);
    expect(version).toBe(0);
    expect(level).toBe(9);
    const name = String(port).slice(String(port).indexOf('#') + 1);
    fake.send(['', 'mon1', name]);
    const cafe = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
    fake.write(perlCbor([name, 1796527896.793872, 'AnyEvent::MP::Kernel', 7, cafe]));
    fake.write(perlCbor([name, 1796527897, 'main', 0, 'fatal there', 'extra']));
    fake.write(perlCbor([name, 1796527898.5, 'main', 12, 'too high']));
    const r1 = await wait((r) => r.node === 'W4' && r.message === 'café', 'latin1 record');
    expect(r1).toMatchObject({ time: 1796527896.793872, context: 'AnyEvent::MP::Kernel', level: 7 });
    const r2 = await wait((r) => r.message === 'fatal there', 'level 0 record');
    expect(r2.level).toBe(1);
    const r3 = await wait((r) => r.message === 'too high', 'level 12 record');
    expect(r3.level).toBe(9);
  });
});

describe('bounds', () => {
  it('a stalled catcher: the sender drops with a count, its backlog stays bounded, and says so later', async () => {
    const w = await listening('W5');
    const fake = await FakePeer.dial(w.binds[0]!);
    await fake.handshake({ secret: SECRET, nodeId: 'C', framings: 'cbor' });
    fake.write(Buffer.from(PERL_CONNECT_HEX, 'hex'));
    const name = PERL_CATCHER_PORT.slice(2);
    await frameWhere(fake, (v) => v[1] === 'mon1', 'mon1');
    fake.socket.pause();
    const text = 'x'.repeat(1000);
    let maxBacklog = 0;
    subs.push(w.backlog$('C').subscribe((b) => (maxBacklog = Math.max(maxBacklog, b))));
    // A storm: many turns of many records each, far more than a catcher that reads nothing takes.
    for (let t = 0; t < 200; t++) {
      for (let i = 0; i < 5000; i++) w.log(7, text);
      await turn();
    }
    expect(maxBacklog).toBeLessThanOrEqual(SINK_MAX_BACKLOG + SINK_BURST * 1100 + 64 * 1024);
    // Message traffic still flows between other ports of the node.
    const got = new Promise<unknown[]>((resolve) => {
      const p = w.port((...m: unknown[]) => resolve(m));
      w.snd(p, 'still', 'alive');
    });
    expect(await within(got, WAIT_MS, 'local message during the storm')).toEqual(['still', 'alive']);
    fake.socket.resume();
    const notice = await frameWhere(
      fake,
      (v) => v[0] === name && typeof v[4] === 'string' && /^\d+ records dropped$/.test(v[4]),
      'drop notice',
    );
    expect(Number(/^(\d+)/.exec(str(notice.value[4]) as string)![1])).toBeGreaterThan(0);
  });
});
