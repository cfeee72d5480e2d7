/**
 * One node of the cluster benchmark (bench/cluster.ts), driven over IPC:
 *   {cmd:'start', opts, expect}  configure; reply {ready, id, binds, at}; later, once the
 *                                node's `'l` monitor holds `expect` entries: {converged, at}
 *   {cmd:'set', seq}             db.set('lat', OWN_ID, {seq, t: now})
 *   {cmd:'samples'}              reply {samples: [[seq, µs], …]}: for every change of family
 *                                `lat` this node's monitor saw, receipt time − send time
 * Samples stay in the child until asked for, so reporting adds no work while rounds run. Times
 * are wall-clock (`performance.timeOrigin + performance.now()`), comparable between processes
 * of one machine.
 * Exits when the IPC channel closes.
 */
import { performance } from 'node:perf_hooks';
import { configure, memoryLogger, type Node } from '../src/index.js';

const send = (m: unknown) => {
  if (process.connected) process.send!(m);
};
const now = () => performance.timeOrigin + performance.now();
process.on('disconnect', () => process.exit(0));

let node: Node | undefined;
const samples: [number, number][] = [];

process.on('message', async (raw) => {
  const m = raw as { cmd: string; opts?: Record<string, unknown>; expect?: number; seq?: number };
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
  }
});

function record(v: unknown, at: number): void {
  const { seq, t } = v as { seq: number; t: number };
  samples.push([seq, Math.round((at - t) * 1000)]);
}

send({ forked: true });
