/**
 * The receiving side of the group database, one receipt at a time, in one process: a slave
 * node's connection to its master gets the bytes of one `g_chg2` (one subkey of `lat` set by
 * another node) and the `db.mon$('lat')` subscriber reads it, as the cluster benchmark's
 * ordinary nodes do (bench/cluster-node.ts). Measured: ns of CPU and bytes allocated per
 * receipt, for a family of F entries (the network's size), against the bare relay endpoint's
 * work for the same update (cbor-x decode of the frame, its entries read, the receipt taken).
 *
 *   node --expose-gc --max-semi-space-size=64 --min-semi-space-size=64 --import tsx \
 *     bench/db-receive.ts [--families 8,200] [--n 200000] [--read entries|set|raw|none] [--nodes K]
 *     [--evict MB] [--count K --side aemp|relay]
 *
 * --read: what the subscriber reads — `entries`: each added/changed subkey's value from the
 * change's `entries` (the whole family's snapshot; BENCH_RECEIVE=entries), `get`: the same
 * values through `change.get` (cluster default), `set`: nothing but the subkey lists, `raw`: no db.mon$,
 * a plain g_chg2 handler (as BENCH_RECEIVE=raw), `none`: the subscriber does nothing.
 * The frame is the master's own bytes, captured once and then handed to the slave's connection
 * again and again (the same subkey changes: `changed`, as in the cluster's rounds). With
 * --nodes K, K slaves of one master take turns (each receipt finds the previous one's node
 * state out of the caches, as in a cluster worker hosting 50 nodes); the relay side then has
 * K endpoints' state taking turns as well. Bytes are
 * the heap's growth over a window without a collection ("gc ran" when one fell inside).
 * --count K --side S: no measuring, just K receipts of side S after the setup (each after the
 * walk with --evict; for
 * `bench/receive-cost.ts`, which runs this under cachegrind at two counts: the difference is
 * what the receipts cost).
 * Not part of `npm run bench`.
 */
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { decodeMultiple, Encoder } from 'cbor-x';
import type { DbChange, Node } from '../src/index.js';
import type { Transport, TransportFactory, TransportHandlers } from '../src/testing.js';
import { MemoryNetwork, memoryNode } from '../src/testing.js';
import { noCollectionBetween } from './gc-seen.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const FAMILIES = arg('--families', '8,200').split(',').map(Number);
const N = Number(arg('--n', '200000'));
const READ = arg('--read', 'entries');
/** Slave nodes taking turns at receiving (as the cluster's workers host many: caches go cold). */
const NODES = Number(arg('--nodes', '1'));
/**
 * --evict MB: before each receipt, a walk over MB megabytes (one read per 64-byte line) pushes
 * the caches' contents out, as the other processes of a busy machine do between two receipts;
 * the time is then the median wall time of one receipt alone.
 */
const EVICT = Number(arg('--evict', '0'));
const COUNT = Number(arg('--count', '0'));
const SIDE = arg('--side', 'both');
const lines = new Uint8Array(EVICT * 1024 * 1024);
/** The walk's sum, printed when impossible (so that the walk cannot be optimised away). */
let walked = 0;
function evict(): void {
  for (let i = 0; i < lines.length; i += 64) walked += lines[i]!;
}
const gc = (globalThis as { gc?: () => void }).gc;
const SECRET = 'bench-secret';

/** A transport factory whose dialled transports tell `seen` of each chunk they deliver. */
function tapping(
  inner: TransportFactory,
  seen: (h: TransportHandlers, chunk: Uint8Array) => void,
): TransportFactory {
  return {
    listen: (addr, onAccept) => inner.listen(addr, onAccept),
    dial(addr): Transport {
      const t = inner.dial(addr);
      const open = t.open.bind(t);
      t.open = (handlers) =>
        open({
          data(chunk) {
            seen(handlers, chunk);
            handlers.data(chunk);
          },
          closed: (r) => handlers.closed(r),
        });
      return t;
    },
  };
}

