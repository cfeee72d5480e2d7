/**
 * What the subcommands of one `aemp` invocation share: input/output, the rc file being edited
 * and — created on first use — the tool's own node, configured as Perl's `aemp` does with
 * `profile "aemp"` and node ID `aemp/%n/%u` (the rc file wins, spec/config-and-cli.md §4.5).
 */
import { filter, firstValueFrom, timeout } from 'rxjs';
import { configure, type Node } from '../index.js';
import { formatRcWarning, rcPath, resolveConfig } from '../streams/config/config.js';
import { CliExit, die, EXIT_TIMEOUT, usage } from './args.js';
import { RcEditor } from './rc-editor.js';

/** Where the tool reads and writes. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Environment used to find the rc file. */
  readonly env: NodeJS.ProcessEnv;
  /** Input of `shell`. */
  readonly stdin: NodeJS.ReadableStream;
}

/** The process's own standard streams and environment. */
export function processIo(): Io {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    env: process.env,
    stdin: process.stdin,
  };
}

/**
 * Environment variable that replaces the seconds `snd`, `eval` and `restart` wait for an
 * answer (5) and `trace` waits for each node (15): `AEMP_TIMEOUT=30 aemp eval …`.
 */
export const TIMEOUT_ENV = 'AEMP_TIMEOUT';

/** configure arguments of the tool's own node. */
export const TOOL_NODE = { profile: 'aemp', nodeid: 'aemp/%n/%u' } as const;

export class Session {
  readonly rc: RcEditor;
  private node: Node | undefined;
  private connectInterval = 2;
  private hasSeeds = true;

  constructor(readonly io: Io) {
    this.rc = RcEditor.load(rcPath(io.env));
  }

  /**
   * The tool's node, started on first use. Changes made by earlier commands of the same
   * invocation are saved first, so that the node sees them (Perl reads its in-memory copy).
   */
  async tool(): Promise<Node> {
    if (this.node) return this.node;
    this.rc.save();
    const warning = formatRcWarning(this.rc.state);
    if (warning) this.io.err(`${warning}\n`);
    let node: Node;
    try {
      const { config } = resolveConfig({ ...TOOL_NODE }, { env: this.io.env });
      this.connectInterval = config.connect_interval;
      this.hasSeeds = config.seeds.length > 0;
      node = configure({ ...TOOL_NODE });
    } catch (err) {
      throw die(err instanceof Error ? err.message : String(err));
    }
    this.node = node;
    try {
      await node.ready;
    } catch (err) {
      throw die(`cannot start the aemp node: ${err instanceof Error ? err.message : String(err)}`);
    }
    return node;
  }

  /**
   * Waits (at most `connect_interval`) until the target or any other node — a seed, which can
   * tell where the target is — is connected, so that a command issued right at startup does
   * not race the seed connection. Without seeds there is nothing to wait for.
   */
  async reach(target: string): Promise<void> {
    const node = await this.tool();
    if (!this.hasSeeds || target === node.id || node.nodeIsUp(target) || node.upNodes().length > 0) return;
    await firstValueFrom(
      node.nodes$.pipe(
        filter((ev) => ev.type === 'up'),
        timeout({ first: this.connectInterval * 1000, with: () => [undefined] }),
      ),
      { defaultValue: undefined },
    );
  }

  /** Connects the tool's node to node `target` (any message opens the connection; the node port drops "devnull" silently). */
  async connectTo(target: string): Promise<void> {
    const node = await this.tool();
    node.snd(target, 'devnull');
    await this.reach(target);
  }

  /**
   * Seconds to wait for an answer: `AEMP_TIMEOUT` if it is a positive number, else
   * `fallback`. A malformed value is a usage error.
   */
  timeout(fallback: number): number {
    const raw = this.io.env[TIMEOUT_ENV];
    if (raw === undefined || raw === '') return fallback;
    const seconds = Number(raw);
    if (!(Number.isFinite(seconds) && seconds > 0))
      throw usage(`aemp: ${TIMEOUT_ENV}=${raw}: expected a number of seconds greater than 0`);
    return seconds;
  }

  /** Closes the tool's node if it was started. */
  async close(): Promise<void> {
    const node = this.node;
    this.node = undefined;
    if (node) await node.close();
  }
}

/**
 * Resolves with `work`, or stops the tool with exit code 1 when it takes longer than
 * `seconds`. Perl's `aemp` exits silently there; this one says what it waited for: the
 * message is `expired` (or, without one, nothing is printed).
 */
export async function within<T>(seconds: number, work: Promise<T>, expired?: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CliExit(EXIT_TIMEOUT, expired)), seconds * 1000);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
