/**
 * One process of the cluster benchmark (bench/cluster.ts): hosts a share of the network's
 * aemp nodes (one global node, or many ordinary ones), later the same share of the bare relay.
 * Driven over IPC: requests `{rid, cmd, …}` are answered `{rid, …}`; events arrive unasked.
 *
 * aemp:
 *   start {nodes: [{nodeid, seeds, global}], expect}  configure the nodes; every node monitors
 *        `'l` and `lat`; answers {ids, binds, readyAt} (readyAt: when the last one listened);
 *        event {converged, at} once every node's `'l` holds `expect` entries
 *   warm                    runs a global node and a slave until the slave saw a change of
 *                           `lat`, then closes them (the code of a node's life compiled and
 *                           loaded, so that memory measured afterwards counts the nodes more
 *                           than the code)
 *   set {index, seq}        db.set('lat', <node's id>, {seq, t: now}) on that node
 *   masters                 {masters: [master of each node]}
 *   closeNodes              closes them all
 * The relay (the same fan-out with bare sockets and cbor-x, decoded and re-encoded at each hop):
 *   relayHub {id}           a hub in place of a global node: listens; answers {addr}
 *   relayMesh {hubs}        dials these hubs (the full mesh: each pair once); answers when up
 *   relayJoin {nodes: [{id, hub}], expect}  one endpoint per node, each connected to its hub
 *        (the aemp node's master); answers {readyAt}; event {converged, at} as for start
 *   relaySet {index, seq}   as set, through the relay
 *   monitors                (a global node) {monitors: the nodes monitoring `lat`, in the order
 *                           the node tells them of a change}
 *   relayOrder {order}      the hub tells its endpoints of an update in this order (node IDs)
 * Both:
 *   report {on}             when on, event {seen, seq} once every node here (but the writer)
 *                           saw round seq (global processes stay silent: no IPC in their CPU)
 *   stats                   {msgs, bytes, relayMsgs, relayBytes, cpuStartUs, cpuEndUs}:
 *                           messages and bytes this process's nodes and relay sockets wrote
 *                           so far, CPU time of the process before and after counting them
 *   mem                     {rss, heap} after two collections (run with --expose-gc)
 *   profile {file?}         starts the CPU profiler; with `file`, stops it and writes the
 *                           profile there
 *   samples                 {samples: [[seq, µs], …]}: every receipt but the writer's own,
 *                           receipt time − send time, since the last `samples`
 * Times are wall-clock (`performance.timeOrigin + performance.now()`), comparable between
 * processes of one machine. Exits when the IPC channel closes.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  configure,
  type DbChange,
  type LogLevel,
  memoryLogger,
  type Node,
  stderrLogger,
} from '../src/index.js';
import { rawChannel, shareFrame, type WriteCounts } from './raw-cbor.js';

const send = (m: unknown) => {
  if (process.connected) process.send!(m);
};
const now = () => performance.timeOrigin + performance.now();
process.on('disconnect', () => process.exit(0));

type Req = {
  rid: number;
  cmd: string;
  nodes?: { nodeid: string; seeds: string[]; global: boolean; id: string; hub: string }[];
  expect?: number;
  index?: number;
  seq?: number;
  id?: string;
  hubs?: string[];
  on?: boolean;
  file?: string;
  order?: string[];
};

const SECRET = 'bench-secret';
/**
 * BENCH_RECEIVE: how ordinary aemp nodes take a `lat` change. Unset: `db.mon$` and each changed
 * subkey's value through `change.get` (what a program reading the changes does, as the relay's
 * endpoints read the update's values); 'entries': the values from the change's `entries`, the
 * whole family's snapshot (O(family) per change); 'set': `db.mon$`, but the values from the
 * message; 'raw': a plain `g_chg2` handler instead of `db.mon$` (what the relay's endpoints
 * do). The differences are the costs of the snapshot and of the whole `db.mon$` layer.
 */
const RECEIVE = process.env.BENCH_RECEIVE;
type Stamp = { seq: number; t: number };
let nodes: Node[] = [];
/** IDs of the nodes (or endpoints) hosted here. */
let ids: string[] = [];
/**
 * Receipts since the last `samples` request: round and µs in growing typed arrays. A pair
 * allocated per receipt (and kept) made V8 tenure its allocation site after a while, which threw
 * away the optimised code of every receive callback that inlined this: both sides recompiled
 * the callbacks (several ms each on a helper thread) in the middle of the counted rounds.
 */
