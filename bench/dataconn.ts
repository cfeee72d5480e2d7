/**
 * Data connection throughput: bytes pushed through `node.dataConn$` between two nodes on
 * loopback (authenticated, raw after the handshake) against a bare TCP socket pair moving the
 * same bytes in the same process and run. Prints one JSON line:
 * `{ dataconn_mb_s, ceiling_dataconn_mb_s }` (MB = 10^6 bytes).
 */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { configure } from '../src/index.js';

const quick = process.argv.includes('--quick');
const TOTAL = (quick ? 64 : 512) * 1024 * 1024;
const CHUNK = Buffer.alloc(256 * 1024, 0x61);
const ROUNDS = quick ? 2 : 3;
const SECRET = 'bench-secret-bench-secret-bench-secret-42';

/** Writes TOTAL bytes into `w` honouring backpressure; resolves when `r` has read them all. */
async function move(w: Duplex, r: Duplex): Promise<number> {
  const t0 = performance.now();
  let got = 0;
  const done = new Promise<void>((resolve) => {
    r.on('data', (c: Buffer) => {
      got += c.length;
      if (got >= TOTAL) resolve();
    });
  });
  let sent = 0;
  while (sent < TOTAL) {
    sent += CHUNK.length;
    if (!w.write(CHUNK)) await once(w, 'drain');
  }
  await done;
  r.removeAllListeners('data');
  return TOTAL / 1e6 / ((performance.now() - t0) / 1000);
}

async function barePair(): Promise<[Socket, Socket, () => void]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address() as { port: number };
  const accepted = once(server, 'connection');
  const c = connect(addr.port, '127.0.0.1');
  c.setNoDelay(true);
  await once(c, 'connect');
  const [s] = (await accepted) as [Socket];
  s.setNoDelay(true);
  return [c, s, () => server.close()];
}

async function main(): Promise<void> {
  const quiet = { log() {} };
  const b = configure({
    nodeid: 'bench-dc-b',
    norc: true,
    secret: SECRET,
    binds: ['127.0.0.1:0'],
    logger: quiet,
  });
  await b.ready;
  const a = configure({
    nodeid: 'bench-dc-a',
    norc: true,
    secret: SECRET,
    binds: ['127.0.0.1:0'],
    seeds: [b.binds[0]!],
    logger: quiet,
  });
  await a.ready;
  let far: Duplex | undefined;
  b.register('Bench::sink', (s: Duplex) => {
    far = s;
  });
  const local = await new Promise<Duplex>((resolve, reject) => {
    a.dataConn$('bench-dc-b', { initFunc: 'Bench::sink', timeout: 10 }).subscribe({
      next: resolve,
      error: reject,
    });
  });
  if (!far) throw new Error('no far end');
  const [c, s, closeServer] = await barePair();
  let dc = 0;
  let bare = 0;
  // Alternate, best of each: both see the same machine state.
  for (let i = 0; i < ROUNDS; i++) {
    bare = Math.max(bare, await move(c, s));
    dc = Math.max(dc, await move(local, far));
  }
  c.destroy();
  s.destroy();
  closeServer();
  local.destroy();
  await Promise.all([a.close(), b.close()]);
  console.log(JSON.stringify({ dataconn_mb_s: dc, ceiling_dataconn_mb_s: bare }));
}

void main();
