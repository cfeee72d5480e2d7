/**
 * The protocol subcommands (spec/config-and-cli.md §4.5) against a node started with
 * `aemp run srv` in this file: the tool's own node (profile `aemp`) uses it as its seed.
 * Ports to talk to are made on that node with `aemp eval`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aempDone, cleanUpAfter, type RunningNode, runNode } from './helpers.js';

cleanUpAfter('all');

let srv: RunningNode;
/** Ports made on the node for the tests (one `aemp eval` makes them all). */
let ports: {
  quiet: string;
  echo: string;
  mortal: string;
  dying: string;
  doomed: string;
  ending: string;
  evilCal: string;
  evilMon: string;
};

/** A kill reason with control characters (a newline, a terminal escape) in it. */
const EVIL = ", 'die', 'a\\nb\\u001b[2J'";
/** How the tool prints it. */
const EVIL_SHOWN = 'die a\\nb\\e[2J';

/**
 * A port that its node kills (with `reason`) as soon as a remote node monitors it, so that
 * `aemp mon` sees the kill only after its monitor is in place.
 */
const killedWhenMonitored = (reason: string) =>
  `(() => { const p = rcv(port(), () => {}); const k = node.kernel; const on = k.remoteMonitor.bind(k); ` +
  `k.remoteMonitor = (src, name, up) => { const r = on(src, name, up); ` +
  `if (up && p === NODE + '#' + name) kil(p${reason}); return r; }; return p; })()`;

beforeAll(async () => {
  srv = await runNode();
  const r = await srv.tool([
    'eval',
    srv.id,
    '({',
    'quiet: rcv(port(), () => {}),',
    // answers every message [...args, reply] with [...args]
    'echo: rcv(port(), (...m) => snd(m[m.length - 1], ...m.slice(0, -1))),',
    'mortal: port(),', // dies on its first message (unhandled)
    'dying: port(),',
    `doomed: ${killedWhenMonitored(", 'die', 'bye'")},`,
    `ending: ${killedWhenMonitored('')},`,
    `evilCal: ${killedWhenMonitored(EVIL)},`,
    `evilMon: ${killedWhenMonitored(EVIL)},`,
    '})',
  ]);
  expect(r.code, r.err).toBe(0);
  ports = JSON.parse(r.out);
}, 30_000);

afterAll(async () => {
  srv.proc.child.kill('SIGTERM');
  expect(await srv.proc.exited()).toBe(0);
});

