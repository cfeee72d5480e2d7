import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AempError } from '../../../src/errors.js';
import { makeRuniq } from '../../../src/protocol/ids.js';
import {
  CONFIG_KEY_NAMES,
  type ConfigureArgs,
  expandNodeId,
  type NodeConfig,
  perlTruthy,
  type RcData,
  resolveConfig,
  runEval,
  runServices,
  type ServiceHost,
  toNumber,
} from '../../../src/streams/config/config.js';

const HOST = 'testhost';

// belt and braces: a call that forgot to pass its rc must not read the real ~/.perl-anyevent-mp
beforeAll(() => {
  vi.stubEnv('AEMP_RC', '/nonexistent/aemp-test-rc');
});
afterAll(() => {
  vi.unstubAllEnvs();
});
const typed = (args: ConfigureArgs): NodeConfig =>
  resolveConfig({ norc: 1, ...args }, { hostname: HOST }).config;
const rcResolve = (args: ConfigureArgs, data: RcData) =>
  resolveConfig(args, { rc: { path: '/x', exists: true, data, embedded: false }, hostname: HOST });

describe('Perl truthiness', () => {
  it.each<[unknown, boolean]>([
    [undefined, false],
    [null, false],
    ['', false],
    ['0', false],
    [0, false],
    [false, false],
    ['false', true],
    ['1', true],
    ['0.0', true],
    ['00', true],
    [' 0', true],
    [1, true],
    [-1, true],
    [true, true],
    [[], true],
    [{}, true],
  ])('%j → %s', (value, expected) => {
    expect(perlTruthy(value)).toBe(expected);
  });

  it.each(['secure', 'autocork', 'nodelay'] as const)('%s follows it', (key) => {
    expect(typed({ [key]: '0' })[key]).toBe(false);
    expect(typed({ [key]: '' })[key]).toBe(false);
    expect(typed({ [key]: 0 })[key]).toBe(false);
    expect(typed({ [key]: null })[key]).toBe(false);
    expect(typed({ [key]: 'false' })[key]).toBe(true);
    expect(typed({ [key]: '1' })[key]).toBe(true);
    expect(typed({ [key]: true })[key]).toBe(true);
  });

  it('defaults: secure and autocork false, nodelay true when absent', () => {
    const c = typed({});
    expect([c.secure, c.autocork, c.nodelay]).toEqual([false, false, true]);
  });
});

describe('coercion', () => {
  it.each<[unknown, number]>([
    [30, 30],
    ['30', 30],
    [' 2.5 ', 2.5],
    ['1e1', 10],
    ['+4', 4],
    ['.5', 0.5],
    ['abc', Number.NaN],
    ['', Number.NaN],
    ['30s', Number.NaN],
    [true, Number.NaN],
  ])('toNumber(%j) = %d', (value, expected) => {
    expect(toNumber(value)).toBe(expected);
  });

  it.each<[string, unknown, unknown]>([
    ['monitor_timeout', '30', 30],
    ['connect_interval', '0.5', 0.5],
    ['heartbeat_interval', '0', 0],
    ['heartbeat_misses', '5', 5],
    ['max_frame_bytes', '1048576', 1048576],
    ['max_send_buffer_bytes', '65536', 65536],
    ['max_total_send_buffer_bytes', 2 ** 31, 2 ** 31],
    ['max_frame_items', '4096', 4096],
    ['strict_peers', '1', true],
    ['handshake_timeout', '2.5', 2.5],
    ['max_pending_handshakes', '16', 16],
    ['max_pending_handshakes_per_address', 4, 4],
    ['max_connections', '100', 100],
    ['binds', '127.0.0.1:4040,127.0.0.1:4041', ['127.0.0.1:4040', '127.0.0.1:4041']],
    ['binds', [4040], ['4040']],
    ['binds', '', []],
    ['binds', [], []],
    ['binds', null, ['*']],
    ['seeds', 'a:1,b:2,', ['a:1', 'b:2']],
    ['framing_format', 'json,cbor', ['json', 'cbor']],
    ['auth_offer', ['hmac_sha3_512'], ['hmac_sha3_512']],
    ['services', 'A::,B::f', ['A::', 'B::f']],
    ['services', [['f', 1, { a: 2 }]], [['f', 1, { a: 2 }]]],
    ['secret', 12345, '12345'],
    ['nodeid', 42, '42'],
    ['eval', '1 + 1', '1 + 1'],
    ['secret', null, undefined],
  ])('%s: %j → %j', (key, value, expected) => {
    expect(typed({ [key]: value })[key as keyof NodeConfig]).toEqual(expected);
  });

  it('defaults of every key', () => {
    expect(typed({})).toEqual({
      profile: HOST,
      nodeid: `${HOST}/`,
      binds: ['*'],
      seeds: [],
      services: [],
      eval: undefined,
      secret: undefined,
      cert: undefined,
      secure: false,
      monitor_timeout: 30,
      connect_interval: 2,
      framing_format: ['cbor', 'json', 'storable'],
      auth_offer: ['tls_sha3_512', 'hmac_sha3_512'],
      auth_accept: ['tls_sha3_512', 'hmac_sha3_512', 'tls_anon', 'cleartext'],
      autocork: false,
      nodelay: true,
      parent: undefined,
      heartbeat_interval: 5,
      heartbeat_misses: 3,
      max_frame_bytes: 16 * 1024 * 1024,
      max_send_buffer_bytes: 256 * 1024 * 1024,
      max_total_send_buffer_bytes: 1024 * 1024 * 1024,
      max_frame_items: 1_000_000,
      strict_peers: false,
      handshake_timeout: 5,
      max_pending_handshakes: 256,
      max_pending_handshakes_per_address: 64,
      max_connections: 4096,
    });
    expect(CONFIG_KEY_NAMES.length + 1).toBe(Object.keys(typed({})).length);
  });
});

