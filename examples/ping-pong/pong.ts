/**
 * ping-pong, part 1 of 2: the pong node.
 *
 * Shows how a node offers a service to the network: it creates a port, registers that port in
 * the group database under the family `pong` (`node.db.reg`), and answers every `ping` message
 * with a reply. This node is also the seed of the little network: it listens on the seed
 * address and runs the global service, so other nodes find each other (and the `pong` entry)
 * through it.
 *
 * Run it in two terminals (from the repository root):
 *
 *   terminal 1:  npx tsx examples/ping-pong/pong.ts
 *   terminal 2:  npx tsx examples/ping-pong/ping.ts --count 5
 *
 * pong keeps running until Ctrl-C; with `--max N` it stops by itself after answering N pings.
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   address to listen on as the seed ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret of the network ($AEMP_SECRET, else this user's own, as aemp uses)
 *   --max N            exit after answering N pings
 */
import { parseArgs } from 'node:util';
import { configure, localSecret } from 'aemp';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
    max: { type: 'string' },
  },
});
const max = opts.max === undefined ? Number.POSITIVE_INFINITY : Number(opts.max);

// `norc: true` ignores ~/.perl-anyevent-mp, so the example behaves the same for everybody.
// Listening on the seed address *and* listing it as a seed is how a seed is usually set up;
// the global service makes this node keep the group database for everyone who joins.
const node = configure({
  norc: true,
  nodeid: 'pong/', // a trailing slash adds a random suffix: pong/<random>
  secret: opts.secret,
  binds: [opts.seed],
  seeds: [opts.seed],
  services: ['AnyEvent::MP::Global::'],
});
await node.ready; // listeners are bound once this resolves (it rejects if the port is taken)

// A port with a tag handler: a message ['ping', seq, replyPort] calls the handler with
// (seq, replyPort). `node.cal$` on the other side adds that reply port for us.
let answered = 0;
const port = node.port();
node.rcv(port, 'ping', (seq: number, replyPort: string) => {
  node.snd(replyPort, 'pong', seq);
  answered++;
  console.log(`pong: answered ping ${seq} from ${node.srcNode} (${answered} so far)`);
  if (answered >= max) void stop(`answered ${answered} pings, done`);
});

// Advertise the port. The entry disappears by itself when the port or this node dies.
node.db.reg('pong', port);
console.log(`pong: ready as ${node.id} on ${node.binds.join(', ')}`);

async function stop(why: string): Promise<void> {
  console.log(`pong: ${why}`);
  // close() sends what is queued (our last reply too), kills the ports and closes the
  // listeners, so nothing keeps the process alive and it exits with status 0.
  await node.close();
}

process.once('SIGINT', () => void stop('interrupted'));
