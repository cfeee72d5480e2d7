/**
 * Cluster benchmark of the global database: 20 node processes on loopback (3 global seeds, 17
 * ordinary nodes seeded with all three), each one a bench/cluster-node.ts child.
 *   converge: time from the last node being ready until every node's `'l` monitor holds all 20
 *             entries (ms)
 *   propagation: `db.set` on one node → the change in `db.mon$` on every other node (µs, median
 *             and p99 over all receipts); one set every ROUND_MS, writers taking turns; each
 *             node keeps its samples until the end, so measuring adds no traffic meanwhile
 *   ceiling_propagation: the same rounds with bare sockets through one relay process (one hop,
 *             where a global database update takes one or two: writer → its master → other
 *             global nodes → their slaves)
 * Prints one JSON line with the figures. Environment: BENCH_NODES (default 20) changes the
 * cluster size; BENCH_DEBUG prints every node's ready and converged times (ms after the last
 * ready) to stderr.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const NODES = Number(process.env.BENCH_NODES ?? 20);
const GLOBALS = 3;
const ROUNDS = quick ? 60 : 300;
/** Pause between two sets (open loop: far above the propagation time, so rounds do not overlap). */
const ROUND_MS = 40;
const DEADLINE_MS = 20_000;
const SECRET = 'bench-secret';

interface Msg {
  forked?: true;
  ready?: true;
  converged?: true;
  id?: string;
  binds?: string[];
  at?: number;
  samples?: [number, number][];
  rawAddr?: string;
  rawJoined?: true;
}

class Child {
  readonly proc: ChildProcess;
  id = '';
  addr = '';
  readyAt = 0;
  convergedAt = 0;
  private readonly listeners = new Set<(m: Msg) => void>();
  constructor() {
    this.proc = fork(join(here, 'cluster-node.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
    this.proc.on('message', (m: Msg) => {
      if (m.converged) this.convergedAt = m.at!;
      for (const l of [...this.listeners]) l(m);
    });
  }
  on(l: (m: Msg) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  next(pred: (m: Msg) => boolean, what: string): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${what}: no answer in ${DEADLINE_MS} ms`)),
        DEADLINE_MS,
      );
      const off = this.on((m) => {
        if (!pred(m)) return;
        clearTimeout(timer);
        off();
        resolve(m);
      });
    });
  }
  async start(opts: Record<string, unknown>): Promise<void> {
    const ready = this.next((m) => m.ready === true, 'start');
    this.proc.send({ cmd: 'start', opts: { secret: SECRET, ...opts }, expect: NODES });
    const m = await ready;
    this.id = m.id!;
    this.addr = m.binds![0]!;
    this.readyAt = m.at!;
  }
}

/**
 * ROUNDS writes, one every ROUND_MS, writers taking turns among children[first…]; then every
 * child's samples (children[0…first-1] receive nothing). Returns the receipts after warm-up.
 */
async function rounds(setCmd: string, samplesCmd: string, first: number): Promise<number[]> {
  const writers = children.slice(first);
  for (let seq = 1; seq <= ROUNDS; seq++) {
    writers[seq % writers.length]!.proc.send({ cmd: setCmd, seq });
    await new Promise((resolve) => setTimeout(resolve, ROUND_MS));
  }
  const out: number[] = [];
  const reports = await Promise.all(
    writers.map((c) => {
      const got = c.next((m) => m.samples !== undefined, samplesCmd);
      c.proc.send({ cmd: samplesCmd });
      return got;
    }),
  );
  for (const [i, r] of reports.entries()) {
    const seen = new Map(r.samples!.map(([seq, us]) => [seq, us]));
    for (let seq = 1; seq <= ROUNDS; seq++) {
      // Its own write, and the first rounds, which warm up every path (and may run while the
      // relay still accepts its connections).
      if (seq % writers.length === i || seq <= NODES) continue;
      const us = seen.get(seq);
      if (us === undefined) throw new Error(`${writers[i]!.id} never saw round ${seq} (${setCmd})`);
      out.push(us);
    }
  }
  return out.sort((a, b) => a - b);
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;
}

const children = Array.from({ length: NODES }, () => new Child());
try {
  await Promise.all(children.map((c) => c.next((m) => m.forked === true, 'fork')));
  const globals = children.slice(0, GLOBALS);
  const service = { services: ['AnyEvent::MP::Global::'] };
  for (const [i, g] of globals.entries()) {
    await g.start({ nodeid: `g${i + 1}/`, seeds: globals.slice(0, i).map((p) => p.addr), ...service });
  }
  const seeds = globals.map((g) => g.addr);
  await Promise.all(children.slice(GLOBALS).map((c, i) => c.start({ nodeid: `n${i + 1}/`, seeds })));
  await Promise.all(
    children.map((c) => (c.convergedAt ? null : c.next((m) => m.converged === true, 'converge'))),
  );
  const lastReady = Math.max(...children.map((c) => c.readyAt));
  const converged = Math.max(...children.map((c) => c.convergedAt));
  if (process.env.BENCH_DEBUG)
    console.error(
      children.map((c) => [c.id, Math.round(c.readyAt - lastReady), Math.round(c.convergedAt - lastReady)]),
    );

  const samples = await rounds('set', 'samples', 0);

  // The ceiling: children[0] relays for everyone else.
  const hub = children[0]!;
  const hubAt = hub.next((m) => m.rawAddr !== undefined, 'raw hub');
  hub.proc.send({ cmd: 'rawHub' });
  const { rawAddr } = await hubAt;
  await Promise.all(
    children.slice(1).map((c) => {
      const joined = c.next((m) => m.rawJoined === true, 'raw join');
      c.proc.send({ cmd: 'rawJoin', addr: rawAddr });
      return joined;
    }),
  );
  const ceiling = await rounds('rawSet', 'rawSamples', 1);
  console.log(
    JSON.stringify({
      cluster_converge_ms: Math.round((converged - lastReady) * 10) / 10,
      db_propagation_p50_us: percentile(samples, 0.5),
      db_propagation_p99_us: percentile(samples, 0.99),
      ceiling_db_propagation_p50_us: percentile(ceiling, 0.5),
      ceiling_db_propagation_p99_us: percentile(ceiling, 0.99),
    }),
  );
} finally {
  for (const c of children) c.proc.kill('SIGKILL');
}
