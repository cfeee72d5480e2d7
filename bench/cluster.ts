/**
 * How the global database scales: networks of N nodes (20, 50, 100, 200; --quick: 20 and 50)
 * with G global nodes (1 and 3; --quick: 1) on loopback. Each global node runs in a process of
 * its own, the N − G ordinary nodes in 4 worker processes (bench/cluster-node.ts), all seeded
 * with every global node and all monitoring the families `'l` and `lat`. Per network:
 *   converge   from the last node listening until every node's `'l` holds all N entries (ms)
 *   set_all    per round, from `db.set` on one node until every ordinary node saw it (ms, p50)
 *   set_p50/p99  `db.set` → the change in `db.mon$` on each other node (µs over all receipts)
 *   msgs/bytes per set  written by all nodes together (connectionStats deltas) per db.set
 *   global cpu per set  CPU time of a global node's process per db.set (µs, mean of globals)
 *   node heap/rss  memory per ordinary node (worker process deltas after two collections)
 * Rounds are closed-loop: one `db.set` (writers taking turns among 8 ordinary nodes), then the
 * next once every ordinary node saw it; the first rounds warm up and are not counted.
 *
 * The ceiling of every figure is a bare relay measured in the same run with the same processes
 * and the same number of hops: one hub per global node in the global node's process, one
 * endpoint per ordinary node in the same worker process attached to the hub of the node's
 * aemp master; net + cbor-x, every frame decoded and encoded again at each hop; a hub sends
 * an update from its endpoint to the other hubs and to its endpoints, one from a hub to its
 * endpoints (writer → master → other global → slave, as global.md §7.1). Its `'l` stand-in is
 * a node table exchanged the same way (snapshot to a joining endpoint, entries to the others).
 *
 * Prints a table, character plots and the path of an SVG plot (bench/out/cluster.svg), then
 * one JSON line: `db_n<N>_g<G>_<metric>` and `ceiling_…` for each network.
 * BENCH_SIZES=20,50 and BENCH_GLOBALS=1,3 override the sizes.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  expectedHops,
  expectedMessagesPerSet,
  growthExponent,
  growthText,
  percentile,
} from './cluster-model.js';
import { asciiPlot, type Series, svgPlot } from './plot.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const list = (env: string | undefined, dflt: number[]) => (env ? env.split(',').map(Number) : dflt);
const SIZES = list(process.env.BENCH_SIZES, quick ? [20, 50] : [20, 50, 100, 200]);
const GLOBALS = list(process.env.BENCH_GLOBALS, quick ? [1] : [1, 3]);
const WORKERS = 4;
const WRITERS = 8;
const WARMUP = 10;
const ROUNDS = quick ? 40 : 80;
const DEADLINE_MS = 60_000;

interface Reply {
  rid?: number;
  error?: string;
  forked?: true;
  converged?: true;
  seen?: true;
  seq?: number;
  at?: number;
  [k: string]: unknown;
}

class Proc {
  readonly proc: ChildProcess;
  private rid = 0;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private readonly listeners = new Set<(r: Reply) => void>();
  constructor() {
    this.proc = fork(join(here, 'cluster-node.ts'), [], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: 'inherit',
    });
    this.proc.on('message', (r: Reply) => {
      if (r.rid !== undefined) {
        this.waiting.get(r.rid)?.(r);
        this.waiting.delete(r.rid);
      } else for (const l of [...this.listeners]) l(r);
    });
  }
  /** Resolves with the first event that `pred` accepts. */
  event(pred: (r: Reply) => boolean, what: string): Promise<Reply> {
    return deadline(
      new Promise((resolve) => {
        const l = (r: Reply) => {
          if (!pred(r)) return;
          this.listeners.delete(l);
          resolve(r);
        };
        this.listeners.add(l);
      }),
      what,
    );
  }
  ask(cmd: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const rid = ++this.rid;
    const p = new Promise<Reply>((resolve, reject) =>
      this.waiting.set(rid, (r) => (r.error ? reject(new Error(`${cmd}: ${r.error}`)) : resolve(r))),
    );
    this.proc.send({ rid, cmd, ...args });
    return deadline(p, cmd);
  }
  /** Sends without waiting for the answer (rounds: the answer is the `seen` events). */
  tell(cmd: string, args: Record<string, unknown>): void {
    this.proc.send({ rid: ++this.rid, cmd, ...args });
  }
}

function deadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing in ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

interface Figures {
  converge_ms: number;
  set_all_ms: number;
  set_p50_us: number;
  set_p99_us: number;
  msgs_per_set: number;
  bytes_per_set: number;
  global_cpu_us_per_set: number;
  node_heap_bytes: number;
  node_rss_bytes: number;
}

interface Net {
  globals: Proc[];
  workers: Proc[];
  /** Ordinary node i lives in workers[i % W] at index ⌊i / W⌋. */
  where(i: number): [Proc, number];
  slaves: number;
}

/** Closed-loop rounds of `cmd` ('set' / 'relaySet'); figures of the rounds after warm-up. */
async function rounds(
  net: Net,
  cmd: string,
  nodes: number,
): Promise<Omit<Figures, 'converge_ms' | `node_${string}`>> {
  const all = [...net.globals, ...net.workers];
  for (const w of net.workers) await w.ask('report', { on: true });
  const allSeen: number[] = [];
  let before: Reply[] = [];
  const t0 = performance.now();
  for (let seq = 1; seq <= WARMUP + ROUNDS; seq++) {
    if (seq === WARMUP + 1) before = await Promise.all(all.map((p) => p.ask('stats')));
    const [proc, index] = net.where((seq * 7) % Math.min(WRITERS, net.slaves));
    const seen = net.workers.map((w) =>
      w.event((r) => r.seen === true && r.seq === seq, `round ${seq} (${cmd})`),
    );
    const t = performance.now();
    proc.tell(cmd, { index, seq });
    await Promise.all(seen);
    if (seq > WARMUP) allSeen.push(performance.now() - t);
  }
  const after = await Promise.all(all.map((p) => p.ask('stats')));
  if (process.env.BENCH_DEBUG) {
    console.error(`${cmd}: ${Math.round(performance.now() - t0)} ms`);
    const i0 = await Promise.all(net.globals.map((p) => p.ask('stats')));
    await new Promise((r) => setTimeout(r, 500));
    const i1 = await Promise.all(net.globals.map((p) => p.ask('stats')));
    console.error(
      `idle cpu µs per 500 ms: ${i1.map((r, i) => (r.cpuUs as number) - (i0[i]!.cpuUs as number))}`,
    );
  }
  for (const w of net.workers) await w.ask('report', { on: false });
  const delta = (k: string, from = 0, to = all.length) =>
    after.slice(from, to).reduce((s, r, i) => s + (r[k] as number) - (before[from + i]![k] as number), 0);
  const receipts: number[] = [];
  for (const p of all) {
    const { samples } = (await p.ask('samples')) as unknown as { samples: [number, number][] };
    for (const [seq, us] of samples) if (seq > WARMUP) receipts.push(us);
  }
  receipts.sort((a, b) => a - b);
  if (receipts.length !== ROUNDS * (nodes - 1))
    throw new Error(`${cmd}: ${receipts.length} receipts, expected ${ROUNDS * (nodes - 1)}`);
  allSeen.sort((a, b) => a - b);
  return {
    set_all_ms: percentile(allSeen, 0.5),
    set_p50_us: percentile(receipts, 0.5),
    set_p99_us: percentile(receipts, 0.99),
    msgs_per_set: delta('msgs') / ROUNDS,
    bytes_per_set: delta('bytes') / ROUNDS,
    global_cpu_us_per_set: delta('cpuUs', 0, net.globals.length) / net.globals.length / ROUNDS,
  };
}

/** The converge event of every process; the time of the last. */
async function converged(procs: Proc[], what: string): Promise<number> {
  const at = await Promise.all(procs.map((p) => p.event((r) => r.converged === true, what)));
  return Math.max(...at.map((r) => r.at!));
}

async function memory(workers: Proc[]): Promise<{ rss: number; heap: number }> {
  const m = await Promise.all(workers.map((w) => w.ask('mem')));
  return {
    rss: m.reduce((s, r) => s + (r.rss as number), 0),
    heap: m.reduce((s, r) => s + (r.heap as number), 0),
  };
}

