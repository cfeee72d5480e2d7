/**
 * What one receipt of a `g_chg2` costs a slave node in instructions and cache misses, against
 * the relay endpoint's work for the same update: bench/db-receive.ts under cachegrind
 * (valgrind), once with K1 and once with K2 receipts after the same setup; the difference
 * divided by K2 − K1 is one receipt. It compares two versions of the code where timings on a
 * shared machine cannot: instruction counts move by some per cent from run to run, misses
 * less. Instruction misses are counted as well as data misses. The simulated caches are
 * first-level caches of 64 KiB (instructions and data) and a last level of
 * 256 KiB (a share of a busy machine's second level): with 50 slaves taking turns, a receipt
 * finds its node's state out of them, as in the cluster benchmark's worker processes.
 *
 *   npx tsx bench/receive-cost.ts [--reads raw,none,get] [--nodes 50] [--counts 20000,220000] [--evict MB]
 *
 * Reads (as db-receive's --read): raw — a plain g_chg2 handler, so frame, connection, kernel
 * and node port only; none — db.mon$ with a subscriber that reads nothing; get — each changed
 * value read with change.get (the cluster's default). Needs valgrind (apt-get install valgrind);
 * runs two at a time, some minutes. Not part of `npm run bench`.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const READS = arg('--reads', 'raw,none,get').split(',');
const NODES = arg('--nodes', '50');
const [K1, K2] = arg('--counts', '20000,220000').split(',').map(Number) as [number, number];
/**
 * --evict MB: db-receive walks MB megabytes before each receipt (every cache line of its code
 * and data then comes from memory, as after other processes ran); the walk's own data misses
 * are the same on every row.
 */
const EVICT = arg('--evict', '');

interface Counts {
  ir: number;
  d1: number;
  lld: number;
  /** First-level and last-level instruction misses. */
  i1: number;
  lli: number;
}

/** Cachegrind's totals for `count` receipts of one side. */
async function counts(side: string, read: string, count: number): Promise<Counts> {
  const args = [
    '--tool=cachegrind',
    '--cache-sim=yes',
    '--I1=65536,8,64',
    '--D1=65536,8,64',
    '--LL=262144,8,64',
    '--cachegrind-out-file=/dev/null',
    process.execPath,
    // One thread (no concurrent compiling or marking in the counts) and fixed heuristics.
    '--single-threaded',
    '--predictable',
    '--import',
    'tsx',
    join(here, 'db-receive.ts'),
    ...['--families', '50', '--nodes', NODES, '--read', read, '--count', String(count), '--side', side],
    ...(EVICT ? ['--evict', EVICT] : []),
  ];
  const { stderr } = await run('valgrind', args, { maxBuffer: 64 << 20 });
  const total = (label: string) => {
    const m = new RegExp(`${label}:\\s+([\\d,]+)`).exec(stderr);
    if (!m) throw new Error(`no "${label}" in valgrind's output:\n${stderr.slice(-2000)}`);
    return Number(m[1]!.replaceAll(',', ''));
  };
  return {
    ir: total('I\\s+refs'),
    d1: total('D1\\s+misses'),
    lld: total('LLd misses'),
    i1: total('I1\\s+misses'),
    lli: total('LLi misses'),
  };
}

/** Per receipt: the difference between K2 and K1 receipts. */
async function perReceipt(side: string, read: string): Promise<Counts> {
  const [a, b] = await Promise.all([counts(side, read, K1), counts(side, read, K2)]);
  const d = (k: keyof Counts) => (b[k] - a[k]) / (K2 - K1);
  return { ir: d('ir'), d1: d('d1'), lld: d('lld'), i1: d('i1'), lli: d('lli') };
}

try {
  await run('valgrind', ['--version']);
} catch {
  console.error('receive-cost: valgrind is not installed (apt-get install valgrind)');
  process.exit(1);
}
const relay = await perReceipt('relay', 'get');
const rows: [string, Counts][] = [['relay endpoint', relay]];
for (const read of READS) rows.push([`aemp, read ${read}`, await perReceipt('aemp', read)]);
console.log(`One receipt, ${NODES} slaves taking turns (cachegrind; L1d 64 KiB, last level 256 KiB):`);
console.log(
  '                     instructions        L1d misses      last-level data misses   L1i misses      last-level instr. misses',
);
for (const [name, c] of rows) {
  const col = (k: keyof Counts, digits: number) =>
    `${c[k].toFixed(digits).padStart(8)} (${(c[k] / relay[k]).toFixed(2)})`;
  console.log(
    `${name.padEnd(18)} ${col('ir', 0)}   ${col('d1', 1)}   ${col('lld', 1)}          ${col('i1', 1)}   ${col('lli', 1)}`,
  );
}
