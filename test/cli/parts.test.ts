/**
 * The parts of the CLI that need no process: argument decoding, JSON::XS-style output, the
 * DOT rendering of a trace, and certificates from `gencert` carrying real TLS between nodes.
 */
import { filter, firstValueFrom, timeout } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { preprocess, runOptions } from '../../src/cli/args.js';
import { generateCertificate } from '../../src/cli/cert.js';
import { compact, pretty } from '../../src/cli/json-text.js';
import { resultsLine, toDot, wordsLine } from '../../src/cli/node-commands.js';
import { configure, memoryLogger, type Node } from '../../src/index.js';

describe('argument decoding', () => {
  it('a single argument starting with [ is the whole list', () => {
    expect(preprocess(['["snd", "p", {"a": 1}, 2]'])).toEqual(['snd', 'p', { a: 1 }, 2]);
  });

  it('otherwise each [ { " argument is a JSON value, other words stay text', () => {
    expect(preprocess(['setseeds', '["a:1"]', 'x', '{"k":null}', '"s,t"', '42', 'true'])).toEqual([
      'setseeds',
      ['a:1'],
      'x',
      { k: null },
      's,t',
      '42',
      'true',
    ]);
    expect(preprocess(['[1]', '[2]'])).toEqual([[1], [2]]);
  });

  it('a lone JSON argument that is not an array, or malformed JSON, stops the tool', () => {
    expect(() => preprocess(['[1'])).toThrow(/malformed JSON argument/);
    expect(() => preprocess(['x', '{bad'])).toThrow(/malformed JSON argument/);
  });

  it('run arguments: an odd count starts with the profile name', () => {
    expect(runOptions(['seed'])).toEqual({ profile: 'seed' });
    expect(runOptions(['seed', 'nodeid', 'x/'])).toEqual({ profile: 'seed', nodeid: 'x/' });
    expect(runOptions(['binds', ['*:1']])).toEqual({ binds: ['*:1'] });
  });
});

describe('output', () => {
  it('pretty: three-space indent, " : " between key and value, {} and [] when empty', () => {
    expect(pretty({ a: [1, 'x'], b: {}, c: [], d: { e: null } })).toBe(
      '{\n   "a" : [\n      1,\n      "x"\n   ],\n   "b" : {},\n   "c" : [],\n   "d" : {\n      "e" : null\n   }\n}\n',
    );
    expect(pretty('ü€😀', { ascii: true })).toBe('"\\u00fc\\u20ac\\ud83d\\ude00"\n');
    expect(compact(['ü', 1])).toBe('["ü",1]');
  });

  it('words and results lines as Perl prints them', () => {
    expect(wordsLine(['message sent successfully'])).toBe('message sent successfully \n');
    expect(wordsLine([])).toBe('\n');
    expect(wordsLine(['die', 'x', 3])).toBe('die x 3 \n');
    expect(resultsLine([])).toBe('\n');
    expect(resultsLine(['a', { b: [1] }])).toBe('"a",{"b":[1]}\n');
  });

  it('trace as DOT: each connection once, silent nodes marked', () => {
    expect(
      toDot('a', [
        { node: 'a', neighbours: ['b', 'c'] },
        { node: 'b', neighbours: ['a'] },
        { node: 'c', neighbours: [], problem: 'timeout' },
      ]),
    ).toBe(
      'graph aemp {\n  "a" [shape=doublecircle];\n  "a" -- "b";\n  "a" -- "c";\n' +
        '  "c" [style=dashed, color=red, label="c\\n(timeout)"];\n}\n',
    );
  });
});

describe('gencert certificates', () => {
  const nodes: Node[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.close()));
  });

  const node = (opts: Record<string, unknown>) => {
    const n = configure({ norc: true, binds: ['127.0.0.1:0'], logger: memoryLogger(), ...opts });
    nodes.push(n);
    return n;
  };

  it('two nodes with the same generated certificate and no secret connect over TLS', async () => {
    const cert = await generateCertificate();
    const b = node({ nodeid: 'cert-b', cert });
    await b.ready;
    const a = node({ nodeid: 'cert-a', cert, seeds: [b.binds[0]!] });
    await firstValueFrom(
      a.nodes$.pipe(
        filter((s) => s.type === 'up' && s.node === 'cert-b'),
        timeout(10_000),
      ),
    );
    const svc = b.port((x: unknown, reply: string) => b.snd(reply, 'pong', x));
    expect(await firstValueFrom(a.cal$(svc, 'ping').pipe(timeout(10_000)))).toEqual(['pong', 'ping']);

    // A node with another generated certificate cannot talk to them.
    const c = node({
      nodeid: 'cert-c',
      cert: await generateCertificate(),
      seeds: b.binds,
      connect_interval: 1,
    });
    await c.ready;
    await expect(firstValueFrom(c.cal$(svc, 'ping').pipe(timeout(10_000)))).rejects.toMatchObject({
      reason: ['transport_error', 'cert-b', expect.any(String)],
    });
  });
});
