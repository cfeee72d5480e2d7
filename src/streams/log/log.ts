/**
 * Logging with AnyEvent::Log's numeric levels (1 fatal … 4 error, 5 warn, 6 note, 7 info,
 * 8 debug, 9 trace). The level comes from `AEMP_VERBOSE` (or Perl's `AE_VERBOSE`), default 4.
 */
import { type Clock, realClock, type Timer } from '../clock.js';

export type LogLevel = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

export const LEVEL = {
  fatal: 1,
  alert: 2,
  crit: 3,
  error: 4,
  warn: 5,
  note: 6,
  info: 7,
  debug: 8,
  trace: 9,
} as const;

const NAMES = ['', 'fatal', 'alert', 'crit', 'error', 'warn', 'note', 'info', 'debug', 'trace'];

/** Where log lines go. Replace it (node option `logger`) to capture or silence logs. */
export interface Logger {
  /** `context` names where the line comes from (AnyEvent::Log's context title); default `aemp`. */
  log(level: LogLevel, text: string, context?: string): void;
}

/** The level configured through the environment. */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const raw = env.AEMP_VERBOSE ?? env.AE_VERBOSE;
  const n = raw === undefined ? Number.NaN : Number.parseInt(raw, 10);
  return (Number.isInteger(n) ? Math.min(9, Math.max(1, n)) : 4) as LogLevel;
}

/** A logger writing `aemp <level>: <text>` lines to stderr, up to `maxLevel`. */
export function stderrLogger(maxLevel: LogLevel = envLogLevel(), prefix = ''): Logger {
  return {
    log(level, text) {
      if (level <= maxLevel) process.stderr.write(`${prefix}aemp ${NAMES[level]}: ${text}\n`);
    },
  };
}

/** A logger that keeps lines in memory (for tests and tools). */
export function memoryLogger(): Logger & { lines: { level: LogLevel; text: string }[] } {
  const lines: { level: LogLevel; text: string }[] = [];
  return {
    lines,
    log(level, text) {
      lines.push({ level, text });
    },
  };
}

/** How many characters of peer-supplied text a log line shows before cutting it short. */
export const LOG_TEXT_MAX = 200;

/**
 * Characters that must not reach a log line or a terminal raw: C0 controls (LF, CR, ESC…),
 * DEL, C1 controls, the Unicode line and paragraph separators and the bidirectional overrides
 * (which reorder what a terminal shows).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  switch (c) {
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    case '\u001b':
      return '\\e';
  }
  const code = c.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with every control character written as an escape (`\n`, `\r`, `\e`, `\x07`,
 * `\u2028`…), so that it stays on one line and cannot drive a terminal. Nothing is cut.
 */
export function escapeControls(text: string): string {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(text) ? text.replace(UNSAFE, escapeChar) : text;
}

/**
 * Peer-supplied text made fit for a log line: control characters escaped (see
 * `escapeControls`) and anything beyond `max` characters replaced by `…(N more)`. Only the
 * kept part is looked at, so a megabyte of text costs no more than `max` characters.
 */
export function logText(value: unknown, max = LOG_TEXT_MAX): string {
  let s: string;
  try {
    s = typeof value === 'string' ? value : String(value);
  } catch {
    s = Object.prototype.toString.call(value);
  }
  if (s.length <= max) return escapeControls(s);
  let cut = max;
  // Do not split a surrogate pair.
  const last = s.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return `${escapeControls(s.slice(0, cut))}…(${s.length - cut} more)`;
}

/** Lines of one kind and source logged per interval before the rest are only counted. */
export const LOG_BURST = 5;
/** The interval after which suppressed lines are summed up in one line, milliseconds. */
export const LOG_SUMMARY_INTERVAL_MS = 10_000;
/**
 * Kinds/sources tracked at once; lines of further ones share one overflow entry, so a flood
 * from many sources cannot grow the table either.
 */
export const LOG_LIMIT_KEYS = 1000;

interface LimitEntry {
  /** What the summary line names (kind and source, already escaped). */
  label: string;
  level: LogLevel;
  logged: number;
  suppressed: number;
}

/**
 * Rate limit for log lines that peers can provoke at will (refusals, bad requests): per key
 * (kind and source) the first {@link LOG_BURST} lines of an interval are logged, the rest are
 * counted, and when the interval ends one line says how many were left out. The interval timer
 * (on the node's clock) does not keep the process alive, runs only while there is something to
 * count, and `close()` stops it.
 */
export class LogLimiter {
  private readonly entries = new Map<string, LimitEntry>();
  private timer: Timer | undefined;
  private closed = false;

  constructor(
    private readonly logger: () => Logger,
    private readonly burst = LOG_BURST,
    private readonly intervalMs = LOG_SUMMARY_INTERVAL_MS,
    private readonly clock: Clock = realClock,
  ) {}

  /**
   * Logs `text` unless lines under `key` exceeded the burst this interval. `label` names the
   * kind and source in the summary line; keep it short and escaped (it is used as the key).
   */
  log(label: string, level: LogLevel, text: string): void {
    let e = this.entries.get(label);
    if (e === undefined) {
      if (this.entries.size >= LOG_LIMIT_KEYS) {
        label = 'other sources';
        e = this.entries.get(label);
      }
      if (e === undefined) {
        e = { label, level, logged: 0, suppressed: 0 };
        this.entries.set(label, e);
      }
      this.arm();
    }
    if (e.logged < this.burst) {
      e.logged++;
      this.logger().log(level, text);
    } else {
      e.suppressed++;
      if (level < e.level) e.level = level;
    }
  }

  /** Ends the interval now: one summary line per key with suppressed lines, counts reset. */
  flush(): void {
    this.timer?.cancel();
    this.timer = undefined;
    const all = [...this.entries.values()];
    this.entries.clear();
    const seconds = Math.round(this.intervalMs / 1000);
    for (const e of all)
      if (e.suppressed > 0)
        this.logger().log(
          e.level,
          `${e.label}: ${e.suppressed} more line(s) like the above suppressed (at most ${this.burst} per ${seconds} s)`,
        );
  }

  /** Stops the timer and writes the pending summaries. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }

  private arm(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = this.clock.timeout(() => this.flush(), this.intervalMs, false);
  }
}
