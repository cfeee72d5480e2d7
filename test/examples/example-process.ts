/**
 * The programs of `examples/` as child processes: `node --import tsx examples/<file>.ts …` from
 * the repository root, with the seed and secret in the environment and no rc file. Output is
 * collected line by line; waiting is for a line or an exit, always with a deadline.
 *
 * Every process started here is SIGKILLed (if still running) and awaited after each test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Deadline for a line or an exit. */
export const WAIT_MS = 15_000;

const running = new Set<ExampleProcess>();

afterEach(async () => {
  await Promise.all([...running].map((p) => p.kill()));
});

/** The environment every example gets: seed, secret, and an rc file that does not exist. */
export interface ExampleEnv {
  seed: string;
  secret: string;
}

export class ExampleProcess {
  readonly child: ChildProcess;
  /** Complete lines of stdout so far. */
  readonly lines: string[] = [];
  private partial = '';
  private stderr = '';
  private exitCode: number | null | undefined;
  private readonly watchers = new Set<() => void>();
  private readonly closed: Promise<number | null>;

  constructor(
    readonly file: string,
    args: readonly string[],
    env: ExampleEnv,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', join('examples', file), ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        AEMP_SEED: env.seed,
        AEMP_SECRET: env.secret,
        // The examples pass norc; a missing rc file makes sure nothing else is read either.
        AEMP_RC: join(ROOT, 'test', 'examples', 'no-such-rc-file'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      this.poke();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.closed = new Promise((resolve) =>
      this.child.once('close', (code) => {
        if (this.partial !== '') this.lines.push(this.partial);
        this.partial = '';
        this.exitCode = code;
        running.delete(this);
        this.poke();
        resolve(code);
      }),
    );
  }

  /** stdout and stderr, for failure messages. */
  get output(): string {
    return `--- ${this.file} stdout:\n${this.lines.join('\n')}\n--- stderr:\n${this.stderr}`;
  }

  /**
   * Resolves with the index of the first line at or after `from` that matches `re`; rejects
   * when the process exits without printing it or after `ms`.
   */
  waitLine(re: RegExp, opts: { from?: number; ms?: number } = {}): Promise<number> {
    const { from = 0, ms = WAIT_MS } = opts;
    return this.until(
      () => {
        for (let i = from; i < this.lines.length; i++) if (re.test(this.lines[i]!)) return i;
        return undefined;
      },
      ms,
      `a line matching ${re}`,
    );
  }

  /** Resolves with the exit status once the process exited by itself; rejects after `ms`. */
  exited(ms = WAIT_MS): Promise<number | null> {
    return this.until(() => this.exitCode, ms, 'the process to exit', true);
  }

  /** The lines matching `re`, with their capture groups. */
  matches(re: RegExp): RegExpExecArray[] {
    return this.lines.map((l) => re.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  }

  /** SIGKILLs the process (if it still runs) and waits until it is gone. */
  async kill(): Promise<void> {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    await this.closed;
  }

  private until<T>(get: () => T | undefined, ms: number, what: string, exitOk = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.watchers.delete(check);
        fn();
      };
      const check = () => {
        const v = get();
        if (v !== undefined) done(() => resolve(v));
        else if (this.exitCode !== undefined && !exitOk)
          done(() =>
            reject(new Error(`${this.file} exited (${this.exitCode}) before ${what}\n${this.output}`)),
          );
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no ${what} from ${this.file} within ${ms} ms\n${this.output}`))),
        ms,
      );
      this.watchers.add(check);
      check();
    });
  }

  private poke(): void {
    for (const w of [...this.watchers]) w();
  }
}

/** Starts `examples/<file>` with `args`. */
export function example(file: string, args: readonly string[], env: ExampleEnv): ExampleProcess {
  return new ExampleProcess(file, args, env);
}
