import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AempError } from '../../../src/errors.js';
import {
  embeddedRc,
  formatRcWarning,
  loadRc,
  parseRcText,
  type RcState,
  rcMergeData,
  rcPath,
  resolveConfig,
  saveRc,
} from '../../../src/streams/config/config.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/rc');
const fixture = (name: string) => join(FIXTURES, name);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'aemp-rc-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('rcPath', () => {
  it.each([
    ['AEMP_RC wins', { AEMP_RC: '/a', PERL_ANYEVENT_MP_RC: '/b', HOME: '/h' }, '/a'],
    ['AEMP_RC empty still wins', { AEMP_RC: '', PERL_ANYEVENT_MP_RC: '/b' }, ''],
    ['PERL_ANYEVENT_MP_RC', { PERL_ANYEVENT_MP_RC: '/b', HOME: '/h' }, '/b'],
    ['PERL_ANYEVENT_MP_RC empty', { PERL_ANYEVENT_MP_RC: '', HOME: '/h' }, ''],
    ['HOME', { HOME: '/h' }, join('/h', '.perl-anyevent-mp')],
    ['APPDATA', { APPDATA: '/w' }, join('/w', 'perl-anyevent-mp')],
  ])('%s', (_name, env, expected) => {
    expect(rcPath(env)).toBe(expected);
  });
});

