/**
 * Local delivery from cold (child process of `npm run bench`): the first burst of a million
 * `snd` to a `port$` subscriber in a fresh process, then the same burst warm (median of a few
 * after it). The first burst pays for the delivery queue's memory and for unoptimised code;
 * the warm figure is what `local.ts` measures. Prints one JSON line:
 * `{ local_cold_1m_msgs_s, local_warm_1m_msgs_s }` (200k with `--quick`).
 */
import { configure, memoryLogger } from '../src/index.js';

const quick = process.argv.includes('--quick');
const N = quick ? 200_000 : 1_000_000;
const node = configure({ nodeid: 'bench-cold/', norc: true, binds: [], logger: memoryLogger() });

async function burst(n: number): Promise<number> {
  const p = node.port$();
  let got = 0;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const sub = p.subscribe(() => {
      if (++got === n) {
        sub.unsubscribe();
        resolve();
      }
    });
    for (let i = 0; i < n; i++) node.snd(p.id, 'ping', i);
  });
  const c = process.cpuUsage(c0);
  cpu.push(n / ((c.user + c.system) / 1e6));
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}
/** The same bursts per CPU second (less sensitive to other load on the machine). */
const cpu: number[] = [];

const cold = await burst(N);
const warm: number[] = [];
for (let i = 0; i < (quick ? 3 : 5); i++) warm.push(await burst(N));
warm.sort((a, b) => a - b);
await node.close();
const tag = quick ? '200k' : '1m';
const coldCpu = cpu[0]!;
const warmCpu = cpu.slice(1).sort((a, b) => a - b)[(cpu.length - 1) >> 1]!;
process.stdout.write(
  `${JSON.stringify({
    [`local_cold_${tag}_msgs_s`]: cold,
    [`local_warm_${tag}_msgs_s`]: warm[warm.length >> 1],
    [`local_cold_${tag}_msgs_cpu_s`]: coldCpu,
    [`local_warm_${tag}_msgs_cpu_s`]: warmCpu,
  })}\n`,
);
