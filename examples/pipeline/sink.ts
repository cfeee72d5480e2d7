/**
 * pipeline, part 3 of 3: the sink (and the seed of the network).
 *
 *   producer ──['n', i]──▶ transform ──['batch', {…}]──▶ sink
 *
 * The sink receives batch summaries from the transformer on a port that it reads as an
 * Observable (`node.port$()`), keeps running totals with `scan`, and prints them. The end of
 * the stream travels through the pipeline as a *normal kill*: when the transformer is done it
 * kills the sink's port without a reason, which completes the sink's stream, so the sink
 * prints the final totals and exits.
 *
 * Run it in three terminals (from the repository root), in this order:
 *
 *   terminal 1:  npx tsx examples/pipeline/sink.ts
 *   terminal 2:  npx tsx examples/pipeline/transform.ts
 *   terminal 3:  npx tsx examples/pipeline/producer.ts --count 100
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   address to listen on as the seed ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret of the network ($AEMP_SECRET, else this user's own, as aemp uses)
 */
import { parseArgs } from 'node:util';
import { configure, localSecret } from 'aemp';
import { map, scan, takeLast, tap } from 'rxjs';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
  },
});

const node = configure({
  norc: true,
  nodeid: 'pipeline-sink/',
  secret: opts.secret,
  binds: [opts.seed],
  seeds: [opts.seed],
  services: ['AnyEvent::MP::Global::'],
});
await node.ready;

/** What the transformer sends for every batch (messages carry plain data: objects are fine). */
interface Batch {
  batch: number;
  count: number;
  sum: number;
}

const input = node.port$(); // a new port, read as a stream of messages
input
  .pipe(
    map(([, batch]) => batch as Batch),
    tap((b) => console.log(`sink: batch ${b.batch}: ${b.count} values, sum ${b.sum}`)),
    // Running totals: like reduce, but emitting the totals after every batch.
    scan(
      (total, b) => ({ batches: total.batches + 1, count: total.count + b.count, sum: total.sum + b.sum }),
      {
        batches: 0,
        count: 0,
        sum: 0,
      },
    ),
    tap((total) => console.log(`sink: running total ${total.sum} (${total.count} values)`)),
    takeLast(1), // the last running total is the grand total
  )
  .subscribe({
    next: (total) =>
      console.log(`sink: done: ${total.batches} batches, ${total.count} values, total ${total.sum}`),
    // The stream completes when the transformer kills our port normally: time to go.
    complete: () => void node.close(),
    // An error kill (e.g. ['die', …]) arrives as an error.
    error: (err) => {
      console.error(`sink: ${err}`);
      process.exitCode = 1;
      void node.close();
    },
  });

// The stream is subscribed before the port is advertised, so no message can arrive unread.
node.db.reg('pipeline-sink', input.id);
console.log(`sink: ready as ${node.id} on ${node.binds.join(', ')}, port ${input.id}`);

process.once('SIGINT', () => void node.close());
