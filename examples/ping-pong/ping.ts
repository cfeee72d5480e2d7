/**
 * ping-pong, part 2 of 2: the ping node.
 *
 * Shows how to find a service through the group database and call it: the node joins the
 * network through the seed, waits until some port is registered under `pong`
 * (`node.db.mon$`), then sends N pings one after the other with `node.cal$` (request/reply)
 * and prints each round-trip time and a summary. It exits by itself when done.
 *
 * Run it in two terminals (from the repository root):
 *
 *   terminal 1:  npx tsx examples/ping-pong/pong.ts
 *   terminal 2:  npx tsx examples/ping-pong/ping.ts --count 5
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   the seed to join ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret of the network ($AEMP_SECRET, else this user's own, as aemp uses)
 *   --count N          number of pings (default 5)
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { configure, localSecret } from 'aemp';
import { filter, firstValueFrom, map, timeout } from 'rxjs';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
    count: { type: 'string', default: '5' },
  },
});
const count = Number(opts.count);

// An ordinary node: it listens on any free loopback port (other nodes may need to connect
// back to it) and knows the network only through its seed.
const node = configure({
  norc: true,
  nodeid: 'ping/',
  secret: opts.secret,
  binds: ['127.0.0.1:*'],
  seeds: [opts.seed],
});
await node.ready;

try {
  // db.mon$ emits the whole `pong` family first and then every change, so this works whether
  // pong registered before or after we started. Keys are the registered port IDs.
  const pong = await firstValueFrom(
    node.db.mon$('pong').pipe(
      map((change) => Object.keys(change.entries)[0]),
      filter((port) => port !== undefined),
      timeout({ first: 10_000, with: () => Promise.reject(new Error('no pong registered within 10 s')) }),
    ),
  );
  console.log(`ping: found pong at ${pong}`);

  const times: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const start = performance.now();
    // cal$ sends ['ping', seq, replyPort] and emits the reply once. It errors if the pong port
    // dies first; the timeout covers a pong that never answers.
    const [tag, echoed] = await firstValueFrom(node.cal$(pong, 'ping', seq).pipe(timeout(5000)));
    const ms = performance.now() - start;
    times.push(ms);
    console.log(`ping: ${tag} ${echoed} after ${ms.toFixed(2)} ms`);
  }

  const avg = times.reduce((a, b) => a + b, 0) / times.length;
  console.log(
    `ping: ${times.length} round trips, min ${Math.min(...times).toFixed(2)} ms, ` +
      `avg ${avg.toFixed(2)} ms, max ${Math.max(...times).toFixed(2)} ms`,
  );
} catch (err) {
  console.error(`ping: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  // Closing the node lets the process exit on its own.
  await node.close();
}
