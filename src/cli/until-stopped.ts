/**
 * The life of a command that runs until the user stops it (`aemp logs`, `top`, `dashboard`):
 * SIGINT or SIGTERM ends it normally, so may the command itself (with or without an error);
 * the signal handlers and whatever the command set up are removed however it ends.
 */

/**
 * Runs `start` and resolves (or rejects with the error given to `end`) once it ends. `start`
 * returns its teardown, which runs exactly once, also when `end` was called during `start`.
 */
export function untilStopped(
  start: (end: (err?: unknown) => void) => (() => void) | undefined,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let ended = false;
    let teardown: (() => void) | undefined;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      teardown?.();
      if (err === undefined) resolve();
      else reject(err);
    };
    const stop = () => end();
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    try {
      teardown = start(end);
    } catch (err) {
      end(err);
      return;
    }
    if (ended) teardown?.();
  });
}
