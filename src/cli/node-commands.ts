/**
 * The subcommands that talk to nodes (spec/config-and-cli.md §4.5): snd, cal, mon, eval,
 * restart and trace. Each runs on the tool's own node (see session.ts); outputs and timeouts
 * are Perl's:
 *
 *   snd PORT ARGS…   "message sent successfully \n"; PORT dead or unreachable → exit 255,
 *                    the kill reason on stderr; 5 s → exit 1
 *   cal PORT ARGS…   the reply as JSON without the outer brackets, no timeout; PORT dead
 *                    or unreachable → exit 255, the kill reason on stderr
 *   mon PORT         the kill reason words followed by " \n" ("\n" for a normal kill)
 *   eval NODE CODE…  the results as in cal, an error dies, 5 s → exit 1
 *   restart NODE     an empty line, 5 s → exit 1
 *   trace NODE       "X -> neighbours" per node, "X (timeout)" after 15 s (then exit 1)
 *
 * Where Perl's `aemp` reports a failure on stdout with exit status 0 (snd, cal) or exits
 * silently (timeouts), this one writes why on stderr and exits non-zero (args.ts); the output
 * of a success is Perl's. `AEMP_TIMEOUT` replaces the 5 s and 15 s (session.ts). Everything
 * that came from another node is printed with control characters escaped.
 */
import { firstValueFrom } from 'rxjs';
import { AempError, type KilledError, type Node, nodeOf } from '../index.js';
import { escapeControls } from '../streams/config/config.js';
import { type ArgQueue, asText, CliExit, die, EXIT_TIMEOUT } from './args.js';
import { compact, terminalJson } from './json-text.js';
import type { Session } from './session.js';
import { within } from './session.js';

/** Seconds snd, eval and restart wait before giving up with exit status 1. */
export const REQUEST_TIMEOUT = 5;
/** Seconds trace waits for each node's answer. */
export const TRACE_TIMEOUT = 15;
/**
 * Nodes one trace asks at most: a hostile node could name any number of made-up nodes in
 * every answer, and the trace would ask them all. Nodes named past it are counted, not asked.
 */
export const MAX_TRACE_NODES = 4096;

/**
 * What Perl's `aemp restart` evaluates on the target; our nodes recognise the watchdog call
 * and ask their supervisor (`aemp run`) for a restart.
 */
export const RESTART_CODE = 'my $w; $w = AE::idle sub { undef $w; AnyEvent::Watchdog::Util::restart }; ()';

/**
 * Text from another node made safe to print: control characters (LF, CR, ESC…) escaped, so
 * that a peer can neither drive the terminal nor fake further output lines.
 */
export function shownText(v: unknown): string {
  return escapeControls(asText(v));
}

/**
 * Perl's `join " ", @values, "\n"`: every value followed by a space, then the newline (each
 * value escaped with {@link shownText}).
 */
export function wordsLine(values: readonly unknown[]): string {
  return [...values.map(shownText), '\n'].join(' ');
}

/** Perl's `substr encode_json([@values]), 1, -1`: the values as JSON, without the brackets. */
export function resultsLine(values: readonly unknown[]): string {
  return `${compact(values).slice(1, -1)}\n`;
}

/**
 * snd PORT ARGS…: monitors PORT, sends the message, then has PORT's node send a confirmation
 * back (a relay, so it travels behind the message on the same connection and proves that the
 * node handled the message). Whatever arrives first decides:
 *
 *   the confirmation                    "message sent successfully \n", exit 0
 *   PORT's kill reason, empty (normal)  "\n" (Perl's output), exit 0: the port existed when
 *                                       the monitor was set up and its normal end was already
 *                                       under way (kills are deferred: the message still got
 *                                       to it)
 *   PORT's kill reason, not empty       stderr "aemp snd: PORT: REASON…", exit 255: no such
 *                                       port (or it died before the message arrived), or its
 *                                       node could not be reached
 *   nothing within the timeout          stderr "aemp snd: no confirmation from NODE within
 *                                       5 s", exit 1
 *
 * So "failed" means the message did not get to PORT. A port that dies of the message itself
 * dies after the confirmation left (kills wait behind deliveries), so snd still succeeds: the
 * message was delivered. (Perl's `aemp` sends before it monitors and prints a kill reason on
 * stdout with exit status 0.)
 */
