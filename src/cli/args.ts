/**
 * Command-line arguments of `aemp` (spec/config-and-cli.md §4.1–§4.2): JSON decoding before
 * anything else, the queue that chained subcommands consume, and the way the tool stops.
 *
 *   aemp '["setseeds", ["a:1", "b:2"]]'   a single `[…]` argument is the whole argument list
 *   aemp setservices '[["f::g", 1]]'       any argument starting with `[`, `{` or `"` is JSON
 */

import { compact } from './json-text.js';

/**
 * Stops the tool with an exit code. `message` (printed as it is, plus a newline, on stderr)
 * is Perl's `die` text; without one the tool exits silently (Perl's `exit 1` on timeouts).
 */
export class CliExit extends Error {
  constructor(
    readonly code: number,
    readonly text?: string,
  ) {
    super(text ?? `exit ${code}`);
    this.name = 'CliExit';
  }
}

/** Exit code of wrong usage: no subcommand, unknown subcommand, missing argument. */
export const EXIT_USAGE = 2;
/**
 * Exit code of every other failure (Perl's `die` without errno): an `eval` error, a port that
 * died or a node that could not be reached before `snd` was confirmed or `cal` answered, an
 * unreadable file…
 */
export const EXIT_DIE = 255;
/** Exit code of a protocol command that got no answer in time. */
export const EXIT_TIMEOUT = 1;

/** Wrong usage: exits 2 with `text`. */
export function usage(text: string): CliExit {
  return new CliExit(EXIT_USAGE, text);
}

/** A failure: exits 255 with `text`. */
export function die(text: string): CliExit {
  return new CliExit(EXIT_DIE, text);
}

/**
 * A subcommand's argument is missing. `aemp` turns it into a usage error that names the
 * command and its synopsis (`aemp snd: port missing (usage: aemp snd PORT ARGS…)`).
 */
export class MissingArgument extends CliExit {
  constructor(readonly what: string) {
    super(EXIT_USAGE, what);
    this.name = 'MissingArgument';
  }
}

/** The usage error for a missing argument of subcommand `name` (its synopsis: `synopsis`). */
export function missingArgument(name: string, synopsis: string, what: string): CliExit {
  return usage(`aemp ${name}: ${what} (usage: ${`aemp ${name} ${synopsis}`.trim()})`);
}

/** Decodes one JSON argument; a malformed one stops the tool (as JSON::XS dies in Perl). */
function decodeJson(arg: string): unknown {
  try {
    return JSON.parse(arg);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw die(`${arg}: malformed JSON argument (${why})`);
  }
}

/**
 * Decodes arguments as Perl's `aemp` does: exactly one argument starting with `[` is a JSON
 * array that replaces the whole list; otherwise each argument starting with `[`, `{` or `"`
 * is replaced by its JSON value (strings, arrays, objects, numbers…).
 */
export function preprocess(argv: readonly string[]): unknown[] {
  if (argv.length === 1 && argv[0]!.startsWith('[')) {
    const all = decodeJson(argv[0]!);
    if (!Array.isArray(all)) throw die(`${argv[0]}: the single JSON argument must be an array`);
    return all;
  }
  return argv.map((a) => (/^[[{"]/.test(a) ? decodeJson(a) : a));
}

/** The remaining arguments; each subcommand takes what it needs from the front. */
export class ArgQueue {
  private readonly items: unknown[];

  constructor(items: readonly unknown[]) {
    this.items = [...items];
  }

  get length(): number {
    return this.items.length;
  }

  /**
   * The next argument; when there is none, stops the tool with a usage error saying what is
   * `missing` (see {@link MissingArgument}).
   */
  shift(missing: string): unknown {
    if (this.items.length === 0) throw new MissingArgument(missing);
    return this.items.shift();
  }

  /** The next argument as text (JSON values are rendered as JSON). */
  text(missing: string): string {
    return asText(this.shift(missing));
  }

  /** The next argument if there is one. */
  optional(): unknown {
    return this.items.shift();
  }

  /** The next argument without taking it. */
  peek(): unknown {
    return this.items[0];
  }

  /** Takes every remaining argument. */
  rest(): unknown[] {
    return this.items.splice(0);
  }
}

/** An argument as text: strings as they are, numbers as digits, anything else as JSON. */
export function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v === null || v === undefined) return '';
  try {
    return JSON.stringify(v);
  } catch {
    // A peer's value JSON cannot take as is (a big integer inside): bytes and big integers
    // converted, as in JSON output.
    return compact(v);
  }
}

/** Turns `run` arguments into configure options (odd count: the first is the profile). */
export function runOptions(args: readonly unknown[]): Record<string, unknown> {
  const rest = [...args];
  const opts: Record<string, unknown> = {};
  if (rest.length % 2 === 1) opts.profile = asText(rest.shift());
  for (let i = 0; i < rest.length; i += 2) opts[asText(rest[i])] = rest[i + 1];
  return opts;
}

/** The message of an error (or the text of a thrown non-error). */
export function formatError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
