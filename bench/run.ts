/**
 * `npm run bench [-- --quick]`: runs every workload in its own child process and prints one
 * table plus machine-readable lines `aemp <metric> <value>` / `ceiling <metric> <value>`.
 * Figures are only comparable within one run: read the ratio column, not the absolute numbers.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

function runWorker(file: string, nodeFlags: string[] = []): Record<string, number> {
  const args = [...nodeFlags, '--import', 'tsx', join(here, file), ...(quick ? ['--quick'] : [])];
  const out = execFileSync(process.execPath, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const last = out.trim().split('\n').pop() ?? '{}';
  return JSON.parse(last) as Record<string, number>;
}

const results: Record<string, number> = {
  ...runWorker('local.ts'),
  ...runWorker('wire.ts'),
  ...runWorker('memory.ts', ['--expose-gc']),
  ...runWorker('cluster.ts'),
  ...runWorker('dataconn.ts'),
};

const rows: [string, string, string, string][] = [];
const fmt = (v: number | undefined) =>
  v === undefined ? '-' : v >= 100 ? Math.round(v).toLocaleString('en') : v.toFixed(3);
for (const [key, value] of Object.entries(results)) {
  if (key.startsWith('ceiling_')) continue;
  const ceiling = results[`ceiling_${key}`];
  // RSS deltas of small things can come out at or below zero (page-granular, allocator noise):
  // no ratio then.
  const ratio = ceiling !== undefined && ceiling > 0 && value > 0 ? (value / ceiling).toFixed(2) : '-';
  rows.push([key, fmt(value), fmt(ceiling), ratio]);
}
const header: [string, string, string, string] = ['metric', 'aemp', 'ceiling', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) =>
  r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log('');
for (const [key, value] of Object.entries(results)) {
  if (key.startsWith('ceiling_')) console.log(`ceiling ${key.slice('ceiling_'.length)} ${value}`);
  else console.log(`aemp ${key} ${value}`);
}