describe('validation errors name the key, the profile and the value', () => {
  const msg = (key: string, reason: string, got: string, from = ' (set by configure arguments)') =>
    `invalid configuration: key "${key}" in profile "${HOST}": ${reason}, got ${got}${from}`;

  it.each<[string, ConfigureArgs, string]>([
    [
      'monitor_timeout text',
      { monitor_timeout: 'abc' },
      msg('monitor_timeout', 'must be a positive number', '"abc"'),
    ],
    [
      'monitor_timeout zero',
      { monitor_timeout: 0 },
      msg('monitor_timeout', 'must be a positive number', '0'),
    ],
    [
      'monitor_timeout object',
      { monitor_timeout: { a: 1 } },
      msg('monitor_timeout', 'must be a positive number', '{"a":1}'),
    ],
    [
      'connect_interval negative',
      { connect_interval: '-1' },
      msg('connect_interval', 'must be a positive number', '"-1"'),
    ],
    [
      'heartbeat_interval negative',
      { heartbeat_interval: -1 },
      msg('heartbeat_interval', 'must be a number of seconds >= 0 (0 disables heartbeats)', '-1'),
    ],
    [
      'heartbeat_misses fraction',
      { heartbeat_misses: 1.5 },
      msg('heartbeat_misses', 'must be a positive integer', '1.5'),
    ],
    [
      'heartbeat_misses zero',
      { heartbeat_misses: '0' },
      msg('heartbeat_misses', 'must be a positive integer', '"0"'),
    ],
    [
      'max_frame_bytes small',
      { max_frame_bytes: 100 },
      msg('max_frame_bytes', 'must be an integer >= 1024', '100'),
    ],
    [
      'max_send_buffer_bytes not an integer',
      { max_send_buffer_bytes: 100000.5 },
      msg('max_send_buffer_bytes', 'must be an integer >= 65536', '100000.5'),
    ],
    [
      'max_total_send_buffer_bytes small',
      { max_total_send_buffer_bytes: 1000 },
      msg('max_total_send_buffer_bytes', 'must be an integer >= 65536', '1000'),
    ],
    ['nodeid empty', { nodeid: '' }, msg('nodeid', 'must not be empty or "0"', '""')],
    ['nodeid "0"', { nodeid: '0' }, msg('nodeid', 'must not be empty or "0"', '"0"')],
    ['nodeid 0', { nodeid: 0 }, msg('nodeid', 'must not be empty or "0"', '0')],
    ['nodeid null', { nodeid: null }, msg('nodeid', 'must be a string', 'null')],
    ['nodeid with #', { nodeid: 'a#b' }, msg('nodeid', 'must not contain "#", ";", CR or LF', '"a#b"')],
    ['nodeid with ;', { nodeid: 'a;b' }, msg('nodeid', 'must not contain "#", ";", CR or LF', '"a;b"')],
    ['nodeid with LF', { nodeid: 'a\nb' }, msg('nodeid', 'must not contain "#", ";", CR or LF', '"a\\nb"')],
    [
      'binds unparsable',
      { binds: ['a:b:c'] },
      msg('binds', 'has an unparsable address "a:b:c" (expected host:port)', '["a:b:c"]'),
    ],
    [
      'binds bad port',
      { binds: 'h:70000' },
      msg('binds', 'has an unparsable address "h:70000" (bad port "70000")', '"h:70000"'),
    ],
    [
      'binds object',
      { binds: { a: 1 } },
      msg('binds', 'must be a list of addresses (or a comma-separated string)', '{"a":1}'),
    ],
    [
      'seeds of lists',
      { seeds: [['a']] },
      msg('seeds', 'must be a list of addresses (or a comma-separated string)', '[["a"]]'),
    ],
    [
      'framing_format number',
      { framing_format: 5 },
      msg('framing_format', 'must be a list of strings (or a comma-separated string)', '5'),
    ],
    [
      'auth_accept with null',
      { auth_accept: [null] },
      msg('auth_accept', 'must be a list of strings (or a comma-separated string)', '[null]'),
    ],
    [
      'services with a bad entry',
      { services: [[1]] },
      msg(
        'services',
        'must be a list of "Module::" names, function names or [function, args…] arrays',
        '[[1]]',
      ),
    ],
    ['eval array', { eval: [] }, msg('eval', 'must be a string', '[]')],
    ['parent array', { parent: ['x'] }, msg('parent', 'must be a string', '["x"]')],
    [
      'secret is never shown',
      { secret: ['s3cr3t'] },
      msg('secret', 'must be a string', 'a value of type array'),
    ],
    [
      'cert is never shown',
      { cert: { pem: 'k' } },
      msg('cert', 'must be a string', 'a value of type object'),
    ],
  ])('%s', (_name, args, expected) => {
    try {
      typed(args);
      expect.unreachable();
    } catch (err) {
      expect(AempError.is(err) && err.code).toBe('ERR_CONFIG_INVALID');
      expect((err as Error).name).toBe('ConfigError');
      expect((err as Error).message).toBe(expected);
    }
  });

  it('the example message: a value set in the profile itself has no origin suffix', () => {
    expect(() => rcResolve({ profile: 'seed' }, { profile: { seed: { monitor_timeout: 'abc' } } })).toThrow(
      /^invalid configuration: key "monitor_timeout" in profile "seed": must be a positive number, got "abc"$/,
    );
  });

  it('names the layer that set the value when it is not the profile', () => {
    expect(() => rcResolve({ profile: 'seed' }, { monitor_timeout: 'x', profile: { seed: {} } })).toThrow(
      'in profile "seed": must be a positive number, got "x" (set by the rc file top level)',
    );
    expect(() =>
      rcResolve(
        { profile: 'seed' },
        { profile: { base: { connect_interval: 'y' }, seed: { parent: 'base' } } },
      ),
    ).toThrow(
      'key "connect_interval" in profile "seed": must be a positive number, got "y" (set by profile "base")',
    );
  });

  it('a default node ID derived from a bad profile name', () => {
    expect(() => typed({ profile: 'a#b' })).toThrow(
      'invalid configuration: key "nodeid" in profile "a#b": must not contain "#", ";", CR or LF, got "a#b/" (the default)',
    );
  });

  it('lists every failure, one per line', () => {
    try {
      typed({ monitor_timeout: 'x', binds: 5, nodeid: '' });
      expect.unreachable();
    } catch (err) {
      const lines = (err as Error).message.split('\n');
      expect(lines).toHaveLength(3);
      expect(lines.map((l) => /key "(\w+)"/.exec(l)?.[1])).toEqual(['nodeid', 'binds', 'monitor_timeout']);
    }
  });

  it('a profile name that is not a string', () => {
    expect(() => typed({ profile: 5 })).toThrow(
      'invalid configuration: the profile name must be a string, got 5',
    );
  });

  it('accepts a heartbeat interval of 0 (disabled)', () => {
    expect(typed({ heartbeat_interval: 0 }).heartbeat_interval).toBe(0);
  });
});

