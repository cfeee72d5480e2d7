/**
 * Heap per established connection of the built code (run `npm run build` first): a server
 * process running dist/ (an aemp node without seeds, secret auth) accepts N connections whose
 * handshakes a client process completes, and reports its heap used after two full collections,
 * before and after, divided by N. The ceiling is N bare `net` sockets accepted by the same
 * process. `--snapshot <file>` also writes a heap snapshot of the server with all connections up.
 * Prints one JSON line.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CONNS = process.argv.includes('--quick') ? 300 : 1000;
const snapshotAt = process.argv.indexOf('--snapshot');
const child = join(here, 'conn-heap-child.mjs');
if (!existsSync(join(here, '../dist/index.js'))) {
  console.error('conn-heap: no dist/ (run `npm run build` first); skipped');
  process.stdout.write('{}\n');
  process.exit(0);
}

interface Measure {
  heap: number;
  up: number;
  rawUp: number;
}

const server = fork(child, ['server'], { execArgv: ['--expose-gc'], stdio: 'inherit' });
const info = await new Promise<{ addr: string; raw: number }>((r) =>
  server.once('message', (m) => r(m as never)),
);
const ask = (cmd: Record<string, unknown> = { cmd: 'measure' }) =>
  new Promise<Measure & { file?: string }>((r) => {
    server.once('message', (m) => r(m as never));
    server.send(cmd);
  });
/** Measures once the server counts `raw` bare sockets (a client's connect comes first). */
const askWhen = async (raw: number) => {
  for (let i = 0; i < 1000; i++) {
    const m = await ask();
    if (m.rawUp === raw) return m;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`the server never counted ${raw} bare sockets`);
};

const result: Record<string, number> = {};
// The bare sockets first (their memory is reused by what follows, not the other way round).
const base = await askWhen(0);
const socks = await Promise.all(
  Array.from({ length: CONNS }, () => {
    const s = connect({ host: '127.0.0.1', port: info.raw });
    s.on('error', () => {});
    return new Promise<typeof s>((r) => s.once('connect', () => r(s)));
  }),
);
const full = await askWhen(CONNS);
result.ceiling_conn_heap_dist_bytes = (full.heap - base.heap) / CONNS;
for (const s of socks) s.destroy();
await askWhen(0);

const before = await ask();
const clients = fork(child, ['client', info.addr, String(CONNS)], { stdio: 'inherit' });
const up = await new Promise<number>((r) =>
  clients.once('message', (m) => r((m as { established: number }).established)),
);
if (up !== CONNS) throw new Error(`only ${up} of ${CONNS} handshakes completed`);
let after = await ask();
for (let i = 0; i < 1000 && after.up < CONNS; i++) {
  await new Promise((r) => setImmediate(r));
  after = await ask();
}
if (after.up !== CONNS) throw new Error(`the server counts ${after.up} of ${CONNS} nodes up`);
result.conn_heap_dist_bytes = (after.heap - before.heap) / CONNS;
if (snapshotAt > 0) {
  const file = process.argv[snapshotAt + 1] ?? 'conn-heap.heapsnapshot';
  const { file: written } = await ask({ cmd: 'snapshot', file });
  console.log(`heap snapshot: ${written}`);
}
clients.kill();
server.kill();
process.stdout.write(`${JSON.stringify(result)}\n`);
