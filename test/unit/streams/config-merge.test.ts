import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AempError } from '../../../src/errors.js';
import {
  builtinDefaults,
  type ConfigureArgs,
  loadRc,
  type RcData,
  type RcState,
  resolveConfig,
} from '../../../src/streams/config/config.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/rc');
const HOST = 'testhost';

// belt and braces: a call that forgot to pass its rc must not read the real ~/.perl-anyevent-mp
beforeAll(() => {
  vi.stubEnv('AEMP_RC', '/nonexistent/aemp-test-rc');
});
afterAll(() => {
  vi.unstubAllEnvs();
});

/** An rc state as if the file held `data`. */
const rcOf = (data: RcData): RcState => ({ path: '/nonexistent/rc', exists: true, data, embedded: false });
const resolve = (args: ConfigureArgs, data: RcData) =>
  resolveConfig(args, { rc: rcOf(data), hostname: HOST });

/** An rc file with the key `secret` set at every level, for precedence checks. */
const LAYERED: RcData = {
  version: 1,
  secret: 'top',
  seeds: ['top:1'],
  cert: 'top',
  eval: 'top',
  x_top: 1,
  profile: {
    grand: { secret: 'grand', seeds: ['grand:1'], cert: 'grand', x_grand: 1 },
    parent: { parent: 'grand', secret: 'parent', seeds: ['parent:1'] },
    child: { parent: 'parent', secret: 'child' },
    lone: { secret: 'lone' },
  },
};

describe('merge order (config-and-cli.md §3)', () => {
  it.each<[string, ConfigureArgs, RcData, string, unknown]>([
    ['built-in default', { norc: 1 }, {}, 'monitor_timeout', 30],
    ['arguments beat defaults', { norc: 1, monitor_timeout: 7 }, {}, 'monitor_timeout', 7],
    ['rc top level beats arguments', { secret: 'arg' }, { secret: 'rc' }, 'secret', 'rc'],
    ['rc top level beats defaults', {}, { connect_interval: 9 }, 'connect_interval', 9],
    ['arguments fill what the rc lacks', { secret: 'arg' }, { seeds: ['a:1'] }, 'secret', 'arg'],
    ['the profile beats the top level', { profile: 'lone' }, LAYERED, 'secret', 'lone'],
    ['the profile beats its parents', { profile: 'child' }, LAYERED, 'secret', 'child'],
    ['the parent beats the grandparent', { profile: 'child' }, LAYERED, 'seeds', ['parent:1']],
    ['the grandparent beats the top level', { profile: 'child' }, LAYERED, 'cert', 'grand'],
    ['the top level fills the rest', { profile: 'child' }, LAYERED, 'eval', 'top'],
    ['a missing profile contributes nothing', { profile: 'absent' }, LAYERED, 'secret', 'top'],
    [
      'force: arguments beat the profile',
      { profile: 'child', force: 1, secret: 'arg' },
      LAYERED,
      'secret',
      'arg',
    ],
    [
      'force: the rc still fills the rest',
      { profile: 'child', force: 1, secret: 'arg' },
      LAYERED,
      'cert',
      'grand',
    ],
    ['force: even defaults beat the rc', { force: 1 }, { monitor_timeout: 5 }, 'monitor_timeout', 30],
    ['force "0" is not force', { force: '0', secret: 'arg' }, { secret: 'rc' }, 'secret', 'rc'],
    ['norc ignores the rc file', { norc: true, secret: 'arg' }, { secret: 'rc' }, 'secret', 'arg'],
    ['norc "" is not norc', { norc: '', secret: 'arg' }, { secret: 'rc' }, 'secret', 'rc'],
    ['undefined arguments are absent', { secret: undefined, norc: 1 }, {}, 'secret', undefined],
  ])('%s', (_name, args, rc, key, expected) => {
    const r = resolve(args, rc);
    expect(r.raw[key]).toEqual(expected);
  });

  it('the default profile is the host name', () => {
    const r = resolve({}, { profile: { [HOST]: { secret: 'mine' } } });
    expect(r.profile).toBe(HOST);
    expect(r.config.profile).toBe(HOST);
    expect(r.config.secret).toBe('mine');
    expect(r.config.nodeid).toBe(`${HOST}/`);
  });

  it('defaults only: exactly the five built-in keys', () => {
    const r = resolve({ norc: 1 }, {});
    expect(r.raw).toEqual(builtinDefaults());
    expect(r.rc).toBeUndefined();
    expect(r.warning).toBeUndefined();
  });

  it('keeps version, the profiles map, parent and unknown keys in the raw config', () => {
    const r = resolve({ profile: 'child', x_arg: 'a' }, LAYERED);
    expect(r.raw.version).toBe(1);
    expect(r.raw.profile).toBe(LAYERED.profile);
    expect(r.raw.parent).toBe('parent');
    expect(r.raw).toMatchObject({ x_top: 1, x_grand: 1, x_arg: 'a' });
    expect(r.config.parent).toBe('parent');
    expect(r.config.profile).toBe('child');
  });

  it('records where every key came from', () => {
    const r = resolve({ profile: 'child', x_arg: 1 }, LAYERED);
    expect(Object.fromEntries(r.origins)).toMatchObject({
      monitor_timeout: 'built-in defaults',
      x_arg: 'configure arguments',
      eval: 'the rc file top level',
      cert: 'profile "grand"',
      seeds: 'profile "parent"',
      secret: 'profile "child"',
    });
  });

  it('norc does not read the rc file at all', () => {
    const r = resolveConfig({ norc: 1 }, { env: { AEMP_RC: join(FIXTURES, 'broken.rc') }, hostname: HOST });
    expect(r.warning).toBeUndefined();
    expect(r.rc).toBeUndefined();
  });

  it('finds the rc file through the environment', () => {
    const r = resolveConfig(
      { profile: 'seed' },
      { env: { AEMP_RC: join(FIXTURES, 'relaxed.rc') }, hostname: HOST },
    );
    expect(r.config.binds).toEqual(['127.0.0.1:4040']);
    expect(r.rc?.exists).toBe(true);
  });

  it('never lets a "__proto__" key change the prototype', () => {
    const rc = loadRc(join(FIXTURES, 'relaxed.rc'));
    const data = { ...rc.data };
    Object.defineProperty(data, '__proto__', { value: { secret: 'evil' }, enumerable: true });
    const r = resolve({}, data);
    expect(Object.getPrototypeOf(r.raw)).toBe(Object.prototype);
  });
});