const samples = { seq: new Float64Array(1 << 16), us: new Float64Array(1 << 16), length: 0 };
function addSample(seq: number, us: number): void {
  if (samples.length === samples.seq.length) {
    const grow = (a: Float64Array) => {
      const b = new Float64Array(a.length * 2);
      b.set(a);
      return b;
    };
    samples.seq = grow(samples.seq);
    samples.us = grow(samples.us);
  }
  samples.seq[samples.length] = seq;
  samples.us[samples.length++] = us;
}
/** The receipts so far as [seq, µs] pairs; the record starts again empty. */
function takeSamples(): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < samples.length; i++) out.push([samples.seq[i]!, samples.us[i]!]);
  samples.length = 0;
  return out;
}
let reporting = false;
/** Round → receipts here so far. */
const seenCount = new Map<number, number>();
const relayCounts: WriteCounts = { messages: 0, bytes: 0 };
const relaySends: ((m: unknown[]) => void)[] = [];
const relaySockets: Socket[] = [];
let relayServer: Server | undefined;
let profiler: Session | undefined;

/** A receipt of round `seq`, written by `writer`, at `at`, sent at `t`. */
function receipt(writer: string, seq: number, t: number, at: number): void {
  addSample(seq, Math.round((at - t) * 1000));
  if (!reporting) return;
  const n = (seenCount.get(seq) ?? 0) + 1;
  seenCount.set(seq, n);
  if (n === ids.length - (ids.includes(writer) ? 1 : 0)) {
    seenCount.delete(seq);
    send({ seen: true, seq });
  }
}

/** Calls `done(at)` with the time the last of `count` members reached its goal. */
function allOf(count: number, done: (at: number) => void): () => void {
  let left = count;
  return () => {
    if (--left === 0) done(now());
  };
}

