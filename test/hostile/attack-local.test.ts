/**
 * Attacks from the same machine (issue 14, items 9–11 and the configuration part of 5):
 * - the embedded default (no rc file) used to accept the public secret
 *   `aemp-embedded-loopback-default`, replace a program's own secret with it, and listen on
 *   every interface with it under `force`;
 * - `aemp run secret S` showed S in `ps` for the node's whole life;
 * - SIGTERM to the npm wrapper of `aemp run` left the supervisor and node running, and a node
 *   whose supervisor was killed crashed on its way out.
 *
 * Every node here runs with `AEMP_RC` naming a file that does not exist and `AEMP_SECRET_FILE`
 * in a private temporary directory, never the real home.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, configure, memoryLogger, type Node } from '../../src/index.js';
import { resolveConfig } from '../../src/streams/config/config.js';
import { aemp, deadline, tempRc, WAIT_MS } from '../cli/helpers.js';
import { FakePeer } from '../helpers/fake-peer.js';
import { freePort, portIsFree } from '../helpers/ports.js';

const OLD_PUBLIC_SECRET = 'aemp-embedded-loopback-default';
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'aemp.js');
const OWN_SECRET = 'a-program-secret-that-is-long-enough-0123456789';

let dir: string;
const saved: Record<string, string | undefined> = {};
const nodes: Node[] = [];
const children: ChildProcess[] = [];
/** Node processes seen; after each test, any still running is killed with its supervisor. */
const nodePids = new Set<number>();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'aemp-local-'));
  for (const k of ['AEMP_RC', 'AEMP_SECRET_FILE']) saved[k] = process.env[k];
  process.env.AEMP_RC = join(dir, 'no-rc-file');
  process.env.AEMP_SECRET_FILE = join(dir, 'secret');
});

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of nodePids) {
    if (!alive(pid)) continue;
    const ppid = Number(/^\d+ \(.*\) \S (\d+)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1]);
    // only processes running our bin: an orphan's parent may be init or a subreaper
    for (const p of [pid, ppid])
      if (p > 1 && alive(p) && cmdline(p).includes(BIN)) process.kill(p, 'SIGKILL');
  }
  nodePids.clear();
});

afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A node on the embedded default (not the host-name profile: no seed, no port 4040). */
async function embeddedNode(extra: Record<string, unknown> = {}): Promise<Node> {
  const node = configure({ profile: 'attack-local', seeds: [], logger: memoryLogger(), ...extra });
  nodes.push(node);
  await deadline(node.ready, WAIT_MS, 'the node to start');
  return node;
}

/** True when a peer with `secret` gets in: its handshake passes and the node answers `time`. */
async function entersWith(node: Node, secret: string): Promise<boolean> {
  const fake = await FakePeer.dial(node.binds[0]!);
  const id = `intruder-${Math.random().toString(36).slice(2)}`;
  try {
    await fake.handshake({ nodeId: id, secret });
  } catch {
    return false; // closed during the handshake
  }
  const answer = fake.next().then(
    (msg) => msg,
    () => undefined,
  );
  fake.send(['', 'time', `${id}#r1`]);
  const closed = fake.waitClosed().then(
    () => 'closed' as const,
    () => 'open' as const,
  );
  const first = await Promise.race([answer, closed]);
  fake.destroy();
  return Array.isArray(first);
}

function userSecretNow(): string {
  return readFileSync(process.env.AEMP_SECRET_FILE!, 'utf8').trim();
}