export async function snd(s: Session, q: ArgQueue): Promise<void> {
  const port = q.text('port missing');
  const msg = q.rest();
  const seconds = s.timeout(REQUEST_TIMEOUT);
  const node = await s.tool();
  const target = nodeOf(port);
  const outcome = await within(
    seconds,
    (async () => {
      await s.reach(target);
      return new Promise<{ confirmed: unknown[] } | { reason: unknown[] }>((resolve) => {
        // The monitor first: the node checks the port before the message reaches it.
        node.mon(port, (...reason: unknown[]) => resolve({ reason }));
        node.snd(port, ...msg);
        // The node relays the confirmation to us after the message: same connection, same order.
        const reply = node.port((...m: unknown[]) => resolve({ confirmed: m }));
        node.sndOn(target, reply, 'message sent successfully');
      });
    })(),
    `aemp snd: no confirmation from ${shownText(target)} within ${seconds} s`,
  );
  if ('confirmed' in outcome) s.io.out(wordsLine(outcome.confirmed));
  else if (outcome.reason.length === 0) s.io.out(wordsLine([]));
  else throw die(`aemp snd: ${shownText(port)}: ${reasonText(outcome.reason)}`);
}

/**
 * cal PORT ARGS…: the reply as JSON without the outer brackets (exit 0). No timeout, as in
 * Perl; if PORT dies first (no such port, the node cannot be reached, the port ended) the
 * kill reason goes to stderr as "aemp cal: PORT: REASON…" and the exit status is 255 (Perl
 * prints an empty line and exits 0).
 */
export async function cal(s: Session, q: ArgQueue): Promise<void> {
  const port = q.text('port missing');
  const msg = q.rest();
  const node = await s.tool();
  await s.reach(nodeOf(port));
  let values: unknown[];
  try {
    values = await firstValueFrom(node.cal$(port, ...msg));
  } catch (err) {
    if (!(AempError.is(err) && err.code === 'ERR_KILLED')) throw err;
    const reason = (err as KilledError).reason;
    const why = reason.length > 0 ? reasonText(reason) : 'the port ended without replying';
    throw die(`aemp cal: ${shownText(port)}: ${why}`);
  }
  s.io.out(resultsLine(values));
}

/** A kill reason as one line of words (each escaped, see {@link shownText}). */
export function reasonText(reason: readonly unknown[]): string {
  return reason.map(shownText).join(' ');
}

export async function mon(s: Session, q: ArgQueue): Promise<void> {
  const port = q.text('port missing');
  const node = await s.tool();
  await s.reach(nodeOf(port));
  const reason = await firstValueFrom(node.mon$(port));
  s.io.out(wordsLine(reason));
}

/** Evaluates `code` on `target`: `[error, ...results]`; a lost connection arrives as the error. */
async function evalOn(node: Node, target: string, code: string): Promise<unknown[]> {
  try {
    return await firstValueFrom(node.cal$(target, 'eval', code));
  } catch (err) {
    if (AempError.is(err) && err.code === 'ERR_KILLED') return [...(err as KilledError).reason];
    throw err;
  }
}

/**
 * eval/restart: evaluates, dies with `"<error> <results…>"`, prints the results otherwise.
 * No answer in time: "aemp CMD: no answer from NODE within 5 s", exit 1.
 */
async function remoteEval(s: Session, cmd: string, target: string, code: string): Promise<void> {
  const seconds = s.timeout(REQUEST_TIMEOUT);
  const node = await s.tool();
  const [err, ...results] = await within(
    seconds,
    (async () => {
      await s.reach(target);
      return evalOn(node, target, code);
    })(),
    `aemp ${cmd}: no answer from ${shownText(target)} within ${seconds} s`,
  );
  if (err !== undefined && err !== null && asText(err) !== '')
    throw die([err, ...results].map(shownText).join(' '));
  s.io.out(resultsLine(results));
}

export async function evalCmd(s: Session, q: ArgQueue): Promise<void> {
  const target = nodeOf(q.text('node id missing'));
  const code = q.rest().map(asText).join(' ');
  await remoteEval(s, 'eval', target, code);
}

