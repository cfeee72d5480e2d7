/**
 * The command table of `aemp` and its help. Every `setX` command is also reachable as `X`
 * unless a command `X` exists (so `eval` stays the evaluate command), as in Perl's `aemp`.
 */
import { type ArgQueue, asText, usage } from './args.js';
import { CONFIG_COMMANDS, type Command } from './config-commands.js';
import { dashboard } from './dashboard.js';
import { logs } from './logs.js';
import * as protocol from './node-commands.js';
import type { Session } from './session.js';
import { shell } from './shell.js';
import { top } from './top.js';

/** Perl's message for a missing subcommand, pointing at our help. */
export const USAGE = 'Usage: aemp subcommand ... (try aemp --help)';

/** The message for an unknown subcommand. */
export function noSuchCommand(name: string): string {
  return `${name}: no such aemp command (try aemp --help)`;
}

const NODE_COMMANDS: Command[] = [
  {
    name: 'snd',
    synopsis: 'PORT ARGS…',
    summary: 'send a message to PORT and confirm delivery (5 s, then exit status 1)',
    details:
      'Takes every remaining argument. Prints "message sent successfully" once PORT\'s node has handled ' +
      'the message. If PORT does not exist, dies or its node cannot be reached first, the kill reason ' +
      'goes to stderr and the exit status is 255.',
    group: 'node',
    run: protocol.snd,
  },
  {
    name: 'cal',
    synopsis: 'PORT ARGS…',
    summary: 'send a message with a reply port appended, print the reply as JSON',
    details:
      'Takes every remaining argument. Waits as long as it takes; if PORT does not exist, dies or its ' +
      'node cannot be reached before it replies, the kill reason goes to stderr and the exit status is 255.',
    group: 'node',
    run: protocol.cal,
  },
  {
    name: 'mon',
    synopsis: 'PORT',
    summary: 'wait until PORT (or a node) dies, print the kill reason',
    group: 'node',
    run: protocol.mon,
  },
  {
    name: 'eval',
    synopsis: 'NODE CODE…',
    summary: 'evaluate JavaScript on NODE, print the results as JSON (5 s, then exit status 1)',
    details:
      'Takes every remaining argument, joined by spaces. An error is printed on stderr (exit status 255). ' +
      'AEMP_TIMEOUT=SECONDS changes the 5 s of snd, eval and restart and the 15 s of trace. Arguments starting with [ { or " are read as JSON first, so start such code with a space.',
    group: 'node',
    run: protocol.evalCmd,
  },
  {
    name: 'logs',
    synopsis: '[LEVEL]',
    summary: 'print the log records of every node (level 1 fatal … 9 trace, default 7) until Ctrl-C',
    details:
      'Asks every node in the network (AnyEvent::MP::LogCatcher::connect) to send its records at LEVEL ' +
      'and more severe; nodes that join later are asked too. Ctrl-C (SIGINT) or SIGTERM ends it with exit status 0.',
    group: 'node',
    run: logs,
  },
  {
    name: 'dashboard',
    synopsis: '[NODE] [--port N] [--host H]',
    summary: 'serve a live web page of the network on 127.0.0.1:4080 until Ctrl-C',
    details:
      'Shows the nodes and links as a graph (global and Perl nodes marked), message and byte rates ' +
      'each way, send backlog, ports, memory, event-loop delay, the DB families and a log tail, updated ' +
      'every second. Read-only; answers only loopback names unless --host names another address. ' +
      'With NODE, connects to that node first. Ctrl-C (SIGINT) or SIGTERM ends it with exit status 0.',
    group: 'node',
    run: dashboard,
  },
  {
    name: 'top',
    synopsis: '[NODE]',
    summary: 'the nodes and their busiest links in the terminal, refreshed every second; q quits',
    details:
      'Per node: kind (G global, P Perl, ? no answer), ports, heap, event-loop delay (p50/max ms), ' +
      'messages and KB per second in and out; then the busiest links with their send queues. ' +
      'Busiest first, cut to the terminal size. q, Ctrl-C, SIGINT or SIGTERM end it with exit status 0; ' +
      'when standard output is no terminal, one picture is printed. With NODE, connects to that node first.',
    group: 'node',
    run: top,
  },
  {
    name: 'trace',
    synopsis: '[--dot] NODE',
    summary: 'print who is connected to whom, starting at NODE (--dot: as a Graphviz graph)',
    details: 'Nodes that do not answer within 15 s are reported as "(timeout)" and make aemp exit 1.',
    group: 'node',
    run: protocol.trace,
  },
  {
    name: 'restart',
    synopsis: 'NODE',
    summary: 'ask NODE to restart (nodes run by "aemp run" restart at once)',
    group: 'node',
    run: protocol.restart,
  },
  {
    name: 'shell',
    synopsis: '[NODE]',
    summary: 'read JavaScript lines from standard input and evaluate them on NODE',
    details: '"=" lists the nodes, "=NAME" switches the node, $ECHO names a port that prints what it gets.',
    group: 'node',
    run: shell,
  },
  {
    name: 'help',
    synopsis: '[COMMAND]',
    summary: 'this text, or more about one command',
    group: 'help',
    run: (s, q) => help(s, q),
  },
];

