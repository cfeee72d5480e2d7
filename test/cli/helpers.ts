/**
 * Helpers of the CLI tests: the `aemp` bin as a child process (waiting for output or exit
 * with deadlines, never for a fixed time), the CLI in-process with captured output, temporary
 * rc files, and a node started with `aemp run`.
 *
 * Every child started here is SIGKILLed after its test if it is still running, and every
 * temporary directory is removed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach } from 'vitest';
import { aemp as aempInProcess } from '../../src/cli/aemp.js';
import { freePort } from '../helpers/ports.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'aemp.js');
/** Deadline for output and exits. */
export const WAIT_MS = 15_000;

const children = new Set<ChildProcess>();
const dirs: string[] = [];

/** Kills what a test left running; with `each`, after every test, else after the file. */
export function cleanUpAfter(scope: 'each' | 'all'): void {
  const clean = async () => {
    const left = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(
      left.map(
        (c) =>
          new Promise<void>((resolve) => {
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
    children.clear();
    if (scope === 'all') for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  };
  if (scope === 'each') afterEach(clean);
  afterAll(async () => {
    await clean();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
}

/** A running `aemp` child process. */
export interface AempProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit status (a signal gives null); rejects after `ms`. */
  exited(ms?: number): Promise<number | null>;
  out(): string;
  err(): string;
  /** Resolves once stdout (or stderr) matches `re`, with the match; rejects after the deadline. */
  waitOut(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  waitErr(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
}

/** Starts `aemp ARGS…` with `env` added to the environment and stdin piped. */
export function aemp(args: readonly string[], env: Record<string, string> = {}): AempProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, AEMP_VERBOSE: '3', ...env },
    stdio: 'pipe',
  });
  children.add(child);
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  const poke = () => {
    for (const w of watchers) w();
  };
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    poke();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    poke();
  });
  let exited = false;
  const exit = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      exited = true;
      poke();
      resolve(code);
    }),
  );
  const wait =
    (get: () => string, what: string) =>
    (re: RegExp, ms = WAIT_MS) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          const m = get().match(re);
          if (m) done(() => resolve(m));
          else if (exited)
            done(() => reject(new Error(`aemp exited before ${what} matched ${re}: ${get()}`)));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`no ${re} on ${what} within ${ms} ms: ${get()} / ${err}`))),
          ms,
        );
        const done = (fn: () => void) => {
          clearTimeout(timer);
          watchers.delete(check);
          fn();
        };
        watchers.add(check);
        check();
      });
  return {
    child,
    exited: (ms = WAIT_MS) => deadline(exit, ms, `aemp ${args.join(' ')} to exit`),
    out: () => out,
    err: () => err,
    waitOut: wait(() => out, 'stdout'),
    waitErr: wait(() => err, 'stderr'),
  };
}

/** Runs `aemp ARGS…` to completion: exit status and output. */
export async function aempDone(
  args: readonly string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<{ code: number | null; out: string; err: string }> {
  const p = aemp(args, env);
  p.child.stdin!.end(stdin ?? '');
  const code = await p.exited();
  return { code, out: p.out(), err: p.err() };
}

/** Runs the CLI in this process with `AEMP_RC=rc`: exit status and captured output. */
export async function aempHere(rc: string, args: readonly string[]) {
  let out = '';
  let err = '';
  const code = await aempInProcess(args, {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    // the per-user secret file of the test setup, never the real one in ~
    env: { AEMP_RC: rc, AEMP_SECRET_FILE: process.env.AEMP_SECRET_FILE },
    stdin: new PassThrough(),
  });
  return { code, out, err };
}

/** A fresh temporary directory, removed after the file's tests. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aemp-cli-'));
  dirs.push(dir);
  return dir;
}

/** Writes an rc file (a string as it is, anything else as JSON) in a fresh directory. */
export function tempRc(content?: unknown): string {
  const file = join(tempDir(), 'rc');
  if (content !== undefined)
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** The rc file's content as JSON. */
export function readRc(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** The shared secret of the test networks. */
export const SECRET = 'aemp-cli-test-secret';

/**
 * An rc file for a node run as `aemp run srv` on 127.0.0.1:PORT, and for the tool's own node
 * (profile `aemp`) using that node as its seed.
 */
export function networkRc(port: number, srv: Record<string, unknown> = {}): string {
  return tempRc({
    version: 1,
    secret: SECRET,
    profile: {
      srv: { binds: [`127.0.0.1:${port}`], nodeid: 'srv/', ...srv },
      aemp: { binds: ['127.0.0.1:0'], seeds: [`127.0.0.1:${port}`] },
    },
  });
}

/** A node run by `aemp run srv` (the supervisor process) and its announced node ID. */
export interface RunningNode {
  readonly proc: AempProcess;
  readonly id: string;
  readonly rc: string;
  /** Runs the tool against this network. */
  tool(args: readonly string[], stdin?: string): ReturnType<typeof aempDone>;
}

/** Starts `aemp run srv` on a free port and waits for its "ID address" line. */
export async function runNode(srv: Record<string, unknown> = {}): Promise<RunningNode> {
  const port = await freePort();
  const rc = networkRc(port, srv);
  const proc = aemp(['run', 'srv'], { AEMP_RC: rc });
  const m = await proc.waitOut(new RegExp(`^(\\S+) 127\\.0\\.0\\.1:${port}$`, 'm'));
  return { proc, id: m[1]!, rc, tool: (args, stdin) => aempDone(args, { AEMP_RC: rc }, stdin) };
}

/** Rejects with `what` if `p` takes longer than `ms`. */
export function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  const result = Promise.race([p, expired]).finally(() => clearTimeout(timer));
  result.catch(() => {});
  return result;
}