export async function restart(s: Session, q: ArgQueue): Promise<void> {
  const target = nodeOf(q.text('node id missing'));
  await remoteEval(s, 'restart', target, RESTART_CODE);
}

/** One node's answer in a trace. */
interface TraceEntry {
  node: string;
  neighbours: string[];
  /** `timeout` or the evaluation error. */
  problem?: string;
}

/**
 * trace [--dot] NODE [--dot]: asks NODE, then every node it reports, recursively, for its
 * connected nodes (`AnyEvent::MP::Kernel::up_nodes`, which Perl nodes evaluate and ours
 * recognise). Prints a line per node as answers arrive, or with `--dot` the whole topology as
 * a Graphviz graph at the end. Exit status 1 if any node did not answer in time.
 */
export async function trace(s: Session, q: ArgQueue): Promise<void> {
  let dot = false;
  if (q.peek() === '--dot') {
    q.shift('');
    dot = true;
  }
  const seed = nodeOf(q.text('node id missing'));
  if (q.peek() === '--dot') {
    q.shift('');
    dot = true;
  }
  const seconds = s.timeout(TRACE_TIMEOUT);
  const node = await s.tool();
  await s.reach(seed);
  const print = (text: string) => {
    if (!dot) s.io.out(text);
  };
  print(`seed -> ${seed}\n`);

  const entries: TraceEntry[] = [];
  const seen = new Set<string>([seed]);
  /** Names of nodes past MAX_TRACE_NODES, counted (each time named), not asked or kept. */
  let skipped = 0;
  const ask = async (target: string): Promise<void> => {
    const entry: TraceEntry = { node: target, neighbours: [] };
    entries.push(entry);
    let answer: unknown[];
    try {
      answer = await within(seconds, evalOn(node, target, 'AnyEvent::MP::Kernel::up_nodes'));
    } catch (err) {
      if (!(err instanceof CliExit)) throw err;
      entry.problem = 'timeout';
      print(`${escapeControls(target)} (timeout)\n`);
      return;
    }
    const [err, ...nodes] = answer;
    if (err !== undefined && err !== null && asText(err) !== '') {
      entry.problem = [err, ...nodes].map(asText).join(' ');
      print(`${escapeControls(target)} (${escapeControls(entry.problem)})\n`);
      return;
    }
    const named = nodes.map(asText).filter((n) => n !== node.id);
    print(`${escapeControls(target)} -> ${named.map(escapeControls).join(' ')}\n`);
    const fresh: string[] = [];
    for (const n of named) {
      if (seen.has(n)) continue;
      if (seen.size >= MAX_TRACE_NODES) skipped++;
      else {
        seen.add(n);
        fresh.push(n);
      }
    }
    // Kept for --dot: the traced nodes only, so that what is kept stays bounded too.
    entry.neighbours = named.filter((n) => seen.has(n));
    await Promise.all(fresh.map(ask));
  };
  await ask(seed);

  if (dot) s.io.out(toDot(seed, entries));
  if (skipped > 0)
    throw new CliExit(
      EXIT_TIMEOUT,
      `aemp trace: stopped at ${MAX_TRACE_NODES} nodes: ${skipped} more not asked`,
    );
  const failed = entries.filter((e) => e.problem !== undefined);
  if (failed.length > 0) {
    const list = failed.map((e) => `${escapeControls(e.node)} (${escapeControls(e.problem!)})`).join(', ');
    throw new CliExit(EXIT_TIMEOUT, `aemp trace: no answer from ${list}`);
  }
}

/** The traced topology as an undirected Graphviz graph (connections go both ways). */
export function toDot(seed: string, entries: readonly TraceEntry[]): string {
  const q = (s: string) => terminalJson(JSON.stringify(s));
  const lines = ['graph aemp {', `  ${q(seed)} [shape=doublecircle];`];
  const edges = new Set<string>();
  for (const e of entries) {
    if (e.problem !== undefined)
      lines.push(`  ${q(e.node)} [style=dashed, color=red, label=${q(`${e.node}\n(${e.problem})`)}];`);
    for (const n of e.neighbours) {
      const key = [e.node, n].sort().join('\u0000');
      if (edges.has(key)) continue;
      edges.add(key);
      lines.push(`  ${q(e.node)} -- ${q(n)};`);
    }
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
