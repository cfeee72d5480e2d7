/**
 * Two-process wire benchmarks. This process is the client; it forks a server process
 * (`bench/wire-server.ts`) and measures, for aemp (public API, defaults: HMAC auth, CBOR) and
 * for the ceiling (a bare `net` socket pair with cbor-x and one write per event-loop turn):
 *   one-way N small messages ["port", "ping", i]   first send → last receipt (acked)
 *   one-way with 1 KiB and 64 KiB payloads         msgs/s and MB/s
 *   sequential round trips for a fixed time        rtt/s, p50, p99 (µs)
 *   round trips with 64 calls in flight            rtt/s
 * Prints one JSON line with the figures.
 */
import { fork } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filter, firstValueFrom, lastValueFrom } from 'rxjs';
import { configure, memoryLogger, type Node } from '../src/index.js';
import { rawChannel } from './raw-cbor.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const SMALL = quick ? 50_000 : 200_000;
const RTT_SECONDS = quick ? 0.5 : 2;
const SECRET = 'bench-secret';

interface ServerInfo {
  aemp: { node: string; sink: string; echo: string; addr: string };
  raw: { port: number };
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
  oneWay(n: number, payload: unknown): Promise<number>;
  rtt(): Promise<{ rate: number; p50: number; p99: number }>;
  inFlight(depth: number): Promise<number>;
}

/** Runs every workload (after a warm-up) through one implementation. */
async function measure(w: Workloads): Promise<Record<string, number>> {
  await w.oneWay(SMALL / 4, null);
  const r: Record<string, number> = {};
  r.oneway_small_msgs_s = await w.oneWay(SMALL, null);
  r.oneway_1k_msgs_s = await w.oneWay(quick ? 10_000 : 50_000, 'x'.repeat(1024));
  r.oneway_1k_mb_s = (r.oneway_1k_msgs_s * 1024) / 1e6;
  r.oneway_64k_msgs_s = await w.oneWay(quick ? 500 : 2_000, 'y'.repeat(65536));
  r.oneway_64k_mb_s = (r.oneway_64k_msgs_s * 65536) / 1e6;
  await w.rtt();
  const seq = await w.rtt();
  r.rtt_s = seq.rate;
  r.rtt_p50_us = seq.p50;
  r.rtt_p99_us = seq.p99;
  r.rtt64_s = await w.inFlight(64);
  return r;
}

// ---------------------------------------------------------------- aemp
async function aempSuite(): Promise<Record<string, number>> {
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

  const rtt = async (): Promise<{ rate: number; p50: number; p99: number }> => {
    const samples: number[] = [];
    const end = now() + RTT_SECONDS * 1e6;
    while (now() < end) {
      const t = now();
      await lastValueFrom(node.cal$(echo, 'x'));
      samples.push(now() - t);
    }
    return { rate: samples.length / RTT_SECONDS, ...stats(samples) };
  };

  const inFlight = async (depth: number): Promise<number> => {
    let done = 0;
    const end = now() + RTT_SECONDS * 1e6;
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

  const r = await measure({ oneWay, rtt, inFlight });
  await node.close();
  return r;
}

// ---------------------------------------------------------------- ceiling
async function rawSuite(): Promise<Record<string, number>> {
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
  const rtt = async () => {
    const samples: number[] = [];
    const end = now() + RTT_SECONDS * 1e6;
    while (now() < end) {
      const t = now();
      send(['echo', 'x', 'reply']);
      await next();
      samples.push(now() - t);
    }
    return { rate: samples.length / RTT_SECONDS, ...stats(samples) };
  };
  const inFlight = async (depth: number) => {
    let done = 0;
    let outstanding = 0;
    const end = now() + RTT_SECONDS * 1e6;
    const t0 = now();
    await new Promise<void>((resolve) => {
      onMsg = () => {
        done++;
        outstanding--;
        if (now() < end) {
          outstanding++;
          send(['echo', 'x', 'reply']);
        } else if (outstanding === 0) resolve();
      };
      for (let i = 0; i < depth; i++) {
        outstanding++;
        send(['echo', 'x', 'reply']);
      }
    });
    return done / ((now() - t0) / 1e6);
  };

  const r = await measure({ oneWay, rtt, inFlight });
  sock.destroy();
  return r;
}

const aemp = await aempSuite();
const raw = await rawSuite();
server.kill();
const out: Record<string, number> = {};
for (const [k, v] of Object.entries(aemp)) out[k] = v;
for (const [k, v] of Object.entries(raw)) out[`ceiling_${k}`] = v;
process.stdout.write(`${JSON.stringify(out)}\n`);
