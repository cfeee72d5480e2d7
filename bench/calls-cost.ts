/**
 * The cost of one call between two processes, against the ceiling (a bare `net` socket with
 * cbor-x and batched writes, calls routed back by an ID through one table of pending calls):
 *
 *   node --import tsx bench/calls-cost.ts [--quick] [--depth 64] [--n CALLS] [--rounds 5] [--only call]
 *   node --expose-gc --max-semi-space-size=128 --min-semi-space-size=128 --import tsx \
 *     bench/calls-cost.ts --bytes [same options]
 *
 * Forks the wire benchmarks' server (`bench/wire-server.ts`: an aemp echo port and a bare echo
 * server) and measures sequential calls (depth 1) and 64 callers each awaiting its own reply,
 * with `cal$` (awaited with `lastValueFrom`), with `call` (a promise) and with the ceiling:
 * calls per second and CPU microseconds per call in this process and in the server (both
 * `process.cpuUsage`; the server reports its own over IPC); with `--bytes`, the bytes allocated
 * per call here instead (heap growth over a window without a collection, which needs the young
 * generation those flags give). The two run apart because that young generation changes the
 * rates: with it the ceiling's caller took about 1.0 µs of CPU per call in flight instead of
 * 1.5 µs with Node's default heap, while aemp's took the same. Rounds alternate between the
 * variants; figures are medians. Prints a table (not with `--json-only`) and one JSON line whose
 * keys `<variant>_rtt<depth>_…` pair with `ceiling_<variant>_rtt<depth>_…` (the same ceiling
 * runs for every variant) for `npm run bench`.
 */
import { fork } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { filter, firstValueFrom, lastValueFrom } from 'rxjs';
import { configure, memoryLogger, type Node } from '../src/index.js';
import { noCollectionBetween } from './gc-seen.js';
import { rawChannel } from './raw-cbor.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
/**
 * Calls per window: sequential ones take tens of microseconds each, calls in flight a few, so
 * those get more to fill a window of a useful length (a stall of the shared machine otherwise
 * decides a window of 50 ms); all of a window's garbage still fits the young generation.
 */
const callsPerWindow = (depth: number) =>
  Number(arg('--n') ?? (depth > 1 ? (quick ? 12_000 : 50_000) : quick ? 5_000 : 20_000));
const ROUNDS = Number(arg('--rounds') ?? (quick ? 1 : 5));
const bytesOnly = process.argv.includes('--bytes');
const DEPTHS = arg('--depth') ? [Number(arg('--depth'))] : [1, 64];
const gc = (globalThis as { gc?: () => void }).gc;

const server = fork(join(here, 'wire-server.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
const info = await new Promise<{ aemp: { addr: string; echo: string }; raw: { port: number } }>((resolve) =>
  server.once('message', (m) =>
    resolve(m as { aemp: { addr: string; echo: string }; raw: { port: number } }),
  ),
);

/** CPU time of the server process so far in microseconds (it answers over IPC). */
function serverCpuUs(): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown) => {
      if (typeof m !== 'object' || m === null || !('cpu' in m)) return;
      server.off('message', onMessage);
      resolve((m as { cpu: number }).cpu);
    };
    server.on('message', onMessage);
    server.send('cpu');
  });
}

const node: Node = configure({
  nodeid: 'calls-client/',
  norc: true,
  binds: ['127.0.0.1:0'],
  seeds: [info.aemp.addr],
  secret: 'bench-secret',
  logger: memoryLogger(),
});
await node.ready;
await firstValueFrom(node.nodes$.pipe(filter((e) => e.type === 'up')));
const { echo } = info.aemp;

type Caller = () => Promise<unknown>;
const viaCal$: Caller = () => lastValueFrom(node.cal$(echo, 'x'));
const callable = node as unknown as { call?: (p: string, m: unknown[]) => Promise<unknown[]> };
const viaCall: Caller = () => callable.call!(echo, ['x']);

// The ceiling: one socket, cbor-x, calls routed back by an ID (as wire.ts's in-flight ceiling).
const sock = connect({ host: '127.0.0.1', port: info.raw.port });
sock.setNoDelay(true);
await new Promise<void>((r) => sock.once('connect', () => r()));
const waiting = new Map<number, (m: unknown[]) => void>();
const send = rawChannel(sock, (m) => {
  const resolve = waiting.get(m[0] as number);
  if (resolve === undefined) return;
  waiting.delete(m[0] as number);
  resolve(m);
});
let nextId = 0;
const viaRaw: Caller = () =>
  new Promise<unknown[]>((resolve) => {
    const id = nextId++;
    waiting.set(id, resolve);
    send(['echo', 'x', id]);
  });

