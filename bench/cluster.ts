/**
 * How the global database scales: networks of N nodes (20, 50, 100, 200; --quick: 20 and 50)
 * with G global nodes (1 and 3; --quick: 1) on loopback. Each global node runs in a process of
 * its own, the N − G ordinary nodes in 4 worker processes (bench/cluster-node.ts), all seeded
 * with every global node and all monitoring the families `'l` and `lat`. Per network:
 *   converge   from the last node listening until every node's `'l` holds all N entries (ms)
 *   set_all    per round, from `db.set` on one node until every ordinary node saw it (ms, p50)
 *   set_p50/p99  `db.set` → the change in `db.mon$` on each other node (µs over all receipts)
 *   globals_p50  the same for the global nodes' own receipts only (writer → master, and on to
 *              the other global nodes): the first hop(s)
 *   msgs/bytes per set  written by all nodes together (connectionStats deltas) per db.set
 *   global cpu per set  CPU time of a global node's process per db.set (µs, mean of globals)
 *   workers cpu per set  CPU time of all worker processes together per db.set (µs)
 *   node heap/rss  memory per ordinary node (worker process deltas after two collections)
 * Rounds are closed-loop: one `db.set` (writers taking turns among 8 ordinary nodes), then the
 * next once every ordinary node saw it. After warm-up rounds on both sides, aemp and the relay
 * take turns in blocks of rounds, so that drifting machine speed affects both alike (the aemp
 * nodes stay up, idle, while the relay runs, and the other way round).
 *
 * The ceiling of every figure is a bare relay measured in the same run with the same processes
 * and the same number of hops: one hub per global node in the global node's process, one
 * endpoint per ordinary node in the same worker process attached to the hub of the node's
 * aemp master; net + cbor-x, every frame decoded and encoded again at each hop; a hub sends
 * an update from its endpoint to the other hubs and to its endpoints, one from a hub to its
 * endpoints (writer → master → other global → slave, as global.md §7.1). Its `'l` stand-in is
 * a node table exchanged the same way (snapshot to a joining endpoint, entries to the others).
 * An endpoint keeps what it is told (node table and `lat` entries in maps), as an aemp node
 * keeps a mirror of each family it monitors.
 *
 * Prints a table, character plots and the path of an SVG plot (bench/out/cluster.svg), then
 * one JSON line: `db_n<N>_g<G>_<metric>` and `ceiling_…` for each network.
 * BENCH_SIZES=20,50 and BENCH_GLOBALS=1,3 override the sizes, BENCH_ROUNDS the counted rounds per side;
 * BENCH_RECEIVE=entries|set|raw: ordinary nodes read a change's values from its whole-family
 * snapshot instead of `change.get`, or from the message, or take the g_chg2 without db.mon$
 * (see bench/cluster-node.ts);
 * BENCH_NODE_FLAGS='--trace-gc …': Node flags of every child process (both sides share them);
 * BENCH_SAMPLES=<prefix>: every receipt as [process (global nodes first), round, µs, side]
 * into <prefix>-n<N>-g<G>.json;
 * BENCH_PROFILE=<dir>: the first global node's process and the first worker write CPU profiles
 * into <dir> of aemp's convergence and, after the counted rounds, of each side's rounds run
 * once more.
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
  linearFit,
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
/**
 * Uncounted rounds per side first (BENCH_WARMUP). The first few hundred rounds after the
 * networks formed carry bursts of slow receipts on either side (code still being optimised,
 * the previous network's processes being reaped), which in a run of 300 decided the p99.
 */
