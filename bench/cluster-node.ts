/**
 * One node of the cluster benchmark (bench/cluster.ts), driven over IPC:
 *   {cmd:'start', opts, expect}  configure; reply {ready, id, binds, at}; later, once the
 *                                node's `'l` monitor holds `expect` entries: {converged, at}
 *   {cmd:'set', seq}             db.set('lat', OWN_ID, {seq, t: now})
 *   {cmd:'samples'}              reply {samples: [[seq, µs], …]}: for every change of family
 *                                `lat` this node's monitor saw, receipt time − send time
 * The ceiling, the same fan-out with bare sockets (newline-separated "seq time" lines):
 *   {cmd:'rawHub'}               listen; every line received goes to every other connection;
 *                                reply {rawAddr}
 *   {cmd:'rawJoin', addr}        connect to the hub; reply {rawJoined}; lines received are samples
 *   {cmd:'rawSet', seq}          send "seq now" to the hub
 *   {cmd:'rawSamples'}           reply {samples} as for 'samples'
 * Samples stay in the child until asked for, so reporting adds no work while rounds run. Times
 * are wall-clock (`performance.timeOrigin + performance.now()`), comparable between processes
 * of one machine.
 * Exits when the IPC channel closes.
 */
import { connect, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { configure, memoryLogger, type Node } from '../src/index.js';

const send = (m: unknown) => {
  if (process.connected) process.send!(m);
};
const now = () => performance.timeOrigin + performance.now();
process.on('disconnect', () => process.exit(0));

let node: Node | undefined;
const samples: [number, number][] = [];
const rawSamples: [number, number][] = [];
let hubLink: Socket | undefined;

process.on('message', async (raw) => {
  const m = raw as {
    cmd: string;
    opts?: Record<string, unknown>;
    expect?: number;
    seq?: number;
    addr?: string;
  };
  if (m.cmd === 'start') {
    const n = configure({ norc: true, binds: ['127.0.0.1:0'], logger: memoryLogger(), ...m.opts });
    node = n;
    await n.ready;
    send({ ready: true, id: n.id, binds: [...n.binds], at: now() });
    let converged = false;
    n.db.mon$("'l").subscribe((c) => {
      if (!converged && Object.keys(c.entries).length >= m.expect!) {
        converged = true;
        send({ converged: true, at: now() });
      }
    });
    n.db.mon$('lat').subscribe((c) => {
      const at = now();
      for (const k of c.added) record(c.entries[k], at);
      for (const k of c.changed) record(c.entries[k], at);
    });
  } else if (m.cmd === 'set') {
    node!.db.set('lat', node!.id, { seq: m.seq, t: now() });
  } else if (m.cmd === 'samples') {
    send({ samples });
  } else if (m.cmd === 'rawHub') {
    send({ rawAddr: await rawHub() });
  } else if (m.cmd === 'rawJoin') {
    const [host, port] = m.addr!.split(':');
    const s = connect({ host: host!, port: Number(port), noDelay: true }, () => send({ rawJoined: true }));
    hubLink = s;
    lines(s, (line) => {
      const [seq, t] = line.split(' ').map(Number);
      rawSamples.push([seq!, Math.round((now() - t!) * 1000)]);
    });
  } else if (m.cmd === 'rawSet') {
    hubLink!.write(`${m.seq} ${now()}\n`);
  } else if (m.cmd === 'rawSamples') {
    send({ samples: rawSamples });
  }
});

/** A hub that relays every line to every other connection. */
function rawHub(): Promise<string> {
  const peers = new Set<Socket>();
  const server = createServer({ noDelay: true }, (s) => {
    peers.add(s);
    s.on('close', () => peers.delete(s));
    lines(s, (line) => {
      for (const p of peers) if (p !== s) p.write(`${line}\n`);
    });
  });
  return new Promise((resolve) =>
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? `127.0.0.1:${a.port}` : '');
    }),
  );
}

function lines(s: Socket, each: (line: string) => void): void {
  let rest = '';
  s.setEncoding('latin1');
  s.on('error', () => {});
  s.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    for (const line of parts) each(line);
  });
}

function record(v: unknown, at: number): void {
  const { seq, t } = v as { seq: number; t: number };
  samples.push([seq, Math.round((at - t) * 1000)]);
}

send({ forked: true });
