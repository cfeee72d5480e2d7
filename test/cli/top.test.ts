/**
 * `aemp top` in a real pseudo-terminal (tmux, 80×24) against a node run by `aemp run`: the
 * first screen shows the header and the nodes within 80×24, `q` ends it with exit status 0.
 * Without tmux (and no way to install it) that test is skipped, saying so. The picture itself
 * (sorting, cutting to size, escaping) is checked on `renderTop` directly.
 */

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { elide, renderTop, shortBytes } from '../../src/cli/top.js';
import type { LinkStats, NetworkSnapshot, NodeStats } from '../../src/index.js';
import { statsLink, statsNode } from '../helpers/snapshots.js';
import { aempDone, cleanUpAfter, deadline, runNode, tempDir, WAIT_MS } from './helpers.js';

cleanUpAfter('all');

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'aemp.js');

/** tmux, installed with apt-get if missing and possible (as root); undefined if not there. */
function findTmux(): string | undefined {
  const which = () => spawnSync('which', ['tmux'], { encoding: 'utf8' }).stdout.trim() || undefined;
  let found = which();
  if (!found && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    const install = () =>
      spawnSync('apt-get', ['install', '-y', '-q', 'tmux'], { stdio: 'ignore', timeout: 180_000 });
    if (install().status !== 0) {
      spawnSync('apt-get', ['update', '-q'], { stdio: 'ignore', timeout: 180_000 });
      install();
    }
    found = which();
  }
  return found;
}

let tmux: string | undefined;
beforeAll(() => {
  tmux = findTmux();
}, 400_000);

/**
 * The screen once `ok` holds, checked whenever the tmux control-mode client `ctl` reports
 * something (its attaching, then every output of the pane).
 */
function screenWhen(
  ctl: ChildProcess,
  read: () => string,
  ok: (s: string) => boolean,
  what: string,
): Promise<string> {
  let last = '';
  let check = () => {};
  const found = new Promise<string>((resolve) => {
    check = () => {
      last = read();
      if (ok(last)) resolve(last);
    };
    ctl.stdout!.on('data', check);
  });
  return deadline(found, WAIT_MS, what)
    .catch((err: Error) => {
      throw new Error(`${err.message}; screen:\n${last}`);
    })
    .finally(() => ctl.stdout!.off('data', check));
}

describe('aemp top', () => {
  it('shows the nodes in 80×24 in a terminal and ends on q with exit status 0', async (ctx) => {
    if (!tmux) {
      console.warn('aemp top terminal test skipped: tmux is not installed and could not be installed');
      ctx.skip();
      return;
    }
    const srv = await runNode();
    const dir = tempDir();
    const status = join(dir, 'status');
    const sock = `aemp-top-${process.pid}`;
    const t = (...args: string[]) => execFileSync(tmux!, ['-L', sock, ...args], { encoding: 'utf8' });
    const cmd = `env AEMP_RC='${srv.rc}' AEMP_SECRET_FILE='${process.env.AEMP_SECRET_FILE ?? ''}' '${process.execPath}' '${BIN}' top; echo $? > '${status}'`;
    t('new-session', '-d', '-s', 'top', '-x', '80', '-y', '24', cmd);
    // A control-mode client reports every output of the pane, and ends when the session does:
    // when `aemp top` and the shell around it have ended. It leaves the window at 80×24.
    const ctl = spawn(tmux, ['-L', sock, '-C', 'attach', '-t', 'top'], { stdio: ['pipe', 'pipe', 'ignore'] });
    const ctlGone = new Promise<void>((resolve) => ctl.once('exit', () => resolve()));
    try {
      const screen = await screenWhen(
        ctl,
        () => t('capture-pane', '-p', '-t', 'top'),
        (s) => s.includes(srv.id) && /^aemp top — \d+ nodes/m.test(s) && /\bG\b/.test(s),
        'the first screen with the node',
      );
      const lines = screen.replace(/\n+$/, '').split('\n');
      expect(lines.length).toBeLessThanOrEqual(24);
      for (const l of lines) expect([...l].length).toBeLessThanOrEqual(80);
      expect(lines[1]).toMatch(/^NODE\s+K\s+PORTS\s+HEAP/);
      expect(screen).toMatch(/q or Ctrl-C quits/);
      t('send-keys', '-t', 'top', 'q');
      await deadline(ctlGone, WAIT_MS, 'aemp top to exit after q (its tmux session to end)');
      expect(readFileSync(status, 'utf8').trim()).toBe('0');
    } finally {
      spawnSync(tmux, ['-L', sock, 'kill-server']);
      if (ctl.exitCode === null && ctl.signalCode === null) ctl.kill();
    }
  });

  it('prints one picture when standard output is no terminal', async () => {
    const srv = await runNode();
    const r = await srv.tool(['top']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^aemp top — \d+ nodes/);
    expect(r.out).toContain(srv.id);
    expect(r.out).not.toContain('\x1b');
  });

  it('refuses two nodes', async () => {
    const r = await aempDone(['top', 'a', 'b']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/only one NODE/);
  });
});

