/**
 * worker-pool, part 2 of 2: a worker.
 *
 * A worker is a node with one port that answers `job` calls. It registers that port in the
 * database family `workers` (with its name as the value) so that the dispatcher finds it;
 * the entry disappears by itself when the worker dies. A job here is "square a number",
 * made to take a while (`--work-ms`) so that you have time to kill a worker mid-run.
 *
 * Run it (from the repository root) next to the dispatcher:
 *
 *   terminal 1:  npx tsx examples/worker-pool/pool.ts --jobs 20
 *   terminal 2:  npx tsx examples/worker-pool/worker.ts a
 *   terminal 3:  npx tsx examples/worker-pool/worker.ts b     (then kill it with Ctrl-C or kill -9)
 *
 * The worker runs until the dispatcher sends it `quit` (it does when all jobs are done) or
 * until Ctrl-C.
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   the seed to join ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret of the network ($AEMP_SECRET, else this user's own, as aemp uses)
 *   --work-ms N        how long a job takes (default 300)
 */
import { parseArgs } from 'node:util';
import { configure, localSecret } from 'aemp';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
    'work-ms': { type: 'string', default: '300' },
  },
});
const name = positionals[0] ?? `worker-${process.pid}`;
const workSeconds = Number(opts['work-ms']) / 1000;

const node = configure({
  norc: true,
  nodeid: 'worker/',
  secret: opts.secret,
  binds: ['127.0.0.1:*'],
  seeds: [opts.seed],
});
await node.ready;

// Tag handlers: a call `cal$(port, 'job', n)` arrives as ['job', n, replyPort].
const port = node.port();
node.rcv(
  port,
  'job',
  (n: number, replyPort: string) => {
    console.log(`${name}: working on job ${n}`);
    // node.after is setTimeout that node.close() cancels.
    node.after(workSeconds, () => {
      node.snd(replyPort, n * n, name);
      console.log(`${name}: job ${n} done`);
    });
  },
  'quit',
  () => void stop('told to quit'),
);

node.db.reg('workers', port, name);
console.log(`${name}: ready as ${node.id}, registered ${port}`);

async function stop(why: string): Promise<void> {
  console.log(`${name}: ${why}, stopping`);
  await node.close();
}

process.once('SIGINT', () => void stop('interrupted'));