describe.concurrent('one-shot commands', () => {
  it('eval: results as JSON without the brackets; the words are joined by spaces', async () => {
    expect(await srv.tool(['eval', srv.id, '6', '*', '7'])).toEqual({ code: 0, out: '42\n', err: '' });
    expect((await srv.tool(['eval', srv.id, '({ a: [1, "ü"] })'])).out).toBe('{"a":[1,"ü"]}\n');
    expect((await srv.tool(['eval', `${srv.id}#someport`, 'undefined'])).out).toBe('\n');
  });

  it('eval: an error dies with its text (exit 255); up_nodes as Perl tools send it', async () => {
    const r = await srv.tool(['eval', srv.id, 'throw new Error("nope")']);
    expect(r).toEqual({ code: 255, out: '', err: 'nope\n' });
    const up = await srv.tool(['eval', srv.id, 'AnyEvent::MP::Kernel::up_nodes']);
    expect(up.code).toBe(0);
    expect(up.out).toMatch(/^"aemp\/[^/]+\/[0-9A-Za-z]+"/);
  });

  it('eval: no answer in time (AEMP_TIMEOUT, default 5 s) exits 1 and says so', async () => {
    const r = await aempDone(['eval', srv.id, 'new Promise(() => {})'], {
      AEMP_RC: srv.rc,
      AEMP_TIMEOUT: '0.5',
    });
    expect(r).toEqual({ code: 1, out: '', err: `aemp eval: no answer from ${srv.id} within 0.5 s\n` });
  });

  it('snd: confirms delivery with "message sent successfully \\n"', async () => {
    expect(await srv.tool(['snd', ports.quiet, 'hello', '{"x": 1}'])).toEqual({
      code: 0,
      out: 'message sent successfully \n',
      err: '',
    });
  });

  it('snd: a port that does not exist fails: exit 255, its kill reason on stderr', async () => {
    const r = await srv.tool(['snd', `${srv.id}#nope`, 'hello']);
    expect(r).toEqual({
      code: 255,
      out: '',
      err: `aemp snd: ${srv.id}#nope: no_such_port cannot monitor nonexistent port ${srv.id}#nope\n`,
    });
  });

  it('snd: a node that cannot be reached fails: exit 255, transport_error on stderr', async () => {
    const r = await srv.tool(['snd', 'nosuch/node#p', 'hello']);
    expect(r.code).toBe(255);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^aemp snd: nosuch\/node#p: transport_error nosuch\/node \S[^\n]*\n$/);
  });

  it('snd: a message that reached its port is confirmed, even if the port dies of it; the next snd fails', async () => {
    // Kills are deferred behind the delivery, so the confirmation is on its way first.
    expect(await srv.tool(['snd', ports.dying, 'x'])).toEqual({
      code: 0,
      out: 'message sent successfully \n',
      err: '',
    });
    const again = await srv.tool(['snd', ports.dying, 'x']);
    expect(again.code).toBe(255);
    expect(again.err).toBe(
      `aemp snd: ${ports.dying}: no_such_port cannot monitor nonexistent port ${ports.dying}\n`,
    );
  });

  it('cal: the reply as JSON without brackets', async () => {
    expect(await srv.tool(['cal', ports.echo, 'a', '{"x":1}', '[2]', '3'])).toEqual({
      code: 0,
      out: '"a",{"x":1},[2],"3"\n',
      err: '',
    });
  });

  it('cal: a port that dies, does not exist or cannot be reached fails: exit 255, the reason on stderr', async () => {
    const died = await srv.tool(['cal', ports.mortal, 'x']);
    expect(died.code).toBe(255);
    expect(died.out).toBe('');
    expect(died.err).toMatch(new RegExp(`^aemp cal: ${esc(ports.mortal)}: \\S[^\\n]*\\n$`));
    expect(await srv.tool(['cal', `${srv.id}#nope`, 'x'])).toEqual({
      code: 255,
      out: '',
      err: `aemp cal: ${srv.id}#nope: no_such_port cannot monitor nonexistent port ${srv.id}#nope\n`,
    });
    const far = await srv.tool(['cal', 'nosuch/node#p', 'x']);
    expect(far.code).toBe(255);
    expect(far.err).toMatch(/^aemp cal: nosuch\/node#p: transport_error nosuch\/node \S[^\n]*\n$/);
  });

  it('peer text is printed with control characters escaped: snd, cal, mon, eval', async () => {
    const [s, c, m, e] = await Promise.all([
      srv.tool(['snd', `${srv.id}#no\u001bpe`, 'x']),
      srv.tool(['cal', ports.evilCal, 'x']),
      srv.tool(['mon', ports.evilMon]),
      srv.tool(['eval', srv.id, 'throw new Error("x\\ny\\u001b]0;title\\u0007")']),
    ]);
    const gone = `${srv.id}#no\\epe`;
    expect(s).toEqual({
      code: 255,
      out: '',
      err: `aemp snd: ${gone}: no_such_port cannot monitor nonexistent port ${gone}\n`,
    });
    expect(c).toEqual({ code: 255, out: '', err: `aemp cal: ${ports.evilCal}: ${EVIL_SHOWN}\n` });
    expect(m).toEqual({ code: 0, out: `${EVIL_SHOWN} \n`, err: '' });
    expect(e).toEqual({ code: 255, out: '', err: 'x\\ny\\e]0;title\\x07\n' });
  });

  it('mon: prints the kill reason words; a missing port reports no_such_port', async () => {
    expect(await srv.tool(['mon', ports.doomed])).toEqual({ code: 0, out: 'die bye \n', err: '' });
    expect(await srv.tool(['mon', `${srv.id}#gone`])).toEqual({
      code: 0,
      out: `no_such_port cannot monitor nonexistent port ${srv.id}#gone \n`,
      err: '',
    });
  });

  it('mon: a normal kill prints just the newline', async () => {
    expect(await srv.tool(['mon', ports.ending])).toEqual({ code: 0, out: '\n', err: '' });
  });
});

describe('trace and shell', () => {
  it('trace: the seed line, then each node with its neighbours (the tool itself left out)', async () => {
    expect(await srv.tool(['trace', srv.id])).toEqual({
      code: 0,
      out: `seed -> ${srv.id}\n${srv.id} -> \n`,
      err: '',
    });
  });

  it('trace: a node that does not answer is shown on stdout and named on stderr; exit 1', async () => {
    const r = await srv.tool(['trace', 'nosuch/node']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^seed -> nosuch\/node\nnosuch\/node \(transport_error nosuch\/node [^\n]+\)\n$/);
    expect(r.err).toMatch(
      /^aemp trace: no answer from nosuch\/node \(transport_error nosuch\/node [^\n]+\)\n$/,
    );
  });

  it('trace --dot: the topology as a Graphviz graph', async () => {
    const r = await srv.tool(['trace', '--dot', srv.id]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`graph aemp {\n  "${srv.id}" [shape=doublecircle];\n}\n`);
  });

  it('shell: evaluates lines from stdin, lists nodes, switches nodes, echoes $ECHO messages', async () => {
    const input = [
      '6*7',
      '=',
      'snd($ECHO, "hi", 1)',
      'throw new Error("broken")',
      'throw new Error("x\\u001b[2Jy")',
      `=${srv.id}`,
      '({ s: "ü" })',
      '',
    ].join('\n');
    const r = await srv.tool(['shell', srv.id], input);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`\\n${esc(srv.id)}: 6\\*7\\n\\d+\\.\\d{3}s\\n\\[\\n {3}42\\n\\]\\n`));
    expect(r.out).toMatch(new RegExp(`nodes: .*${esc(srv.id)}`));
    expect(r.out).toContain(`ECHO${srv.id} ["hi",1]\n`);
    expect(r.out).toMatch(/: throw new Error\("broken"\)\n\d+\.\d{3}s\nbroken\n/);
    expect(r.out).toMatch(/\d+\.\d{3}s\nx\\e\[2Jy\n/); // the error text from the node, escaped
    expect(r.out).toContain('[\n   {\n      "s" : "\\u00fc"\n   }\n]\n');
    expect(r.out).toContain(`${srv.id}> `);
  });

  it('shell: end of input right away ends it with status 0', async () => {
    const r = await srv.tool(['shell']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^aemp shell/);
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