describe('parseRcText (relaxed JSON)', () => {
  it('accepts # and // comments, trailing commas and literal tabs in strings', () => {
    const data = parseRcText(readFileSync(fixture('relaxed.rc'), 'utf8'));
    expect(data).toEqual({
      version: 1,
      secret: 'has # and // inside',
      seeds: ['127.0.0.1:4040', '127.0.0.1:4041'],
      eval: 'x\ty',
      profile: { seed: { binds: ['127.0.0.1:4040'] } },
    });
  });

  it.each([
    ['escapes', '{"a":"\\u00e9\\n\\"\\/\\\\"}', { a: 'é\n"/\\' }],
    ['numbers', '{"a":[0,-1.5,2e3,1E-2]}', { a: [0, -1.5, 2000, 0.01] }],
    ['literals', '{"t":true,"f":false,"n":null}', { t: true, f: false, n: null }],
    ['byte order mark', '\ufeff{"a":1}', { a: 1 }],
    ['empty containers with comments', '{ # c\n "a": [ # c\n ], "b": {} }', { a: [], b: {} }],
    ['comment at end of input', '{"a":1} # done', { a: 1 }],
  ])('parses %s', (_name, text, expected) => {
    expect(parseRcText(text)).toEqual(expected);
  });

  it('keeps a "__proto__" key as an own property', () => {
    const data = parseRcText('{"__proto__": {"polluted": 1}}');
    expect(Object.hasOwn(data, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((data as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    ['top level array', '[1]', 'the top level is not a JSON object'],
    ['top level string', '"x"', 'the top level is not a JSON object'],
    ['missing value', '{"a": }', "unexpected character '}' at line 1, column 7"],
    ['missing colon', '{\n  "a" 1}', "expected ':' after an object key at line 2, column 7"],
    ['unterminated string', '{"a": "secret', 'unterminated string at line 1, column 7'],
    ['double comma', '[1,,2]', "unexpected character ',' at line 1, column 4"],
    ['garbage after value', '{} x', 'unexpected text after the JSON value at line 1, column 4'],
    ['empty input', '', 'unexpected end of input at line 1, column 1'],
    ['bare word', '{"a": yes}', "unexpected character 'y' at line 1, column 7"],
    ['newline in string', '{"a": "x\ny"}', 'control character in a string at line 1, column 9'],
    ['bad escape', '{"a": "\\x"}', 'bad escape in a string at line 1, column 8'],
  ])('rejects %s with a position', (_name, text, message) => {
    expect(() => parseRcText(text)).toThrow(new SyntaxError(message));
  });

  it('never quotes the file content in its errors', () => {
    try {
      parseRcText(readFileSync(fixture('broken.rc'), 'utf8'));
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('do-not-print-me');
      expect((err as Error).message).toMatch(/line 5, column 1$/);
    }
  });

  it('rejects absurd nesting instead of overflowing the stack', () => {
    expect(() => parseRcText(`{"a":${'['.repeat(10000)}`)).toThrow(/nesting too deep/);
  });
});

describe('loadRc', () => {
  it('a missing file: not existing, embedded default, user data {version: 1}', () => {
    const state = loadRc(join(dir, 'nope'));
    expect(state).toEqual({ path: join(dir, 'nope'), exists: false, data: { version: 1 }, embedded: true });
    expect(formatRcWarning(state)).toBeUndefined();
    expect(rcMergeData(state, 'myhost')).toEqual(embeddedRc('myhost'));
  });

  it('an empty path is a missing file', () => {
    const state = loadRc('');
    expect(state.exists).toBe(false);
    expect(state.embedded).toBe(true);
    expect(state.error).toBeUndefined();
  });

  it('an existing file, even {}, replaces the embedded default entirely', () => {
    const p = join(dir, 'rc');
    writeFileSync(p, '{}');
    const state = loadRc(p);
    expect(state).toEqual({ path: p, exists: true, data: {}, embedded: false });
    expect(rcMergeData(state, 'myhost')).toEqual({});
  });

  it('an unparsable file: error, no embedded default, a warning naming file and error', () => {
    const p = fixture('broken.rc');
    const state = loadRc(p);
    expect(state.exists).toBe(false);
    expect(state.embedded).toBe(false);
    expect(state.error).toMatch(/expected ',' or '\]' in an array at line 5, column 1/);
    expect(rcMergeData(state, 'myhost')).toEqual({ version: 1 });
    const warning = formatRcWarning(state)!;
    expect(warning).toContain(p);
    expect(warning).toContain(state.error);
    expect(warning).toContain('built-in defaults');
    expect(warning).not.toContain('do-not-print-me');
  });

  it('an unreadable path (a directory) is an error, not a missing file', () => {
    const state = loadRc(dir);
    expect(state.error).toMatch(/EISDIR/);
    expect(state.embedded).toBe(false);
  });
});

describe('an invalid rc file is never overwritten', () => {
  let p: string;
  let before: Buffer;
  beforeEach(() => {
    p = join(dir, 'rc');
    before = readFileSync(fixture('broken.rc'));
    writeFileSync(p, before);
  });

  it('stays byte-identical after load and resolve; save refuses', () => {
    const state = loadRc(p);
    const resolved = resolveConfig({ profile: 'seed' }, { rc: state, hostname: 'h' });
    expect(resolved.warning).toBe(formatRcWarning(state));
    expect(resolved.config.monitor_timeout).toBe(30);
    expect(resolved.config.secret).toBeUndefined();

    expect(() => saveRc(state, { version: 1, secret: 'new' })).toThrow(/refusing to overwrite/);
    expect(() => saveRc(p, { version: 1, secret: 'new' })).toThrow(/refusing to overwrite/);
    try {
      saveRc(state, {});
    } catch (err) {
      expect(AempError.is(err) && err.code).toBe('ERR_CONFIG_INVALID');
    }
    expect(readFileSync(p).equals(before)).toBe(true);
    expect(existsSync(`${p}~`)).toBe(false);
    expect(existsSync(`${p}~new~`)).toBe(false);
  });

  it('is found through $HOME too, and left alone', () => {
    const home = join(dir, 'home');
    mkdirSync(home);
    writeFileSync(join(home, '.perl-anyevent-mp'), before);
    const r = resolveConfig({}, { env: { HOME: home }, hostname: 'h' });
    expect(r.rc?.path).toBe(join(home, '.perl-anyevent-mp'));
    expect(r.warning).toContain(join(home, '.perl-anyevent-mp'));
    expect(readFileSync(join(home, '.perl-anyevent-mp')).equals(before)).toBe(true);
  });

  it('resolveConfig with an env path also leaves it alone', () => {
    const r = resolveConfig({}, { env: { AEMP_RC: p }, hostname: 'h' });
    expect(r.warning).toContain(p);
    expect(readFileSync(p).equals(before)).toBe(true);
  });

  it('save refuses even when the file broke after a good load', () => {
    writeFileSync(p, '{"version": 1}');
    const state = loadRc(p);
    writeFileSync(p, before);
    expect(() => saveRc(state, state.data)).toThrow(/refusing to overwrite/);
    expect(readFileSync(p).equals(before)).toBe(true);
  });
});

describe('saveRc', () => {
  it('writes pretty JSON with a newline, mode 0600, a ~ backup, and keeps unknown keys', () => {
    const p = join(dir, 'rc');
    const original = '{ "version": 1, "x_unknown": {"deep": [1, 2]}, "secret": "old", }\n';
    writeFileSync(p, original, { mode: 0o644 });

    const state = loadRc(p);
    const data = { ...state.data, secret: 'new' };
    saveRc(state, data);

    const text = readFileSync(p, 'utf8');
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).toContain('\n   "secret": "new"');
    expect(JSON.parse(text)).toEqual({ version: 1, x_unknown: { deep: [1, 2] }, secret: 'new' });
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${p}~`, 'utf8')).toBe(original);
    expect(statSync(`${p}~`).mode & 0o777).toBe(0o600); // a private copy, not a link keeping the old mode
    expect(existsSync(`${p}~new~`)).toBe(false);
    expect(loadRc(p).data).toEqual(data);
  });

  it('creates a new file without a backup and never writes the embedded default', () => {
    const p = join(dir, 'fresh');
    const state = loadRc(p);
    expect(state.embedded).toBe(true);
    saveRc(state, state.data);
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ version: 1 });
    expect(existsSync(`${p}~`)).toBe(false);
    expect(statSync(p).mode & 0o777).toBe(0o600);
  });

  it('replaces a stale ~new~ and an old ~ backup', () => {
    const p = join(dir, 'rc');
    writeFileSync(p, '{"version":1,"n":2}');
    writeFileSync(`${p}~`, 'old backup');
    writeFileSync(`${p}~new~`, 'stale', { mode: 0o666 });
    saveRc(p, { version: 1, n: 3 });
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ version: 1, n: 3 });
    expect(JSON.parse(readFileSync(`${p}~`, 'utf8'))).toEqual({ version: 1, n: 2 });
    expect(statSync(p).mode & 0o777).toBe(0o600);
  });

  it('reports OS errors as "<path>: <error>"', () => {
    const p = join(dir, 'missing-dir', 'rc');
    expect(() => saveRc(p, { version: 1 })).toThrow(`${p}~new~: no such file or directory (ENOENT)`);
  });

  it('refuses an empty path', () => {
    expect(() => saveRc('', { version: 1 })).toThrow(/path is empty/);
  });

  it('does not disturb other hard links of the backup', () => {
    const p = join(dir, 'rc');
    writeFileSync(p, '{"version":1}');
    mkdirSync(join(dir, 'keep'));
    writeFileSync(`${p}~`, 'previous backup');
    linkSync(`${p}~`, join(dir, 'keep', 'copy'));
    saveRc(p, { version: 1, a: 1 });
    expect(readFileSync(join(dir, 'keep', 'copy'), 'utf8')).toBe('previous backup');
  });
});

describe('the embedded default', () => {
  const host = 'testhost';
  const missing = (): RcState => loadRc(join(dir, 'absent'));

  it('makes the host-name profile a global seed on 127.0.0.1:4040', () => {
    const { config } = resolveConfig({}, { rc: missing(), hostname: host });
    expect(config.profile).toBe(host);
    expect(config.binds).toEqual(['127.0.0.1:4040']);
    expect(config.seeds).toEqual(['127.0.0.1:4040']);
    expect(config.services).toEqual(['AnyEvent::MP::Global::']);
    // the per-user secret (test setup: AEMP_SECRET_FILE in a temporary directory)
    expect(config.secret).toMatch(/^[0-9A-Za-z]{180}$/);
    expect(config.secret).toBe(readFileSync(process.env.AEMP_SECRET_FILE!, 'utf8').trim());
  });

  it('gives every other profile a loopback listener and the local seed', () => {
    const { config } = resolveConfig(
      { profile: 'aemp', nodeid: 'aemp/%n/%u' },
      { rc: missing(), hostname: host },
    );
    expect(config.binds).toEqual(['127.0.0.1:*']);
    expect(config.seeds).toEqual(['127.0.0.1:4040']);
    expect(config.services).toEqual([]);
    expect(config.nodeid).toBe('aemp/%n/%u');
  });

  it('is not used when a file exists, nor when it is broken, nor with norc', () => {
    const p = join(dir, 'rc');
    writeFileSync(p, '{}');
    expect(resolveConfig({}, { rc: loadRc(p), hostname: host }).config.binds).toEqual(['*']);
    expect(
      resolveConfig({}, { rc: loadRc(fixture('broken.rc')), hostname: host }).config.secret,
    ).toBeUndefined();
    expect(resolveConfig({ norc: 1 }, { rc: missing(), hostname: host }).config.secret).toBeUndefined();
  });
});
