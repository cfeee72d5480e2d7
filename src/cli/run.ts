/**
 * `aemp run [PROFILE] [KEY VALUE]…` (spec/config-and-cli.md §4.4, design.md §3): runs a node
 * forever under a supervisor, the counterpart of Perl's AnyEvent::Watchdog.
 *
 *   supervisor (this process)          node (a child process running the same program)
 *   ─ forks the node                   ─ configure(arguments), prints "<node id> <binds…>"
 *   ─ node crashed → restart it,       ─ a restart request (`aemp restart NODE`) closes the
 *     waiting 0.25 s, 0.5 s, … 30 s      node and exits with EXIT_RESTART → restarted at once
 *   ─ no heartbeat for 300 s → kill    ─ sends a heartbeat every 10 s
 *   ─ SIGINT/SIGTERM → stops the node, ─ SIGINT/SIGTERM or losing the supervisor → ports
 *     exits 0 (SIGHUP: restart)          killed, connections closed, exit 0
 *   ─ started by npm (npx, npm exec,
 *     npm run) and its parent exits →
 *     stops the node, exits 0
 *
 * A node that exits 0 by itself ends the supervisor too (status 0); an invalid configuration
 * is reported once and not retried.
 *
 * Output: stdout gets what the README shows — `<node id> <binds…>` on every start, then
 * `up NODE` and `down NODE [REASON…]` per connection (no reason when the peer closed the
 * connection, as every `aemp` command's node does when it ends; the kill reason words when
 * the connection failed). The supervisor's and the node's own messages go to stderr as log
 * lines (`aemp <level>: …`) shown up to `AEMP_VERBOSE` (default 4: errors only), so a
 * supervised start, a requested restart or a stop prints nothing there, a crash does.
 *
 * The run arguments may hold a secret, so they never appear in a command line that `ps`
 * shows: the supervisor replaces its own process title with `aemp run`, and the node process
 * is started as `aemp run` and gets the arguments as its first IPC message.
 *
 * Why the npm case: npm (`npx aemp run`) runs the program through `sh -c` and forwards SIGINT
 * and SIGTERM to that shell only; the shell dies of them, npm then re-raises the signal on
 * itself (so npx ends "killed by SIGTERM", status 143/130 in a shell), and this process would
 * be left running. So under npm (`npm_command` is set) the supervisor also stops when its
 * parent process goes away (checked every second). Ctrl-C reaches every process of the
 * terminal's foreground group, this one included. Started any other way (a shell, nohup,
 * systemd) it keeps running like Perl's `aemp run`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { ConfigError, configure, envLogLevel, LEVEL, type LogLevel, type Node } from '../index.js';
import { escapeControls, resolveConfig } from '../streams/config/config.js';
import { die, EXIT_DIE, formatError, runOptions } from './args.js';
import type { Io } from './session.js';

/** Exit status of a node that was asked to restart. */
export const EXIT_RESTART = 75;
/** Exit status of a node whose configuration is invalid (not retried). */
export const EXIT_CONFIG = 78;
/** Exit status of a node that failed to start (listeners, services, eval): retried. */
export const EXIT_START_FAILED = 70;

/**
 * Environment variable that makes `aemp run` the supervised node instead of the supervisor;
 * the node then waits for its run arguments on the IPC channel (`{ runArgs: [...] }`).
 */
export const CHILD_ENV = 'AEMP_RUN_SUPERVISED';
/** How long a node process waits for its arguments before giving up. */
const ARGS_WAIT_S = 30;
/** How often a supervisor started by npm checks that its parent process is still there. */
const PARENT_CHECK_S = 1;

const FIRST_BACKOFF_S = 0.25;
const MAX_BACKOFF_S = 30;
/** A node that ran this long is considered stable: the next crash restarts it quickly again. */
const STABLE_AFTER_S = 10;
const HEARTBEAT_S = 10;
const HEARTBEAT_LIMIT_S = 300;
/** How long a stopping node gets before it is killed. */
const STOP_GRACE_S = 10;

/**
 * The reason text of a connection that the peer closed (EOF), as the network reports it: the
 * normal end of every `aemp` command's node, so `aemp run` prints its down line without the
 * reason (monitors still get `["transport_error", NODE, "connection closed by peer"]`).
 */