async function network(nodes: number, g: number): Promise<{ aemp: Figures; relay: Figures }> {
  const slaves = nodes - g;
  const W = Math.min(WORKERS, slaves);
  const globals = Array.from({ length: g }, () => new Proc());
  const workers = Array.from({ length: W }, () => new Proc());
  const net: Net = { globals, workers, slaves, where: (i) => [workers[i % W]!, Math.floor(i / W)] };
  try {
    await Promise.all([...globals, ...workers].map((p) => p.event((r) => r.forked === true, 'fork')));

    // ---------------------------------------------------------------- aemp
    const mem0 = await memory(workers);
    const gConverged = converged(globals, 'aemp converge (globals)');
    const addrs: string[] = [];
    const gIds: string[] = [];
    let readyAt = 0;
    for (const [i, p] of globals.entries()) {
      const r = await p.ask('start', {
        nodes: [{ nodeid: `g${i + 1}/`, seeds: [...addrs], global: true }],
        expect: nodes,
      });
      addrs.push((r.binds as string[])[0]!);
      gIds.push((r.ids as string[])[0]!);
      readyAt = Math.max(readyAt, r.readyAt as number);
    }
    const wConverged = converged(workers, 'aemp converge');
    const started = await Promise.all(
      workers.map((w, k) =>
        w.ask('start', {
          nodes: Array.from({ length: Math.ceil((slaves - k) / W) }, (_, j) => ({
            nodeid: `n${j * W + k + 1}/`,
            seeds: addrs,
            global: false,
          })),
          expect: nodes,
        }),
      ),
    );
    readyAt = Math.max(readyAt, ...started.map((r) => r.readyAt as number));
    const convergedAt = Math.max(await gConverged, await wConverged);
    const mem1 = await memory(workers);
    const masters = await Promise.all(workers.map((w) => w.ask('masters')));
    const aemp: Figures = {
      converge_ms: convergedAt - readyAt,
      ...(await rounds(net, 'set', nodes)),
      node_heap_bytes: (mem1.heap - mem0.heap) / slaves,
      node_rss_bytes: (mem1.rss - mem0.rss) / slaves,
    };
    await Promise.all([...globals, ...workers].map((p) => p.ask('closeNodes')));

    // ---------------------------------------------------------------- relay
    const hubs: string[] = [];
    for (const [i, p] of globals.entries()) {
      const { addr } = await p.ask('relayHub', { id: gIds[i] });
      await p.ask('relayMesh', { hubs: [...hubs] });
      hubs.push(addr as string);
    }
    const hubOf = new Map(gIds.map((id, i) => [id, hubs[i]!]));
    const mem2 = await memory(workers);
    const rConverged = converged(workers, 'relay converge');
    const joined = await Promise.all(
      workers.map((w, k) =>
        w.ask('relayJoin', {
          nodes: (started[k]!.ids as string[]).map((id, j) => ({
            id,
            hub: hubOf.get((masters[k]!.masters as string[])[j]!) ?? hubs[0],
          })),
          expect: nodes,
        }),
      ),
    );
    const relayReady = Math.max(...joined.map((r) => r.readyAt as number));
    const relayConverged = await rConverged;
    const mem3 = await memory(workers);
    const relay: Figures = {
      converge_ms: relayConverged - relayReady,
      ...(await rounds(net, 'relaySet', nodes)),
      node_heap_bytes: (mem3.heap - mem2.heap) / slaves,
      node_rss_bytes: (mem3.rss - mem2.rss) / slaves,
    };
    return { aemp, relay };
  } finally {
    for (const p of [...globals, ...workers]) p.proc.kill('SIGKILL');
  }
}

const results: { nodes: number; globals: number; aemp: Figures; relay: Figures }[] = [];
for (const g of GLOBALS) {
  for (const n of SIZES) {
    if (n <= g) continue;
    results.push({ nodes: n, globals: g, ...(await network(n, g)) });
  }
}

