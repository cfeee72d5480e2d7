/**
 * chat, part 2 of 2: a client.
 *
 * Each client is a node with one inbox port. It registers the inbox in the group database
 * (`node.db.reg('chat', inbox, name)`) and watches the family with `node.db.mon$('chat')`:
 * the first event is the whole room, later events say who was added or deleted. A line is
 * sent straight to every member's inbox (our own too, so we see the conversation in order).
 * When a client's process dies, even by `kill -9`, its entry vanishes and the others print
 * "<name> left".
 *
 * Run it (from the repository root), each in its own terminal, after starting the server:
 *
 *   terminal 1:  npx tsx examples/chat/server.ts
 *   terminal 2:  npx tsx examples/chat/client.ts alice              (type lines, Ctrl-D leaves)
 *   terminal 3:  npx tsx examples/chat/client.ts bob 'hi alice' 'see you'
 *
 * Without lines on the command line the client reads lines from stdin until end of input.
 * With lines (scripted mode) it waits until `--peers` other members are present, says the
 * lines and leaves, or with `--stay` waits until everybody else has left and then leaves.
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   the seed to join ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret of the network ($AEMP_SECRET, else this user's own, as aemp uses)
 *   --peers N          scripted mode: other members to wait for before speaking (default 1)
 *   --stay             scripted mode: after speaking, stay until nobody else is left
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { configure, type DbRecord, localSecret } from 'aemp';
import { filter, firstValueFrom, map, type Observable, shareReplay, tap, timeout } from 'rxjs';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
    peers: { type: 'string', default: '1' },
    stay: { type: 'boolean', default: false },
  },
});
const [name, ...script] = positionals;
if (name === undefined) {
  console.error('usage: client.ts NAME [LINE…] [--peers N] [--stay]');
  process.exit(2);
}

const node = configure({
  norc: true,
  nodeid: `chat-${name.replace(/[^\w-]/g, '_')}/`,
  secret: opts.secret,
  binds: ['127.0.0.1:*'],
  seeds: [opts.seed],
});
await node.ready;

// The inbox: a port as an Observable of its messages. Messages are arrays:
//   ['say', from, text]   a line for the room
//   ['sync', replyPort]   "did my earlier lines arrive?" (see leave() below)
const inbox = node.port$();
inbox.subscribe(([tag, ...args]) => {
  if (tag === 'say') console.log(`<${args[0]}> ${args[1]}`);
  else if (tag === 'sync') node.snd(String(args[0]), 'synced');
});
node.db.reg('chat', inbox.id, name);

// The room: port → name of everyone registered, printed as it changes. `shareReplay(1)` lets
// several parts of the program look at the room without watching the family twice, and
// hands the latest state to late subscribers. The stream completes when the node closes.
const names = new Map<string, string>();
let first = true;
const room$: Observable<Readonly<DbRecord>> = node.db.mon$('chat').pipe(
  tap(({ entries, added, deleted }) => {
    for (const port of deleted) {
      const who = names.get(port);
      names.delete(port);
      if (who !== undefined && port !== inbox.id) console.log(`* ${who} left`);
    }
    for (const port of added) names.set(port, String(entries[port]));
    const others = added.filter((port) => port !== inbox.id).map((port) => names.get(port));
    if (first) console.log(`* in the room: ${others.length > 0 ? others.join(', ') : 'nobody else yet'}`);
    else for (const who of others) console.log(`* ${who} joined`);
    first = false;
  }),
  map(({ entries }) => entries),
  shareReplay(1),
);
room$.subscribe(); // start watching (and printing) right away
const othersIn = (entries: Readonly<DbRecord>) => Object.keys(entries).filter((port) => port !== inbox.id);

/** Sends a line to every member, ourselves included. */
async function say(text: string): Promise<void> {
  const entries = await firstValueFrom(room$);
  for (const port of new Set([inbox.id, ...Object.keys(entries)])) node.snd(port, 'say', name, text);
}

/** Leaves the room: the inbox dies with the node, so our entry vanishes for everybody. */
async function leave(): Promise<void> {
  // snd is fire and forget, and close() gives a connection still being set up only a second.
  // Messages between two nodes arrive in order, so one answered call per member proves that
  // everything we sent before it arrived too.
  const others = othersIn(await firstValueFrom(room$));
  await Promise.allSettled(others.map((port) => firstValueFrom(node.cal$(port, 'sync').pipe(timeout(5000)))));
  await node.close();
}

if (script.length > 0) {
  const peers = Number(opts.peers);
  await firstValueFrom(room$.pipe(filter((entries) => othersIn(entries).length >= peers)));
  for (const line of script) await say(line);
  if (opts.stay) await firstValueFrom(room$.pipe(filter((entries) => othersIn(entries).length === 0)));
  await leave();
} else {
  console.log('* type lines to say them, Ctrl-D to leave');
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => void say(line));
  input.once('close', () => void leave());
  process.once('SIGINT', () => input.close());
}