/** Aliases: `X` for `setX` where no command `X` exists. */
const ALIASES = new Map<string, string>();

/** Every subcommand by name, aliases included. */
export const COMMANDS: ReadonlyMap<string, Command> = buildTable([...NODE_COMMANDS, ...CONFIG_COMMANDS]);

function buildTable(commands: Command[]): Map<string, Command> {
  const table = new Map(commands.map((c) => [c.name, c]));
  for (const c of commands) {
    const m = /^set(.+)$/.exec(c.name);
    if (m && !table.has(m[1]!)) {
      table.set(m[1]!, c);
      ALIASES.set(m[1]!, c.name);
    }
  }
  return table;
}

const RUN_HELP = {
  synopsis: 'run [PROFILE] [KEY VALUE]…',
  summary: 'run a node (configure arguments; an odd count starts with the profile name)',
  details:
    'Only as the first command. The node runs in a child process that is restarted when it crashes ' +
    'or is asked to restart ("aemp restart NODE"); SIGINT/SIGTERM stop it (exit status 0). ' +
    'Without an rc file, "aemp run" runs a global seed node on 127.0.0.1:4040.',
};

function line(synopsis: string, summary: string): string {
  return `  ${synopsis.padEnd(36)} ${summary}\n`;
}

/** The text of `aemp --help`: one line per subcommand. */
export function helpText(): string {
  const group = (g: Command['group']) =>
    [...NODE_COMMANDS, ...CONFIG_COMMANDS]
      .filter((c) => c.group === g)
      .map((c) => line(`${c.name} ${c.synopsis}`.trim(), c.summary))
      .join('');
  return (
    'Usage: aemp COMMAND [ARGS…] [COMMAND [ARGS…]]…\n' +
    '\n' +
    'Runs and talks to AnyEvent::MP-compatible nodes and edits the configuration file\n' +
    '($AEMP_RC, else $PERL_ANYEVENT_MP_RC, else ~/.perl-anyevent-mp). Commands can be chained:\n' +
    "  aemp gensecret profile seed binds '*:4040' setnodeid seed\n" +
    'Arguments starting with [ { or " are JSON; a single [...] argument is the whole command line.\n' +
    '\n' +
    'Running a node:\n' +
    line(RUN_HELP.synopsis, RUN_HELP.summary) +
    '\n' +
    'Talking to nodes (through a node of profile "aemp", ID aemp/<host>/<random>):\n' +
    group('node') +
    '\n' +
    'Configuration (changes the top level, or the profile chosen with "profile NAME"):\n' +
    group('config') +
    '\n' +
    'Other settings (stored as given: words as strings, JSON as JSON):\n' +
    group('attr') +
    '\n' +
    'Every setX command is also available as X, unless X is a command itself (eval is).\n' +
    group('help')
  );
}

/** `help [COMMAND]`. */
function help(s: Session, q: ArgQueue): void {
  const next = q.peek();
  if (next === undefined) {
    s.io.out(helpText());
    return;
  }
  const name = asText(q.shift(''));
  if (name === 'run') {
    s.io.out(`aemp ${RUN_HELP.synopsis}\n  ${RUN_HELP.summary}\n  ${RUN_HELP.details}\n`);
    return;
  }
  const c = COMMANDS.get(name);
  if (!c) throw usage(noSuchCommand(name));
  const alias = ALIASES.get(name);
  let text = `aemp ${`${name} ${c.synopsis}`.trim()}\n  ${c.summary}\n`;
  if (c.details) text += `  ${c.details}\n`;
  if (alias) text += `  (same as ${alias})\n`;
  s.io.out(text);
}
