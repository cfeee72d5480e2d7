/**
 * `aemp shell [NODE]`: an interactive loop on standard input (spec/config-and-cli.md §4.5).
 *
 *   =          list the known nodes (the global database's `'l` family)
 *   =NAME      evaluate on node NAME from now on
 *   other      JavaScript evaluated on the target node; prints a blank line, "<node>: <line>",
 *              the round-trip time and the results as pretty ASCII JSON (or the error)
 *
 * `$ECHO` in evaluated code names a port of the shell that prints everything sent to it as
 * `ECHO<srcnode> <json>`. Lines are handled one after the other; end of input ends the shell.
 */
import { createInterface } from 'node:readline';
import { firstValueFrom, timeout } from 'rxjs';
import { AempError, type KilledError, type Node, nodeOf } from '../index.js';
import { escapeControls } from '../streams/config/config.js';
import { type ArgQueue, asText, formatError } from './args.js';
import { compact, pretty } from './json-text.js';
import { shownText } from './node-commands.js';
import type { Session } from './session.js';

const BANNER = `aemp shell: JavaScript lines are evaluated on the target node.
   =          list the known nodes
   =NAME      evaluate on node NAME from now on
   $ECHO      the ID of a port here that prints everything sent to it
End of input (Ctrl-D) leaves the shell.
`;

export async function shell(s: Session, q: ArgQueue): Promise<void> {
  const arg = q.optional();
  const node = await s.tool();
  let target = arg === undefined || arg === '' ? node.id : nodeOf(asText(arg));
  const { io } = s;

  const echo = node.port((...msg: unknown[]) =>
    io.out(`ECHO${escapeControls(node.srcNode ?? node.id)} ${compact(msg)}\n`),
  );

  io.out(BANNER);
  const prompt = () => io.out(`${target}> `);
  prompt();
  const lines = createInterface({ input: io.stdin, terminal: false, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const raw of lines) {
    const line = raw.trim();
    if (line === '=') io.out(await listNodes(node));
    else if (line.startsWith('=')) target = nodeOf(line.slice(1).trim());
    else if (/^package\s+[\w:]+\s*;?$/.test(line))
      io.out('packages are a Perl notion: JavaScript is evaluated in the node context\n');
    else if (line !== '') {
      await s.reach(target);
      io.out(await evaluate(node, target, line, echo));
    }
    prompt();
  }
  io.out('\n');
}

/** Evaluates one line on `target` and renders the answer. */
async function evaluate(node: Node, target: string, line: string, echo: string): Promise<string> {
  const code = `var $ECHO = ${JSON.stringify(echo)};\n${line}`;
  const started = performance.now();
  let answer: unknown[];
  try {
    answer = await firstValueFrom(node.cal$(target, 'eval', code));
  } catch (err) {
    if (!(AempError.is(err) && err.code === 'ERR_KILLED')) throw err;
    answer = [...(err as KilledError).reason];
  }
  const seconds = (performance.now() - started) / 1000;
  const [err, ...results] = answer;
  const body =
    err !== undefined && err !== null && asText(err) !== ''
      ? `${[err, ...results].map(shownText).join(' ')}\n`
      : pretty(results, { ascii: true });
  return `\n${target}: ${line}\n${seconds.toFixed(3)}s\n${body}`;
}

/** `nodes: a b c`: every node the global database knows (its `'l` family). */
async function listNodes(node: Node): Promise<string> {
  try {
    const keys = await firstValueFrom(node.db.keys$("'l").pipe(timeout(5000)));
    return `nodes: ${[...keys].sort().map(escapeControls).join(' ')}\n`;
  } catch (err) {
    const up = node.upNodes().sort().map(escapeControls).join(' ') || 'none';
    return `nodes: the global database did not answer (${formatError(err)}); connected: ${up}\n`;
  }
}