const link = (from: string, to: string, rateOut: number): LinkStats =>
  statsLink(from, to, { msgRateOut: rateOut, byteRateOut: rateOut * 100 });

const node = (id: string, rateOut: number, extra: Partial<NodeStats> = {}): NodeStats =>
  statsNode(id, {
    ports: 3,
    heapUsed: 5 * 1024 * 1024,
    links: [link(id, 'other', rateOut)],
    ...extra,
  });

describe('the top picture', () => {
  const snap = (nodes: NodeStats[]): NetworkSnapshot => ({
    at: Date.UTC(2026, 0, 1, 12, 0, 1),
    observer: 'me',
    nodes,
    links: nodes.flatMap((n) => n.links ?? []),
    families: [],
    logs: [],
  });

  it('sorts by traffic, marks kinds and fits the screen', () => {
    const lines = renderTop(
      snap([
        node('quiet', 1),
        node('busy', 900, { global: true }),
        node('perl-node', 0, { kind: 'perl', links: [] }),
        node('x'.repeat(200), 5),
      ]),
      80,
      24,
    );
    expect(lines[0]).toMatch(/^aemp top — 4 nodes, 3 links — observed by me — 12:00:01/);
    const rows = lines.slice(2, 6);
    expect(rows[0]).toMatch(/^busy\s+G /);
    expect(rows[1]).toMatch(/^x+… - /);
    expect(rows[2]).toMatch(/^quiet\s+- /);
    expect(rows[3]).toMatch(/^perl-node\s+P /);
    expect(lines.length).toBeLessThanOrEqual(24);
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(80);
    // Every column fits: nothing is cut but the long node ID.
    expect(lines[1]).toMatch(/KB\/s IN\s+OUT$/);
    expect(lines.filter((l) => l.endsWith('…'))).toEqual([]);
  });

  it('cuts many nodes to the rows there are, and escapes control characters', () => {
    const many = Array.from({ length: 60 }, (_, i) => node(`n${i}`, i));
    many.push(node('evil\x1b[2Jnode', 1000));
    const lines = renderTop(snap(many), 80, 24);
    expect(lines).toHaveLength(24 - 1);
    expect(lines.at(-2)).toMatch(/^… \d+ more lines$/);
    expect(lines.at(-1)).toBe('q or Ctrl-C quits');
    expect(lines.join('\n')).not.toContain('\x1b');
    expect(lines[2]).toMatch(/^evil\\/);
  });

  it('writes sizes and cuts text short', () => {
    expect(shortBytes(512)).toBe('512');
    expect(shortBytes(14 * 1024)).toBe('14K');
    expect(shortBytes(3.25 * 1024 * 1024)).toBe('3.3M');
    expect(elide('abcdef', 4)).toBe('abc…');
    expect(elide('abc', 4)).toBe('abc');
  });
});
