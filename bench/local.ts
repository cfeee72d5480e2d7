/**
 * Local delivery benchmark (child process): bursts of `snd` to a `port$` subscriber, and the
 * ceiling — the same number of plain function calls with the same arguments.
 * Prints one JSON line: { metric: msgsPerSecond, … }.
 */
import { configure, memoryLogger } from '../src/index.js';

const quick = process.argv.includes('--quick');
const node = configure({ nodeid: 'bench-local/', norc: true, binds: [], logger: memoryLogger() });

async function aempBurst(n: number): Promise<number> {
  const p = node.port$();
  let got = 0;
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    const sub = p.subscribe(() => {
      if (++got === n) {
        sub.unsubscribe();
        resolve();
      }
    });
    for (let i = 0; i < n; i++) node.snd(p.id, 'ping', i);
  });
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** Messages escape into this, so the optimiser cannot drop the per-call message array. */
export let lastMessage: unknown[] = [];

function ceilingBurst(n: number): number {
  let got = 0;
  const sink = (msg: unknown[]) => {
    lastMessage = msg;
    if (msg.length === 2) got++;
  };
  const call = (...msg: unknown[]) => sink(msg);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) call('ping', i);
  if (got !== n) throw new Error('ceiling lost calls');
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/**
 * Median of `runs` measurements, after repeating `f` for a warm-up time so that they measure
 * optimised code (a 10k burst lasts about a millisecond; the first dozens run unoptimised).
 */
async function median(runs: number, f: () => number | Promise<number>): Promise<number> {
  const warmUntil = performance.now() + warmUpMs;
  do await f();
  while (performance.now() < warmUntil);
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await f());
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!;
}

const warmUpMs = quick ? 100 : 500;
const small = quick ? 5 : 21;
const runs = quick ? 1 : 5;
const big = quick ? 200_000 : 1_000_000;
const result = {
  local_10k_msgs_s: await median(small, () => aempBurst(10_000)),
  [`local_${big === 1_000_000 ? '1m' : '200k'}_msgs_s`]: await median(runs, () => aempBurst(big)),
  ceiling_local_10k_msgs_s: await median(small, () => ceilingBurst(10_000)),
  [`ceiling_local_${big === 1_000_000 ? '1m' : '200k'}_msgs_s`]: await median(runs, () => ceilingBurst(big)),
};
await node.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
