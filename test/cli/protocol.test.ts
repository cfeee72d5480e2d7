/**
 * The protocol subcommands (spec/config-and-cli.md §4.5) against a node started with
 * `aemp run srv` in this file: the tool's own node (profile `aemp`) uses it as its seed.
 * Ports to talk to are made on that node with `aemp eval`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanUpAfter, type RunningNode, runNode } from './helpers.js';

cleanUpAfter('all');

let srv: RunningNode;
/** Ports made on the node for the tests (one `aemp eval` makes them all). */
let ports: { quiet: string; echo: string; mortal: string; doomed: string; ending: string };

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
    `doomed: ${killedWhenMonitored(", 'die', 'bye'")},`,
    `ending: ${killedWhenMonitored('')},`,
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

  it('eval: no answer within 5 s exits 1 without output', async () => {
    expect(await srv.tool(['eval', srv.id, 'new Promise(() => {})'])).toEqual({ code: 1, out: '', err: '' });
  });

  it('snd: confirms delivery with "message sent successfully \\n"', async () => {
    expect(await srv.tool(['snd', ports.quiet, 'hello', '{"x": 1}'])).toEqual({
      code: 0,
      out: 'message sent successfully \n',
      err: '',
    });
  });

  it('snd: a port that does not exist answers with its kill reason first', async () => {
    const r = await srv.tool(['snd', `${srv.id}#nope`, 'hello']);
    expect(r).toEqual({
      code: 0,
      out: `no_such_port cannot monitor nonexistent port ${srv.id}#nope \n`,
      err: '',
    });
  });

  it('cal: the reply as JSON without brackets; an empty line when the port dies instead', async () => {
    expect(await srv.tool(['cal', ports.echo, 'a', '{"x":1}', '[2]', '3'])).toEqual({
      code: 0,
      out: '"a",{"x":1},[2],"3"\n',
      err: '',
    });
    expect(await srv.tool(['cal', ports.mortal, 'x'])).toEqual({ code: 0, out: '\n', err: '' });
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