describe('parent chains', () => {
  it.each([
    [
      'a parent that does not exist',
      { a: { parent: 'ghost', cert: 'a' } },
      'profile "a" has parent "ghost", which is not a profile in the rc file (profile chain: "a" -> "ghost")',
    ],
    [
      'a missing parent further up',
      { a: { parent: 'b' }, b: { parent: 'nosuch' } },
      'profile "b" has parent "nosuch", which is not a profile in the rc file ' +
        '(profile chain: "a" -> "b" -> "nosuch")',
    ],
    [
      'a parent that is null in the profiles map',
      { a: { parent: 'b' }, b: null },
      'profile "a" has parent "b", which is not a profile in the rc file (profile chain: "a" -> "b")',
    ],
  ])('%s is a ConfigError naming the profile chain', (_name, profiles, message) => {
    try {
      resolve({ profile: 'a' }, { secret: 'top', profile: profiles });
      expect.unreachable();
    } catch (err) {
      expect(AempError.is(err) && err.code).toBe('ERR_CONFIG_INVALID');
      expect((err as Error).message).toBe(`invalid configuration: ${message}`);
    }
  });

  it('a missing profile itself is no error: it contributes nothing', () => {
    const r = resolve({ profile: 'absent' }, { secret: 'top', profile: { a: { parent: 'ghost' } } });
    expect(r.config.secret).toBe('top');
  });

  it('a top-level parent is not followed', () => {
    const r = resolve({ profile: 'a' }, { parent: 'b', profile: { a: {}, b: { secret: 'b' } } });
    expect(r.config.secret).toBeUndefined();
    expect(r.config.parent).toBe('b');
  });

  it('a numeric parent names the profile', () => {
    const r = resolve({ profile: 'a' }, { profile: { a: { parent: 7 }, '7': { secret: 'seven' } } });
    expect(r.config.secret).toBe('seven');
  });

  it.each([
    ['a loop of two', { a: { parent: 'b' }, b: { parent: 'a' } }, '"a" -> "b" -> "a"'],
    ['a profile that is its own parent', { a: { parent: 'a' } }, '"a" -> "a"'],
    [
      'a loop further up',
      { a: { parent: 'b' }, b: { parent: 'c' }, c: { parent: 'b' } },
      '"a" -> "b" -> "c" -> "b"',
    ],
  ])('%s is a ConfigError naming the chain', (_name, profiles, chain) => {
    try {
      resolve({ profile: 'a' }, { profile: profiles });
      expect.unreachable();
    } catch (err) {
      expect(AempError.is(err) && err.code).toBe('ERR_CONFIG_INVALID');
      expect((err as Error).message).toBe(`invalid configuration: circular profile parent chain: ${chain}`);
    }
  });

  it.each([
    [
      'a profiles map that is not an object',
      { profile: ['x'] },
      '"profile" in the rc file must be an object, got ["x"]',
    ],
    ['a profile that is not an object', { profile: { a: 'x' } }, 'profile "a" must be an object, got "x"'],
    [
      'a parent that is not a string',
      { profile: { a: { parent: ['b'] } } },
      'key "parent" in profile "a": must be a string, got ["b"]',
    ],
  ])('%s is a ConfigError', (_name, rc, message) => {
    expect(() => resolve({ profile: 'a' }, rc)).toThrow(`invalid configuration: ${message}`);
  });
});