describe('the embedded default cannot be entered by another local user', () => {
  it('the old public secret is refused; the same user (same secret file) gets in', async () => {
    const node = await embeddedNode();
    expect(await entersWith(node, OLD_PUBLIC_SECRET)).toBe(false);
    expect(await entersWith(node, userSecretNow())).toBe(true);

    // Another program of the same user, also with zero set-up, talks to it.
    const port = node.port((...args) => node.snd(args[args.length - 1] as string, 'pong', args[0]));
    const other = await embeddedNode({ seeds: [node.binds[0]] });
    const reply = await deadline(
      new Promise<unknown[]>((resolve) => {
        const rp = other.port((...a) => resolve(a));
        other.snd(port, 'ping', rp);
      }),
      WAIT_MS,
      'the reply from the node on the embedded default',
    );
    expect(reply).toEqual(['pong', 'ping']);
  });

  it('the per-user secret file is created 0600 with a gensecret-like secret', async () => {
    await embeddedNode();
    const st = statSync(process.env.AEMP_SECRET_FILE!);
    expect(st.mode & 0o777).toBe(0o600);
    expect(userSecretNow()).toMatch(/^[0-9A-Za-z]{180}$/);
  });

  it('a secret file others can read is replaced (new secret, 0600, warning); old secret refused', async () => {
    const file = join(dir, 'exposed');
    writeFileSync(file, `${'e'.repeat(180)}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    const logger = memoryLogger();
    process.env.AEMP_SECRET_FILE = file;
    try {
      const n = await embeddedNode({ logger });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(userSecretNow()).not.toBe('e'.repeat(180));
      expect(logger.lines.map((l) => l.text).join('\n')).toMatch(
        /was accessible to other users \(mode 0644\)/,
      );
      expect(await entersWith(n, 'e'.repeat(180))).toBe(false);
      expect(await entersWith(n, userSecretNow())).toBe(true);
    } finally {
      process.env.AEMP_SECRET_FILE = join(dir, 'secret');
    }
  });

  it('a secret file that is a symbolic link, or belongs to another user, is refused', async (ctx) => {
    const target = join(dir, 'planted');
    writeFileSync(target, 'p'.repeat(180), { mode: 0o600 });
    const link = join(dir, 'link');
    symlinkSync(target, link);
    expect(() => resolveConfig({}, { env: { AEMP_RC: join(dir, 'none'), AEMP_SECRET_FILE: link } })).toThrow(
      /refusing to use the per-user secret file .*link: it is a symbolic link/,
    );
    if (process.getuid?.() !== 0) return ctx.skip(); // chown to another user needs root
    chownSync(target, 65534, 65534);
    expect(() =>
      resolveConfig({}, { env: { AEMP_RC: join(dir, 'none'), AEMP_SECRET_FILE: target } }),
    ).toThrow(/refusing to use the per-user secret file .*planted: it belongs to another user/);
  });

  it('a directory others can write is refused', () => {
    const open = mkdtempSync(join(tmpdir(), 'aemp-open-'));
    try {
      chmodSync(open, 0o777);
      const env = { AEMP_RC: join(dir, 'none'), AEMP_SECRET_FILE: join(open, 'secret') };
      expect(() => resolveConfig({}, { env })).toThrow(/is writable by other users/);
      expect(existsSync(join(open, 'secret'))).toBe(false);
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });
});

describe('the embedded default listens on loopback only', () => {
  it.each([['*:0'], ['0.0.0.0:0'], ['::'], ['4040'], ['127.0.0.1:0,*:0']])(
    'binds %j without a secret of its own: ConfigError, nothing listens (also with force)',
    (bind) => {
      expect(() => configure({ profile: 'attack-local', binds: [bind], seeds: [] })).toThrow(ConfigError);
      expect(() => configure({ profile: 'attack-local', binds: [bind], seeds: [], force: true })).toThrow(
        /is not a loopback address, and the node has no secret or certificate of its own/,
      );
    },
  );

  it('loopback binds are fine; with a secret of its own, any bind is the program’s choice', () => {
    const env = { AEMP_RC: join(dir, 'none') };
    for (const b of ['127.0.0.1:0', '127.0.0.2:*', '[::1]:0', 'localhost:0'])
      expect(resolveConfig({ binds: [b] }, { env }).config.binds).toEqual([b]);
    expect(resolveConfig({ binds: ['*:4040'], secret: OWN_SECRET }, { env }).config.binds).toEqual([
      '*:4040',
    ]);
  });
});

describe("a program's own secret beats the embedded default", () => {
  it('configure({ secret }) without force and without an rc file: that secret is the one in effect', async () => {
    const node = await embeddedNode({ secret: OWN_SECRET });
    expect(await entersWith(node, OLD_PUBLIC_SECRET)).toBe(false);
    expect(await entersWith(node, userSecretNow())).toBe(false);
    expect(await entersWith(node, OWN_SECRET)).toBe(true);
  });

  it('configure({ secret }) with a short secret warns (at warn level) and says what gensecret makes', () => {
    const logger = memoryLogger();
    const node = configure({ profile: 'attack-local', seeds: [], secret: 'letmein', logger });
    nodes.push(node);
    expect(logger.lines).toContainEqual({
      level: 5,
      text: expect.stringMatching(/secret is only 7 characters long.*\(aemp gensecret makes 180\)/),
    });
  });
});

describe('rc files', () => {
  it('loading a group/world-readable rc file that holds a secret warns; a private one does not', () => {
    const rc = tempRc({ version: 1, profile: { p: { secret: OWN_SECRET } } });
    chmodSync(rc, 0o644);
    const loose = resolveConfig({ profile: 'p' }, { env: { AEMP_RC: rc } });
    expect(loose.warnings).toEqual([
      expect.stringMatching(/other users may read it \(mode 0644\).*chmod 600/),
    ]);
    chmodSync(rc, 0o600);
    expect(resolveConfig({ profile: 'p' }, { env: { AEMP_RC: rc } }).warnings).toEqual([]);
    // and it reaches the node's logger at error level (shown by default)
    chmodSync(rc, 0o640);
    const saved = process.env.AEMP_RC;
    process.env.AEMP_RC = rc;
    try {
      const logger = memoryLogger();
      nodes.push(configure({ profile: 'p', binds: ['127.0.0.1:0'], seeds: [], logger }));
      expect(logger.lines).toContainEqual({ level: 4, text: expect.stringMatching(/mode 0640/) });
    } finally {
      process.env.AEMP_RC = saved;
    }
  });
});

/** `aemp run` in a child process, with the test's environment (info level: the supervisor names the node's pid); `shell` wraps it in `sh -c`. */
function runProcess(args: string[], env: Record<string, string>, shell = false): ChildProcess {
  const fullEnv = { ...process.env, AEMP_VERBOSE: '7', ...env };
  const child = shell
    ? spawn('sh', ['-c', `"${process.execPath}" "${BIN}" ${args.join(' ')}; exit $?`], {
        env: fullEnv,
        stdio: 'pipe',
      })
    : spawn(process.execPath, [BIN, ...args], { env: fullEnv, stdio: 'pipe' });
  children.push(child);
  return child;
}

/** Collects a child's output and resolves when `re` matches it. */
function output(child: ChildProcess) {
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of watchers) w();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of watchers) w();
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    out: () => out,
    err: () => err,
    /** Resolves once every process holding the pipes (supervisor and node) has exited. */
    allGone: (what: string) => deadline(closed, WAIT_MS, what),
    wait: (re: RegExp, which: 'out' | 'err', what: string) =>
      deadline(
        new Promise<RegExpMatchArray>((resolve) => {
          const check = () => {
            const m = (which === 'out' ? out : err).match(re);
            if (m) {
              watchers.delete(check);
              resolve(m);
            }
          };
          watchers.add(check);
          check();
        }),
        WAIT_MS,
        what,
      ),
  };
}

/** True while `pid` runs (an exited process that nobody reaped yet, a zombie, counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
}

describe('aemp run', () => {
  it('secret S: S is in no command line (supervisor, node) nor in the environment of the node', async (ctx) => {
    if (!existsSync('/proc/self/cmdline')) return ctx.skip();
    const port = await freePort();
    const s = `run-secret-${Math.random().toString(36).slice(2)}-0123456789abcdef`;
    const rc = tempRc({ version: 1, binds: [`127.0.0.1:${port}`] });
    const child = runProcess(['run', 'p', 'secret', s], { AEMP_RC: rc });
    const io = output(child);
    await io.wait(new RegExp(`^\\S+ 127\\.0\\.0\\.1:${port}$`, 'm'), 'out', 'the node to announce itself');
    const [, pid] = await io.wait(/supervising node process (\d+)/, 'err', 'the node pid');
    nodePids.add(Number(pid));
    expect(cmdline(child.pid!)).not.toContain(s);
    expect(cmdline(Number(pid))).not.toContain(s);
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8')).not.toContain(s);
    // and the node really runs with it
    const fake = await FakePeer.dial(`127.0.0.1:${port}`);
    const hs = await fake.handshake({ nodeId: 'checker', secret: s });
    expect(hs.tokenOk).toBe(true);
    fake.destroy();
    child.kill('SIGTERM');
    await io.allGone('supervisor and node to exit after SIGTERM');
  });

  it('SIGTERM to the supervisor: supervisor and node both gone', async () => {
    const rc = tempRc({ version: 1, secret: OWN_SECRET, binds: ['127.0.0.1:0'] });
    const child = runProcess(['run', 'p'], { AEMP_RC: rc });
    const io = output(child);
    const [, pid] = await io.wait(/supervising node process (\d+)/, 'err', 'the node pid');
    nodePids.add(Number(pid));
    await io.wait(/^\S+ 127\.0\.0\.1:\d+$/m, 'out', 'the node to announce itself');
    child.kill('SIGTERM');
    await io.allGone('supervisor and node to exit after SIGTERM');
    expect(alive(Number(pid))).toBe(false);
  });

  it('under npm (sh -c wrapper, npm_command set), SIGTERM to the wrapper stops supervisor and node', async () => {
    const rc = tempRc({ version: 1, secret: OWN_SECRET, binds: ['127.0.0.1:0'] });
    const wrapper = runProcess(['run', 'p'], { AEMP_RC: rc, npm_command: 'exec' }, true);
    const io = output(wrapper);
    const [, pid] = await io.wait(/supervising node process (\d+)/, 'err', 'the node pid');
    nodePids.add(Number(pid));
    await io.wait(/^\S+ 127\.0\.0\.1:\d+$/m, 'out', 'the node to announce itself');
    wrapper.kill('SIGTERM'); // the shell dies; it does not pass the signal on
    await io.allGone('supervisor and node to exit after the npm wrapper went away');
    expect(alive(Number(pid))).toBe(false);
    expect(io.err()).toMatch(/the parent process \(npm\) went away, stopping/);
  });

  it('supervisor SIGKILLed: the node closes and exits by itself, cleanly', async () => {
    const rc = tempRc({ version: 1, secret: OWN_SECRET, binds: ['127.0.0.1:0'] });
    const child = runProcess(['run', 'p'], { AEMP_RC: rc });
    const io = output(child);
    const [, pid] = await io.wait(/supervising node process (\d+)/, 'err', 'the node pid');
    nodePids.add(Number(pid));
    await io.wait(/^\S+ 127\.0\.0\.1:\d+$/m, 'out', 'the node to announce itself');
    child.kill('SIGKILL');
    await io.allGone('the orphaned node to exit');
    expect(alive(Number(pid))).toBe(false);
    expect(io.err()).toMatch(/supervisor gone, shutting down/);
    expect(io.err()).not.toMatch(/ERR_IPC|Error/);
  });
});

describe('aemp commands of the same user work against the embedded default', () => {
  it('a seed on 127.0.0.1:4040 started with no rc file answers the tool; the old secret does not get in', async (ctx) => {
    if (!(await portIsFree(4040))) return ctx.skip();
    const rc = join(dir, 'none');
    const seed = aemp(['run'], { AEMP_RC: rc, AEMP_SECRET_FILE: process.env.AEMP_SECRET_FILE! });
    const [, id] = (await seed.waitOut(/^(\S+) 127\.0\.0\.1:4040$/m)) as unknown as [string, string];
    const tool = aemp(['eval', id, '6*7'], { AEMP_RC: rc, AEMP_SECRET_FILE: process.env.AEMP_SECRET_FILE! });
    expect(await tool.exited()).toBe(0);
    expect(tool.out()).toBe('42\n');
    const fake = await FakePeer.dial('127.0.0.1:4040');
    await fake.handshake({ nodeId: 'intruder', secret: OLD_PUBLIC_SECRET }).catch(() => undefined);
    await fake.waitClosed();
    seed.child.kill('SIGTERM');
    expect(await seed.exited()).toBe(0);
  });
});
