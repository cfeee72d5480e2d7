/**
 * Errors that escape to the process: an uncaught exception or an unhandled rejection ends a real
 * node's process, so a hostile test asserts that none happened while it ran.
 */
import { afterEach, beforeEach } from 'vitest';

/** The errors that escaped during the current test (emptied before each test of the file). */
export function escapesOfEachTest(): unknown[] {
  const escaped: unknown[] = [];
  const onEscape = (err: unknown) => escaped.push(err);
  beforeEach(() => {
    escaped.length = 0;
    process.on('unhandledRejection', onEscape);
    process.on('uncaughtException', onEscape);
  });
  afterEach(() => {
    process.off('unhandledRejection', onEscape);
    process.off('uncaughtException', onEscape);
  });
  return escaped;
}