async function run(caller: Caller, depth: number, n: number): Promise<void> {
  let left = n;
  const worker = async () => {
    while (left > 0) {
      left--;
      await caller();
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
}

interface Cost {
  calls_s: number;
  client_cpu_us: number;
  server_cpu_us: number;
  bytes: number;
}

async function measure(caller: Caller, depth: number): Promise<Cost> {
  const N = callsPerWindow(depth);
  await run(caller, depth, N >> 1); // warm-up
  gc?.();
  await new Promise((r) => setImmediate(r));
  // Calls right after a forced full collection run 20–30 % slower for a while (the ceiling's
  // more than aemp's, as its windows are shorter): a few first, so that the window measures the
  // steady state. They fit in the young generation with the window, which stays free of
  // collections.
  await run(caller, depth, N >> 2);
  const s0 = await serverCpuUs();
  const h0 = getHeapStatistics().used_heap_size;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run(caller, depth, N);
  const ms = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  const h1 = getHeapStatistics().used_heap_size;
  const s1 = await serverCpuUs();
  const clean = await noCollectionBetween(t0, t0 + ms);
  return {
    calls_s: N / (ms / 1000),
    client_cpu_us: (c1.user + c1.system) / N,
    server_cpu_us: (s1 - s0) / N,
    bytes: clean ? (h1 - h0) / N : -1,
  };
}

const only = arg('--only');
const variants: [string, Caller][] = [['cal', viaCal$]];
if (typeof callable.call === 'function') variants.push(['call', viaCall]);
variants.push(['ceiling', viaRaw]);
if (only !== undefined)
  variants.splice(0, variants.length, ...variants.filter(([name]) => name === only || name === 'ceiling'));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const out: Record<string, number> = {};
const rows: string[] = [];
for (const depth of DEPTHS) {
  const got = new Map<string, Cost[]>(variants.map(([name]) => [name, []]));
  for (let r = 0; r < ROUNDS; r++)
    for (const [name, caller] of variants) got.get(name)!.push(await measure(caller, depth));
  for (const [name] of variants) {
    const cs = got.get(name)!;
    const c: Cost = {
      calls_s: median(cs.map((x) => x.calls_s)),
      client_cpu_us: median(cs.map((x) => x.client_cpu_us)),
      server_cpu_us: median(cs.map((x) => x.server_cpu_us)),
      bytes: median(cs.map((x) => x.bytes)),
    };
    const ceiling = got.get('ceiling')!;
    if (name !== 'ceiling') {
      // Keys as run.ts pairs them: `<metric>` and `ceiling_<metric>`.
      const metric = `${name}_rtt${depth}`;
      if (!bytesOnly) {
        out[`${metric}_s`] = c.calls_s;
        out[`ceiling_${metric}_s`] = median(ceiling.map((x) => x.calls_s));
        out[`${metric}_client_cpu_us`] = c.client_cpu_us;
        out[`ceiling_${metric}_client_cpu_us`] = median(ceiling.map((x) => x.client_cpu_us));
        out[`${metric}_server_cpu_us`] = c.server_cpu_us;
        out[`ceiling_${metric}_server_cpu_us`] = median(ceiling.map((x) => x.server_cpu_us));
      } else if (c.bytes >= 0) {
        out[`${metric}_bytes`] = c.bytes;
        out[`ceiling_${metric}_bytes`] = median(ceiling.map((x) => x.bytes));
      }
    }
    const ratio = c.calls_s / median(ceiling.map((x) => x.calls_s));
    rows.push(
      bytesOnly
        ? `${name.padEnd(7)} depth ${String(depth).padStart(2)}  ${c.bytes < 0 ? 'gc ran' : `${Math.round(c.bytes)} B`}/call`
        : `${name.padEnd(7)} depth ${String(depth).padStart(2)}  ${Math.round(c.calls_s).toLocaleString('en').padStart(9)} calls/s` +
            ` (${ratio.toFixed(2)}× ceiling)  client ${c.client_cpu_us.toFixed(2).padStart(5)} µs` +
            `  server ${c.server_cpu_us.toFixed(2).padStart(5)} µs`,
    );
  }
}
if (!process.argv.includes('--json-only')) console.log(rows.join('\n'));
await node.close();
sock.destroy();
server.kill();
process.stdout.write(`${JSON.stringify(out)}\n`);
