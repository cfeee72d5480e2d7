/**
 * Two-process wire benchmarks. This process is the client; it forks a server process
 * (`bench/wire-server.ts`) and measures, for aemp (public API, defaults: HMAC auth, CBOR) and
 * for the ceiling (a bare `net` socket pair with cbor-x and one write per event-loop turn):
 *   one-way N small messages ["port", "ping", i]   first send → last receipt (acked)
 *   one-way with 1 KiB and 64 KiB payloads         msgs/s and MB/s
 *   sequential round trips for a fixed time        rtt/s, p50, p99 (µs)
 *   round trips with 64 calls in flight            rtt/s (64 callers, each awaiting its reply)
 * The one-way workloads also run against a second, stronger ceiling, the cost of the bytes
 * alone (`bytes_ceiling_…`): the same frames cbor-x-encoded before the clock starts, written in
 * 1 MiB slices, and counted on the other side by a scanner that walks the CBOR heads without
 * decoding anything. Prints one JSON line with the figures.
 *
 *   node --import tsx bench/wire.ts [--quick] [--rtt]     (--rtt: sequential round trips only)
 */
import { fork } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Encoder } from 'cbor-x';
import { filter, firstValueFrom, lastValueFrom } from 'rxjs';
import { configure, memoryLogger, type Node } from '../src/index.js';
import { rawChannel } from './raw-cbor.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
/** Sequential round trips only (`--rtt`): the calls in flight and the one-way floods are left out. */
const rttOnly = process.argv.includes('--rtt');
const SMALL = quick ? 50_000 : 200_000;
const RTT_SECONDS = quick ? 0.6 : 3;
const RTT_WARMUP_SECONDS = quick ? 0.3 : 1.5;
const SECRET = 'bench-secret';

interface ServerInfo {
  aemp: { node: string; sink: string; echo: string; addr: string };
  raw: { port: number };
  scan: { port: number };
}

const server = fork(join(here, 'wire-server.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
const info = await new Promise<ServerInfo>((resolve) =>
  server.once('message', (m) => resolve(m as ServerInfo)),
);

const now = () => Number(process.hrtime.bigint()) / 1e3; // µs

function stats(samples: number[]): { p50: number; p99: number } {
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * q))] ?? 0;
  return { p50: at(0.5), p99: at(0.99) };
}

