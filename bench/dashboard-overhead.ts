/**
 * What the live dashboard costs the messaging it watches: one-way throughput of small messages
 * from this process's node to a sink node in a child process, with the dashboard off and on,
 * in alternating windows (off-on, on-off, …, so drifting machine speed affects both alike);
 * each figure is the median over the windows.
 *
 *   off   the node alone
 *   on    the node observed as `aemp dashboard` does it (a picture a second: stats request to
 *         the sink, DB families, a log tail) by a dashboard server with one event-stream client
 *         reading every view, and its Prometheus metrics endpoint read once a second
 *
 * Prints `dashboard on/off` to stderr and one JSON line: `dashboard_msgs_s` (on) with
 * `ceiling_dashboard_msgs_s` (off), so `npm run bench` shows the ratio on/off (1.00 = free;
 * the target is at least 0.95). On a busy machine wall-clock windows scatter by more than that,
 * so it also reports figures the load moves far less: messages per CPU second of both processes
 * (`dashboard_msgs_cpu_s`, on and off, the throughput where the CPU is the limit), the median
 * of that ratio over neighbouring off/on windows (`dashboard_on_off_paired`), and what watching
 * costs without traffic (`dashboard_idle_cpu_ms_s`, this process's CPU milliseconds per second
 * on, less off).
 */
import { fork } from 'node:child_process';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filter, firstValueFrom } from 'rxjs';
import { DASHBOARD_INTERVAL_MS } from '../src/cli/dashboard.js';
import {
  configure,
  memoryLogger,
  type Node,
  observeNetwork,
  serveMetrics,
  startDashboard,
} from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
/** Messages per window (about half a second to a second each: several observation rounds). */
const N = quick ? 600_000 : 1_500_000;
/** Milliseconds of quiet before each window. */
const SETTLE_MS = 300;
/** Messages sent per event-loop turn. */
const BATCH = 5_000;
/** Windows per side, run off-on-on-off-off-on… so that neither side always goes first. */
const WINDOWS = quick ? 5 : 10;
/** The metrics endpoint is read this often (a busy Prometheus scrapes every 10–15 s). */
const SCRAPE_MS = 1000;

