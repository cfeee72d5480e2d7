/**
 * The group database with every node in this one process, on the in-memory transport
 * (`aemp/testing`'s MemoryNetwork: bytes pass between the ends in a later event-loop turn,
 * without sockets). Not part of `npm run bench` (one process on one core is not a network); run
 * it as `npx tsx bench/cluster-memory.ts [--quick]`. Without system calls and other processes
 * it shows aemp's own work for the same algorithm as bench/cluster.ts: per network of N nodes
 * with G global nodes (all monitoring `'l` and `lat`)
 *   converge      from configuring the last node until every node's `'l` holds N entries (ms)
 *   all saw       one `db.set` until every other node's `db.mon$` saw it (ms, median)
 *   CPU per set   this process's CPU time per `db.set`: all nodes' work together (µs)
 *   per message   that divided by the messages a set costs (N; µs)
 *   msgs/set, bytes/set   from connectionStats deltas of all nodes
 *   heap/node     heap after two collections (run with --expose-gc for it), per node
 * Prints a table and one JSON line.
 */
import { performance } from 'node:perf_hooks';
import { memoryLogger, type Node } from '../src/index.js';
import { MemoryNetwork, memoryNode } from '../src/testing.js';
import { percentile } from './cluster-model.js';

const quick = process.argv.includes('--quick');
const SIZES = quick ? [20, 50] : [20, 50, 100, 200];
const GLOBALS = quick ? [1] : [1, 3];
const WARMUP = 200;
const ROUNDS = quick ? 500 : 2000;
const DEADLINE_MS = 60_000;

const gc = (globalThis as { gc?: () => void }).gc;
const heap = () => {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
};

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing in ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

interface Row {
  nodes: number;
  globals: number;
  converge_ms: number;
  set_all_ms: number;
  cpu_us_per_set: number;
  cpu_us_per_msg: number;
  msgs_per_set: number;
  bytes_per_set: number;
  node_heap_bytes: number;
}

async function network(n: number, g: number): Promise<Row> {
  const net = new MemoryNetwork();
  const heap0 = heap();
  const nodes: Node[] = [];
  const globalAddrs = Array.from({ length: g }, (_, i) => `10.1.0.${i + 1}:4040`);
  let convergedLeft = n;
  let convergedAt = 0;
  let allConverged: () => void = () => {};
  const converged = new Promise<void>((resolve) => (allConverged = resolve));
  const one = () => {
    if (--convergedLeft > 0) return;
    convergedAt = performance.now();
    allConverged();
  };
  /** Receipts of the current round still awaited, and its completion. */
  let waiting = 0;
  let roundDone: () => void = () => {};
  const watch = (node: Node) => {
    let done = false;
    node.db.mon$("'l").subscribe((c) => {
      if (!done && Object.keys(c.entries).length >= n) {
        done = true;
        one();
      }
    });
    node.db.mon$('lat').subscribe((c) => {
      for (const k of [...c.added, ...c.changed]) if (k !== node.id && --waiting === 0) roundDone();
    });
  };
  const opts = { secret: 'bench-secret', logger: memoryLogger() };
  for (let i = 0; i < g; i++) {
    const node = memoryNode(net.host({ address: globalAddrs[i]!.split(':')[0]! }), {
      ...opts,
      nodeid: `g${i + 1}/`,
      binds: [globalAddrs[i]!],
      seeds: globalAddrs.slice(0, i),
      services: ['AnyEvent::MP::Global::'],
    });
    nodes.push(node);
    watch(node);
  }
  let lastStart = 0;
  for (let i = 0; i < n - g; i++) {
    const address = `10.2.${i >> 8}.${i & 255}`;
    const node = memoryNode(net.host({ address }), {
      ...opts,
      nodeid: `n${i + 1}/`,
      binds: [`${address}:4040`],
      seeds: globalAddrs,
    });
    nodes.push(node);
    watch(node);
    lastStart = performance.now();
  }
  await within(converged, `${n} nodes converge`);
  const converge = convergedAt - lastStart;
  const heapPerNode = (heap() - heap0) / n;

  const slaves = nodes.slice(g);
  const stats = () => {
    let msgs = 0;
    let bytes = 0;
    for (const node of nodes)
      for (const c of node.connectionStats()) {
        msgs += c.messagesOut;
        bytes += c.bytesOut;
      }
    return { msgs, bytes, cpu: process.cpuUsage() };
  };
  const allSaw: number[] = [];
  let before = stats();
  for (let seq = 1; seq <= WARMUP + ROUNDS; seq++) {
    if (seq === WARMUP + 1) before = stats();
    const writer = slaves[seq % Math.min(8, slaves.length)]!;
    waiting = n - 1;
    const done = new Promise<void>((resolve) => (roundDone = resolve));
    const t = performance.now();
    writer.db.set('lat', writer.id, seq);
    await within(done, `round ${seq}`);
    if (seq > WARMUP) allSaw.push(performance.now() - t);
  }
  const after = stats();
  await Promise.all(nodes.map((node) => node.close()));
  const cpu = (after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / ROUNDS;
  const msgs = (after.msgs - before.msgs) / ROUNDS;
  allSaw.sort((a, b) => a - b);
  return {
    nodes: n,
    globals: g,
    converge_ms: converge,
    set_all_ms: percentile(allSaw, 0.5),
    cpu_us_per_set: cpu,
    cpu_us_per_msg: cpu / msgs,
    msgs_per_set: msgs,
    bytes_per_set: (after.bytes - before.bytes) / ROUNDS,
    node_heap_bytes: heapPerNode,
  };
}

const rows: Row[] = [];
for (const g of GLOBALS) for (const n of SIZES) rows.push(await network(n, g));
const keys = Object.keys(rows[0]!) as (keyof Row)[];
const cells = rows.map((r) => keys.map((k) => (r[k] >= 100 ? Math.round(r[k]).toString() : r[k].toFixed(2))));
const widths = keys.map((k, i) => Math.max(k.length, ...cells.map((c) => c[i]!.length)));
console.log('Group database in one process on the in-memory transport:');
console.log(keys.map((k, i) => k.padStart(widths[i]!)).join('  '));
for (const c of cells) console.log(c.map((v, i) => v.padStart(widths[i]!)).join('  '));
console.log(JSON.stringify(rows));
