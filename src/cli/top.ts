/**
 * `aemp top [NODE]`: the nodes of the network and their busiest links in the terminal,
 * refreshed in place every second, busiest first, cut to the terminal's size (80×24 when it
 * does not say). `q` or Ctrl-C ends it (exit status 0), as do SIGINT and SIGTERM. When standard
 * output is no terminal, one picture is printed and the command ends.
 *
 *   aemp top — 3 nodes, 4 links — observed by aemp/host/x3 — 12:00:01
 *   NODE                    K  PORTS  HEAP  LOOP ms   MSG/s IN  OUT    KB/s IN  OUT
 *   srv/abc                 G     12   14M  0.1/2.0       850  840       12.0 11.9
 *
 * Node IDs and other peer text are printed with control characters escaped.
 */
import { type NetworkSnapshot, type NodeStats, observeNetwork } from '../index.js';
import { escapeControls } from '../streams/config/config.js';
import { type ArgQueue, asText, usage } from './args.js';
import type { Session } from './session.js';
import { untilStopped } from './until-stopped.js';

/** Milliseconds between two pictures. */
export const TOP_INTERVAL_MS = 1000;

const ESC = '\x1b[';
const HOME = `${ESC}H`;
const CLEAR_LINE = `${ESC}K`;
const CLEAR_BELOW = `${ESC}J`;
const HIDE_CURSOR = `${ESC}?25l`;
const SHOW_CURSOR = `${ESC}?25h`;

/** A text cut to `width` columns, with `…` where it was cut. */
export function elide(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  if (chars.length <= width) return text;
  return `${chars.slice(0, width - 1).join('')}…`;
}

const pad = (text: string, width: number) => elide(text, width).padEnd(width);
const num = (text: string, width: number) => elide(text, width).padStart(width);