export const CLOSED_BY_PEER = 'connection closed by peer';

/** A `down` line of `aemp run`: the kill reason words, none for a connection the peer closed. */
export function downLine(node: string, reason: readonly unknown[]): string {
  const closed = reason.length === 3 && reason[0] === 'transport_error' && reason[2] === CLOSED_BY_PEER;
  const words = closed ? '' : ` ${escapeControls(reason.map(String).join(' '))}`;
  return `down ${escapeControls(node)}${words}\n`;
}

const LEVEL_NAMES = new Map<number, string>(Object.entries(LEVEL).map(([name, n]) => [n, name]));

type Log = (level: LogLevel, text: string) => void;

/** Writes `aemp <level>: text` lines on stderr, up to the level of `AEMP_VERBOSE` (default 4). */
function stderrLog(io: Io): Log {
  const max = envLogLevel(io.env);
  return (level, text) => {
    if (level <= max) io.err(`aemp ${LEVEL_NAMES.get(level)}: ${text}\n`);
  };
}

/** Entry of `aemp run`: the supervisor, or in its child the node. Resolves with the exit code. */
export function run(args: readonly unknown[], io: Io): Promise<number> {
  const supervised = io.env[CHILD_ENV];
  if (supervised !== undefined && process.send) {
    delete process.env[CHILD_ENV]; // programs the node starts are not supervised nodes
    return receiveArgs().then(
      (runArgs) => runNode(runArgs, io),
      (err: unknown) => {
        stderrLog(io)(LEVEL.error, formatError(err));
        return EXIT_START_FAILED;
      },
    );
  }
  return supervise(args, io);
}

