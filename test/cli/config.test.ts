/**
 * The configuration subcommands and their effect on the rc file (spec/config-and-cli.md
 * §4.1–§4.3): most cases run the CLI in this process against a temporary rc file; a few run
 * the real bin to cover the process edge (exit status, file written at exit).
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { within } from '../helpers/fake-peer.js';
import { aempDone, aempHere, cleanUpAfter, readRc, tempDir, tempRc } from './helpers.js';

cleanUpAfter('all');

/** Deadline for one in-process aemp invocation. */
const WAIT = 15_000;

/** A secret long enough not to be warned about (32 characters). */
const STRONG = 'k3Jq9ZtXw2Lr8Vn4Hs7Bd1Fy6Pm0Cg5A';

describe('scalar settings', () => {
  it('set, alias without the prefix, and del for each scalar key', async () => {
    const rc = tempRc({ version: 1 });
    const r = await aempHere(rc, [
      'setnodeid',
      'n1/',
      'secret',
      STRONG,
      'setmonitor_timeout',
      '45',
      'connect_interval',
      '3',
      'setframing_format',
      '["json"]',
      'auth_offer',
      'hmac_sha3_512',
      'setauth_accept',
      '["hmac_sha3_512","cleartext"]',
      'autocork',
      '1',
      'nodelay',
      '0',
      'secure',
      'false',
      'seteval',
      'node.register("x::y", () => 1)',
      'parent',
      'base',
    ]);
    expect(r).toEqual({ code: 0, out: '', err: '' });
    expect(readRc(rc)).toEqual({
      version: 1,
      nodeid: 'n1/',
      secret: STRONG,
      monitor_timeout: '45', // plain words are stored as strings, as Perl's aemp does
      connect_interval: '3',
      framing_format: ['json'],
      auth_offer: 'hmac_sha3_512',
      auth_accept: ['hmac_sha3_512', 'cleartext'],
      autocork: '1',
      nodelay: '0',
      secure: 'false',
      eval: 'node.register("x::y", () => 1)',
      parent: 'base',
    });

    const d = await aempHere(rc, [
      'delnodeid',
      'delsecret',
      'delmonitor_timeout',
      'delconnect_interval',
      'delframing_format',
      'delauth_offer',
      'delauth_accept',
      'delautocork',
      'delnodelay',
      'delsecure',
      'deleval',
      'delparent',
    ]);
    expect(d.code).toBe(0);
    expect(readRc(rc)).toEqual({ version: 1 });
  });

  it('eval stays the evaluate command: seteval has no short alias', async () => {
    const rc = tempRc({ version: 1 });
    const r = await aempHere(rc, ['eval']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('aemp eval: node id missing (usage: aemp eval NODE CODE…)\n');
    expect(existsSync(`${rc}~`)).toBe(false);
  });

  it('gensecret stores 180 characters of [0-9A-Za-z], different each time', async () => {
    const rc = tempRc();
    await aempHere(rc, ['gensecret']);
    const first = readRc(rc).secret as string;
    expect(first).toMatch(/^[0-9A-Za-z]{180}$/);
    await aempHere(rc, ['gensecret']);
    const second = readRc(rc).secret as string;
    expect(second).toMatch(/^[0-9A-Za-z]{180}$/);
    expect(second).not.toBe(first);
  });

  it('refuses to write a value nodes would refuse: exit 255, the problem named, the file unchanged', async () => {
    const rc = tempRc({ version: 1 });
    const r = await within(aempHere(rc, ['setmonitor_timeout', 'soon']), WAIT, 'aemp setmonitor_timeout');
    expect(r).toEqual({
      code: 255,
      out: '',
      err:
        `aemp: refusing to write ${rc}: invalid configuration: key "monitor_timeout" at the top level ` +
        'of the rc file: must be a positive number, got "soon"\n',
    });
    expect(readRc(rc)).toEqual({ version: 1 });
    expect(existsSync(`${rc}~`)).toBe(false);
  });
});

describe('lists', () => {
  it('setseeds/setbinds: JSON arrays as given, words split on commas, empty list allowed', async () => {
    const rc = tempRc({ version: 1 });
    await aempHere(rc, ['setseeds', 'a:1,b:2,', 'setbinds', '["*:4040", "127.0.0.1:*"]']);
    expect(readRc(rc)).toMatchObject({ seeds: ['a:1', 'b:2'], binds: ['*:4040', '127.0.0.1:*'] });
    await aempHere(rc, ['seeds', '']);
    expect(readRc(rc).seeds).toEqual([]);
  });

  it('addseed/addbind replace equal entries and append; delseed/delbind remove all equal ones', async () => {
    const rc = tempRc({ version: 1, seeds: ['a:1', 'b:2', 'a:1'], binds: ['x:1'] });
    await aempHere(rc, ['addseed', 'a:1', 'addseed', 'c:3', 'addbind', 'y:2', 'delbind', 'x:1']);
    expect(readRc(rc)).toMatchObject({ seeds: ['b:2', 'a:1', 'c:3'], binds: ['y:2'] });
    await aempHere(rc, ['delseed', 'a:1', 'delseed', 'nope:9']);
    expect(readRc(rc).seeds).toEqual(['b:2', 'c:3']);
    await aempHere(rc, ['delseeds', 'delbinds']);
    expect(readRc(rc)).toEqual({ version: 1 });
  });

  it('services: JSON entries with arguments, addservice keeps duplicates, delservice removes the first', async () => {
    const rc = tempRc({ version: 1 });
    await aempHere(rc, ['setservices', '[["My::init", 1, 2], "Other::"]']);
    expect(readRc(rc).services).toEqual([['My::init', 1, 2], 'Other::']);
    await aempHere(rc, [
      'addservice',
      'X::',
      'addservice',
      'Y::',
      'addservice',
      'X::',
      'addservice',
      '["f::g", 3]',
    ]);
    await aempHere(rc, ['delservice', 'X::']);
    expect(readRc(rc).services).toEqual([['My::init', 1, 2], 'Other::', 'Y::', 'X::', ['f::g', 3]]);
    await aempHere(rc, ['delservices']);
    expect(readRc(rc).services).toBeUndefined();
  });
});

describe('profiles', () => {
  it('chaining: gensecret profile xyzzy binds 4040,4041 nodeid anon/', async () => {
    const rc = tempRc();
    const r = await aempHere(rc, ['gensecret', 'profile', 'xyzzy', 'binds', '4040,4041', 'nodeid', 'anon/']);
    expect(r).toEqual({ code: 0, out: '', err: '' });
    const data = readRc(rc);
    expect(data.secret).toMatch(/^[0-9A-Za-z]{180}$/);
    expect(data.profile).toEqual({ xyzzy: { binds: ['4040', '4041'], nodeid: 'anon/' } });
    expect(data.version).toBe(1);
  });

  it('profile creates an empty profile; setparent/delprofile; showprofile prints own keys only', async () => {
    const rc = tempRc({ version: 1, secret: 'top', profile: { base: { seeds: ['s:1'] } } });
    await aempHere(rc, ['profile', 'empty', 'profile', 'child', 'setparent', 'base', 'setnodeid', 'c/']);
    expect(readRc(rc).profile).toEqual({
      base: { seeds: ['s:1'] },
      empty: {},
      child: { parent: 'base', nodeid: 'c/' },
    });
    const show = await aempHere(rc, ['showprofile', 'child', 'showprofile', 'missing']);
    expect(show.out).toBe('{\n   "parent" : "base",\n   "nodeid" : "c/"\n}\n{}\n');
    await aempHere(rc, ['delprofile', 'empty', 'profile', 'child', 'delparent']);
    expect(readRc(rc).profile).toEqual({ base: { seeds: ['s:1'] }, child: { nodeid: 'c/' } });
  });

  it('showconfig prints the merged configuration without profile and parent', async () => {
    const rc = tempRc({
      version: 1,
      secret: 'top',
      monitor_timeout: 10,
      profile: { base: { seeds: ['s:1'], secret: 'base' }, child: { parent: 'base', nodeid: 'c/' } },
    });
    const r = await aempHere(rc, ['showconfig', 'child', 'binds', '["*:1"]', 'monitor_timeout', '99']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({
      monitor_timeout: 10, // the rc file wins over configure arguments
      connect_interval: 2,
      framing_format: ['cbor', 'json', 'storable'],
      auth_offer: ['tls_sha3_512', 'hmac_sha3_512'],
      auth_accept: ['tls_sha3_512', 'hmac_sha3_512', 'tls_anon', 'cleartext'],
      binds: ['*:1'],
      version: 1,
      secret: 'base',
      seeds: ['s:1'],
      nodeid: 'c/',
    });
    expect(r.out).toMatch(/^ {3}"nodeid" : "c\/"$/m); // JSON::XS pretty style
    const forced = await aempHere(rc, ['showconfig', 'child', 'monitor_timeout', '99', 'force', '1']);
    expect(JSON.parse(forced.out)).toMatchObject({ monitor_timeout: '99' });
    expect(JSON.parse(forced.out)).not.toHaveProperty('force');
  });

  it('showconfig without a name uses the host-name profile; it sees changes made before it', async () => {
    const rc = tempRc({ version: 1, profile: { [hostname()]: { nodeid: 'mine/' } } });
    const r = await aempHere(rc, ['setsecret', 'fresh', 'showconfig']);
    expect(JSON.parse(r.out)).toMatchObject({ nodeid: 'mine/', secret: 'fresh' });
  });

  it('showconfig with no rc file shows the embedded default', async () => {
    const rc = join(tempDir(), 'missing');
    const r = await aempHere(rc, ['showconfig']);
    expect(JSON.parse(r.out)).toMatchObject({
      seeds: ['127.0.0.1:4040'],
      binds: ['127.0.0.1:4040'],
      services: ['AnyEvent::MP::Global::'],
    });
    expect(existsSync(rc)).toBe(false); // nothing changed: nothing written
  });
});

describe('certificates', () => {
  it('setcert stores the file; a missing file dies with the OS error; delcert removes it', async () => {
    const dir = tempDir();
    const pem = join(dir, 'c.pem');
    writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n');
    const rc = join(dir, 'rc');
    await aempHere(rc, ['setcert', pem]);
    expect(readRc(rc).cert).toBe(readFileSync(pem, 'utf8'));
    const bad = await aempHere(rc, ['setcert', join(dir, 'nope.pem')]);
    expect(bad.code).toBe(255);
    expect(bad.err).toBe(`${join(dir, 'nope.pem')}: No such file or directory\n`);
    await aempHere(rc, ['delcert']);
    expect(readRc(rc).cert).toBeUndefined();
  });

  it('gencert stores a self-signed CN=AnyEvent::MP certificate followed by its private key', async () => {
    const rc = tempRc();
    const r = await aempHere(rc, ['gencert']);
    expect(r.code).toBe(0);
    const cert = readRc(rc).cert as string;
    expect(cert).toMatch(
      /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/,
    );
    const x = new X509Certificate(cert);
    expect(x.subject).toBe('CN=AnyEvent::MP');
    expect(x.issuer).toBe('CN=AnyEvent::MP');
    expect(x.ca).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    const days = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86_400_000;
    expect(days).toBe(3650);
  });
});

describe('arguments and errors', () => {
  it('a single [...] argument is the whole command line', async () => {
    const rc = tempRc({ version: 1 });
    const r = await aempHere(rc, ['["profile", "p", "setseeds", ["a:1", "b:2"], "showprofile", "p"]']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ seeds: ['a:1', 'b:2'] });
  });

  it('[ { " arguments are JSON values: objects and strings are stored as decoded', async () => {
    const rc = tempRc({ version: 1 });
    await aempHere(rc, ['setnodeid', '"quoted/"', 'setservices', '[["f::g", {"a": 1}]]']);
    expect(readRc(rc)).toMatchObject({ nodeid: 'quoted/', services: [['f::g', { a: 1 }]] });
  });

  it('a JSON object where a string belongs is refused (the secret is never shown)', async () => {
    const rc = tempRc({ version: 1 });
    const r = await within(aempHere(rc, ['setsecret', '{"not": "a string"}']), WAIT, 'aemp setsecret');
    expect(r).toEqual({
      code: 255,
      out: '',
      err:
        `aemp: refusing to write ${rc}: invalid configuration: key "secret" at the top level of the ` +
        'rc file: must be a string, got a value of type object\n',
    });
    expect(readRc(rc)).toEqual({ version: 1 });
  });

  it('malformed JSON argument dies', async () => {
    const rc = tempRc({ version: 1 });
    const r = await aempHere(rc, ['setseeds', '[broken']);
    expect(r.code).toBe(255);
    expect(r.err).toMatch(/^\[broken: malformed JSON argument/);
  });

  it.each([
    [['setnodeid'], 'shared secret missing', 'ID'], // Perl's message, copy-paste bug included
    [['setsecret'], 'shared secret missing', 'SECRET'],
    [['setbinds'], 'bind addresses missing', 'LIST'],
    [['addbind'], 'bind address missing', 'BIND'],
    [['seeds'], 'seed addresses missing', 'LIST'],
    [['delseed'], 'seed address missing', 'SEED'],
    [['setservices'], 'service specifications missing', 'LIST'],
    [['addservice'], 'service specification missing', 'SERVICE'],
    [['setcert'], 'key+certificate pem filename missing', 'FILE'],
    [['profile'], 'profile name is missing', 'NAME'],
    [['showprofile'], 'profile name is missing', 'NAME'],
    [['setparent'], 'parent profile name is missing', 'NAME'],
    [['setmonitor_timeout'], 'monitor_timeout value missing', 'VALUE'],
    [['snd'], 'port missing', 'PORT ARGS…'],
    [['trace'], 'node id missing', '[--dot] NODE'],
  ])('%j without its argument: "%s", exit 2', async (args, message, synopsis) => {
    const r = await aempHere(tempRc({ version: 1 }), args);
    const name = args[0];
    expect(r).toEqual({
      code: 2,
      out: '',
      err: `aemp ${name}: ${message} (usage: aemp ${name} ${synopsis})\n`,
    });
  });

  it('an unknown command stops the chain; earlier changes are still saved (as Perl END)', async () => {
    const rc = tempRc({ version: 1 });
    const r = await aempHere(rc, ['setsecret', STRONG, 'frobnicate', 'setnodeid', 'never/']);
    expect(r).toEqual({ code: 2, out: '', err: 'frobnicate: no such aemp command (try aemp --help)\n' });
    expect(readRc(rc)).toEqual({ version: 1, secret: STRONG });
  });

  it('run is only a command as the first argument', async () => {
    const r = await aempHere(tempRc({ version: 1 }), ['showprofile', 'x', 'run']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('run: no such aemp command (try aemp --help)\n');
  });

  it('a broken rc file is never overwritten', async () => {
    const rc = tempRc('{ "version": 1, broken');
    const r = await aempHere(rc, ['setsecret', 'x']);
    expect(r.code).toBe(255);
    expect(r.err).toMatch(/^refusing to modify .*rc: it could not be read/);
    expect(readFileSync(rc, 'utf8')).toBe('{ "version": 1, broken');
  });

  it('help COMMAND explains one command, aliases included', async () => {
    const rc = tempRc();
    expect((await aempHere(rc, ['help', 'snd'])).out).toMatch(/^aemp snd PORT ARGS…\n/);
    expect((await aempHere(rc, ['help', 'binds'])).out).toMatch(/same as setbinds/);
    expect((await aempHere(rc, ['help', 'run'])).out).toMatch(/^aemp run \[PROFILE\]/);
    expect((await aempHere(rc, ['help', 'nope'])).code).toBe(2);
  });
});

describe('the bin', () => {
  it('writes the file at exit with mode 0600 and keeps the previous one as <file>~, also 0600', async () => {
    const rc = tempRc('{"version": 1, "secret": "old"}');
    chmodSync(rc, 0o644); // the old file was readable by everyone: its backup must not be
    const r = await aempDone(['setsecret', STRONG, 'profile', 'p', 'addseed', 'x:1'], { AEMP_RC: rc });
    expect(r).toEqual({ code: 0, out: '', err: '' });
    expect(readRc(rc)).toEqual({ version: 1, secret: STRONG, profile: { p: { seeds: ['x:1'] } } });
    expect(readFileSync(`${rc}~`, 'utf8')).toBe('{"version": 1, "secret": "old"}');
    expect(statSync(rc).mode & 0o777).toBe(0o600);
    expect(statSync(`${rc}~`).mode & 0o777).toBe(0o600);
  });

  it('setsecret warns about a secret shorter than 32 characters and says what gensecret makes', async () => {
    const rc = tempRc({ version: 1 });
    const weak = await aempHere(rc, ['setsecret', 'letmein']);
    expect(weak.code).toBe(0);
    expect(weak.err).toBe(
      'aemp: warning: the shared secret is only 7 characters long: anyone who connects gets an HMAC ' +
        'to guess it offline; use at least 32 random characters (aemp gensecret makes 180)\n',
    );
    expect(readRc(rc).secret).toBe('letmein'); // stored anyway, as Perl does
    expect((await aempHere(rc, ['setsecret', STRONG])).err).toBe('');
    expect((await aempHere(rc, ['gensecret'])).err).toBe('');
  });

  it('reading commands leave the file alone', async () => {
    const rc = tempRc('{"version": 1, "profile": {"p": {"nodeid": "p/"}}} # comment\n');
    const r = await aempDone(['showprofile', 'p'], { AEMP_RC: rc });
    expect(r.out).toBe('{\n   "nodeid" : "p/"\n}\n');
    expect(existsSync(`${rc}~`)).toBe(false);
  });
});

describe('configuration mistakes', () => {
  it('writing a valid value into a file that is invalid elsewhere is refused, naming every problem', async () => {
    const before = {
      version: 1,
      profile: { seed: { monitor_timeout: 'soon' }, doomed: { parent: 'nosuch' } },
    };
    const rc = tempRc(before);
    const r = await within(aempHere(rc, ['setsecret', STRONG]), WAIT, 'aemp setsecret');
    expect(r).toEqual({
      code: 255,
      out: '',
      err:
        `aemp: refusing to write ${rc}: invalid configuration: key "monitor_timeout" in profile "seed": ` +
        'must be a positive number, got "soon"\n' +
        `aemp: refusing to write ${rc}: invalid configuration: profile "doomed" has parent "nosuch", ` +
        'which is not a profile in the rc file (profile chain: "doomed" -> "nosuch")\n',
    });
    expect(readRc(rc)).toEqual(before);
  });

  it('the same command line may fix the problems: the file is checked as it would be saved', async () => {
    const rc = tempRc({
      version: 1,
      profile: { seed: { monitor_timeout: 'soon' }, doomed: { parent: 'nosuch' } },
    });
    const r = await within(
      aempHere(rc, [
        'setsecret',
        STRONG,
        'profile',
        'seed',
        'setmonitor_timeout',
        '10',
        'delprofile',
        'doomed',
      ]),
      WAIT,
      'aemp setsecret … delprofile',
    );
    expect(r).toEqual({ code: 0, out: '', err: '' });
    expect(readRc(rc)).toEqual({ version: 1, secret: STRONG, profile: { seed: { monitor_timeout: '10' } } });
  });

  it('setparent to a profile that does not exist, or deleting a parent in use, is refused', async () => {
    const rc = tempRc({ version: 1, profile: { base: {}, child: { parent: 'base' } } });
    const missing = await within(
      aempHere(rc, ['profile', 'x', 'setparent', 'nosuch']),
      WAIT,
      'aemp setparent',
    );
    expect(missing).toEqual({
      code: 255,
      out: '',
      err:
        `aemp: refusing to write ${rc}: invalid configuration: profile "x" has parent "nosuch", which is ` +
        'not a profile in the rc file (profile chain: "x" -> "nosuch")\n',
    });
    const gone = await within(aempHere(rc, ['delprofile', 'base']), WAIT, 'aemp delprofile');
    expect(gone.code).toBe(255);
    expect(gone.err).toBe(
      `aemp: refusing to write ${rc}: invalid configuration: profile "child" has parent "base", which is ` +
        'not a profile in the rc file (profile chain: "child" -> "base")\n',
    );
    expect(readRc(rc)).toEqual({ version: 1, profile: { base: {}, child: { parent: 'base' } } });
  });

  it('a refused file stops a following node command, and the problem is told once', async () => {
    const rc = tempRc({ version: 1 });
    const r = await within(
      aempHere(rc, ['setbinds', '999.1.1.1:5', 'snd', 'nowhere#port', 'x']),
      WAIT,
      'aemp setbinds … snd',
    );
    expect(r).toEqual({
      code: 255,
      out: '',
      err:
        `aemp: refusing to write ${rc}: invalid configuration: key "binds" at the top level of the rc file: ` +
        'has an unparsable address "999.1.1.1:5" (not an IPv4 address), got ["999.1.1.1:5"]\n',
    });
    expect(readRc(rc)).toEqual({ version: 1 });
  });

  it('a command that changes nothing writes an invalid file back as it was, without complaint', async () => {
    const rc = tempRc({ version: 1, monitor_timeout: 'soon', profile: { seed: {} } });
    const r = await within(aempHere(rc, ['profile', 'seed']), WAIT, 'aemp profile seed');
    expect(r).toEqual({ code: 0, out: '', err: '' });
    expect(readRc(rc)).toEqual({ version: 1, monitor_timeout: 'soon', profile: { seed: {} } });
  });

  it('showconfig warns about unknown keys with the closest known key, and still shows the configuration', async () => {
    const rc = tempRc({ version: 1, sekret: 'x', profile: { p: { montor_timeout: 5, nodeid: 'p/' } } });
    const r = await within(aempHere(rc, ['showconfig', 'p', 'bind', '*']), WAIT, 'aemp showconfig');
    expect(r.code).toBe(0);
    expect(r.err).toBe(
      'aemp: warning: unknown configuration key "bind" in the configure arguments is ignored; did you mean "binds"?\n' +
        'aemp: warning: unknown configuration key "sekret" at the top level of the rc file is ignored; ' +
        'did you mean "secret"?\n' +
        'aemp: warning: unknown configuration key "montor_timeout" in profile "p" is ignored; ' +
        'did you mean "monitor_timeout"?\n',
    );
    expect(JSON.parse(r.out)).toMatchObject({
      sekret: 'x',
      montor_timeout: 5,
      monitor_timeout: 30,
      nodeid: 'p/',
    });
  });

  it('showconfig of a configuration nodes would refuse: unknown keys and the refusal are both told', async () => {
    const rc = tempRc({ version: 1, monitor_timeout: 'soon', profile: { p: { sekret: 'x' } } });
    const r = await within(aempHere(rc, ['showconfig', 'p']), WAIT, 'aemp showconfig');
    expect(r.code).toBe(0);
    expect(r.err).toBe(
      'aemp: warning: unknown configuration key "sekret" in profile "p" is ignored; did you mean "secret"?\n' +
        'aemp: warning: invalid configuration: key "monitor_timeout" in profile "p": must be a positive ' +
        'number, got "soon" (set by the rc file top level)\n',
    );
    expect(JSON.parse(r.out)).toMatchObject({ monitor_timeout: 'soon' });
  });

  it('showconfig of a profile whose parent does not exist is an error naming the chain', async () => {
    const rc = tempRc({ version: 1, profile: { doomed: { parent: 'nosuch' } } });
    const r = await within(aempHere(rc, ['showconfig', 'doomed']), WAIT, 'aemp showconfig');
    expect(r).toEqual({
      code: 255,
      out: '',
      err:
        'aemp: invalid configuration: profile "doomed" has parent "nosuch", which is not a profile in the ' +
        'rc file (profile chain: "doomed" -> "nosuch")\n',
    });
  });
});