// ---------------------------------------------------------------- report
const COLUMNS: [keyof Figures, string, number][] = [
  ['converge_ms', 'converge ms', 1],
  ['set_all_ms', 'all saw ms', 2],
  ['set_p50_us', 'p50 µs', 0],
  ['set_p99_us', 'p99 µs', 0],
  ['msgs_per_set', 'msgs/set', 1],
  ['bytes_per_set', 'bytes/set', 0],
  ['global_cpu_us_per_set', 'global CPU µs/set', 0],
  ['node_heap_bytes', 'heap B/node', 0],
];
const cell = (v: number, digits: number) => v.toFixed(digits);
const head = ['N', 'G', 'hops', 'side', ...COLUMNS.map((c) => c[1])];
const body: string[][] = [];
for (const r of results) {
  for (const side of ['aemp', 'relay', 'ratio'] as const) {
    body.push([
      side === 'aemp' ? String(r.nodes) : '',
      side === 'aemp' ? String(r.globals) : '',
      side === 'aemp' ? String(expectedHops(r.globals)) : '',
      side,
      ...COLUMNS.map(([k, , d]) =>
        side === 'ratio'
          ? r.relay[k] > 0 && r.aemp[k] > 0
            ? (r.aemp[k] / r.relay[k]).toFixed(2)
            : '-'
          : cell(r[side][k], d),
      ),
    ]);
  }
}
const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
const out: string[] = [];
out.push('Global database, N nodes with G global nodes (aemp, and the bare relay over the same hops):');
out.push(head.map((h, i) => h.padStart(widths[i]!)).join('  '));
for (const b of body) out.push(b.map((c, i) => c.padStart(widths[i]!)).join('  '));
out.push('');

const growth: string[] = [];
for (const g of GLOBALS) {
  const rs = results.filter((r) => r.globals === g);
  if (rs.length < 2) continue;
  const growthOf = (k: keyof Figures, side: 'aemp' | 'relay' = 'aemp') =>
    growthText(growthExponent(rs.map((r) => [r.nodes, r[side][k]])));
  growth.push(
    `G=${g}: messages per set ${growthOf('msgs_per_set')} (measured ${rs.map((r) => r.aemp.msgs_per_set.toFixed(1)).join(', ')}; ` +
      `the algorithm: 1 + (G−1) + (N−G) = N: ${rs.map((r) => expectedMessagesPerSet(r.nodes, g)).join(', ')})`,
    `G=${g}: bytes per set ${growthOf('bytes_per_set')}; global CPU per set ${growthOf('global_cpu_us_per_set')} ` +
      `(relay ${growthOf('global_cpu_us_per_set', 'relay')}; the algorithm: ∝ N/G sends per global)`,
    `G=${g}: converge ${growthOf('converge_ms')} (relay ${growthOf('converge_ms', 'relay')}; N joins each told to N monitors: ` +
      `N² messages); p50 ${growthOf('set_p50_us')}; memory per node ${growthOf('node_heap_bytes')}`,
  );
}
if (growth.length) out.push('Growth with N:', ...growth.map((l) => `  ${l}`), '');

const series = (k: keyof Figures, side: 'aemp' | 'relay', g: number, mark: string): Series => ({
  name: `${side} G=${g}`,
  mark,
  points: results.filter((r) => r.globals === g).map((r) => [r.nodes, r[side][k]] as [number, number]),
});
const marks = ['a', 'r', 'A', 'R'];
const panel = (k: keyof Figures) =>
  GLOBALS.flatMap((g, i) => [series(k, 'aemp', g, marks[2 * i]!), series(k, 'relay', g, marks[2 * i + 1]!)]);
if (results.length > 1) {
  out.push(asciiPlot('messages per db.set over N', panel('msgs_per_set')), '');
  out.push(asciiPlot('db.set → every other node, p50 µs over N', panel('set_p50_us')), '');
  const dir = join(here, 'out');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'cluster.svg');
  writeFileSync(
    file,
    svgPlot([
      { title: 'messages per db.set', xLabel: 'nodes', series: panel('msgs_per_set') },
      { title: 'db.set → other node, p50 µs', xLabel: 'nodes', series: panel('set_p50_us') },
      { title: 'db.set → other node, p99 µs', xLabel: 'nodes', series: panel('set_p99_us') },
      { title: 'global CPU µs per db.set', xLabel: 'nodes', series: panel('global_cpu_us_per_set') },
    ]),
  );
  out.push(`plot: ${file}`);
}
console.log(out.join('\n'));

const json: Record<string, number> = {};
const round = (v: number) => Math.round(v * 10) / 10;
for (const r of results) {
  const p = `db_n${r.nodes}_g${r.globals}_`;
  for (const k of Object.keys(r.aemp) as (keyof Figures)[]) {
    if (k === 'node_rss_bytes') continue;
    json[`${p}${k}`] = round(r.aemp[k]);
    json[`ceiling_${p}${k}`] = round(r.relay[k]);
  }
}
console.log(JSON.stringify(json));
