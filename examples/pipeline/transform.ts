/**
 * pipeline, part 2 of 3: the transformer.
 *
 *   producer ──['n', i]──▶ transform ──['batch', {…}]──▶ sink
 *
 * The transformer reads its port as an RxJS stream and shapes it with ordinary operators:
 * keep the even numbers (`filter`), square them (`map`), group them ten at a time
 * (`bufferCount`) and send each group's summary to the sink. When the producer kills our
 * port normally the stream completes; `bufferCount` then emits the last, shorter group, and
 * we pass the end on by killing the sink's port the same way.
 *
 * Run it in three terminals (from the repository root), in this order:
 *
 *   terminal 1:  npx tsx examples/pipeline/sink.ts
 *   terminal 2:  npx tsx examples/pipeline/transform.ts
 *   terminal 3:  npx tsx examples/pipeline/producer.ts --count 100
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   the seed to join ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret of the network ($AEMP_SECRET, else this user's own, as aemp uses)
 *   --batch N          values per batch (default 10)
 */
import { parseArgs } from 'node:util';
import { configure, localSecret } from 'aemp';
import { bufferCount, filter, firstValueFrom, map } from 'rxjs';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
    batch: { type: 'string', default: '10' },
  },
});

const node = configure({
  norc: true,
  nodeid: 'pipeline-transform/',
  secret: opts.secret,
  binds: ['127.0.0.1:*'],
  seeds: [opts.seed],
});
await node.ready;

// Find the sink first: the first port registered under `pipeline-sink`.
const sink = await firstValueFrom(
  node.db.mon$('pipeline-sink').pipe(
    map(({ entries }) => Object.keys(entries)[0]),
    filter((port) => port !== undefined),
  ),
);
console.log(`transform: sending to ${sink}`);

const input = node.port$();
input
  .pipe(
    map(([, n]) => Number(n)), // messages are ['n', i]
    filter((n) => n % 2 === 0),
    map((n) => n * n),
    bufferCount(Number(opts.batch)),
    map((values, i) => ({ batch: i + 1, count: values.length, sum: values.reduce((a, b) => a + b, 0) })),
  )
  .subscribe({
    next: (batch) => {
      console.log(`transform: batch ${batch.batch}: ${batch.count} values, sum ${batch.sum}`);
      node.snd(sink, 'batch', batch);
    },
    complete: async () => {
      // Pass the end on: a normal kill (no reason) completes the sink's stream. mon$ emits
      // once that kill has arrived there, and then nothing we sent is still on its way.
      const sinkGone = firstValueFrom(node.mon$(sink));
      node.kil(sink);
      await sinkGone;
      console.log('transform: done');
      await node.close();
    },
  });

// Advertise the input only now that the sink is known and the stream is subscribed.
node.db.reg('pipeline-input', input.id);
console.log(`transform: ready as ${node.id}, input ${input.id}`);

process.once('SIGINT', () => void node.close());
