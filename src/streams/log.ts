/**
 * Logging with AnyEvent::Log's numeric levels (1 fatal … 4 error, 5 warn, 6 note, 7 info,
 * 8 debug, 9 trace). The level comes from `AEMP_VERBOSE` (or Perl's `AE_VERBOSE`), default 4.
 */

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
  log(level: LogLevel, text: string): void;
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