/** The node's run arguments: the first IPC message from the supervisor. */
function receiveArgs(): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      process.removeListener('message', onMessage);
      process.removeListener('disconnect', onGone);
    };
    const onMessage = (msg: unknown) => {
      const runArgs = (msg as { runArgs?: unknown } | null)?.runArgs;
      if (!Array.isArray(runArgs)) return;
      done();
      resolve(runArgs);
    };
    const onGone = () => {
      done();
      reject(new Error('the supervisor went away before sending the run arguments'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no run arguments from the supervisor within ${ARGS_WAIT_S} s`));
    }, ARGS_WAIT_S * 1000);
    process.on('message', onMessage);
    process.once('disconnect', onGone);
  });
}

/** The supervised node. The promise resolves only when the process is about to exit. */
async function runNode(args: readonly unknown[], io: Io): Promise<number> {
  const log = stderrLog(io);
  let node: Node;
  try {
    node = configure(runOptions(args));
  } catch (err) {
    io.err(`${formatError(err)}\n`);
    return err instanceof ConfigError ? EXIT_CONFIG : EXIT_START_FAILED;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (code: number, why?: string) => {
      if (stopping) return;
      stopping = true;
      if (why) log(LEVEL.note, `${why}, shutting down ${node.id}`);
      clearInterval(beat);
      void node.close().then(() => {
        if (process.connected) process.disconnect();
        resolve(code);
      });
    };
    const beat = setInterval(() => process.send?.('heartbeat'), HEARTBEAT_S * 1000);
    beat.unref();
    process.send?.('heartbeat');
    process.once('SIGINT', () => stop(0, 'SIGINT'));
    process.once('SIGTERM', () => stop(0, 'SIGTERM'));
    if (process.connected) process.once('disconnect', () => stop(0, 'supervisor gone'));
    else queueMicrotask(() => stop(0, 'supervisor gone'));
    node.onRestart = () => stop(EXIT_RESTART, 'restart requested');
    node.subscribe({
      next: (ev) => {
        // Node IDs and reasons come from peers: no control characters reach the terminal.
        if (ev.type === 'up') io.out(`up ${escapeControls(ev.node)}\n`);
        else if (ev.type === 'down') io.out(downLine(ev.node, ev.reason));
      },
    });
    node.ready.then(
      () => io.out(`${node.id} ${node.binds.join(' ')}\n`),
      (err: unknown) => {
        log(LEVEL.error, `node ${node.id} failed to start: ${formatError(err)}`);
        stop(EXIT_START_FAILED);
      },
    );
  });
}

/** The supervisor: keeps one node process running until told to stop. */
async function supervise(args: readonly unknown[], io: Io): Promise<number> {
  // An invalid configuration is reported here, once, rather than by a crashing node.
  try {
    resolveConfig(runOptions(args), { env: io.env });
  } catch (err) {
    throw die(formatError(err));
  }
  const script = process.argv[1];
  if (!script) throw die('aemp run: cannot tell which program to run for the node');
  const log = stderrLog(io);
  // The arguments may hold a secret: keep them out of `ps` from now on.
  process.title = 'aemp run';

  return new Promise<number>((resolve) => {
    let child: ChildProcess | undefined;
    let stopping = false;
    let backoff = FIRST_BACKOFF_S;
    let lastBeat = Date.now();
    let startedAt = 0;
    let pending: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let restartNow = false;

    const parent = process.ppid;
    const parentWatch =
      io.env.npm_command !== undefined
        ? setInterval(() => {
            if (process.ppid !== parent && !stopping) {
              log(LEVEL.note, 'the parent process (npm) went away, stopping');
              onSignal('SIGTERM');
            }
          }, PARENT_CHECK_S * 1000)
        : undefined;

    const watchdog = setInterval(() => {
      if (child && Date.now() - lastBeat > HEARTBEAT_LIMIT_S * 1000) {
        log(
          LEVEL.error,
          `node process ${child.pid} sent no heartbeat for ${HEARTBEAT_LIMIT_S} s, killing it`,
        );
        child.kill('SIGKILL');
      }
    }, 30_000);

    const finish = (code: number) => {
      clearInterval(watchdog);
      if (parentWatch) clearInterval(parentWatch);
      if (pending) clearTimeout(pending);
      if (killTimer) clearTimeout(killTimer);
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(sig, onSignal);
      resolve(code);
    };

    const start = () => {
      pending = undefined;
      startedAt = Date.now();
      lastBeat = Date.now();
      const c = fork(script, ['run'], {
        env: { ...io.env, [CHILD_ENV]: '1' },
        execArgv: process.execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child = c;
      log(LEVEL.info, `supervising node process ${c.pid}`);
      c.send({ runArgs: args }, (err) => {
        if (err)
          log(LEVEL.error, `cannot pass the run arguments to node process ${c.pid}: ${formatError(err)}`);
      });
      c.on('message', () => {
        lastBeat = Date.now();
      });
      c.on('exit', (code, signal) => exited(c, code, signal));
    };

    const exited = (c: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
      if (child !== c) return;
      child = undefined;
      if (killTimer) clearTimeout(killTimer);
      killTimer = undefined;
      if (stopping) return finish(0);
      if (restartNow || code === EXIT_RESTART) {
        restartNow = false;
        backoff = FIRST_BACKOFF_S;
        log(LEVEL.note, 'restarting the node');
        return start();
      }
      if (code === 0) {
        log(LEVEL.note, 'the node exited normally');
        return finish(0);
      }
      if (code === EXIT_CONFIG) {
        log(LEVEL.error, 'the node configuration is invalid, not restarting');
        return finish(EXIT_DIE);
      }
      if ((Date.now() - startedAt) / 1000 >= STABLE_AFTER_S) backoff = FIRST_BACKOFF_S;
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      log(LEVEL.error, `node process ${c.pid} ${how}, restarting in ${backoff} s`);
      pending = setTimeout(start, backoff * 1000);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_S);
    };

    /** Asks the running node to stop; kills it if it takes too long. */
    const stopChild = () => {
      const c = child;
      if (!c) return;
      c.kill('SIGTERM');
      killTimer ??= setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_S * 1000);
    };

    function onSignal(signal: NodeJS.Signals) {
      if (signal === 'SIGHUP') {
        if (child && !stopping) {
          restartNow = true;
          stopChild();
        }
        return;
      }
      if (stopping) {
        child?.kill('SIGKILL');
        return;
      }
      stopping = true;
      if (child) stopChild();
      else finish(0);
    }
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
    start();
  });
}
