// The two child processes of bench/conn-heap.ts, plain JavaScript on the built code (dist/),
// so the figures are those of `node` running the package, not of a TypeScript loader.
//
//   server  an aemp node (no seeds, secret auth) and a bare net server; answers `measure`
//           with its heap after two full collections and the counts of connections up
//   client  `n` raw AEMP handshakes to an address (dialling side, heartbeats advertised);
//           reports `established` once all authenticated, then reads and drops all bytes
import { connect, createServer } from 'node:net';
import { configure } from '../dist/index.js';
import { GREETING_KEY } from '../dist/protocol/constants.js';
import { createHandshake } from '../dist/protocol/handshake.js';

const [role, arg1, arg2] = process.argv.slice(2);
const SECRET = 'conn-heap';

function settle() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

if (role === 'server') {
  const node = configure({
    nodeid: 'heap-server/',
    norc: true,
    binds: ['127.0.0.1:0'],
    secret: SECRET,
    // Log lines are not connection state: none are kept.
    logger: { log() {} },
  });
  await node.ready;
  let rawUp = 0;
  const raw = createServer((s) => {
    rawUp++;
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => rawUp--);
  });
  await new Promise((r) => raw.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  process.send({ addr: node.binds[0], raw: raw.address().port });
  process.on('message', (m) => {
    if (m.cmd === 'measure') process.send({ heap: settle(), up: node.upNodes().length, rawUp });
    if (m.cmd === 'snapshot') {
      settle();
      import('node:v8').then((v8) => process.send({ file: v8.writeHeapSnapshot(m.file) }));
    }
  });
  process.on('disconnect', () => process.exit(0));
} else if (role === 'client') {
  const n = Number(arg2);
  const [host, port] = [arg1.slice(0, arg1.lastIndexOf(':')), Number(arg1.slice(arg1.lastIndexOf(':') + 1))];
  let up = 0;
  const sockets = [];
  const one = (i) =>
    new Promise((resolve, reject) => {
      const hs = createHandshake({
        nodeId: `heap-client-${i}/`,
        secret: SECRET,
        role: 'dialled',
        extraKeys: { [GREETING_KEY.TIEBREAK]: '1', [GREETING_KEY.HEARTBEAT]: '60' },
      });
      const s = connect({ host, port });
      sockets.push(s);
      s.on('error', reject);
      s.write(hs.start());
      let done = false;
      s.on('data', (chunk) => {
        if (done) return;
        for (const step of hs.feed(chunk)) {
          if (step.kind === 'send') s.write(step.text);
          else if (step.kind === 'fail') reject(step.error);
          else if (step.kind === 'done') {
            done = true;
            up++;
            resolve();
          }
        }
      });
    });
  // A few at a time: the server's pending-handshake limits stay out of the picture.
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) => one(i + k)));
  }
  process.send({ established: up });
  process.on('disconnect', () => {
    for (const s of sockets) s.destroy();
    process.exit(0);
  });
}