const WARMUP = Number(process.env.BENCH_WARMUP ?? (quick ? 20 : 100));
/**
 * Counted rounds per side, in blocks of BLOCK alternating between aemp and the relay. The p99
 * of the receipts is the slowest 1 %: on a shared machine a few rounds in which a process
 * waited for a core hold that many receipts, so with 100 rounds one such round decided it.
 * Rounds get shorter as networks get smaller, and a burst of the machine's other work then
 * spans more of them: 600 rounds of 50 nodes took about a second and the p99 ratio of one run
 * ranged from 0.7 to 1.7, run to run. So small networks count more rounds (90,000 / N, at
 * least 600): each network's counted rounds take about as long, and sample as many bursts.
 */
const roundsOf = (nodes: number) =>
  Number(process.env.BENCH_ROUNDS ?? (quick ? 40 : Math.max(600, Math.ceil(90_000 / nodes / 2) * 2)));
/**
 * Rounds per block. Another process's burst on the shared cores lasts some tens of ms, several
 * rounds: in short blocks it falls on both sides alike instead of on one side's block of ten.
 */
const BLOCK = 2;
const DEADLINE_MS = 60_000;
/** BENCH_NODE_FLAGS: further flags of every child process (e.g. --trace-gc), the same on both sides. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);

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
  constructor(nodeFlags: string[] = NODE_FLAGS) {
    this.proc = fork(join(here, 'cluster-node.ts'), [], {
      execArgv: ['--import', 'tsx', '--expose-gc', ...nodeFlags],
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
  /** p50 of the global nodes' own receipts: the first hop (and the second, to other globals). */
  globals_p50_us: number;
  msgs_per_set: number;
  bytes_per_set: number;
  global_cpu_us_per_set: number;
  /** CPU time of all worker processes together per db.set (the receivers and the writer). */
  worker_cpu_us_per_set: number;
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

type Side = 'aemp' | 'relay';
type RoundFigures = Omit<Figures, 'converge_ms' | `node_${string}`>;

/**
 * Closed-loop rounds on both sides, alternating in blocks of BLOCK so that drifting machine
 * speed affects both alike; the warm-up rounds of each side first. Returns each side's figures.
 */
