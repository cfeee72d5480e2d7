/**
 * The `aemp` command line (spec/config-and-cli.md §4). Arguments that look like JSON are
 * decoded first; `run` starts a node and keeps it running until SIGINT/SIGTERM.
 */
import { configure, formatReason, type Node } from '../index.js';

const USAGE = 'Usage: aemp subcommand ... (try aemp --help)';

const HELP = `aemp — run and talk to AnyEvent::MP-compatible nodes

  aemp run [PROFILE] [KEY VALUE]…   run a node (configure arguments; odd count: first is the profile)
  aemp --help                       this text

With no rc file, \`aemp run\` runs a global seed node on 127.0.0.1:4040 (the embedded default).
`;

/** Decodes arguments as aemp does: a single `[…]` argument replaces the list; `[`, `{`, `"` values are JSON. */
export function preprocess(argv: readonly string[]): unknown[] {
  if (argv.length === 1 && argv[0]!.startsWith('[')) {
    const all: unknown = JSON.parse(argv[0]!);
    if (!Array.isArray(all)) throw new Error('the single JSON argument must be an array');
    return all;
  }
  return argv.map((a) => (/^[[{"]/.test(a) ? JSON.parse(a) : a));
}

/** Turns `run` arguments into configure options (odd count: the first is the profile). */
export function runOptions(args: readonly unknown[]): Record<string, unknown> {
  const rest = [...args];
  const opts: Record<string, unknown> = {};
  if (rest.length % 2 === 1) opts.profile = rest.shift();
  for (let i = 0; i < rest.length; i += 2) opts[String(rest[i])] = rest[i + 1];
  return opts;
}

async function run(args: readonly unknown[]): Promise<void> {
  const node: Node = configure(runOptions(args));
  const stop = (signal: string) => {
    process.stderr.write(`aemp: ${signal}, shutting down ${node.id}\n`);
    void node.close().then(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  node.subscribe({
    next: (ev) => {
      if (ev.type === 'up') process.stdout.write(`up ${ev.node}\n`);
      else if (ev.type === 'down') process.stdout.write(`down ${ev.node} ${formatReason(ev.reason)}\n`);
    },
  });
  await node.ready;
  process.stdout.write(`${node.id} ${node.binds.join(' ')}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  const args = preprocess(argv);
  if (args.length === 0) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const [cmd, ...rest] = args;
  if (cmd === '--help' || cmd === 'help' || cmd === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  if (cmd === 'run') {
    await run(rest);
    return -1;
  }
  process.stderr.write(`${String(cmd)}: no such aemp command (try aemp --help)\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`aemp: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
