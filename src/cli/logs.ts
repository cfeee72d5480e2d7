/**
 * `aemp logs [LEVEL]`: the log records of every node of the network (AnyEvent::MP::LogCatcher),
 * one line each, until SIGINT or SIGTERM (then exit status 0):
 *
 *   2026-12-06T03:36:53.366Z warn  main: [W+0.001s] hello from W
 *
 * The tool's own node is left out. Everything a node sent is printed with control characters
 * escaped, so a record cannot drive the terminal.
 */
import type { LogLevel, LogRecord } from '../index.js';
import { escapeControls, logs$, timeDiff } from '../streams/config/config.js';
import { type ArgQueue, asText, usage } from './args.js';
import type { Session } from './session.js';
import { untilStopped } from './until-stopped.js';

const NAMES = ['', 'fatal', 'alert', 'crit', 'error', 'warn', 'note', 'info', 'debug', 'trace'];

/** Level shown when none is given: info. */
export const LOGS_DEFAULT_LEVEL = 7;

/** One record as a terminal line (escaped, ending in LF). */
export function logLine(r: LogRecord): string {
  // A time no Date can hold (a node may send any number) is shown as the number it is.
  const date = new Date(r.time * 1000);
  const t = Number.isNaN(date.getTime()) ? String(r.time) : date.toISOString();
  const name = (NAMES[r.level] ?? String(r.level)).padEnd(5);
  return `${t} ${name} ${escapeControls(r.context)}: [${escapeControls(r.node)}${timeDiff(r.time)}] ${escapeControls(r.message)}\n`;
}

export async function logs(s: Session, q: ArgQueue): Promise<void> {
  let level = LOGS_DEFAULT_LEVEL;
  if (q.peek() !== undefined) {
    const raw = asText(q.shift(''));
    level = Number(raw);
    if (!(Number.isInteger(level) && level >= 1 && level <= 9))
      throw usage(`aemp logs: ${raw}: expected a level from 1 (fatal) to 9 (trace)`);
  }
  const node = await s.tool();
  await untilStopped((end) => {
    const sub = logs$(node, level as LogLevel, { own: false }).subscribe({
      next: (r) => s.io.out(logLine(r)),
      error: (err: unknown) => end(err ?? new Error('log stream failed')),
      complete: () => end(),
    });
    return () => sub.unsubscribe();
  });
}