async function rounds(net: Net, nodes: number): Promise<Record<Side, RoundFigures>> {
  const all = [...net.globals, ...net.workers];
  const G = net.globals.length;
  for (const w of net.workers) await w.ask('report', { on: true });
  const sideOf = new Map<number, Side>();
  const acc = {
    aemp: { msgs: 0, bytes: 0, cpuUs: 0, workerCpuUs: 0, allSeen: [] as number[] },
    relay: { msgs: 0, bytes: 0, cpuUs: 0, workerCpuUs: 0, allSeen: [] as number[] },
  };
  let seq = 0;
  const one = async (side: Side): Promise<number> => {
    seq++;
    const [proc, index] = net.where((seq * 7) % Math.min(WRITERS, net.slaves));
    const s = seq;
    // Every worker reports once its nodes saw the round, except one whose only node wrote it.
    const W = net.workers.length;
    const seen = net.workers
      .filter((w, k) => w !== proc || Math.ceil((net.slaves - k) / W) > 1)
      .map((w) => w.event((r) => r.seen === true && r.seq === s, `round ${s} (${side})`));
    const t = performance.now();
    proc.tell(side === 'aemp' ? 'set' : 'relaySet', { index, seq });
    await Promise.all(seen);
    return performance.now() - t;
  };
  for (let i = 0; i < WARMUP; i++) {
    await one('aemp');
    await one('relay');
  }
  const stats = () => Promise.all(all.map((p) => p.ask('stats')));
  const sum = (before: Reply[], after: Reply[], k: string, procs = all.length) =>
    after.slice(0, procs).reduce((s, r, i) => s + (r[k] as number) - (before[i]![k] as number), 0);
  /** Process time of a block: from the end of the counts before it to the start of those after. */
  const cpu = (before: Reply[], after: Reply[], procs = all.length) =>
    after
      .slice(0, procs)
      .reduce((s, r, i) => s + (r.cpuStartUs as number) - (before[i]!.cpuEndUs as number), 0);
  for (let b = 0; b < roundsOf(nodes) / BLOCK; b++) {
    for (const side of (b % 2 ? ['relay', 'aemp'] : ['aemp', 'relay']) as Side[]) {
      const before = await stats();
      for (let i = 0; i < BLOCK; i++) {
        const ms = await one(side);
        sideOf.set(seq, side);
        acc[side].allSeen.push(ms);
      }
      const after = await stats();
      const a = acc[side];
      a.msgs += sum(before, after, side === 'aemp' ? 'msgs' : 'relayMsgs');
      a.bytes += sum(before, after, side === 'aemp' ? 'bytes' : 'relayBytes');
      a.cpuUs += cpu(before, after, G);
      a.workerCpuUs += cpu(before, after) - cpu(before, after, G);
    }
  }
  const profile = process.env.BENCH_PROFILE;
  if (profile) {
    // Each side's rounds once more under the profiler of the first global and the first worker.
    mkdirSync(profile, { recursive: true });
    const profiled = [net.globals[0]!, net.workers[0]!];
    for (const side of ['aemp', 'relay'] as Side[]) {
      for (const p of profiled) await p.ask('profile');
      for (let i = 0; i < roundsOf(nodes); i++) await one(side);
      for (const [i, p] of profiled.entries()) {
        const file = join(profile, `${i ? 'worker' : 'global'}-${side}-n${nodes}-g${G}.cpuprofile`);
        await p.ask('profile', { file });
      }
    }
  }
  for (const w of net.workers) await w.ask('report', { on: false });
  const receipts: Record<Side, number[]> = { aemp: [], relay: [] };
  const atGlobals: Record<Side, number[]> = { aemp: [], relay: [] };
  const dump: [number, number, number][] = [];
  for (const [i, p] of all.entries()) {
    const { samples } = (await p.ask('samples')) as unknown as { samples: [number, number][] };
    if (process.env.BENCH_SAMPLES) for (const [s, us] of samples) dump.push([i, s, us]);
    for (const [s, us] of samples) {
      const side = sideOf.get(s);
      if (!side) continue;
      receipts[side].push(us);
      if (i < G) atGlobals[side].push(us);
    }
  }
  if (process.env.BENCH_SAMPLES) {
    // [process (globals first), round, µs, side] of every receipt.
    const file = `${process.env.BENCH_SAMPLES}-n${nodes}-g${G}.json`;
    writeFileSync(file, JSON.stringify(dump.map(([i, s, us]) => [i, s, us, sideOf.get(s) ?? ''])));
  }
  const out = {} as Record<Side, RoundFigures>;
  for (const side of ['aemp', 'relay'] as Side[]) {
    const r = receipts[side].sort((x, y) => x - y);
    const rounds = sideOf.size / 2;
    if (r.length !== rounds * (nodes - 1))
      throw new Error(`${side}: ${r.length} receipts, expected ${rounds * (nodes - 1)}`);
    const a = acc[side];
    a.allSeen.sort((x, y) => x - y);
    out[side] = {
      set_all_ms: percentile(a.allSeen, 0.5),
      set_p50_us: percentile(r, 0.5),
      set_p99_us: percentile(r, 0.99),
      globals_p50_us: percentile(
        atGlobals[side].sort((x, y) => x - y),
        0.5,
      ),
      msgs_per_set: a.msgs / rounds,
      bytes_per_set: a.bytes / rounds,
      global_cpu_us_per_set: a.cpuUs / G / rounds,
      worker_cpu_us_per_set: a.workerCpuUs / rounds,
    };
  }
  return out;
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
    await Promise.all(workers.map((w) => w.ask('warm')));
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
    const profile = process.env.BENCH_PROFILE;
    const profiled = [globals[0]!, workers[0]!];
    if (profile) for (const p of profiled) await p.ask('profile');
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
    if (profile) {
      mkdirSync(profile, { recursive: true });
      for (const [i, p] of profiled.entries())
        await p.ask('profile', {
          file: join(profile, `${i ? 'worker' : 'global'}-converge-n${nodes}-g${g}.cpuprofile`),
        });
    }
    const mem1 = await memory(workers);
    const masters = await Promise.all(workers.map((w) => w.ask('masters')));

    // ---------------------------------------------------------------- relay
    // Built beside the aemp nodes, which stay up (idle) so that the rounds can alternate.
    const hubs: string[] = [];
    for (const [i, p] of globals.entries()) {
      const { addr } = await p.ask('relayHub', { id: gIds[i] });
      await p.ask('relayMesh', { hubs: [...hubs] });
      hubs.push(addr as string);
    }
    const hubOf = new Map(gIds.map((id, i) => [id, hubs[i]!]));
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
    // Each hub tells its endpoints in the order its global node tells its monitors: which
    // worker process hears first matters on a machine with fewer cores than processes.
    for (const p of globals) {
      const { monitors } = await p.ask('monitors');
      await p.ask('relayOrder', { order: monitors });
    }
    const mem2 = await memory(workers);

    const figures = await rounds(net, nodes);
    const aemp: Figures = {
      converge_ms: convergedAt - readyAt,
      ...figures.aemp,
      node_heap_bytes: (mem1.heap - mem0.heap) / slaves,
      node_rss_bytes: (mem1.rss - mem0.rss) / slaves,
    };
    const relay: Figures = {
      converge_ms: relayConverged - relayReady,
      ...figures.relay,
      node_heap_bytes: (mem2.heap - mem1.heap) / slaves,
      node_rss_bytes: (mem2.rss - mem1.rss) / slaves,
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
  ['globals_p50_us', 'globals saw p50 µs', 0],
  ['msgs_per_set', 'msgs/set', 1],
  ['bytes_per_set', 'bytes/set', 0],
  ['global_cpu_us_per_set', 'global CPU µs/set', 0],
  ['worker_cpu_us_per_set', 'workers CPU µs/set', 0],
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

const perMessage = (rs: typeof results) =>
  (rs.reduce((s, r) => s + r.aemp.bytes_per_set / r.aemp.msgs_per_set, 0) / rs.length).toFixed(1);
/** The fit CPU = a + b·(N/G) for both sides. */
function cpuLine(rs: typeof results, g: number): string {
  const line = (side: 'aemp' | 'relay') => {
    const { a, b } = linearFit(rs.map((r) => [r.nodes / g, r[side].global_cpu_us_per_set]));
    return `${a.toFixed(0)} µs + ${b.toFixed(1)} µs × N/G`;
  };
  return `aemp ${line('aemp')}, relay ${line('relay')}`;
}
const growth: string[] = [];
for (const g of GLOBALS) {
  const rs = results.filter((r) => r.globals === g);
  if (rs.length < 2) continue;
  const growthOf = (k: keyof Figures, side: 'aemp' | 'relay' = 'aemp') =>
    growthText(growthExponent(rs.map((r) => [r.nodes, r[side][k]])));
  growth.push(
    `G=${g}: messages per set ${growthOf('msgs_per_set')} (measured ${rs.map((r) => r.aemp.msgs_per_set.toFixed(1)).join(', ')}; ` +
      `the algorithm: 1 + (G−1) + (N−G) = N: ${rs.map((r) => expectedMessagesPerSet(r.nodes, g)).join(', ')})`,
    `G=${g}: bytes per set ${growthOf('bytes_per_set')} (${perMessage(rs)} bytes per message)`,
    `G=${g}: global CPU per set ${growthOf('global_cpu_us_per_set')} (relay ${growthOf('global_cpu_us_per_set', 'relay')}); ` +
      `the algorithm: a fixed cost plus one send per monitor, ∝ N/G: ${cpuLine(rs, g)}`,
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
if (new Set(results.map((r) => r.nodes)).size > 1) {
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