interface Workloads {
  /** Sends n messages one way; messages per second from first send to last receipt. */
  oneWay(n: number, payload: unknown): Promise<number>;
  /** Sequential round trips for `seconds`; the latency of each in µs. */
  rtt(seconds: number): Promise<number[]>;
  /** Round trips with `depth` in flight for `seconds`; round trips per second. */
  inFlight(depth: number, seconds: number): Promise<number>;
  close(): Promise<void>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * Runs every workload through aemp (`a`) and the ceiling (`c`) alternately, several times in
 * short windows, so that drifting machine speed affects both sides alike; rates are medians
 * over the windows, latencies percentiles over all round trips.
 */
async function measure(a: Workloads, c: Workloads, b: OneWay): Promise<Record<string, number>> {
  const r: Record<string, number> = {};
  const both = async (name: string, run: (w: Workloads) => Promise<number>, times = 3) => {
    const xa: number[] = [];
    const xc: number[] = [];
    for (let i = 0; i < times; i++) {
      xa.push(await run(a));
      xc.push(await run(c));
    }
    r[name] = median(xa);
    r[`ceiling_${name}`] = median(xc);
  };
  /** As `both`, and the bytes-only ceiling in the same windows. */
  const oneWay = async (name: string, n: number, payload: unknown, times: number) => {
    const xa: number[] = [];
    const xc: number[] = [];
    const xb: number[] = [];
    for (let i = 0; i < times; i++) {
      xa.push(await a.oneWay(n, payload));
      xc.push(await c.oneWay(n, payload));
      xb.push(await b.oneWay(n, payload));
    }
    r[name] = median(xa);
    r[`ceiling_${name}`] = median(xc);
    r[`bytes_ceiling_${name}`] = median(xb);
  };
  // Round trips first, while both processes are fresh: the one-way floods below leave large heaps
  // (64 MiB of payload strings in the last one) whose collection would land in the latency
  // windows of whichever side happens to run then.
  // Twelve windows a side (a quarter of a second each): a burst of another process on the
  // shared cores then moves a minority of one side's windows, which the median leaves out.
  const windows = quick ? 6 : 12;
  const slice = RTT_SECONDS / windows;
  // Warm up both paths until the JIT has settled (aemp runs more code than the bare socket, so
  // it needs longer than one short window to reach its steady state).
  for (let i = 0; i < 3; i++) {
    await a.rtt(RTT_WARMUP_SECONDS / 3);
    await c.rtt(RTT_WARMUP_SECONDS / 3);
  }
  const la: number[] = [];
  const lc: number[] = [];
  const ra: number[] = [];
  const rc: number[] = [];
  for (let i = 0; i < windows; i++) {
    const sa = await a.rtt(slice);
    const sc = await c.rtt(slice);
    la.push(...sa);
    lc.push(...sc);
    ra.push(sa.length / slice);
    rc.push(sc.length / slice);
  }
  r.rtt_s = median(ra);
  r.ceiling_rtt_s = median(rc);
  const pa = stats(la);
  const pc = stats(lc);
  r.rtt_p50_us = pa.p50;
  r.rtt_p99_us = pa.p99;
  r.ceiling_rtt_p50_us = pc.p50;
  r.ceiling_rtt_p99_us = pc.p99;
  if (rttOnly) return r;
  // Calls in flight also before the floods, for the same reason, in more and shorter windows
  // than the floods (a stall moves one window of one side; the median drops it), after a
  // warm-up of both in-flight paths.
  for (let i = 0; i < 2; i++) {
    await a.inFlight(64, RTT_WARMUP_SECONDS / 4);
    await c.inFlight(64, RTT_WARMUP_SECONDS / 4);
  }
  await both('rtt64_s', (w) => w.inFlight(64, slice), windows);
  await a.oneWay(SMALL / 4, null);
  await c.oneWay(SMALL / 4, null);
  await b.oneWay(SMALL / 4, null);
  // Five windows for the short floods (a fraction of a second each, so one collection or
  // scheduling stall moves a window a lot); three for 64 KiB, whose ceiling windows take seconds.
  const windowsOf = quick ? 3 : 5;
  await oneWay('oneway_small_msgs_s', SMALL, null, windowsOf);
  await oneWay('oneway_1k_msgs_s', quick ? 10_000 : 50_000, 'x'.repeat(1024), windowsOf);
  await oneWay('oneway_64k_msgs_s', quick ? 200 : 1_000, 'y'.repeat(65536), 3);
  for (const k of ['', 'ceiling_', 'bytes_ceiling_']) {
    r[`${k}oneway_1k_mb_s`] = (r[`${k}oneway_1k_msgs_s`]! * 1024) / 1e6;
    r[`${k}oneway_64k_mb_s`] = (r[`${k}oneway_64k_msgs_s`]! * 65536) / 1e6;
  }
  return r;
}

// ---------------------------------------------------------------- aemp
async function aempWorkloads(): Promise<Workloads> {
  const node: Node = configure({
    nodeid: 'bench-client/',
    norc: true,
    binds: ['127.0.0.1:0'],
    seeds: [info.aemp.addr],
    secret: SECRET,
    logger: memoryLogger(),
  });
  await node.ready;
  await firstValueFrom(node.nodes$.pipe(filter((e) => e.type === 'up')));
  const { sink, echo } = info.aemp;

  const oneWay = async (n: number, payload: unknown): Promise<number> => {
    const done = node.port$();
    const finished = firstValueFrom(done);
    const t0 = now();
    for (let i = 0; i < n; i++) node.snd(sink, 'ping', i, payload);
    node.snd(sink, 'done', n, done.id);
    const [count] = await finished;
    if (count !== n) throw new Error(`aemp one-way lost messages: ${count}/${n}`);
    return n / ((now() - t0) / 1e6);
  };

  const rtt = async (seconds: number): Promise<number[]> => {
    const samples: number[] = [];
    const end = now() + seconds * 1e6;
    while (now() < end) {
      const t = now();
      await lastValueFrom(node.cal$(echo, 'x'));
      samples.push(now() - t);
    }
    return samples;
  };

  const inFlight = async (depth: number, seconds: number): Promise<number> => {
    let done = 0;
    const end = now() + seconds * 1e6;
    const worker = async () => {
      while (now() < end) {
        await lastValueFrom(node.cal$(echo, 'x'));
        done++;
      }
    };
    const t0 = now();
    await Promise.all(Array.from({ length: depth }, worker));
    return done / ((now() - t0) / 1e6);
  };

  return { oneWay, rtt, inFlight, close: () => node.close() };
}

// ---------------------------------------------------------------- ceiling
async function rawWorkloads(): Promise<Workloads> {
  const sock = connect({ host: '127.0.0.1', port: info.raw.port });
  sock.setNoDelay(true);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  let onMsg: (m: unknown[]) => void = () => {};
  const send = rawChannel(sock, (m) => onMsg(m));
  const next = () => new Promise<unknown[]>((resolve) => (onMsg = resolve));

  const oneWay = async (n: number, payload: unknown): Promise<number> => {
    const t0 = now();
    for (let i = 0; i < n; i++) send(['sink', 'ping', i, payload]);
    send(['sink', 'done', n]);
    const [, count] = await next();
    if (count !== n) throw new Error(`raw one-way lost messages: ${String(count)}/${n}`);
    return n / ((now() - t0) / 1e6);
  };
  // The calls in flight, by call ID: one table for the connection's life, as aemp's reply
  // ports and any long-lived caller's table of pending calls. (A fresh table per window, which
  // the young generation holds, made this ceiling about 25 % faster than one that lives on.)
  const waiting = new Map<number, (m: unknown[]) => void>();
  let nextId = 0;
  const route = (m: unknown[]) => {
    const resolve = waiting.get(m[0] as number);
    if (resolve === undefined) return;
    waiting.delete(m[0] as number);
    resolve(m);
  };
  // A call awaiting its own reply (as with cal$), routed back by its call ID.
  const call = () =>
    new Promise<unknown[]>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      send(['echo', 'x', id]);
    });
  // Sequential calls take the same path as calls in flight (an ID, the table), as aemp's do.
  const rtt = async (seconds: number) => {
    const samples: number[] = [];
    onMsg = route;
    const end = now() + seconds * 1e6;
    while (now() < end) {
      const t = now();
      await call();
      samples.push(now() - t);
    }
    onMsg = () => {};
    return samples;
  };
  const inFlight = async (depth: number, seconds: number) => {
    // `depth` callers, each awaiting its own reply.
    let done = 0;
    onMsg = route;
    const end = now() + seconds * 1e6;
    const worker = async () => {
      while (now() < end) {
        await call();
        done++;
      }
    };
    const t0 = now();
    await Promise.all(Array.from({ length: depth }, worker));
    onMsg = () => {};
    return done / ((now() - t0) / 1e6);
  };

  return {
    oneWay,
    rtt,
    inFlight,
    close: async () => {
      sock.destroy();
    },
  };
}

