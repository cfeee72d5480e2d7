/**
 * The package as a consumer gets it: `npm pack` of this repository (which builds dist/), the
 * tarball installed with `npm install` into a fresh app in a temporary directory (runtime
 * dependencies come from the registry; no tsx, no TypeScript, no dev tools), and there:
 *
 * - the tarball holds the build, the bin, the sources its maps point at, README and
 *   package.json, and nothing else (no tests, fixtures, keys, bench, CI or examples);
 * - a plain-JS ESM program runs two nodes that exchange a message and close;
 * - `require('aemp')` works where Node can require ES modules, and fails with ERR_REQUIRE_ESM
 *   where it cannot (the package is ESM-only);
 * - a TypeScript program type-checks against the shipped declarations with `strict`,
 *   `exactOptionalPropertyTypes` and `skipLibCheck: false`, under `moduleResolution` `node16`
 *   and `bundler`;
 * - `npx aemp help` and an `aemp cal` against a node the app runs work with plain node.
 *
 * The packing happens in a copy of the working tree (its node_modules linked), so the test
 * never rewrites the repository's dist/, nor races another run that packs.
 *
 * Every child gets a deadline that names what it waited for and is killed after it; the rc
 * file and the per-user secret file are temporary files, and the directory is removed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { within } from '../helpers/fake-peer.js';

const ROOT = join(import.meta.dirname, '..', '..');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
/** `npm pack` builds first (tsc), then packs. */
const PACK_MS = 120_000;
/** `npm install` of the tarball fetches the runtime dependencies from the registry. */
const INSTALL_MS = 120_000;
const RUN_MS = 20_000;
/** Top-level entries of the working tree not copied for packing. */
const NOT_STAGED = new Set(['node_modules', 'dist', '.git', 'coverage']);
const TSC_MS = 60_000;

interface Done {
  code: number | null;
  out: string;
  err: string;
}

const children = new Set<ChildProcess>();

/**
 * The environment of the consumer's commands: no npm script variables of this repository's
 * `npm test`, no PATH entry into its node_modules/.bin (where tsx and tsc live), and the rc
 * and secret files in the temporary directory.
 */
function consumerEnv(dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_(package|lifecycle|command|execpath|node_execpath)|INIT_CWD$|NODE_OPTIONS$|AEMP_)/.test(k))
      continue;
    env[k] = v;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((p) => !p.includes(join('node_modules', '.bin')))
    .join(delimiter);
  env.AEMP_RC = join(dir, 'aemprc');
  env.AEMP_SECRET_FILE = join(dir, 'aemp-secret');
  return env;
}