async function handle(m: Req): Promise<Record<string, unknown>> {
  switch (m.cmd) {
    case 'start': {
      const converged = allOf(m.nodes!.length, (at) => send({ converged: true, at }));
      nodes = m.nodes!.map((d) =>
        configure({
          nodeid: d.nodeid,
          norc: true,
          binds: ['127.0.0.1:0'],
          seeds: d.seeds,
          secret: SECRET,
          // BENCH_LOG=<level>: the nodes' log lines up to that level on stderr.
          logger: process.env.BENCH_LOG
            ? stderrLogger(Number(process.env.BENCH_LOG) as LogLevel, `${d.nodeid} `)
            : memoryLogger(),
          // All nodes dial from 127.0.0.1: a global node would refuse joins beyond the
          // per-address handshake cap (64), which N nodes on N hosts never reach. Only the
          // node-wide cap (256) applies here, as it would there.
          ...(d.global
            ? { services: ['AnyEvent::MP::Global::'], max_pending_handshakes_per_address: 256 }
            : {}),
        }),
      );
      await Promise.all(nodes.map((n) => n.ready));
      const readyAt = now();
      ids = nodes.map((n) => n.id);
      for (const n of nodes) {
        // Counted from the changes, as the relay's endpoints count their node tables.
        const known = new Set<string>();
        let done = false;
        n.db.mon$("'l").subscribe((c) => {
          if (done) return;
          for (const k of c.added) known.add(k);
          for (const k of c.deleted) known.delete(k);
          if (known.size >= m.expect!) {
            done = true;
            converged();
          }
        });
        if (RECEIVE === 'raw' && !n.db.isGlobal) {
          // The g_chg2 itself, as the relay's endpoints read their updates: no mirror, no stream.
          const handler = n.requests.get('g_chg2')!;
          n.requests.set('g_chg2', (src, args) => {
            if (args[0] !== 'lat') return handler(src, args);
            const at = now();
            for (const [k, v] of Object.entries(args[1] as Record<string, Stamp>))
              if (k !== n.id) receipt(k, v.seq, v.t, at);
          });
        }
        // 'set': the values from the g_chg2's SET, the change from db.mon$ (entries never read).
        let lastSet: Record<string, Stamp> = {};
        if (RECEIVE === 'set') {
          const handler = n.requests.get('g_chg2')!;
          n.requests.set('g_chg2', (src, args) => {
            lastSet = args[1] as Record<string, Stamp>;
            handler(src, args);
          });
        }
        const value = (c: DbChange, k: string) =>
          (RECEIVE === 'set' ? lastSet[k] : RECEIVE === 'entries' ? c.entries[k] : c.get(k)) as Stamp;
        n.db.mon$('lat').subscribe((c) => {
          const at = now();
          // Both lists in place (no array made per change), as the relay reads its update.
          for (let i = 0; i < c.added.length + c.changed.length; i++) {
            const k = i < c.added.length ? c.added[i]! : c.changed[i - c.added.length]!;
            if (k === n.id) continue;
            const { seq, t } = value(c, k);
            receipt(k, seq, t, at);
          }
        });
      }
      return { ids, binds: nodes.map((n) => n.binds[0]), readyAt };
    }
    case 'warm': {
      // A global node and a slave through a whole life: handshake and authentication, the
      // master found, both families monitored, a change seen, both closed.
      const opts = { norc: true, binds: ['127.0.0.1:0'], secret: SECRET, logger: memoryLogger() };
      const g = configure({ ...opts, nodeid: 'warm-g/', services: ['AnyEvent::MP::Global::'] });
      await g.ready;
      const n = configure({ ...opts, nodeid: 'warm-n/', seeds: [g.binds[0]!] });
      await n.ready;
      const subs = [g, n].map((x) => x.db.mon$("'l").subscribe());
      g.db.set('lat', g.id, { seq: 0, t: now() });
      // The slave's snapshot, then a change (a g_chg2) to it.
      await new Promise<void>((resolve) => {
        let first = true;
        subs.push(
          n.db.mon$('lat').subscribe((c) => {
            if (first) {
              first = false;
              g.db.set('lat', g.id, { seq: 1, t: now() });
            } else if ((c.entries[g.id] as Stamp | undefined)?.seq === 1) resolve();
          }),
        );
      });
      for (const sub of subs) sub.unsubscribe();
      await Promise.all([n.close(), g.close()]);
      return {};
    }
    case 'set': {
      const n = nodes[m.index!]!;
      n.db.set('lat', n.id, { seq: m.seq, t: now() });
      return {};
    }
    case 'masters':
      return { masters: nodes.map((n) => n.db.master) };
    case 'monitors':
      return { monitors: nodes[0]!.db.monitorsOf('lat') };
    case 'relayOrder': {
      // The hub tells its endpoints in the order the aemp master tells its monitors.
      const ordered = new Set<(m: unknown[]) => void>();
      for (const id of m.order!) {
        const out = slaveById.get(id);
        if (out) ordered.add(out);
      }
      for (const out of hubSlaves) ordered.add(out);
      hubSlaves.clear();
      for (const out of ordered) hubSlaves.add(out);
      return {};
    }
    case 'closeNodes':
      await Promise.all(nodes.map((n) => n.close()));
      nodes = [];
      return {};
    case 'relayHub':
      return { addr: await relayHub(m.id!) };
    case 'relayMesh':
      await Promise.all(
        m.hubs!.map((addr) =>
          dial(addr, (out) => {
            hubLinks.add(out);
            out(['hub', hubId]);
          }),
        ),
      );
      return {};
    case 'relayJoin': {
      const converged = allOf(m.nodes!.length, (at) => send({ converged: true, at }));
      ids = m.nodes!.map((d) => d.id);
      const readyAt = now();
      await Promise.all(m.nodes!.map((d) => endpoint(d.id, d.hub, m.expect!, converged)));
      return { readyAt };
    }
    case 'relaySet':
      relaySends[m.index!]!(['', 'u', 'lat', { [ids[m.index!]!]: { seq: m.seq, t: now() } }]);
      return {};
    case 'report':
      reporting = m.on === true;
      return {};
    case 'stats': {
      // Process time before and after gathering the counts: a block's CPU runs from the end of
      // the reply before it to the start of the reply after it, without this loop over every
      // node's connections.
      const start = process.cpuUsage();
      let msgs = 0;
      let bytes = 0;
      for (const n of nodes)
        for (const c of n.connectionStats()) {
          msgs += c.messagesOut;
          bytes += c.bytesOut;
        }
      const end = process.cpuUsage();
      return {
        msgs,
        bytes,
        relayMsgs: relayCounts.messages,
        relayBytes: relayCounts.bytes,
        cpuStartUs: start.user + start.system,
        cpuEndUs: end.user + end.system,
      };
    }
    case 'mem': {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      const u = process.memoryUsage();
      return { rss: u.rss, heap: u.heapUsed };
    }
    case 'profile':
      if (m.file === undefined) {
        profiler = new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        // Fine-grained: one receipt takes some tens of microseconds.
        await profiler.post('Profiler.setSamplingInterval', { interval: 50 });
        await profiler.post('Profiler.start');
      } else {
        const { profile } = await profiler!.post('Profiler.stop');
        writeFileSync(m.file, JSON.stringify(profile));
        profiler!.disconnect();
        profiler = undefined;
      }
      return {};
    case 'samples':
      return { samples: takeSamples() };
    default:
      throw new Error(`unknown command ${m.cmd}`);
  }
}

