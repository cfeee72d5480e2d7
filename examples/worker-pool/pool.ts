/**
 * worker-pool, part 1 of 2: the dispatcher.
 *
 * The dispatcher is the seed of the network. It watches the database family `workers` to
 * know which workers exist right now, gives each job to the least busy worker that has a free
 * slot (`node.cal$`, a request with one reply), and prints the results. If a worker dies
 * while it holds a job, the call errors (its port is gone) and the job is simply tried again
 * on another worker: no job is lost. When all jobs are done it tells the workers to quit and
 * exits.
 *
 * Run it (from the repository root), then start workers, each in its own terminal:
 *
 *   terminal 1:  npx tsx examples/worker-pool/pool.ts --jobs 20
 *   terminal 2:  npx tsx examples/worker-pool/worker.ts a
 *   terminal 3:  npx tsx examples/worker-pool/worker.ts b     (then kill it with Ctrl-C or kill -9)
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   address to listen on as the seed ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret of the network ($AEMP_SECRET, else this user's own, as aemp uses)
 *   --jobs N           number of jobs (default 20): job n computes n²
 *   --workers N        wait for N workers before starting (default 1)
 *   --slots N          jobs one worker may hold at a time (default 2)
 */
import { parseArgs } from 'node:util';
import { configure, formatReason, KilledError, localSecret } from 'aemp';
import {
  BehaviorSubject,
  defer,
  filter,
  finalize,
  firstValueFrom,
  map,
  mergeMap,
  type Observable,
  range,
  retry,
  take,
  tap,
  timeout,
  toArray,
} from 'rxjs';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
    jobs: { type: 'string', default: '20' },
    workers: { type: 'string', default: '1' },
    slots: { type: 'string', default: '2' },
  },
});
const jobs = Number(opts.jobs);
const slots = Number(opts.slots);

const node = configure({
  norc: true,
  nodeid: 'pool/',
  secret: opts.secret,
  binds: [opts.seed],
  seeds: [opts.seed],
  services: ['AnyEvent::MP::Global::'],
});
await node.ready;
console.log(`pool: ready as ${node.id} on ${node.binds.join(', ')}`);

// The workers we know of, by port, with the number of jobs each holds now. `changes$` ticks
// whenever a worker comes or goes or a slot frees up: that is when waiting jobs look again.
interface Worker {
  port: string;
  name: string;
  busy: number;
}
const workers = new Map<string, Worker>();
const changes$ = new BehaviorSubject<void>(undefined);

const watching = node.db.mon$('workers').subscribe(({ entries, added, deleted }) => {
  for (const port of deleted) {
    const w = workers.get(port);
    if (w) console.log(`pool: worker ${w.name} is gone`);
    workers.delete(port);
  }
  for (const port of added) {
    workers.set(port, { port, name: String(entries[port]), busy: 0 });
    console.log(`pool: worker ${entries[port]} joined (${workers.size} now)`);
  }
  changes$.next();
});

/** The least busy worker with a free slot, if there is one. */
function leastBusy(): Worker | undefined {
  let best: Worker | undefined;
  for (const w of workers.values()) if (w.busy < slots && (!best || w.busy < best.busy)) best = w;
  return best;
}

/** Waits for a free slot, takes it and emits its worker. */
const acquire = (): Observable<Worker> =>
  changes$.pipe(
    map(leastBusy),
    filter((w) => w !== undefined),
    take(1),
    tap((w) => w.busy++),
  );

/** Runs job `n` on some worker; tries again elsewhere if the worker dies first. */
function runJob(n: number): Observable<{ n: number; result: number; by: string }> {
  // `defer` makes every retry pick a worker afresh.
  return defer(acquire).pipe(
    mergeMap((w) =>
      node.cal$(w.port, 'job', n).pipe(
        // A reply is [n², worker name]. A worker that is slow but alive would be covered
        // by the timeout; a dead one makes cal$ error at once with a KilledError.
        timeout(10_000),
        map(([result, by]) => ({ n, result: Number(result), by: String(by) })),
        tap({
          error: (err) => {
            const why = err instanceof KilledError ? formatReason(err.reason) : String(err);
            console.log(`pool: job ${n} failed on ${w.name} (${why}), trying again`);
            workers.delete(w.port); // do not pick it again, even before the database says so
          },
        }),
        finalize(() => {
          w.busy--;
          changes$.next();
        }),
      ),
    ),
    retry(5),
  );
}

const wanted = Number(opts.workers);
console.log(`pool: waiting for ${wanted} worker(s)`);
await firstValueFrom(changes$.pipe(filter(() => workers.size >= wanted)));

const started = Date.now();
const results = await firstValueFrom(
  range(1, jobs).pipe(
    mergeMap(runJob), // all jobs at once: `acquire` makes them wait for free slots
    tap(({ n, result, by }) => console.log(`pool: job ${n} → ${result} (by ${by})`)),
    toArray(),
  ),
);

const sum = results.reduce((a, r) => a + r.result, 0);
const byWorker = new Map<string, number>();
for (const r of results) byWorker.set(r.by, (byWorker.get(r.by) ?? 0) + 1);
console.log(`pool: all ${results.length} jobs done in ${Date.now() - started} ms, sum of results ${sum}`);
console.log(`pool: jobs per worker: ${[...byWorker].map(([w, k]) => `${w}=${k}`).join(', ')}`);

// Tell the workers that are still there to quit, then stop; close() sends what is queued.
for (const w of workers.values()) node.snd(w.port, 'quit');
watching.unsubscribe();
await node.close();
