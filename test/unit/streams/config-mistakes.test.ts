/**
 * Configuration mistakes are reported, not swallowed: unknown keys warn with the closest known
 * key (Perl ignores them, so do we), a missing parent profile is an error, `configure` refuses
 * arguments of another form, and `rcDataProblems` lists what makes an rc file invalid.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AempError,
  ConfigError,
  configure,
  envLogLevel,
  LEVEL,
  memoryLogger,
  UsageError,
} from '../../../src/index.js';
import {
  type ConfigureArgs,
  loadRc,
  type RcData,
  type RcState,
  rcDataProblems,
  resolveConfig,
  suggestKey,
} from '../../../src/streams/config/config.js';
import { within } from '../../helpers/fake-peer.js';
import { testNode } from '../../helpers/node.js';

const HOST = 'testhost';
/** Deadline for nodes to close. */
const WAIT = 10_000;
const FIXTURES = join(import.meta.dirname, '../../fixtures/rc');

// a call that forgot to pass its rc must not read the real ~/.perl-anyevent-mp
beforeAll(() => {
  vi.stubEnv('AEMP_RC', '/nonexistent/aemp-test-rc');
});
afterAll(() => {
  vi.unstubAllEnvs();
});

const rcOf = (data: RcData): RcState => ({ path: '/nonexistent/rc', exists: true, data, embedded: false });
const resolve = (args: ConfigureArgs, data: RcData) =>
  resolveConfig(args, { rc: rcOf(data), hostname: HOST });

describe('suggestKey', () => {
  const KEYS = ['secret', 'seeds', 'binds', 'monitor_timeout', 'connect_interval', 'nodeid', 'version'];
  it.each<[string, string | undefined]>([
    ['sekret', 'secret'],
    ['secrte', 'secret'], // a swap of neighbours counts once
    ['montor_timeout', 'monitor_timeout'],
    ['monitor-timeout', 'monitor_timeout'],
    ['conect_intervall', 'connect_interval'],
    ['bind', 'binds'],
    ['seed', 'seeds'],
    ['NodeID', 'nodeid'], // case is ignored
    ['colour', undefined],
    ['timeout', undefined],
    ['x', undefined],
    ['sec', undefined], // three characters: one edit at most
  ])('%j → %j', (name, expected) => {
    expect(suggestKey(name, KEYS)).toBe(expected);
  });
});

describe('unknown keys', () => {
  it('each unknown key is named with where it is set and the closest known key', () => {
    const r = resolve(
      { profile: 'seed', bind: ['*'], colour: 'red' },
      {
        version: 1,
        sekret: 'x',
        profile: { base: { montor_timeout: 5 }, seed: { parent: 'base', Secret: 'y' } },
      },
    );
    expect(r.unknownKeys).toEqual([
      'unknown configuration key "bind" in the configure arguments is ignored; did you mean "binds"?',
      'unknown configuration key "colour" in the configure arguments is ignored',
      'unknown configuration key "sekret" at the top level of the rc file is ignored; did you mean "secret"?',
      'unknown configuration key "montor_timeout" in profile "base" is ignored; did you mean "monitor_timeout"?',
      'unknown configuration key "Secret" in profile "seed" is ignored; did you mean "secret"?',
    ]);
    expect(r.raw.sekret).toBe('x'); // carried along as Perl does, and otherwise ignored
    expect(r.config.secret).toBeUndefined();
  });

  it('version and profile at the top level, parent in profiles and norc/force/profile as arguments are known', () => {
    const r = resolve(
      { profile: 'a', force: 0 },
      { version: 1, parent: 'x', profile: { a: { parent: 'b' }, b: { nodeid: 'b/' } } },
    );
    expect(r.unknownKeys).toEqual([]);
  });

  it('version or profile inside a profile is unknown there', () => {
    const r = resolve({ profile: 'a' }, { profile: { a: { version: 1, profile: 'b' } } });
    expect(r.unknownKeys).toEqual([
      'unknown configuration key "version" in profile "a" is ignored',
      'unknown configuration key "profile" in profile "a" is ignored',
    ]);
  });

  it('profiles outside the chain and undefined arguments are not checked', () => {
    const r = resolve({ profile: 'a', sekret: undefined }, { profile: { a: {}, other: { sekret: 'x' } } });
    expect(r.unknownKeys).toEqual([]);
  });

  it('the embedded default (no rc file) has no unknown keys; norc checks the arguments only', () => {
    const missing: RcState = { path: '/nonexistent/rc', exists: false, data: { version: 1 }, embedded: true };
    const env = { HOME: '/nonexistent' };
    expect(
      resolveConfig({ secret: 'k'.repeat(32) }, { rc: missing, hostname: HOST, env }).unknownKeys,
    ).toEqual([]);
    expect(resolve({ norc: 1, sekret: 1 }, { sekret: 2 }).unknownKeys).toEqual([
      'unknown configuration key "sekret" in the configure arguments is ignored; did you mean "secret"?',
    ]);
  });

  it("Perl aemp's own keys are all known: only the fixture's x_unknown is named", () => {
    const rc = loadRc(join(FIXTURES, 'perl-aemp.rc'));
    expect(resolveConfig({ profile: 'doomed' }, { rc, hostname: HOST }).unknownKeys).toEqual([
      'unknown configuration key "x_unknown" at the top level of the rc file is ignored',
    ]);
  });

  it('configure logs each at error level, which is shown by default, and still starts', () => {
    const n = testNode({ sekret: 'x', montor_timeout: 5 });
    const lines = n.logs.filter((l) => l.text.startsWith('unknown configuration key'));
    expect(lines).toEqual([
      {
        level: LEVEL.error,
        text: 'unknown configuration key "sekret" in the configure arguments is ignored; did you mean "secret"?',
      },
      {
        level: LEVEL.error,
        text:
          'unknown configuration key "montor_timeout" in the configure arguments is ignored; ' +
          'did you mean "monitor_timeout"?',
      },
    ]);
    expect(LEVEL.error).toBeLessThanOrEqual(envLogLevel({}));
  });
});