// ---------------------------------------------------------------- the relay
// Frames: ['', 'l', [[id, addr], …]] entries of the node table (as `'l`), ['', 'u', family,
// {key: value}] an update, ['hub', id] / ['slave', id] the first frame on a connection.

let hubId = '';
const hubLinks = new Set<(m: unknown[]) => void>();
const hubSlaves = new Set<(m: unknown[]) => void>();
const slaveById = new Map<string, (m: unknown[]) => void>();
const table = new Map<string, string>();

function relayHub(id: string): Promise<string> {
  hubId = id;
  table.set(id, 'hub');
  relayServer = createServer({ noDelay: true }, (s) => {
    relaySockets.push(s);
    s.on('error', () => {});
    let kind = '';
    const out = rawChannel(s, (msg) => onHubFrame(out, kind, msg, (k) => (kind = k)), relayCounts);
  });
  return new Promise((resolve) =>
    relayServer!.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = relayServer!.address();
      resolve(typeof a === 'object' && a ? `127.0.0.1:${a.port}` : '');
    }),
  );
}

function dial(addr: string, up: (out: (m: unknown[]) => void) => void, onMsg?: (m: unknown[]) => void) {
  const [host, port] = addr.split(':');
  const s = connect({ host: host!, port: Number(port), noDelay: true });
  relaySockets.push(s);
  s.on('error', () => {});
  let out: (m: unknown[]) => void = () => {};
  out = rawChannel(s, (msg) => (onMsg ? onMsg(msg) : onHubFrame(out, 'hub', msg, () => {})), relayCounts);
  return new Promise<void>((resolve) =>
    s.once('connect', () => {
      up(out);
      if (!onMsg) out(['', 'l', [...table]]);
      resolve();
    }),
  );
}

/** A hub's handling of a frame from a slave or another hub (as a global node's g_upd). */
function onHubFrame(
  from: (m: unknown[]) => void,
  kind: string,
  msg: unknown[],
  setKind: (k: string) => void,
) {
  if (msg[0] === 'hub') {
    setKind('hub');
    hubLinks.add(from);
    from(['', 'l', [...table]]);
    return;
  }
  if (msg[0] === 'slave') {
    setKind('slave');
    hubSlaves.add(from);
    slaveById.set(String(msg[1]), from);
    return;
  }
  const fromSlave = kind === 'slave';
  if (msg[1] === 'l') {
    const entries = msg[2] as [string, string][];
    for (const [k, v] of entries) table.set(k, v);
    if (fromSlave) {
      from(['', 'l', [...table]]);
      for (const h of hubLinks) h(msg);
    }
    for (const s of hubSlaves) if (s !== from) s(msg);
  } else if (msg[1] === 'u') {
    // One message to all: encoded once, as the global node's fan-out.
    shareFrame(msg);
    if (fromSlave) for (const h of hubLinks) h(msg);
    for (const s of hubSlaves) s(msg);
    // The hub stands in for a global node, whose own monitor sees the change too.
    const at = now();
    for (const [k, v] of Object.entries(msg[3] as Record<string, { seq: number; t: number }>))
      receipt(k, v.seq, v.t, at);
  }
}

/**
 * One node's stand-in: its hub link, its table of nodes, its receipts. Like an aemp node's
 * mirrors of the families it monitors, it keeps the entries it was told: the node table's
 * addresses and the `lat` values.
 */
function endpoint(id: string, hub: string, expect: number, converged: () => void): Promise<void> {
  const known = new Map<string, string>();
  const lat = new Map<string, unknown>();
  let done = false;
  let out: (m: unknown[]) => void = () => {};
  const index = relaySends.length;
  relaySends.push((m) => out(m));
  return dial(
    hub,
    (o) => {
      out = o;
      o(['slave', id]);
      o(['', 'l', [[id, `endpoint ${index}`]]]);
    },
    (msg) => {
      const at = now();
      if (msg[1] === 'l') {
        for (const [k, v] of msg[2] as [string, string][]) known.set(k, v);
        if (!done && known.size >= expect) {
          done = true;
          converged();
        }
      } else if (msg[1] === 'u') {
        for (const [k, v] of Object.entries(msg[3] as Record<string, { seq: number; t: number }>)) {
          lat.set(k, v);
          if (k !== id) receipt(k, v.seq, v.t, at);
        }
      }
    },
  );
}

process.on('message', (raw) => {
  const m = raw as Req;
  handle(m).then(
    (r) => send({ rid: m.rid, ...r }),
    (e: unknown) => send({ rid: m.rid, error: String((e as Error)?.stack ?? e) }),
  );
});
send({ forked: true });