const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 10_000 && !ok(); i++) await new Promise((r) => setImmediate(r));
  if (!ok()) throw new Error(`nothing: ${what}`);
};

type Stamp = { seq: number; t: number };
interface Cost {
  ns: number;
  bytes: number;
}

/** Runs `step` n times: CPU ns per step and heap bytes per step (-1 if a collection ran). */
async function measure(n: number, receive: () => void): Promise<Cost> {
  if (COUNT > 0) {
    for (let i = 0; i < COUNT; i++) {
      if (EVICT > 0) evict();
      receive();
    }
    return { ns: 0, bytes: 0 };
  }
  // With --evict: wall time of each receipt alone (between two walks); the median is taken.
  const times = new Float64Array(n);
  let k = 0;
  const step =
    EVICT > 0
      ? () => {
          evict();
          const t = performance.now();
          receive();
          times[k++ % n] = performance.now() - t;
        }
      : receive;
  for (let i = 0; i < n >> 2; i++) step();
  gc?.();
  for (let i = 0; i < 1000; i++) step();
  const window = Math.min(n, 20_000);
  // Bytes over a short window (no collection inside), time over all n.
  const h0 = getHeapStatistics().used_heap_size;
  const t0 = performance.now();
  for (let i = 0; i < window; i++) step();
  const t1 = performance.now();
  const h1 = getHeapStatistics().used_heap_size;
  k = 0;
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) step();
  const c1 = process.cpuUsage(c0);
  const clean = await noCollectionBetween(t0, t1);
  const ns = EVICT > 0 ? times.sort()[n >> 1]! * 1e6 : ((c1.user + c1.system) * 1000) / n;
  return { ns, bytes: clean ? (h1 - h0) / window : -1 };
}

