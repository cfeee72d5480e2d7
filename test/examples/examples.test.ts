/**
 * Every program in examples/ run for real: each node in its own process (tsx), on a free
 * loopback port, with the seed and secret passed the way a user would (environment). The
 * tests wait for the lines the programs print, check what they say, and expect the scripted
 * programs to end by themselves with status 0. Anything still running is killed afterwards.
 */
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { type ExampleEnv, example } from './example-process.js';

async function network(): Promise<ExampleEnv> {
  return { seed: `127.0.0.1:${await freePort()}`, secret: 'examples-test-secret' };
}

/** Generous for a loaded 2-core machine; each test takes a few seconds. */
const TEST_MS = 30_000;

describe('examples', { timeout: TEST_MS }, () => {
  it('ping-pong: ping finds pong through the seed, times 5 round trips, both exit', async () => {
    const env = await network();
    const pong = example('ping-pong/pong.ts', ['--max', '5'], env);
    await pong.waitLine(/^pong: ready as pong\/\S+ on 127\.0\.0\.1:\d+$/);
    const ping = example('ping-pong/ping.ts', ['--count', '5'], env);

    expect(await ping.exited(), ping.output).toBe(0);
    expect(await pong.exited(), pong.output).toBe(0);

    const pongNode = /^pong: ready as (\S+) /.exec(pong.lines[0]!)![1]!;
    expect(ping.lines[0]!.startsWith(`ping: found pong at ${pongNode}#`), ping.output).toBe(true);
    const trips = ping.matches(/^ping: pong (\d+) after (\d+\.\d\d) ms$/);
    expect(trips.map((m) => Number(m[1]))).toEqual([1, 2, 3, 4, 5]);
    expect(ping.lines.at(-1)).toMatch(/^ping: 5 round trips, min [\d.]+ ms, avg [\d.]+ ms, max [\d.]+ ms$/);

    const answers = pong.matches(/^pong: answered ping (\d+) from (\S+) \((\d+) so far\)$/);
    expect(answers.map((m) => [m[1], m[3]])).toEqual([1, 2, 3, 4, 5].map((n) => [`${n}`, `${n}`]));
    expect(new Set(answers.map((m) => m[2])).size).toBe(1);
    expect(answers[0]![2]).toMatch(/^ping\//);
    expect(pong.lines.at(-1)).toBe('pong: answered 5 pings, done');
  });

  it('chat: lines reach the other clients; a leaving and a killed client are seen to leave', async () => {
    const env = await network();
    const server = example('chat/server.ts', ['--until-empty'], env);
    await server.waitLine(/^server: ready as chat-server\//);
    const alice = example('chat/client.ts', ['alice', '--stay', 'hi bob', 'how are you?'], env);
    const bob = example('chat/client.ts', ['bob', '--stay', 'hi alice'], env);

    // Each says its lines once the other is there; everybody gets them, the sender too.
    await Promise.all([
      alice.waitLine(/^<bob> hi alice$/),
      alice.waitLine(/^<alice> how are you\?$/),
      bob.waitLine(/^<alice> how are you\?$/),
      bob.waitLine(/^<bob> hi alice$/),
    ]);
    const said = (lines: string[]) => lines.filter((l) => l.startsWith('<alice>'));
    expect(said(bob.lines)).toEqual(['<alice> hi bob', '<alice> how are you?']);
    expect(said(alice.lines)).toEqual(['<alice> hi bob', '<alice> how are you?']);

    // carol waits for two others, says her line and leaves by herself.
    const carol = example('chat/client.ts', ['carol', '--peers', '2', 'bye all'], env);
    expect(await carol.exited(), carol.output).toBe(0);
    expect(carol.lines[0]).toMatch(/^\* in the room: (alice, bob|bob, alice)$/);
    for (const c of [alice, bob]) {
      const joined = await c.waitLine(/^\* carol joined$/);
      const heard = await c.waitLine(/^<carol> bye all$/, { from: joined });
      await c.waitLine(/^\* carol left$/, { from: heard });
    }

    // bob is killed: his entry vanishes, alice sees him leave and, alone now, leaves too.
    await bob.kill();
    await alice.waitLine(/^\* bob left$/);
    expect(await alice.exited(), alice.output).toBe(0);
    expect(await server.exited(), server.output).toBe(0);

    const events = server
      .matches(/^server: (\w+) (joined|left) \((\d) in the room\)$/)
      .map((m) => m.slice(1, 3));
    expect(events.filter(([who]) => who === 'carol')).toEqual([
      ['carol', 'joined'],
      ['carol', 'left'],
    ]);
    expect(events.slice(-2)).toEqual([
      ['bob', 'left'],
      ['alice', 'left'],
    ]);
    expect(server.lines.at(-1)).toBe('server: the room is empty, stopping');
  });

  it('worker-pool: all jobs are done although a worker is killed while it holds jobs', async () => {
    const env = await network();
    const jobs = 20;
    const pool = example('worker-pool/pool.ts', ['--jobs', `${jobs}`, '--workers', '2'], env);
    await pool.waitLine(/^pool: ready as pool\//);
    // b is slow, so that the job it holds when it is killed cannot be finished in the meantime.
    const a = example('worker-pool/worker.ts', ['a', '--work-ms', '200'], env);
    const b = example('worker-pool/worker.ts', ['b', '--work-ms', '1000'], env);

    // Once b has finished a job and started another, kill it: that job is in its hands.
    const firstDone = await b.waitLine(/^b: job \d+ done$/);
    const working = await b.waitLine(/^b: working on job \d+$/, { from: firstDone });
    await b.kill();
    const lost = Number(/(\d+)$/.exec(b.lines[working]!)![1]);

    expect(await pool.exited(), pool.output).toBe(0);
    expect(await a.exited(), a.output).toBe(0); // the pool told it to quit
    expect(a.lines.at(-1)).toBe('a: told to quit, stopping');

    const results = pool.matches(/^pool: job (\d+) → (\d+) \(by (a|b)\)$/);
    const byJob = new Map(results.map((m) => [Number(m[1]), { result: Number(m[2]), by: m[3] }]));
    expect(results).toHaveLength(jobs);
    expect([...byJob.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: jobs }, (_, i) => i + 1));
    for (const [n, { result }] of byJob) expect(result).toBe(n * n);
    expect(byJob.get(lost)?.by).toBe('a');
    expect(results.some((m) => m[3] === 'b')).toBe(true);

    const failed = pool.matches(/^pool: job (\d+) failed on b \(transport_error \S+ .*\), trying again$/);
    expect(failed.map((m) => Number(m[1]))).toContain(lost);
    expect(pool.lines).toContain('pool: worker b is gone');
    const sum = Array.from({ length: jobs }, (_, i) => (i + 1) ** 2).reduce((x, y) => x + y, 0);
    expect(pool.lines).toContainEqual(
      expect.stringMatching(new RegExp(`^pool: all ${jobs} jobs done in \\d+ ms, sum of results ${sum}$`)),
    );
  });

  it('pipeline: producer → transform (filter, map, bufferCount) → sink (scan) gives the expected aggregates', async () => {
    const env = await network();
    const count = 95;
    const sink = example('pipeline/sink.ts', [], env);
    await sink.waitLine(/^sink: ready as pipeline-sink\//);
    const transform = example('pipeline/transform.ts', [], env);
    await transform.waitLine(/^transform: ready as /);
    const producer = example('pipeline/producer.ts', ['--count', `${count}`, '--every-ms', '1'], env);

    expect(await producer.exited(), producer.output).toBe(0);
    expect(await transform.exited(), transform.output).toBe(0);
    expect(await sink.exited(), sink.output).toBe(0);

    // What the pipeline computes: the squares of the even numbers up to `count`, ten per batch.
    const squares = Array.from({ length: count }, (_, i) => i + 1)
      .filter((n) => n % 2 === 0)
      .map((n) => n * n);
    const batches: number[][] = [];
    for (let i = 0; i < squares.length; i += 10) batches.push(squares.slice(i, i + 10));
    const sums = batches.map((b) => b.reduce((x, y) => x + y, 0));
    expect(batches.at(-1)).toHaveLength(7); // the last batch is a short one

    const batchLines = sums.map((s, i) => `batch ${i + 1}: ${batches[i]!.length} values, sum ${s}`);
    expect(transform.lines.filter((l) => l.startsWith('transform: batch '))).toEqual(
      batchLines.map((l) => `transform: ${l}`),
    );
    expect(sink.lines.filter((l) => l.startsWith('sink: batch '))).toEqual(
      batchLines.map((l) => `sink: ${l}`),
    );
    let running = 0;
    const totals = sums.map((s, i) => {
      running += s;
      return `sink: running total ${running} (${Math.min((i + 1) * 10, squares.length)} values)`;
    });
    expect(sink.lines.filter((l) => l.startsWith('sink: running total '))).toEqual(totals);
    expect(sink.lines.at(-1)).toBe(
      `sink: done: ${batches.length} batches, ${squares.length} values, total ${running}`,
    );
    expect(producer.lines.at(-1)).toBe(`producer: sent ${count} numbers, input closed (normally)`);
  });
});
