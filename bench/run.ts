/**
 * `npm run bench [-- --quick]`: runs every workload in its own child process and prints one
 * table plus machine-readable lines `aemp <metric> <value>` / `<ceiling kind> <metric> <value>`.
 * A workload prints one JSON line last; lines before it (tables, plots) are passed through.
 * Its keys are metrics, `ceiling_<metric>` (the bare net + cbor-x ceiling of the same run) and
 * `bytes_ceiling_<metric>` (the bytes-only ceiling, where there is one).
 * Figures are only comparable within one run: read the ratio columns, not the absolute numbers.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

/** Ceiling kinds: key prefix and column title. */
const CEILINGS = [
  { prefix: 'ceiling_', title: 'ceiling' },
  { prefix: 'bytes_ceiling_', title: 'bytes-only' },
];
const isCeiling = (key: string) => CEILINGS.some((c) => key.startsWith(c.prefix));

function runWorker(
  file: string,
  nodeFlags: string[] = [],
  workerArgs: string[] = [],
): Record<string, number> {
  const args = [
    ...nodeFlags,
    '--import',
    'tsx',
    join(here, file),
    ...workerArgs,
    ...(quick ? ['--quick'] : []),
  ];
  const out = execFileSync(process.execPath, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
  const lines = out.trimEnd().split('\n');
  const last = lines.pop() ?? '{}';
  if (lines.length > 0) console.log(lines.join('\n'));
  return JSON.parse(last) as Record<string, number>;
}

const results: Record<string, number> = {
  ...runWorker('local.ts'),
  ...runWorker('local-cold.ts'),
  ...runWorker('wire.ts'),
  // Calls/s and CPU per call with Node's default heap; heap growth per call over windows without
  // a collection, in a young generation that holds them (which changes the rates, so apart).
  ...runWorker('calls-cost.ts'),
  ...runWorker(
    'calls-cost.ts',
    ['--expose-gc', '--max-semi-space-size=128', '--min-semi-space-size=128'],
    ['--bytes'],
  ),
  ...runWorker('memory.ts', ['--expose-gc']),
  // Heap per established connection of the built code (dist/, from `npm run build`).
  ...runWorker('conn-heap.ts'),
  ...runWorker('cluster.ts'),
  ...runWorker('dataconn.ts'),
  ...runWorker('dashboard-overhead.ts'),
};

const fmt = (v: number | undefined) =>
  v === undefined ? '-' : v >= 100 ? Math.round(v).toLocaleString('en') : v.toFixed(3);
// RSS deltas of small things can come out at or below zero (page-granular, allocator noise):
// no ratio then.
const ratio = (v: number, c: number | undefined) =>
  c !== undefined && c > 0 && v > 0 ? (v / c).toFixed(2) : '-';
const header = ['metric', 'aemp', ...CEILINGS.flatMap((c) => [c.title, 'ratio'])];
const rows: string[][] = [];
for (const [key, value] of Object.entries(results)) {
  if (isCeiling(key)) continue;
  const row = [key, fmt(value)];
  for (const c of CEILINGS) {
    const ceiling = results[`${c.prefix}${key}`];
    row.push(fmt(ceiling), ceiling === undefined ? '' : ratio(value, ceiling));
  }
  rows.push(row);
}
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) =>
  r
    .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
    .join('  ')
    .trimEnd();
console.log('');
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log('');
for (const [key, value] of Object.entries(results)) {
  const c = CEILINGS.slice()
    .reverse()
    .find((k) => key.startsWith(k.prefix));
  if (c) console.log(`${c.prefix.slice(0, -1)} ${key.slice(c.prefix.length)} ${value}`);
  else console.log(`aemp ${key} ${value}`);
}