describe('expandNodeId', () => {
  const ctx = { hostname: 'cerebro', runiq: 'z4kUPp2JT4' };
  it.each<[string, string, boolean]>([
    ['cerebro/', 'cerebro/z4kUPp2JT4', true],
    ['aemp/%n/%u', 'aemp/cerebro/z4kUPp2JT4', true],
    ['eg_receiver/%u', 'eg_receiver/z4kUPp2JT4', true],
    ['%u-%u', 'z4kUPp2JT4-z4kUPp2JT4', true],
    ['%n', 'cerebro', false],
    ['%n-%n:x', 'cerebro-cerebro:x', false],
    ['fixed', 'fixed', false],
    ['/', '/z4kUPp2JT4', true],
    ['%n/', 'cerebro/z4kUPp2JT4', true],
    ['a/b', 'a/b', false],
  ])('%s → %s', (template, nodeId, randomised) => {
    expect(expandNodeId(template, ctx)).toEqual({ nodeId, randomised });
  });

  it.each(['', '0', 'a#b', 'a;b', 'a\rb', 'a\nb'])('rejects %j', (template) => {
    expect(() => expandNodeId(template, ctx)).toThrow(/^invalid node ID .*: must (not be empty|not contain)/);
  });

  it('rejects a host name that would break the ID', () => {
    expect(() => expandNodeId('%n', { hostname: 'bad;host', runiq: 'x' })).toThrow(/must not contain/);
  });

  it('works with a real RUNIQ', () => {
    const runiq = makeRuniq();
    expect(runiq).toMatch(/^[0-9A-Za-z]{9}[0-9A-Z]$/);
    expect(expandNodeId('n/', { hostname: 'h', runiq }).nodeId).toBe(`n/${runiq}`);
  });
});

