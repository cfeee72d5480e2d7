/**
 * The `aemp` bin as a child process: help, usage errors, and `run` starting a node that
 * prints its ID and addresses and exits 0 on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'aemp.js');
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function aemp(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: 'pipe' });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exit, out: () => out, err: () => err };
}

function tempRc(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'aemp-cli-'));
  dirs.push(dir);
  const file = join(dir, 'rc');
  writeFileSync(file, content);
  return file;
}

describe('aemp bin', () => {
  it('prints help and exits 0', async () => {
    const p = aemp(['--help']);
    expect(await p.exit).toBe(0);
    expect(p.out()).toMatch(/aemp run/);
  });

  it('rejects an unknown command and a missing command with exit 2', async () => {
    const a = aemp(['frobnicate']);
    expect(await a.exit).toBe(2);
    expect(a.err()).toMatch(/^frobnicate: no such aemp command/);
    const b = aemp([]);
    expect(await b.exit).toBe(2);
    expect(b.err()).toMatch(/^Usage: aemp subcommand/);
  });

  it('run starts a node, prints its ID and address, and exits 0 on SIGTERM', async () => {
    const rc = tempRc('{"version": 1, "secret": "cli-test"}');
    const p = aemp(['run', 'nodeid', 'clitest/', 'binds', '["127.0.0.1:0"]'], { AEMP_RC: rc });
    const line = await new Promise<string>((resolve) => {
      p.child.stdout!.on('data', () => {
        const first = p.out().split('\n')[0];
        if (p.out().includes('\n') && first) resolve(first);
      });
    });
    expect(line).toMatch(/^clitest\/[0-9A-Za-z]{10} 127\.0\.0\.1:\d+$/);
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
  });
});
