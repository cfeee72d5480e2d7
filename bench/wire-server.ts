/**
 * Server process of the wire benchmarks: an aemp node with a counting sink port and an echo
 * port, a bare `net` + cbor-x server doing the same for the ceiling, and for the bytes-only
 * ceiling a server that counts CBOR items without decoding them and, at a lone `undefined`
 * item (0xf7), answers the count so far as 4 bytes. Reports the addresses to the parent over
 * IPC, answers its CPU time when asked (`'cpu'`) and runs until killed.
 */
import { createServer } from 'node:net';
import { configure, memoryLogger } from '../src/index.js';
import { itemScanner, rawChannel } from './raw-cbor.js';

const node = configure({
  nodeid: 'bench-server/',
  norc: true,
  binds: ['127.0.0.1:0'],
  secret: 'bench-secret',
  logger: memoryLogger(),
});
await node.ready;

let count = 0;
const sink = node.port();
node.rcv(
  sink,
  'ping',
  () => {
    count++;
  },
  'done',
  (expected: number, reply: string) => {
    node.snd(reply, count === expected ? expected : count);
    count = 0;
  },
);
const echo = node.port((...m: unknown[]) => node.snd(m[m.length - 1] as string, ...m.slice(0, -1)));

const raw = createServer({ noDelay: true }, (sock) => {
  let rawCount = 0;
  const send = rawChannel(sock, (m) => {
    if (m[0] === 'sink') {
      if (m[1] === 'ping') rawCount++;
      else {
        send(['reply', rawCount]);
        rawCount = 0;
      }
    } else send([m[m.length - 1], ...m.slice(1, -1)]);
  });
  sock.on('error', () => {});
});
await new Promise<void>((r) => raw.listen({ host: '127.0.0.1', port: 0 }, () => r()));
const rawAddr = raw.address();

const scan = createServer({ noDelay: true }, (sock) => {
  let items = 0;
  sock.on(
    'data',
    itemScanner((first) => {
      if (first !== 0xf7) {
        items++;
        return;
      }
      const answer = Buffer.alloc(4);
      answer.writeUInt32BE(items);
      sock.write(answer);
      items = 0;
    }),
  );
  sock.on('error', () => {});
});
await new Promise<void>((r) => scan.listen({ host: '127.0.0.1', port: 0 }, () => r()));
const scanAddr = scan.address();

process.send!({
  aemp: { node: node.id, sink, echo, addr: node.binds[0] },
  raw: { port: typeof rawAddr === 'object' && rawAddr ? rawAddr.port : 0 },
  scan: { port: typeof scanAddr === 'object' && scanAddr ? scanAddr.port : 0 },
});
// The parent asks for this process's CPU time (microseconds, user + system) around a window.
process.on('message', (m) => {
  if (m === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send!({ cpu: user + system });
  }
});
process.on('disconnect', () => process.exit(0));