describe('runServices', () => {
  const makeHost = (log: unknown[][], fail?: string): ServiceHost => ({
    async resolveFunction(name) {
      if (name === fail) return () => Promise.reject(new Error(`${name} exploded`));
      // Each call starts, then finishes a turn of the event loop later: a service that was
      // not awaited before the next one starts shows as two starts in a row.
      return async (...args: unknown[]) => {
        log.push(['start', name]);
        await new Promise((r) => setImmediate(r));
        log.push(['call', name, ...args]);
      };
    },
    async loadModule(name) {
      if (name === fail) throw new Error(`cannot load ${name}`);
      log.push(['load', name]);
    },
  });

  it('runs each entry in order, awaiting each', async () => {
    const log: unknown[][] = [];
    await runServices(['AnyEvent::MP::Global::', 'My::start', ['My::init', 1, 'two']], makeHost(log));
    expect(log).toEqual([
      ['load', 'AnyEvent::MP::Global'],
      ['start', 'My::start'],
      ['call', 'My::start'],
      ['start', 'My::init'],
      ['call', 'My::init', 1, 'two'],
    ]);
  });

  it.each<[string, unknown, string]>([
    ['a function', 'My::start', 'service "My::start" failed: My::start exploded'],
    ['a module', 'My::', 'service "My::" failed: cannot load My'],
    ['a call with arguments', ['My::start', 1], 'service ["My::start",1] failed: My::start exploded'],
  ])('a failing %s rejects with a ConfigError naming it and stops', async (_name, entry, message) => {
    const log: unknown[][] = [];
    const fail = Array.isArray(entry) ? entry[0] : entry === 'My::' ? 'My' : entry;
    const p = runServices([entry as string, 'After::f'], makeHost(log, fail as string));
    await expect(p).rejects.toThrow(message);
    await p.catch((err) => {
      expect(AempError.is(err) && err.code).toBe('ERR_CONFIG_INVALID');
      expect((err as Error).cause).toBeInstanceOf(Error);
    });
    expect(log).toEqual([]);
  });
});

describe('runEval', () => {
  it('evaluates in the given context and returns the value', async () => {
    const seen: unknown[] = [];
    const result = await runEval('note(answer * 2); answer + 1', {
      answer: 20,
      note: (v: unknown) => seen.push(v),
    });
    expect(result).toBe(21);
    expect(seen).toEqual([40]);
  });

  it('awaits a returned promise', async () => {
    expect(await runEval('(async () => 7)()', {})).toBe(7);
  });

  it.each([
    ['a syntax error', 'this is not js', /^eval failed: Unexpected identifier/],
    ['a thrown error', 'throw new Error("boom")', /^eval failed: boom$/],
    ['a thrown string', 'throw "plain"', /^eval failed: plain$/],
    ['a rejected promise', 'Promise.reject(new Error("later"))', /^eval failed: later$/],
  ])('%s becomes a ConfigError', async (_name, code, message) => {
    await expect(runEval(code, {})).rejects.toThrow(message);
  });

  it('honours a timeout', async () => {
    await expect(runEval('for (;;) {}', {}, { timeoutMs: 20 })).rejects.toThrow(
      /^eval failed: Script execution timed out/,
    );
  });
});