describe('a missing parent profile', () => {
  it('configure throws a ConfigError naming the profile chain (rc file from AEMP_RC)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aemp-mistakes-'));
    try {
      const rc = join(dir, 'rc');
      writeFileSync(rc, JSON.stringify({ version: 1, profile: { doomed: { parent: 'nosuch' } } }));
      vi.stubEnv('AEMP_RC', rc);
      let err: unknown;
      try {
        configure({ profile: 'doomed', logger: memoryLogger() });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toBe(
        'invalid configuration: profile "doomed" has parent "nosuch", which is not a profile in the rc ' +
          'file (profile chain: "doomed" -> "nosuch")',
      );
    } finally {
      vi.stubEnv('AEMP_RC', '/nonexistent/aemp-test-rc');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('configure arguments of another form', () => {
  const FORMS =
    'configure() takes an options object, a profile name, or both: configure({ … }), ' +
    'configure("profile"), configure("profile", { … })';

  it.each<[string, unknown[], string]>([
    ['a number', [42], 'got 42'],
    ['a boolean', [true], 'got true'],
    ['an array', [['profile', 'seed']], 'got an array'],
    ['a Map', [new Map()], 'got a Map'],
    ['a function', [() => 1], 'got a function'],
    ['a number after the profile name', ['seed', 42], 'got 42 after the profile name'],
    ['an array after the profile name', ['seed', ['x']], 'got an array after the profile name'],
    ['a number as the options', [undefined, 7], 'got 7 as the options'],
    [
      'a second argument after the options',
      [{ norc: true }, { binds: [] }],
      'got a second argument after the options object (put the profile in it: { profile: "…" })',
    ],
  ])('%s is a UsageError naming the accepted forms', (_name, args, got) => {
    let err: unknown;
    try {
      (configure as (...a: unknown[]) => unknown)(...args);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect(AempError.is(err) && err.code).toBe('ERR_BAD_ARGUMENT');
    expect((err as Error).message).toBe(`${FORMS}; ${got}`);
  });

  it('null and undefined stand for "no profile name" and "no options"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aemp-mistakes-'));
    const rc = join(dir, 'rc');
    writeFileSync(rc, JSON.stringify({ version: 1, profile: { p: { binds: [], nodeid: 'p/' } } }));
    vi.stubEnv('AEMP_RC', rc);
    const logger = memoryLogger();
    const nodes = [
      configure(null as never, { norc: true, binds: [], nodeid: 'a/', logger }),
      configure(undefined, { norc: true, binds: [], nodeid: 'b/', logger }),
      configure('p', null as never),
    ];
    try {
      expect(nodes.map((n) => n.id.replace(/\/.*/, '/'))).toEqual(['a/', 'b/', 'p/']);
    } finally {
      await within(Promise.all(nodes.map((n) => n.close())), WAIT, 'the nodes to close');
      vi.stubEnv('AEMP_RC', '/nonexistent/aemp-test-rc');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rcDataProblems', () => {
  it('a valid file (also as Perl aemp writes it) has none', () => {
    expect(rcDataProblems(loadRc(join(FIXTURES, 'perl-aemp.rc')).data)).toEqual([]);
    expect(rcDataProblems({ version: 1 })).toEqual([]);
    expect(rcDataProblems({ version: 1, sekret: 'x', parent: 'nowhere' })).toEqual([]);
  });

  it('names every invalid value where it is set, and every broken parent chain', () => {
    expect(
      rcDataProblems({
        version: 1,
        monitor_timeout: 'soon',
        secret: { not: 'a string' },
        profile: {
          seed: { binds: ['999.1.1.1:5'], nodeid: 'a#b' },
          doomed: { parent: 'nosuch' },
          loop: { parent: 'loop' },
          odd: 'x',
        },
      }),
    ).toEqual([
      'invalid configuration: key "secret" at the top level of the rc file: must be a string, got a value of type object',
      'invalid configuration: key "monitor_timeout" at the top level of the rc file: must be a positive number, got "soon"',
      'invalid configuration: key "nodeid" in profile "seed": must not contain "#", ";", CR or LF, got "a#b"',
      'invalid configuration: key "binds" in profile "seed": has an unparsable address "999.1.1.1:5" ' +
        '(not an IPv4 address), got ["999.1.1.1:5"]',
      'invalid configuration: profile "doomed" has parent "nosuch", which is not a profile in the rc file ' +
        '(profile chain: "doomed" -> "nosuch")',
      'invalid configuration: circular profile parent chain: "loop" -> "loop"',
      'invalid configuration: profile "odd" must be an object, got "x"',
    ]);
  });

  it('a profiles map that is not an object', () => {
    expect(rcDataProblems({ version: 1, profile: ['x'] })).toEqual([
      'invalid configuration: "profile" in the rc file must be an object, got ["x"]',
    ]);
  });
});
