/**
 * The subcommands that talk to nodes (spec/config-and-cli.md §4.5): snd, cal, mon, eval,
 * restart and trace. Each runs on the tool's own node (see session.ts); outputs and timeouts
 * are Perl's:
 *
 *   snd PORT ARGS…   "message sent successfully \n" (or the kill reason), 5 s → exit 1
 *   cal PORT ARGS…   the reply as JSON without the outer brackets, no timeout
 *   mon PORT         the kill reason words followed by " \n" ("\n" for a normal kill)
 *   eval NODE CODE…  the results as in cal, an error dies, 5 s → exit 1
 *   restart NODE     an empty line, 5 s → exit 1
 *   trace NODE       "X -> neighbours" per node, "X (timeout)" after 15 s (then exit 1)
 */
import { firstValueFrom } from 'rxjs';
import { AempError, type KilledError, type Node, nodeOf } from '../index.js';
import { escapeControls } from '../streams/log.js';
import { type ArgQueue, asText, CliExit, die, EXIT_TIMEOUT } from './args.js';
import { compact, terminalJson } from './json-text.js';
import type { Session } from './session.js';
import { within } from './session.js';

/** Seconds snd, eval and restart wait before giving up with exit status 1. */
export const REQUEST_TIMEOUT = 5;
/** Seconds trace waits for each node's answer. */
export const TRACE_TIMEOUT = 15;

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

export async function snd(s: Session, q: ArgQueue): Promise<void> {
  const port = q.text('port missing');
  const msg = q.rest();
  const node = await s.tool();
  const values = await within(
    REQUEST_TIMEOUT,
    (async () => {
      await s.reach(nodeOf(port));
      node.snd(port, ...msg);
      return new Promise<unknown[]>((resolve) => {
        node.mon(port, (...reason: unknown[]) => resolve(reason));
        // The node relays the confirmation to us after the message: same connection, same order.
        const reply = node.port((...m: unknown[]) => resolve(m));
        node.sndOn(nodeOf(port), reply, 'message sent successfully');
      });
    })(),
  );
  s.io.out(wordsLine(values));
}

export async function cal(s: Session, q: ArgQueue): Promise<void> {
  const port = q.text('port missing');
  const msg = q.rest();
  const node = await s.tool();
  await s.reach(nodeOf(port));
  // Perl's cal without a timeout: the callback gets no values if the port dies first.
  const values = await new Promise<unknown[]>((resolve) =>
    node.cal(port, ...msg, (...reply: unknown[]) => resolve(reply)),
  );
  s.io.out(resultsLine(values));
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

/** eval/restart: evaluates, dies with `"<error> <results…>"`, prints the results otherwise. */
async function remoteEval(s: Session, target: string, code: string): Promise<void> {
  const node = await s.tool();
  const [err, ...results] = await within(
    REQUEST_TIMEOUT,
    (async () => {
      await s.reach(target);
      return evalOn(node, target, code);
    })(),
  );
  if (err !== undefined && err !== null && asText(err) !== '')
    throw die([err, ...results].map(shownText).join(' '));
  s.io.out(resultsLine(results));
}

export async function evalCmd(s: Session, q: ArgQueue): Promise<void> {
  const target = nodeOf(q.text('node id missing'));
  const code = q.rest().map(asText).join(' ');
  await remoteEval(s, target, code);
}

export async function restart(s: Session, q: ArgQueue): Promise<void> {
  const target = nodeOf(q.text('node id missing'));
  await remoteEval(s, target, RESTART_CODE);
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
  const node = await s.tool();
  await s.reach(seed);
  const print = (text: string) => {
    if (!dot) s.io.out(text);
  };
  print(`seed -> ${seed}\n`);

  const entries: TraceEntry[] = [];
  const seen = new Set<string>([seed]);
  const ask = async (target: string): Promise<void> => {
    const entry: TraceEntry = { node: target, neighbours: [] };
    entries.push(entry);
    let answer: unknown[];
    try {
      answer = await within(TRACE_TIMEOUT, evalOn(node, target, 'AnyEvent::MP::Kernel::up_nodes'));
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
    entry.neighbours = nodes.map(asText).filter((n) => n !== node.id);
    print(`${escapeControls(target)} -> ${entry.neighbours.map(escapeControls).join(' ')}\n`);
    const fresh = entry.neighbours.filter((n) => !seen.has(n));
    for (const n of fresh) seen.add(n);
    await Promise.all(fresh.map(ask));
  };
  await ask(seed);

  if (dot) s.io.out(toDot(seed, entries));
  if (entries.some((e) => e.problem !== undefined)) throw new CliExit(EXIT_TIMEOUT);
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
