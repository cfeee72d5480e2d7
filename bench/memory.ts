/**
 * Memory benchmark (run with --expose-gc): bytes per idle local port (100k ports, heap and RSS
 * delta) and per connection (a server process accepts N connections from N client nodes and
 * reports its own RSS/heap delta). The ceiling for ports is a plain Map of 100k small objects;
 * for connections, N bare `net` sockets with the same server-side bookkeeping.
 * Prints one JSON line.
 */
import { fork } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filter, firstValueFrom } from 'rxjs';
import { configure, memoryLogger, type Node } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const role = process.argv[2];
const PORTS = quick ? 20_000 : 100_000;
const CONNS = quick ? 50 : 200;

function settle(): { rss: number; heap: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

if (role === 'server') {
  // The server of the connection measurement: an aemp node or a bare net server.
  const node = configure({
    nodeid: 'mem-server/',
    norc: true,
    binds: ['127.0.0.1:0'],
    secret: 'm',
    logger: memoryLogger(),
  });
  await node.ready;
  let rawUp = 0;
  const raw = createServer((s) => {
    rawUp++;
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => rawUp--);
  });
  await new Promise<void>((r) => raw.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  process.send!({ addr: node.binds[0], raw: (raw.address() as { port: number }).port });
  process.on('message', (m: { cmd: string; n?: number }) => {
    if (m.cmd === 'measure') process.send!({ ...settle(), up: node.upNodes().length, rawUp });
  });
  process.on('disconnect', () => process.exit(0));
} else {
  const result: Record<string, number> = {};

  // Idle local ports.
  {
    const node: Node = configure({ nodeid: 'mem-ports/', norc: true, binds: [], logger: memoryLogger() });
    const before = settle();
    const ids: string[] = [];
    for (let i = 0; i < PORTS; i++) ids.push(node.port(() => {}));
    const after = settle();
    result.port_heap_bytes = (after.heap - before.heap) / PORTS;
    result.port_rss_bytes = (after.rss - before.rss) / PORTS;
    if (ids.length !== PORTS) throw new Error('ports missing');
    await node.close();
    const base = settle();
    const table = new Map<string, { id: string; handler: () => void }>();
    for (let i = 0; i < PORTS; i++) {
      const id = `mem-ports/x#${i.toString(36)}`;
      table.set(id, { id, handler: () => {} });
    }
    const full = settle();
    result.ceiling_port_heap_bytes = (full.heap - base.heap) / PORTS;
    result.ceiling_port_rss_bytes = (full.rss - base.rss) / PORTS;
    table.clear();
  }

  // Connections: the server process measures itself.
  {
    const server = fork(join(here, 'memory.ts'), ['server'], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: 'inherit',
    });
    const info = await new Promise<{ addr: string; raw: number }>((r) =>
      server.once('message', (m) => r(m as never)),
    );
    const ask = () =>
      new Promise<{ rss: number; heap: number; up: number; rawUp: number }>((r) => {
        server.once('message', (m) => r(m as never));
        server.send({ cmd: 'measure' });
      });
    /** Measures once the server has accepted `n` bare sockets (a client's connect comes first). */
    const askWhenAccepted = async (n: number) => {
      for (let i = 0; i < 1000; i++) {
        const m = await ask();
        if (m.rawUp === n) return m;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`the server never accepted ${n} bare sockets`);
    };
    // The bare sockets first: RSS freed by the other side's measurement would be reused without
    // showing in the delta.
    const base = await askWhenAccepted(0);
    const socks = await Promise.all(
      Array.from({ length: CONNS }, () => {
        const s = connect({ host: '127.0.0.1', port: info.raw });
        s.on('error', () => {});
        return new Promise<typeof s>((r) => s.once('connect', () => r(s)));
      }),
    );
    const full = await askWhenAccepted(CONNS);
    result.ceiling_conn_rss_bytes = (full.rss - base.rss) / CONNS;
    result.ceiling_conn_heap_bytes = (full.heap - base.heap) / CONNS;
    for (const s of socks) s.destroy();
    await askWhenAccepted(0);
    const before = await ask();
    const clients: Node[] = [];
    for (let i = 0; i < CONNS; i++) {
      const c = configure({
        nodeid: `mem-client-${i}/`,
        norc: true,
        binds: [],
        seeds: [info.addr],
        secret: 'm',
        logger: memoryLogger(),
      });
      clients.push(c);
    }
    await Promise.all(clients.map((c) => firstValueFrom(c.nodes$.pipe(filter((e) => e.type === 'up')))));
    const after = await ask();
    if (after.up !== CONNS) throw new Error(`only ${after.up} of ${CONNS} connections up`);
    result.conn_rss_bytes = (after.rss - before.rss) / CONNS;
    result.conn_heap_bytes = (after.heap - before.heap) / CONNS;
    await Promise.all(clients.map((c) => c.close()));

    server.kill();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
