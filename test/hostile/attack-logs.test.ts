/**
 * Log forging and amplification (issue 14, item 8): text a peer chooses reaches log lines
 * escaped, cut short and rate-limited, and the CLI prints peer text with its control
 * characters escaped. The node attacks run over real loopback connections between an
 * authenticated attacker node and a victim node that logs into memory; a `time` round trip on
 * the same connection proves that every frame before it was handled.
 */
import { describe, expect, it } from 'vitest';
import { ArgQueue, CliExit } from '../../src/cli/args.js';
import * as protocol from '../../src/cli/node-commands.js';
import { Session } from '../../src/cli/session.js';
import { escapeControls, LOG_BURST, LogLimiter, logText } from '../../src/streams/log/log.js';
import { flood, pair, roundTrip, type TestNode } from '../helpers/peer-pair.js';

const SECRET = 'attack-logs-secret';

/** Raw control characters that must never reach a log line from a peer. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters is the point
const RAW_CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/;

/** A tag that tries to end the log line, forge one, drive the terminal and flood the log. */
const EVIL = 'Evil::f\n[error] forged line\r\u001b[2J\u0007\u2028\u009b31m' + 'A'.repeat(1024 * 1024);

describe('peer text in log lines', () => {
  it('secure-mode refusals of a 1 MB tag with control characters: escaped, cut, rate-limited', async () => {
    const { victim, attacker } = await pair(SECRET, { secure: true, max_frame_bytes: 4 * 1024 * 1024 });
    const mark = victim.logs.length;
    flood(attacker, victim, 21, (i) => [`${EVIL}${i}`]);
    await roundTrip(attacker, victim);
    victim.kernel.logLimit.flush();
    const lines = victim.logs.slice(mark);
    const refusals = lines.filter((l) => l.text.includes('remote execution not allowed'));
    expect(refusals).toHaveLength(LOG_BURST);
    for (const l of lines) expect(l.text).not.toMatch(RAW_CONTROL);
    expect(refusals[0]!.text).toContain('Evil::f\\n[error] forged line\\r\\e[2J\\x07\\u2028\\x9b31m');
    expect(refusals[0]!.text).toMatch(/…\(\d+ more\)\)$/);
    const bytes = lines.reduce((n, l) => n + l.text.length, 0);
    expect(bytes).toBeLessThan(4000);
    const summary = lines.filter((l) => /suppressed/.test(l.text));
    expect(summary).toHaveLength(1);
    expect(summary[0]!.text).toMatch(/^refused requests from attacker: 16 more line\(s\)/);
  }, 60_000);

  it('errors of unresolvable function names (non-secure) are escaped and rate-limited too', async () => {
    const { victim, attacker } = await pair(SECRET, { max_frame_bytes: 4 * 1024 * 1024 });
    const mark = victim.logs.length;
    flood(attacker, victim, 30, (i) => [`${EVIL}${i}`]);
    await roundTrip(attacker, victim);
    // Resolution of unknown names completes asynchronously: wait for the summary's input.
    await victim.logged(/unable to resolve function/);
    await roundTrip(attacker, victim);
    victim.kernel.logLimit.flush();
    const lines = victim.logs.slice(mark);
    for (const l of lines) expect(l.text).not.toMatch(RAW_CONTROL);
    expect(lines.filter((l) => l.text.includes('unable to resolve function')).length).toBeLessThanOrEqual(
      LOG_BURST,
    );
    expect(lines.reduce((n, l) => n + l.text.length, 0)).toBeLessThan(4000);
  }, 60_000);

  it('a kill reason sent with kil1 is escaped in the "unmonitored local port" line', async () => {
    const { victim, attacker } = await pair(SECRET, { secure: true });
    const port = victim.port(() => {});
    const name = port.slice(port.indexOf('#') + 1);
    flood(attacker, victim, 1, () => ['kil1', name, 'die', 'x\n[error] forged\u001b[0m']);
    const line = await victim.logged(/unmonitored local port/);
    expect(line.text).not.toMatch(RAW_CONTROL);
    expect(line.text).toContain('x\\n[error] forged\\e[0m');
  }, 60_000);
});

describe('log helpers', () => {
  it('logText escapes controls and cuts long text with a count', () => {
    expect(logText('a\nb\rc\u001bd\u2029')).toBe('a\\nb\\rc\\ed\\u2029');
    expect(logText('x'.repeat(250), 200)).toBe(`${'x'.repeat(200)}…(50 more)`);
    expect(escapeControls('plain ü text')).toBe('plain ü text');
  });

  it('LogLimiter: a burst per key, then one summary per interval; keys are bounded', () => {
    const out: string[] = [];
    const limiter = new LogLimiter(() => ({ log: (_l, t) => out.push(t) }), 2, 60_000);
    for (let i = 0; i < 10; i++) limiter.log('kind from a', 4, `a${i}`);
    limiter.log('kind from b', 4, 'b0');
    limiter.flush();
    expect(out).toEqual([
      'a0',
      'a1',
      'b0',
      'kind from a: 8 more line(s) like the above suppressed (at most 2 per 60 s)',
    ]);
    limiter.close();
  });
});

/** An Io capturing what a CLI command prints. */
function captureIo(): { io: ConstructorParameters<typeof Session>[0]; out: string[] } {
  const out: string[] = [];
  return {
    out,
    io: { out: (t) => out.push(t), err: (t) => out.push(t), env: {}, stdin: process.stdin },
  };
}

describe('CLI output of peer text', () => {
  /**
   * Runs a protocol command in-process with the tool session's node replaced by `tool`, a node
   * connected to `target` over loopback.
   */
  async function run(cmd: (s: Session, q: ArgQueue) => Promise<void>, tool: TestNode, args: unknown[]) {
    const { io, out } = captureIo();
    const s = Object.create(Session.prototype) as Session;
    Object.assign(s, { io, tool: async () => tool, reach: async () => {} });
    try {
      await cmd(s, new ArgQueue(args));
    } catch (err) {
      // A failure exits with its text on stderr: that is output too.
      if (!(err instanceof CliExit)) throw err;
      out.push(`${err.message}\n`);
    }
    return out.join('');
  }

  const NASTY = 'bye\n[error] forged\r\u001b[31mred\u009b2J\u2028';

  it('mon, snd and cal print kill reasons and replies with control characters escaped', async () => {
    const { victim, attacker } = await pair(SECRET);
    // mon: a port that dies with a nasty reason once the tool monitors it.
    const doomed = victim.port(() => {});
    const mon = run(protocol.mon, attacker, [doomed]);
    await roundTrip(attacker, victim);
    victim.kil(doomed, 'die', NASTY);
    const monOut = await mon;
    expect(monOut).toBe(`die ${escapeControls(NASTY)} \n`);
    expect(monOut.slice(0, -1)).not.toMatch(RAW_CONTROL);

    // snd: the port is gone: the kill reason comes back as the failure (no_such_port names the port ID).
    const sndOut = await run(protocol.snd, attacker, [`${victim.id}#${NASTY}`, 'x']);
    expect(sndOut.slice(0, -1)).not.toMatch(RAW_CONTROL);
    expect(sndOut).toContain('\\n[error] forged\\r\\e[31m');

    // cal: the reply as JSON; C1 and the line separator escaped as \uXXXX (still JSON).
    const echo = victim.port((...m: unknown[]) => victim.snd(m[m.length - 1] as string, NASTY));
    const calOut = await run(protocol.cal, attacker, [echo]);
    expect(calOut.slice(0, -1)).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(`[${calOut}]`)).toEqual([NASTY]);
  }, 60_000);
});