async function aemp(family: number): Promise<{ cost: Cost; frame: Uint8Array }> {
  const net = new MemoryNetwork();
  const master = memoryNode(net.host(), {
    nodeid: 'm',
    binds: ['10.0.0.1:4040'],
    secret: SECRET,
    services: ['AnyEvent::MP::Global::'],
  });
  const taps: { handlers?: TransportHandlers; last?: Uint8Array }[] = [];
  const slaves = Array.from({ length: NODES }, (_, i) => {
    const tap: (typeof taps)[number] = {};
    taps.push(tap);
    return memoryNode(
      tapping(net.host(), (h, chunk) => {
        tap.handlers = h;
        tap.last = chunk;
      }),
      { nodeid: `s${i}`, binds: [`10.0.1.${i + 1}:4040`], seeds: ['10.0.0.1:4040'], secret: SECRET },
    );
  });
  const nodes: Node[] = [master, ...slaves];
  try {
    await Promise.all(nodes.map((n) => n.ready));
    await until('the slaves to find their master', () => slaves.every((s) => s.db.master === 'm'));
    // The family holds F entries, one of them the writer's.
    for (let i = 1; i < family; i++) master.db.set('lat', `n${i}`, { seq: 0, t: 0 });
    let receipts = 0;
    let sum = 0;
    let synced = 0;
    /** One receipt of subkey `k`: its value read as --read says. */
    const take = (c: DbChange, k: string): void => {
      receipts++;
      if (READ === 'entries') sum += (c.entries[k] as Stamp).seq;
      else if (READ === 'get') sum += (c.get(k) as Stamp).seq;
    };
    for (const slave of slaves) {
      const id = slave.id;
      let first = true;
      slave.db.mon$('lat').subscribe((c) => {
        if (first) {
          first = false;
          synced++;
          return;
        }
        if (READ === 'none') {
          receipts++;
          return;
        }
        // Both lists in place: no array made per receipt (bytes per receipt are measured).
        for (const k of c.added) if (k !== id) take(c, k);
        for (const k of c.changed) if (k !== id) take(c, k);
      });
      if (READ === 'raw') {
        // The g_chg2 itself, as BENCH_RECEIVE=raw: no mirror, no stream.
        const handler = slave.requests.get('g_chg2')!;
        slave.requests.set('g_chg2', (src, args) => {
          if (first) return handler(src, args);
          for (const [k, v] of Object.entries(args[1] as Record<string, Stamp>))
            if (k !== id) {
              receipts++;
              sum += v.seq;
            }
        });
      }
    }
    // The subscribed family's snapshot on every slave, all F entries in it.
    await until('the snapshots', () => synced === NODES);
    await until('the family', () => receipts >= 0);
    const before = receipts;
    for (const t of taps) t.last = undefined;
    master.db.set('lat', 'n1', { seq: 1, t: Date.now() });
    await until('the change', () => receipts >= before + NODES && taps.every((t) => t.last));
    const frame = taps[0]!.last!;
    const handlers = taps.map((t) => t.handlers!);
    let next = 0;
    const cost = await measure(N, () => {
      handlers[next]!.data(frame);
      if (++next === NODES) next = 0;
    });
    if (sum < 0) console.log(sum);
    return { cost, frame };
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
}

/**
 * The relay endpoint's work for the same update (bench/raw-cbor.ts, bench/cluster-node.ts): its
 * channel's decoding of the chunk, the frame's entries read and kept, the receipt taken; K endpoints,
 * each with its own channel state and handler, taking turns.
 */
async function relay(): Promise<Cost> {
  const enc = new Encoder({ useRecords: false });
  const frame = enc.encode(['', 'u', 'lat', { n1: { seq: 1, t: Date.now() } }]);
  let sum = 0;
  const endpoints = Array.from({ length: NODES }, (_, i) => {
    const id = `s${i}`;
    // What the endpoint was told (as the cluster's endpoints keep it): the family's F entries.
    const lat = new Map<string, Stamp>();
    for (let j = 1; j < Math.max(...FAMILIES); j++) lat.set(`n${j}`, { seq: 0, t: 0 });
    const onMsg = (msg: unknown[]) => {
      if (msg[1] === 'u')
        for (const [k, v] of Object.entries(msg[3] as Record<string, Stamp>))
          if (k !== id) {
            lat.set(k, v);
            sum += v.seq;
          }
    };
    const channel: { rest: Buffer } = { rest: Buffer.alloc(0) };
    return (chunk: Buffer) => {
      const buf = channel.rest.length ? Buffer.concat([channel.rest, chunk]) : chunk;
      decodeMultiple(buf, (v) => {
        onMsg(v as unknown[]);
      });
      channel.rest = buf.subarray(buf.length);
    };
  });
  let next = 0;
  const cost = await measure(N, () => {
    endpoints[next]!(frame);
    if (++next === NODES) next = 0;
  });
  if (sum < 0) console.log(sum);
  return cost;
}

const out: Record<string, number> = {};
if (COUNT > 0) {
  if (SIDE === 'relay') await relay();
  else for (const f of FAMILIES) await aemp(f);
  console.log(`${COUNT} receipts (${SIDE})`);
  process.exit(0);
}
const r = await relay();
for (const f of FAMILIES) {
  const { cost, frame } = await aemp(f);
  const b = (c: Cost) => (c.bytes < 0 ? 'gc ran' : `${Math.round(c.bytes)} B`);
  console.log(
    `family of ${String(f).padStart(3)}  read ${READ.padEnd(7)}  aemp ${cost.ns.toFixed(0).padStart(5)} ns ${b(cost).padStart(7)}` +
      `   relay ${r.ns.toFixed(0).padStart(5)} ns ${b(r).padStart(7)}   (frame ${frame.length} B)`,
  );
  out[`db_receive_f${f}_${READ}_ns`] = Math.round(cost.ns);
  out[`db_receive_f${f}_${READ}_bytes`] = Math.round(cost.bytes);
}
if (walked < 0) console.log(walked);
out.ceiling_db_receive_ns = Math.round(r.ns);
out.ceiling_db_receive_bytes = Math.round(r.bytes);
console.log(JSON.stringify(out));