/** Bytes as a short figure: 512, 14K, 3.2M, 1.1G. */
export function shortBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  if (n < 1024) return String(Math.round(n));
  const units = ['K', 'M', 'G', 'T'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

const rate = (n: number) => (n < 10 ? n.toFixed(1) : String(Math.round(n)));

/** A node's traffic per second (messages in and out over its links). */
function traffic(n: NodeStats): { msgIn: number; msgOut: number; bytesIn: number; bytesOut: number } {
  const t = { msgIn: 0, msgOut: 0, bytesIn: 0, bytesOut: 0 };
  for (const l of n.links ?? []) {
    t.msgIn += l.msgRateIn;
    t.msgOut += l.msgRateOut;
    t.bytesIn += l.byteRateIn;
    t.bytesOut += l.byteRateOut;
  }
  return t;
}

/** One picture as lines of at most `cols` columns, at most `rows` of them. */
export function renderTop(s: NetworkSnapshot, cols: number, rows: number): string[] {
  const width = Math.max(20, cols);
  const lines: string[] = [];
  const time = new Date(s.at).toISOString().slice(11, 19);
  lines.push(
    `aemp top — ${s.nodes.length} nodes, ${s.links.length} links — observed by ${escapeControls(s.observer)} — ${time}`,
  );
  // The fixed columns take 58 characters; the node ID gets the rest (at least 10).
  const idw = Math.max(10, width - 58);
  lines.push(
    `${pad('NODE', idw)} K ${num('PORTS', 6)} ${num('HEAP', 5)} ${num('LOOP ms', 9)} ${num('MSG/s IN', 9)} ${num('OUT', 6)} ${num('KB/s IN', 8)} ${num('OUT', 6)}`,
  );
  const nodes = s.nodes
    .map((n) => ({ n, t: traffic(n) }))
    .sort((a, b) => b.t.msgIn + b.t.msgOut - (a.t.msgIn + a.t.msgOut) || a.n.node.localeCompare(b.n.node));
  const kind = (n: NodeStats) =>
    n.kind === 'perl' ? 'P' : n.kind === 'unknown' ? '?' : n.global ? 'G' : '-';
  const loop = (n: NodeStats) =>
    n.loopDelayMs ? `${rate(n.loopDelayMs.p50)}/${rate(n.loopDelayMs.max)}` : '-';
  for (const { n, t } of nodes) {
    lines.push(
      `${pad(escapeControls(n.node), idw)} ${kind(n)} ${num(n.ports === undefined ? '-' : String(n.ports), 6)} ${num(shortBytes(n.heapUsed), 5)} ${num(loop(n), 9)} ${num(rate(t.msgIn), 9)} ${num(rate(t.msgOut), 6)} ${num(rate(t.bytesIn / 1024), 8)} ${num(rate(t.bytesOut / 1024), 6)}`,
    );
  }
  // The busiest links below, as far as the screen goes.
  const links = [...s.links].sort(
    (a, b) => b.msgRateIn + b.msgRateOut - (a.msgRateIn + a.msgRateOut) || a.from.localeCompare(b.from),
  );
  if (links.length > 0 && lines.length + 3 <= rows) {
    lines.push('');
    const lw = Math.max(8, Math.floor((width - 40) / 2));
    lines.push(
      `${pad('LINK FROM', lw)}   ${pad('TO', lw)} ${num('MSG/s OUT', 10)} ${num('IN', 7)} ${num('QUEUED', 8)} ${num('UNSENT', 7)}`,
    );
    for (const l of links) {
      lines.push(
        `${pad(escapeControls(l.from), lw)} ${l.up ? '→' : '×'} ${pad(escapeControls(l.to), lw)} ${num(rate(l.msgRateOut), 10)} ${num(rate(l.msgRateIn), 7)} ${num(String(l.queued), 8)} ${num(shortBytes(l.unsentBytes), 7)}`,
      );
    }
  }
  // The last row stays free (a line there would scroll the screen), the footer above it.
  const room = Math.max(1, rows - 2);
  const shown = lines.slice(0, room);
  if (lines.length > room) shown[room - 1] = `… ${lines.length - room + 1} more lines`;
  shown.push('q or Ctrl-C quits');
  return shown.map((l) => elide(l, width));
}

/** Reads `[NODE]`. */
function topArgs(q: ArgQueue): { node?: string } {
  const args = q.rest().map(asText);
  if (args.length > 1) throw usage(`aemp top: ${args[1]}: only one NODE`);
  const a = args[0];
  if (a?.startsWith('-')) throw usage(`aemp top: ${a}: unknown option`);
  return a === undefined ? {} : { node: a };
}

export async function top(s: Session, q: ArgQueue): Promise<void> {
  const args = topArgs(q);
  const node = await s.tool();
  if (args.node !== undefined) {
    await s.connectTo(args.node);
  }
  const stdout = process.stdout;
  const stdin = process.stdin;
  const live = stdout.isTTY === true;
  const size = () => ({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
  await untilStopped((end) => {
    const keys = (d: Buffer) => {
      const k = d.toString('latin1');
      if (k.includes('q') || k.includes('Q') || k.includes('\x03')) end();
    };
    if (live) {
      if (stdin.isTTY) stdin.setRawMode(true);
      stdin.on('data', keys);
      stdin.resume();
      s.io.out(`${HOME}${ESC}2J${HIDE_CURSOR}`);
    }
    const sub = observeNetwork(node, { intervalMs: TOP_INTERVAL_MS, families: false }).subscribe({
      next: (snap) => {
        const { cols, rows } = size();
        const lines = renderTop(snap, cols, rows);
        if (!live) {
          s.io.out(`${lines.slice(0, -1).join('\n')}\n`);
          end();
          return;
        }
        s.io.out(`${HOME}${lines.map((l) => l + CLEAR_LINE).join('\r\n')}${CLEAR_BELOW}`);
      },
      error: (err: unknown) => end(err ?? new Error('network view failed')),
      complete: () => end(),
    });
    return () => {
      sub.unsubscribe();
      if (live) {
        stdin.off('data', keys);
        if (stdin.isTTY) stdin.setRawMode(false);
        stdin.pause();
        s.io.out(`${CLEAR_BELOW}${SHOW_CURSOR}`);
      }
    };
  });
}
