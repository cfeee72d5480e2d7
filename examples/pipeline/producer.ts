/**
 * pipeline, part 1 of 3: the producer.
 *
 *   producer ──['n', i]──▶ transform ──['batch', {…}]──▶ sink
 *
 * The producer finds the transformer's input port in the group database and streams the
 * numbers 1…count to it, one every `--every-ms` milliseconds (an RxJS `timer` per number). `snd`
 * never blocks, so before each number the producer waits on `node.drain$`: while more than
 * `--max-backlog` bytes sent to the transformer's node are still unsent (it reads slower than
 * we produce), producing pauses, and resumes once the backlog has fallen. It ends the
 * stream with a normal kill of that port (`node.kil(port)` without a reason), which completes
 * the transformer's `port$` stream, and exits once the kill has arrived.
 *
 * Run it in three terminals (from the repository root), in this order:
 *
 *   terminal 1:  npx tsx examples/pipeline/sink.ts
 *   terminal 2:  npx tsx examples/pipeline/transform.ts
 *   terminal 3:  npx tsx examples/pipeline/producer.ts --count 100
 *
 * With the defaults the sink prints 5 batches and a total of 171700 (2² + 4² + … + 100²).
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   the seed to join ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret of the network ($AEMP_SECRET, else this user's own, as aemp uses)
 *   --count N          how many numbers to send (default 100)
 *   --every-ms N       pause between two numbers (default 20)
 *   --max-backlog N    pause while more bytes than this wait to be sent (default 65536)
 */
import { parseArgs } from 'node:util';
import { configure, localSecret } from 'aemp';
import { concatMap, filter, firstValueFrom, lastValueFrom, map, range, tap, timer } from 'rxjs';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
    count: { type: 'string', default: '100' },
    'every-ms': { type: 'string', default: '20' },
    'max-backlog': { type: 'string', default: '65536' },
  },
});
const count = Number(opts.count);

const node = configure({
  norc: true,
  nodeid: 'pipeline-producer/',
  secret: opts.secret,
  binds: ['127.0.0.1:*'],
  seeds: [opts.seed],
});
await node.ready;

const target = await firstValueFrom(
  node.db.mon$('pipeline-input').pipe(
    map(({ entries }) => Object.keys(entries)[0]),
    filter((port) => port !== undefined),
  ),
);
console.log(`producer: streaming ${count} numbers to ${target}`);

// Messages to one port arrive in the order they were sent. Backpressure: drain$ emits at once
// while the backlog to the target's node is at most --max-backlog bytes, else when it has
// fallen that far; only then does the next number wait its turn and go out.
const maxBacklog = Number(opts['max-backlog']);
const everyMs = Number(opts['every-ms']);
await lastValueFrom(
  range(1, count).pipe(
    concatMap((n) =>
      node.drain$(target, maxBacklog).pipe(
        concatMap(() => timer(everyMs)),
        map(() => n),
      ),
    ),
    tap((n) => node.snd(target, 'n', n)),
  ),
  { defaultValue: 0 },
);

// End of stream: a normal kill. Watch the port first; mon$ emits when it is gone.
const gone = firstValueFrom(node.mon$(target));
node.kil(target);
const reason = await gone;
console.log(
  `producer: sent ${count} numbers, input closed (${reason.length === 0 ? 'normally' : reason.join(' ')})`,
);
await node.close();