describe('an rc file as written by Perl aemp', () => {
  const rc = loadRc(join(FIXTURES, 'perl-aemp.rc'));

  it('parses', () => {
    expect(rc.exists).toBe(true);
    expect(rc.error).toBeUndefined();
  });

  it('resolves a profile with a parent, coercing string booleans and numbers', () => {
    const r = resolveConfig({ profile: 'doomed' }, { rc, hostname: HOST });
    expect(r.config).toEqual({
      profile: 'doomed',
      nodeid: 'doomed',
      binds: ['*:4040'],
      seeds: ['10.0.0.19:4040', '10.0.0.20:4040'],
      services: ['AnyEvent::MP::Global::', ['MyApp::init', '1', 'two']],
      eval: undefined,
      secret: 'xOtwq3rW5iZ0xk1kQfPz7aB2',
      cert: undefined,
      secure: true,
      monitor_timeout: 10,
      connect_interval: 5,
      framing_format: ['json', 'storable'],
      auth_offer: ['tls_sha3_512', 'hmac_sha3_512'],
      auth_accept: ['tls_sha3_512', 'hmac_sha3_512', 'tls_anon', 'cleartext'],
      autocork: false,
      nodelay: false,
      parent: 'seed',
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
    expect(r.raw.x_unknown).toBe('kept');
    expect(r.raw.monitor_timeout).toBe('10');
  });

  it('the aemp tool profile: explicit empty binds; its nodeid argument applies when the rc sets none', () => {
    const r = resolveConfig({ profile: 'aemp', nodeid: 'aemp/%n/%u' }, { rc, hostname: HOST });
    expect(r.config.binds).toEqual([]);
    expect(r.config.nodeid).toBe('aemp/%n/%u');
    expect(r.config.secure).toBe(false);
  });

  it('a profile missing from the file gets the top level', () => {
    const r = resolveConfig({}, { rc, hostname: HOST });
    expect(r.config.binds).toEqual(['*']);
    expect(r.config.seeds).toEqual(['10.0.0.19:4040', '10.0.0.20:4040']);
    expect(r.config.nodeid).toBe(`${HOST}/`);
  });
});
