/**
 * One `aemp` invocation: argument decoding, then either `run` (only as the first argument) or
 * a chain of subcommands, each taking the arguments it needs (spec/config-and-cli.md §4.2).
 * The rc file is written once at the end if a command changed it — also after a failure, as
 * Perl's END block does — and the tool's node is closed.
 *
 * Exit status: 0 when the last command completed, 2 for wrong usage (the message names the
 * command and its synopsis when an argument is missing), 1 when a protocol command got no
 * answer in time, 255 for any other failure (see args.ts). Why a command failed goes to
 * stderr.
 */
import {
  ArgQueue,
  asText,
  CliExit,
  EXIT_DIE,
  EXIT_USAGE,
  formatError,
  MissingArgument,
  missingArgument,
  preprocess,
  usage,
} from './args.js';
import { COMMANDS, helpText, noSuchCommand, USAGE } from './commands.js';
import { run } from './run.js';
import { type Io, processIo, Session } from './session.js';

/** Runs `aemp` with `argv` (the words after the program name); resolves with the exit status. */
export async function aemp(argv: readonly string[], io: Io = processIo()): Promise<number> {
  let args: unknown[];
  try {
    args = preprocess(argv);
  } catch (err) {
    return report(err, io);
  }
  if (args.length === 0) {
    io.err(`${USAGE}\n`);
    return EXIT_USAGE;
  }
  const first = args[0];
  if (first === '--help' || first === '-h') {
    io.out(helpText());
    return 0;
  }
  if (first === 'run') {
    try {
      return await run(args.slice(1), io);
    } catch (err) {
      return report(err, io);
    }
  }

  const session = new Session(io);
  let code = 0;
  try {
    const queue = new ArgQueue(args);
    while (queue.length > 0) {
      const name = asText(queue.shift(USAGE));
      const command = COMMANDS.get(name);
      if (!command) throw usage(noSuchCommand(name));
      try {
        await command.run(session, queue);
      } catch (err) {
        if (err instanceof MissingArgument) throw missingArgument(name, command.synopsis, err.what);
        throw err;
      }
    }
  } catch (err) {
    code = report(err, io);
  }
  try {
    session.rc.save();
  } catch (err) {
    const saveCode = report(err, io);
    if (code === 0) code = saveCode;
  }
  try {
    await session.close();
  } catch (err) {
    io.err(`aemp: closing the node: ${formatError(err)}\n`);
  }
  return code;
}

/** Prints why the tool stops and returns the exit status. */
function report(err: unknown, io: Io): number {
  if (err instanceof CliExit) {
    if (err.text !== undefined) io.err(`${err.text}\n`);
    return err.code;
  }
  io.err(`aemp: ${formatError(err)}\n`);
  return EXIT_DIE;
}