/** Starts `cmd ARGS…` in `cwd`. */
function start(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(cmd, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.once('close', () => children.delete(child));
  return child;
}

/** Runs `cmd ARGS…` to its end; rejects naming `what` when it takes longer than `ms`. */
function run(
  what: string,
  cmd: string,
  args: readonly string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; ms: number },
): Promise<Done> {
  return new Promise((resolve, reject) => {
    const child = start(cmd, args, opts.cwd, opts.env);
    child.stdin!.end();
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what}: no end within ${opts.ms} ms\nstdout: ${out}\nstderr: ${err}`));
    }, opts.ms);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${e.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

let dir = '';
let app = '';
let env: NodeJS.ProcessEnv = {};
let packed: { filename: string; size: number; unpackedSize: number; files: { path: string }[] };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aemp-consumer-'));
  env = consumerEnv(dir);
  const stage = join(dir, 'stage');
  cpSync(ROOT, stage, {
    recursive: true,
    filter: (path) => !NOT_STAGED.has(relative(ROOT, path).split(sep)[0]!) && !path.endsWith('.tgz'),
  });
  symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'), 'dir');
  const pack = await run('npm pack', 'npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: stage,
    env: { ...process.env, NODE_OPTIONS: '' },
    ms: PACK_MS,
  });
  expect(pack.code, pack.err).toBe(0);
  packed = JSON.parse(pack.out)[0];
  app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'aemp-consumer', version: '1.0.0', private: true, type: 'module' }),
  );
  const install = await run(
    'npm install of the tarball',
    'npm',
    ['install', '--no-audit', '--no-fund', join(dir, packed.filename)],
    { cwd: app, env, ms: INSTALL_MS },
  );
  expect(install.code, install.err).toBe(0);
}, PACK_MS + INSTALL_MS);

afterAll(async () => {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('close', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Writes `text` into the app as `name`. */
function appFile(name: string, text: string): string {
  writeFileSync(join(app, name), text);
  return name;
}

describe('the packed package', () => {
  it('holds the build, the bin, the sources of its maps, README and package.json, nothing else', () => {
    const paths = packed.files.map((f) => f.path).sort();
    console.log(
      `${packed.filename}: ${paths.length} files, ${packed.size} bytes packed, ${packed.unpackedSize} unpacked\n` +
        paths.join('\n'),
    );
    const allowed =
      /^(package\.json|README\.md|LICENSE|bin\/aemp\.js|dist\/.+\.(js|js\.map|d\.ts|d\.ts\.map)|src\/.+\.ts)$/;
    expect(paths.filter((p) => !allowed.test(p))).toEqual([]);
    // the `aemp/testing` entry (virtual clock, in-memory network) is shipped; test suites are not
    const shipped = paths.filter((p) => !/^(dist|src)\/testing\.(ts|js|js\.map|d\.ts|d\.ts\.map)$/.test(p));
    expect(shipped.filter((p) => /test|fixture|\.pem$|bench|\.ci|example|dist\/api\//i.test(p))).toEqual([]);
    // declarations of the CLI's modules are no API
    expect(paths.filter((p) => /^dist\/cli\/.*\.d\.ts/.test(p))).toEqual([]);
    for (const p of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/testing.js',
      'dist/testing.d.ts',
      'dist/cli/main.js',
      'bin/aemp.js',
      'package.json',
      'LICENSE',
    ])
      expect(paths).toContain(p);
    // every module is built from a source of this tarball (no stale output of a removed file)
    const js = paths.filter((p) => p.startsWith('dist/') && p.endsWith('.js'));
    expect(js.filter((p) => !paths.includes(p.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts')))).toEqual(
      [],
    );
    expect(js.length).toBe(paths.filter((p) => p.startsWith('src/')).length);
  });

  it('installs with its runtime dependencies only: no tsx, no TypeScript, no cbor-x', () => {
    const installed = readdirSync(join(app, 'node_modules'));
    for (const dev of ['tsx', 'typescript', 'cbor-x', '@types', 'vitest', '@biomejs'])
      expect(installed).not.toContain(dev);
    expect(installed).toEqual(expect.arrayContaining(['aemp', 'rxjs', 'convict', '@noble']));
  });
});

describe('a consumer app', () => {
  it(
    'runs a plain-JS ESM program: two nodes exchange a message and close',
    async () => {
      const file = appFile(
        'two-nodes.mjs',
        `import { configure } from 'aemp';
const secret = 'consumer-test';
const a = configure({ norc: true, nodeid: 'consumer-a/', secret, binds: ['127.0.0.1:0'] });
await a.ready;
const b = configure({ norc: true, nodeid: 'consumer-b/', secret, binds: ['127.0.0.1:0'], seeds: a.binds });
await b.ready;
const port = a.port((...msg) => {
  console.log('a got', JSON.stringify(msg));
  Promise.all([a.close(), b.close()]).then(() => console.log('closed'));
});
b.snd(port, 'hello', { from: 'b' });
`,
      );
      const r = await run('the ESM program', process.execPath, [file], { cwd: app, env, ms: RUN_MS });
      expect(r).toEqual({ code: 0, out: 'a got ["hello",{"from":"b"}]\nclosed\n', err: '' });
    },
    RUN_MS + 5_000,
  );

  it(
    'runs two nodes of aemp/testing on an in-memory network in virtual time',
    async () => {
      const file = appFile(
        'memory-nodes.mjs',
        `import { MemoryNetwork, memoryNode, VirtualClock } from 'aemp/testing';
const clock = new VirtualClock();
const net = new MemoryNetwork();
const secret = 'consumer-test';
const a = memoryNode(net.host(), { nodeid: 'mem-a', secret, binds: ['10.0.0.1:4040'], clock });
const b = memoryNode(net.host(), { nodeid: 'mem-b', secret, binds: ['10.0.0.2:4040'], seeds: ['10.0.0.1:4040'], clock });
await Promise.all([a.ready, b.ready]);
let inbox = '';
const got = new Promise((resolve) => {
  inbox = a.port((...msg) => resolve(msg));
});
b.snd(inbox, 'hello');
await clock.run(100);
console.log('a got', JSON.stringify(await got));
await clock.run(3_600_000);
console.log('an hour later', b.upNodes().join(','));
const closing = Promise.all([a.close(), b.close()]);
await clock.run(5_000);
await closing;
console.log('closed');
`,
      );
      const r = await run('the aemp/testing program', process.execPath, [file], {
        cwd: app,
        env,
        ms: RUN_MS,
      });
      expect(r).toEqual({ code: 0, out: 'a got ["hello"]\nan hour later mem-a\nclosed\n', err: '' });
    },
    RUN_MS + 5_000,
  );

  it(
    'require()s the ESM-only package where Node can, and gets ERR_REQUIRE_ESM where it cannot',
    async () => {
      const file = appFile(
        'required.cjs',
        "const aemp = require('aemp');\nconsole.log(typeof aemp.configure, typeof aemp.Node);\n",
      );
      const requireModule = (process.features as { require_module?: boolean }).require_module === true;
      const plain = await run('require() of aemp', process.execPath, [file], { cwd: app, env, ms: RUN_MS });
      if (requireModule) {
        // `Node` is a type only: nodes come from configure()
        expect(plain).toMatchObject({ code: 0, out: 'function undefined\n' });
        // as on the Node versions before require(esm)
        const off = await run(
          'require() of aemp without require(esm)',
          process.execPath,
          ['--no-experimental-require-module', file],
          { cwd: app, env, ms: RUN_MS },
        );
        expect(off.code).not.toBe(0);
        expect(off.err).toMatch(/ERR_REQUIRE_ESM/);
      } else {
        expect(plain.code).not.toBe(0);
        expect(plain.err).toMatch(/ERR_REQUIRE_ESM/);
      }
    },
    2 * RUN_MS + 5_000,
  );

  it.each([
    ['node16', 'node16'],
    ['bundler', 'esnext'],
  ])(
    'type-checks a TypeScript program with moduleResolution %s, strict, exactOptionalPropertyTypes and skipLibCheck false',
    async (resolution, module) => {
      appFile(
        'typed.ts',
        `import * as aemp from 'aemp';
import { AempError, type ConfigureOptions, configure, type KillReason, type Node, type NodeEvent } from 'aemp';

const options: ConfigureOptions = { norc: true, nodeid: 'typed/', binds: ['127.0.0.1:0'], seeds: [] };
const node: Node = configure(options);
await node.ready;
const port: string = node.port((...msg: unknown[]) => console.log(msg));
const sub = node.subscribe((e: NodeEvent) => {
  if (e.type === 'down') console.log(e.node, aemp.formatReason(e.reason));
});
node.mon$(port).subscribe((reason: KillReason) => console.log(reason));
node.cal$(port, 'ping').subscribe({ error: (err: unknown) => console.log(AempError.is(err) && err.code) });
node.db.keys$('family').subscribe((keys: string[]) => console.log(keys.length));
const guard: aemp.Guard = node.mon(port, () => {});
guard.dispose();
sub.unsubscribe();
await node.close();
// @ts-expect-error internals are not exported
void aemp.Kernel;
// @ts-expect-error Node is a type: nodes come from configure()
void aemp.Node;
// @ts-expect-error a node's internals are not part of its type
void node.kernel;
`,
      );
      const config = appFile(
        `tsconfig.${resolution}.json`,
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            lib: ['ES2023'],
            module,
            moduleResolution: resolution,
            strict: true,
            exactOptionalPropertyTypes: true,
            noUncheckedIndexedAccess: true,
            skipLibCheck: false,
            noEmit: true,
            // @types/node of this repository; everything else comes from the app's node_modules
            types: ['node'],
            typeRoots: [join(ROOT, 'node_modules', '@types')],
          },
          files: ['typed.ts'],
        }),
      );
      const r = await run(`tsc (${resolution})`, process.execPath, [TSC, '-p', config], {
        cwd: app,
        env,
        ms: TSC_MS,
      });
      expect(r, `${r.out}${r.err}`).toMatchObject({ code: 0, out: '' });
    },
    TSC_MS + 5_000,
  );

  it(
    'runs `npx aemp help` with plain node (no tsx)',
    async () => {
      const r = await run('npx aemp help', 'npx', ['--no', 'aemp', 'help'], { cwd: app, env, ms: RUN_MS });
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^Usage: aemp /);
      expect(existsSync(join(app, 'node_modules', 'tsx'))).toBe(false);
    },
    RUN_MS + 5_000,
  );

  it(
    'runs `aemp cal` against a node of the app',
    async () => {
      const secret = 'consumer-cal-test';
      appFile(
        'serve.mjs',
        `import { configure } from 'aemp';
const node = configure({ norc: true, nodeid: 'served/', secret: ${JSON.stringify(secret)}, binds: ['127.0.0.1:0'] });
await node.ready;
const port = node.port((tag, ...args) => node.snd(args.pop(), 'pong', tag, ...args));
console.log(port, node.binds[0]);
process.stdin.on('end', () => node.close()).resume();
`,
      );
      const served = start(process.execPath, ['serve.mjs'], app, env);
      let line = '';
      let err = '';
      served.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
      const [port, address] = await within(
        new Promise<string[]>((resolve) => {
          served.stdout!.on('data', (d: Buffer) => {
            line += d.toString();
            if (line.endsWith('\n')) resolve(line.trim().split(' '));
          });
        }),
        RUN_MS,
        `the served node's "PORT ADDRESS" line (stderr: ${err})`,
      );
      writeFileSync(
        env.AEMP_RC!,
        JSON.stringify({
          version: 1,
          secret,
          profile: { aemp: { binds: ['127.0.0.1:0'], seeds: [address] } },
        }),
      );
      chmodSync(env.AEMP_RC!, 0o600);
      const r = await run('npx aemp cal', 'npx', ['--no', 'aemp', 'cal', port!, 'ping', '{"n":1}'], {
        cwd: app,
        env,
        ms: RUN_MS,
      });
      expect(r).toEqual({ code: 0, out: '"pong","ping",{"n":1}\n', err: '' });
      const closed = new Promise<number | null>((resolve) => served.once('close', resolve));
      served.stdin!.end();
      expect(await within(closed, RUN_MS, 'the served node to exit after its stdin ended')).toBe(0);
      expect(err).toBe('');
    },
    3 * RUN_MS + 5_000,
  );
});
