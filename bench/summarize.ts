/**
 * `npx tsx bench/summarize.ts run1.txt run2.txt …`: the README's benchmark tables (Markdown)
 * from the outputs of several `npm run bench` runs (their `aemp <metric> <value>`,
 * `ceiling …` and `bytes_ceiling …` lines). Values are medians over the runs; each ratio is
 * the median of the runs' own ratios (aemp and its ceiling from the same run), with its range.
 */
import { readFileSync } from 'node:fs';

type Run = Record<string, Record<string, number>>; // kind → metric → value

function parse(text: string): Run {
  const run: Run = { aemp: {}, ceiling: {}, bytes_ceiling: {} };
  for (const line of text.split('\n')) {
    const m = /^(aemp|ceiling|bytes_ceiling) (\S+) (\S+)$/.exec(line.trim());
    if (m) run[m[1]!]![m[2]!] = Number(m[3]);
  }
  return run;
}

const runs = process.argv.slice(2).map((f) => parse(readFileSync(f, 'utf8')));
if (runs.length === 0) {
  console.error('usage: summarize.ts <bench output>…');
  process.exit(2);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[s.length >> 1]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const values = (kind: string, metric: string) =>
  runs.map((r) => r[kind]?.[metric]).filter((v): v is number => v !== undefined);
const ratios = (kind: string, metric: string) =>
  runs
    .map((r) => [r.aemp?.[metric], r[kind]?.[metric]] as const)
    .filter(([a, c]) => a !== undefined && c !== undefined && a > 0 && c > 0)
    .map(([a, c]) => a! / c!);

function num(v: number): string {
  if (!Number.isFinite(v)) return '';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
function ratioText(kind: string, metric: string): [string, string] {
  const rs = ratios(kind, metric);
  if (rs.length === 0) return ['', ''];
  const lo = Math.min(...rs);
  const hi = Math.max(...rs);
  return [median(rs).toFixed(2), rs.length > 1 ? `${lo.toFixed(2)}–${hi.toFixed(2)}` : ''];
}

const LABELS: Record<string, string> = {
  local_10k_msgs_s: 'local `snd` → `port$`, bursts of 10k (msgs/s)',
  local_200k_msgs_s: 'local `snd` → `port$`, bursts of 200k (msgs/s)',
  local_1m_msgs_s: 'local `snd` → `port$`, bursts of 1M (msgs/s)',
  local_cold_1m_msgs_s: 'local, first 1M burst of a fresh process (msgs/s)',
  local_warm_1m_msgs_s: 'local, a later 1M burst (msgs/s)',
  local_cold_1m_msgs_cpu_s: 'local, first 1M burst, per CPU second',
  local_warm_1m_msgs_cpu_s: 'local, a later 1M burst, per CPU second',
  rtt_s: 'sequential `cal$` round trips (/s)',
  rtt_p50_us: 'round-trip latency p50 (µs)',
  rtt_p99_us: 'round-trip latency p99 (µs)',
  rtt64_s: '`cal$` with 64 in flight (/s)',
  oneway_small_msgs_s: 'one-way small messages (msgs/s)',
  oneway_1k_msgs_s: 'one-way 1 KiB payloads (msgs/s)',
  oneway_1k_mb_s: 'one-way 1 KiB payloads (MB/s)',
  oneway_64k_msgs_s: 'one-way 64 KiB payloads (msgs/s)',
  oneway_64k_mb_s: 'one-way 64 KiB payloads (MB/s)',
  cal_rtt1_s: 'one `cal$` at a time (/s; ceiling: request/reply on a bare socket)',
  cal_rtt1_client_cpu_us: "… its caller's CPU per call (µs)",
  cal_rtt1_server_cpu_us: "… the called node's CPU per call (µs)",
  cal_rtt1_bytes: '… bytes allocated per call, caller',
  call_rtt1_s: 'one `call` (promise) at a time (/s)',
  call_rtt1_client_cpu_us: "… its caller's CPU per call (µs)",
  call_rtt1_server_cpu_us: "… the called node's CPU per call (µs)",
  call_rtt1_bytes: '… bytes allocated per call, caller',
  cal_rtt64_s: '`cal$` with 64 in flight, calls bench (/s)',
  cal_rtt64_client_cpu_us: "… caller's CPU per call (µs)",
  cal_rtt64_server_cpu_us: "… called node's CPU per call (µs)",
  cal_rtt64_bytes: '… bytes allocated per call, caller',
  call_rtt64_s: '`call` with 64 in flight (/s)',
  call_rtt64_client_cpu_us: "… caller's CPU per call (µs)",
  call_rtt64_server_cpu_us: "… called node's CPU per call (µs)",
  call_rtt64_bytes: '… bytes allocated per call, caller',
  conn_heap_dist_bytes: 'heap per established connection, built package, 1,000 connections (bytes)',
  port_heap_bytes: 'heap per idle local port (bytes)',
  port_rss_bytes: 'RSS per idle local port (bytes)',
  conn_heap_bytes: 'heap per connection, server side (bytes)',
  conn_rss_bytes: 'RSS per connection, server side (bytes)',
  dataconn_mb_s: 'data connection, raw bytes (MB/s)',
  dashboard_msgs_s: 'one-way msgs/s with the dashboard on (ceiling: off; `dashboard_msgs_s`)',
  dashboard_msgs_cpu_s: 'the same per CPU second (`dashboard_msgs_cpu_s`)',
  dashboard_on_off_paired: 'on/off over neighbouring windows (`dashboard_on_off_paired`)',
  dashboard_idle_cpu_ms_s: 'dashboard CPU without traffic, ms/s (`dashboard_idle_cpu_ms_s`)',
};

const metrics = [...new Set(runs.flatMap((r) => Object.keys(r.aemp!)))];
// In the order of LABELS (each call variant's rows together), others after them as they came.
const order = Object.keys(LABELS);
const rank = (m: string) => (order.includes(m) ? order.indexOf(m) : order.length);
const plain = metrics.filter((m) => !m.startsWith('db_n')).sort((a, b) => rank(a) - rank(b));
const out: string[] = [];
out.push(
  '| metric | aemp | ceiling | ratio | ratio range | bytes-only ceiling | ratio |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
);
for (const m of plain) {
  const [r, range] = ratioText('ceiling', m);
  const [rb] = ratioText('bytes_ceiling', m);
  out.push(
    `| ${LABELS[m] ?? m} | ${num(median(values('aemp', m)))} | ${num(median(values('ceiling', m)))} | ${r} | ${range} | ` +
      `${num(median(values('bytes_ceiling', m)))} | ${rb} |`,
  );
}

// The cluster: one row per network.
const nets = [
  ...new Set(metrics.filter((m) => m.startsWith('db_n')).map((m) => /^db_n(\d+)_g(\d+)_/.exec(m)![0])),
].sort((a, b) => {
  const [, na, ga] = /^db_n(\d+)_g(\d+)_/.exec(a)!.map(Number);
  const [, nb, gb] = /^db_n(\d+)_g(\d+)_/.exec(b)!.map(Number);
  return ga! - gb! || na! - nb!;
});
if (nets.length) {
  const COLS: [string, string][] = [
    ['converge_ms', 'converge ms'],
    ['set_all_ms', 'all saw a set, ms'],
    ['set_p50_us', 'set → mon$ p50 µs'],
    ['set_p99_us', 'p99 µs'],
    ['globals_p50_us', 'globals saw p50 µs'],
    ['msgs_per_set', 'msgs/set'],
    ['bytes_per_set', 'bytes/set'],
    ['global_cpu_us_per_set', 'global CPU µs/set'],
    ['node_heap_bytes', 'heap/node'],
  ];
  out.push(
    '',
    `| N | G | ${COLS.map((c) => c[1]).join(' | ')} |`,
    `| ---: | ---: |${' ---: |'.repeat(COLS.length)}`,
  );
  for (const p of nets) {
    const [, n, g] = /^db_n(\d+)_g(\d+)_/.exec(p)!;
    const cells = COLS.map(([k]) => {
      const m = `${p}${k}`;
      const a = num(median(values('aemp', m)));
      const c = num(median(values('ceiling', m)));
      const [r, range] = ratioText('ceiling', m);
      return `${a} / ${c} (${r}${range ? `, ${range}` : ''})`;
    });
    out.push(`| ${n} | ${g} | ${cells.join(' | ')} |`);
  }
}
console.log(out.join('\n'));