// ---------------------------------------------------------------- bytes-only ceiling
interface OneWay {
  oneWay(n: number, payload: unknown): Promise<number>;
  close(): Promise<void>;
}

async function bytesWorkloads(sinkName: string): Promise<OneWay> {
  const sock = connect({ host: '127.0.0.1', port: info.scan.port });
  sock.setNoDelay(true);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const enc = new Encoder({ useRecords: false });
  let answered: (count: number) => void = () => {};
  let got = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    got = Buffer.concat([got, chunk]);
    if (got.length < 4) return;
    const count = got.readUInt32BE(0);
    got = got.subarray(4);
    answered(count);
  });
  const SLICE = 1 << 20;
  const oneWay = async (n: number, payload: unknown): Promise<number> => {
    // The frames aemp's sink receives (destination port, tag, counter, payload), encoded before
    // the clock starts, then the end marker.
    const frames = Buffer.concat([
      ...Array.from({ length: n }, (_, i) => enc.encode([sinkName, 'ping', i, payload])),
      Buffer.from([0xf7]),
    ]);
    const done = new Promise<number>((resolve) => (answered = resolve));
    const t0 = now();
    for (let at = 0; at < frames.length; at += SLICE) sock.write(frames.subarray(at, at + SLICE));
    const count = await done;
    if (count !== n) throw new Error(`bytes-only one-way lost messages: ${count}/${n}`);
    return n / ((now() - t0) / 1e6);
  };
  return {
    oneWay,
    close: async () => {
      sock.destroy();
    },
  };
}

const aemp = await aempWorkloads();
const raw = await rawWorkloads();
const bytes = await bytesWorkloads(info.aemp.sink);
const out = await measure(aemp, raw, bytes);
await aemp.close();
await raw.close();
await bytes.close();
server.kill();
process.stdout.write(`${JSON.stringify(out)}\n`);
