/**
 * What an ordinary node of the cluster benchmark holds in the heap: one global node and S
 * ordinary nodes in this process over loopback TCP, all monitoring `'l` and `lat` (as
 * bench/cluster.ts), then a heap snapshot; prints the heap per ordinary node and the object
 * kinds (constructor names) that grew most, per node. Not part of `npm run bench`.
 *
 *   node --expose-gc --import tsx bench/db-node-heap.ts [--slaves 40] [--top 30] [--save FILE] [--logger none]
 * --save writes the heap snapshot at the end into FILE (for DevTools' Memory tab).
 */
import { getHeapSnapshot, writeHeapSnapshot } from 'node:v8';
import { configure, memoryLogger, type Node } from '../src/index.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const SLAVES = Number(arg('--slaves', '40'));
const TOP = Number(arg('--top', '30'));
const gc = (globalThis as { gc?: () => void }).gc;
const SECRET = 'bench-secret';
/** --logger none: the nodes' log lines are dropped instead of kept (memoryLogger). */
const logger = () => (arg('--logger', 'memory') === 'none' ? { log() {} } : memoryLogger());

/** Self sizes and counts by constructor name (or node type) of a heap snapshot. */
async function census(): Promise<Map<string, { size: number; count: number }>> {
  gc?.();
  gc?.();
  const chunks: Buffer[] = [];
  for await (const c of getHeapSnapshot()) chunks.push(c as Buffer);
  const snap = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((x) => f.indexOf(x)) as [
    number,
    number,
    number,
  ];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += f.length) {
    const type = types[snap.nodes[i + iType]!]!;
    const name =
      type === 'object' || type === 'closure' ? snap.strings[snap.nodes[i + iName]!]! : `(${type})`;
    const key = type === 'closure' ? `closure ${name}` : name;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += snap.nodes[i + iSize]!;
    e.count++;
    out.set(key, e);
  }
  return out;
}

const converged = (n: Node, expect: number) =>
  new Promise<void>((resolve) => {
    const known = new Set<string>();
    n.db.mon$("'l").subscribe((c) => {
      for (const k of c.added) known.add(k);
      for (const k of c.deleted) known.delete(k);
      if (known.size >= expect) resolve();
    });
    n.db.mon$('lat').subscribe(() => {});
  });

const g = configure({
  nodeid: 'g1/',
  norc: true,
  binds: ['127.0.0.1:0'],
  secret: SECRET,
  logger: memoryLogger(),
  services: ['AnyEvent::MP::Global::'],
  max_pending_handshakes_per_address: 256,
});
await g.ready;
const seeds = [g.binds[0]!];
// Code loaded and compiled before the first census: one node started and closed.
const warm = configure({
  nodeid: 'warm/',
  norc: true,
  binds: ['127.0.0.1:0'],
  seeds,
  secret: SECRET,
  logger: logger(),
});
await warm.ready;
await warm.close();
const before = await census();
gc?.();
gc?.();
const h0 = process.memoryUsage().heapUsed;
const nodes = Array.from({ length: SLAVES }, (_, i) =>
  configure({
    nodeid: `n${i + 1}/`,
    norc: true,
    binds: ['127.0.0.1:0'],
    seeds,
    secret: SECRET,
    logger: logger(),
  }),
);
await Promise.all(nodes.map((n) => n.ready));
await Promise.all([g, ...nodes].map((n) => converged(n, SLAVES + 1)));
// A few rounds of sets, as the benchmark's writers do.
for (let i = 0; i < 8; i++)
  nodes[i % nodes.length]!.db.set('lat', nodes[i % nodes.length]!.id, { seq: i, t: 0 });
await new Promise((r) => setTimeout(r, 200));
gc?.();
gc?.();
const h1 = process.memoryUsage().heapUsed;
const after = await census();
console.log(
  `heap per ordinary node (with its share of the global node): ${((h1 - h0) / SLAVES / 1024).toFixed(1)} KB`,
);
const rows = [...after]
  .map(([k, a]) => {
    const b = before.get(k) ?? { size: 0, count: 0 };
    return { k, size: (a.size - b.size) / SLAVES, count: (a.count - b.count) / SLAVES };
  })
  .sort((x, y) => y.size - x.size)
  .slice(0, TOP);
for (const r of rows)
  console.log(`${(r.size / 1024).toFixed(2).padStart(8)} KB  ${r.count.toFixed(1).padStart(7)}×  ${r.k}`);
const save = arg('--save', '');
if (save) writeHeapSnapshot(save);
await Promise.all([...nodes, g].map((n) => n.close()));
