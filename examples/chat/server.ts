/**
 * chat, part 1 of 2: the server.
 *
 * The server is only the meeting point: it is the seed of the network and keeps the group
 * database (it runs the global service). Clients never send their lines through it; they
 * register their inboxes in the family `chat` and talk to each other directly. The server
 * watches the same family to log who comes and goes.
 *
 * Run it with a few clients, each in its own terminal (from the repository root):
 *
 *   terminal 1:  npx tsx examples/chat/server.ts
 *   terminal 2:  npx tsx examples/chat/client.ts alice              (type lines, Ctrl-D leaves)
 *   terminal 3:  npx tsx examples/chat/client.ts bob 'hi alice' 'see you'
 *
 * The server runs until Ctrl-C; with `--until-empty` it stops by itself once the room, after
 * having had members, is empty again.
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   address to listen on as the seed ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret of the network ($AEMP_SECRET, else this user's own, as aemp uses)
 *   --until-empty      exit when the last member has left
 */
import { parseArgs } from 'node:util';
import { configure, localSecret } from 'aemp';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
    'until-empty': { type: 'boolean', default: false },
  },
});

// A seed listens on the seed address, lists it as its own seed and runs the global service.
const node = configure({
  norc: true,
  nodeid: 'chat-server/',
  secret: opts.secret,
  binds: [opts.seed],
  seeds: [opts.seed],
  services: ['AnyEvent::MP::Global::'],
});
await node.ready;
console.log(`server: ready as ${node.id} on ${node.binds.join(', ')}`);

// Entries of `chat` are inbox port → member name. When a client's node goes away (even when
// it is killed), the global service drops its entries and every watcher sees them deleted.
const names = new Map<string, string>();
let hadMembers = false;
const room = node.db.mon$('chat').subscribe(({ entries, added, deleted }) => {
  for (const port of added) {
    names.set(port, String(entries[port]));
    console.log(`server: ${names.get(port)} joined (${Object.keys(entries).length} in the room)`);
  }
  for (const port of deleted) {
    const name = names.get(port);
    if (name === undefined) continue;
    names.delete(port);
    console.log(`server: ${name} left (${Object.keys(entries).length} in the room)`);
  }
  hadMembers ||= names.size > 0;
  if (opts['until-empty'] && hadMembers && names.size === 0) void stop('the room is empty');
});

async function stop(why: string): Promise<void> {
  console.log(`server: ${why}, stopping`);
  room.unsubscribe();
  await node.close();
}

process.once('SIGINT', () => void stop('interrupted'));