const child = fork(join(here, 'dashboard-sink.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
const info = await new Promise<{ addr: string; sink: string }>((resolve) =>
  child.once('message', (m) => resolve(m as { addr: string; sink: string })),
);

const node: Node = configure({
  nodeid: 'bench-dash-client/',
  norc: true,
  binds: ['127.0.0.1:0'],
  seeds: [info.addr],
  secret: 'bench-secret',
  logger: memoryLogger(),
});
await node.ready;
await firstValueFrom(node.nodes$.pipe(filter((e) => e.type === 'up')));

const now = () => Number(process.hrtime.bigint()) / 1e3; // µs

interface Window {
  /** Messages per second from the first send to the count's return. */
  rate: number;
  /** CPU microseconds per message, both processes together. */
  cpuPerMsg: number;
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * Sends `n` small messages one way, `BATCH` per event-loop turn (so that the dashboard's timers
 * and requests run during the window, as they would in an application), and has the sink count
 * them.
 */
async function oneWay(n: number): Promise<Window> {
  const mark = node.port$();
  const marked = firstValueFrom(mark);
  node.snd(info.sink, 'mark', mark.id);
  await marked;
  const done = node.port$();
  const finished = firstValueFrom(done);
  const cpu0 = process.cpuUsage();
  const t0 = now();
  for (let sent = 0; sent < n; ) {
    const end = Math.min(n, sent + BATCH);
    for (; sent < end; sent++) node.snd(info.sink, 'ping', sent, null);
    await turn();
  }
  node.snd(info.sink, 'done', n, done.id);
  const [count, sinkCpu] = (await finished) as [number, number];
  const t = now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (count !== n) throw new Error(`lost messages: ${count}/${n}`);
  return { rate: n / (t / 1e6), cpuPerMsg: (cpu.user + cpu.system + sinkCpu) / n };
}

/** GET of `path` on 127.0.0.1:`port`, the body read and dropped. */
function get(port: number, path: string, onData?: (chunk: string) => void) {
  const req = request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}` } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => onData?.(chunk));
    res.on('error', () => {});
  });
  req.on('error', () => {});
  req.end();
  return req;
}

/**
 * Starts the dashboard with a client reading its event stream, and the metrics endpoint with a
 * scraper; resolves at the first view.
 */
async function dashboardOn(): Promise<() => Promise<void>> {
  const dash = await startDashboard(
    observeNetwork(node, { intervalMs: DASHBOARD_INTERVAL_MS, families: true, logs: true }),
  );
  const metrics = await serveMetrics(node, { port: 0 });
  const scraper = setInterval(() => get(metrics.port, '/metrics'), SCRAPE_MS);
  let firstView!: () => void;
  const first = new Promise<void>((r) => (firstView = r));
  const events = get(dash.port, '/events', (chunk) => {
    if (chunk.includes('event: view\n')) firstView();
  });
  await first;
  return async () => {
    clearInterval(scraper);
    events.destroy();
    await Promise.all([dash.close(), metrics.close()]);
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

// Warm-up of both paths until the JIT has settled: two windows each way, not counted.
for (let i = 0; i < 2; i++) {
  await oneWay(N);
  const stop = await dashboardOn();
  await oneWay(N);
  await stop();
}
const off: Window[] = [];
const on: Window[] = [];
/** The same pause before every window, so that both sides start from a settled process. */
const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS));
const windowOff = async () => {
  await settle();
  off.push(await oneWay(N));
};
const windowOn = async () => {
  const stop = await dashboardOn();
  await settle();
  on.push(await oneWay(N));
  await stop();
};
for (let i = 0; i < WINDOWS; i++) {
  if (i % 2 === 0) {
    await windowOff();
    await windowOn();
  } else {
    await windowOn();
    await windowOff();
  }
}

/** CPU milliseconds per second this process spends over `seconds` of no traffic. */
async function idleCpu(seconds: number): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e3 / ((now() - t0) / 1e6);
}
const IDLE_SECONDS = quick ? 1 : 3;
const idleOff = await idleCpu(IDLE_SECONDS);
const stopIdle = await dashboardOn();
const idleOn = await idleCpu(IDLE_SECONDS);
await stopIdle();

const rate = (ws: Window[]) => median(ws.map((w) => w.rate));
const cpu = (ws: Window[]) => median(ws.map((w) => w.cpuPerMsg));
const r = {
  dashboard_msgs_s: rate(on),
  ceiling_dashboard_msgs_s: rate(off),
  /**
   * Messages per CPU second, both processes together (the throughput where the CPU is the
   * limit): steadier than wall-clock rates on a shared machine.
   */
  dashboard_msgs_cpu_s: 1e6 / cpu(on),
  ceiling_dashboard_msgs_cpu_s: 1e6 / cpu(off),
  /**
   * The median over the window pairs (each an off and an on window side by side) of on/off in
   * messages per CPU second: a slow drift of the machine's speed cancels within a pair.
   */
  dashboard_on_off_paired: median(on.map((w, i) => off[i]!.cpuPerMsg / w.cpuPerMsg)),
  /** What watching costs on its own: CPU ms per second with the dashboard on, less off, no traffic. */
  dashboard_idle_cpu_ms_s: Math.max(0, idleOn - idleOff),
};
process.stderr.write(
  `dashboard off ${Math.round(r.ceiling_dashboard_msgs_s)} msgs/s, on ${Math.round(r.dashboard_msgs_s)} msgs/s, ` +
    `on/off ${(r.dashboard_msgs_s / r.ceiling_dashboard_msgs_s).toFixed(3)}; per CPU second off ` +
    `${Math.round(r.ceiling_dashboard_msgs_cpu_s)}, on ${Math.round(r.dashboard_msgs_cpu_s)}, on/off ` +
    `${(r.dashboard_msgs_cpu_s / r.ceiling_dashboard_msgs_cpu_s).toFixed(3)} (paired windows ` +
    `${r.dashboard_on_off_paired.toFixed(3)}); ` +
    `idle CPU ${idleOff.toFixed(2)} ms/s off, ${idleOn.toFixed(2)} ms/s on\n`,
);
await node.close();
child.kill();
console.log(JSON.stringify(r));
