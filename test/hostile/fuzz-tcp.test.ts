/**
 * Damaged handshakes and damaged data-phase streams sent to a live node over loopback TCP
 * (fast-check drives the damage, see test/helpers/hostile-mutate.ts). For every input:
 *   - the connection either completes (only if the credentials survived the damage) or is
 *     closed by the node with a logged reason; an input that merely stops halfway is closed
 *     when the fake hangs up, again with a logged reason;
 *   - a message the fake sent behind a rejected handshake is never delivered;
 *   - afterwards the node still serves a good peer (handshake + a round trip).
 * The node runs in secure mode: the captured streams contain `eval` and spawn requests.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node, NodeStatus } from '../../src/index.js';
import { configure } from '../../src/index.js';
import type { LogLimiter } from '../../src/streams/log/log.js';
import { goldenStreams } from '../fixtures/frames/vectors.js';
import {
  FakePeer,
  fourLines,
  hmacToken,
  perlCbor,
  perlGreeting,
  perlNonce,
  SECRET,
  turns,
  within,
} from '../helpers/fake-peer.js';
import { chunked, chunking, edits, mutate } from '../helpers/hostile-mutate.js';

type Line = { level: number; text: string };

/** One node for the whole file (the property runs are many; a node per run would be slow). */
let node: Node;
const logs: Line[] = [];
/** Called after every log line (by `logLine`, waiting for one). */
const logWatchers = new Set<() => void>();
const status: NodeStatus[] = [];
const delivered: unknown[][] = [];
let sink = '';

beforeAll(async () => {
  node = configure({
    nodeid: 'fuzz-target',
    norc: true,
    secret: SECRET,
    secure: true,
    binds: ['127.0.0.1:0'],
    max_frame_bytes: 64 * 1024,
    logger: {
      log: (level, text) => {
        logs.push({ level, text });
        for (const check of logWatchers) check();
      },
    },
  });
  node.nodes$.subscribe((s) => status.push(s));
  await within(node.ready, 5000, 'the node to listen');
  sink = node.port((...m: unknown[]) => delivered.push(m));
});

afterAll(async () => {
  await node.close();
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The first log line matching `re`, logged already or waited for up to `ms`. */
async function logLine(re: RegExp, ms = 3000): Promise<Line> {
  let check = () => {};
  const found = new Promise<Line>((resolve) => {
    check = () => {
      const hit = logs.find((l) => re.test(l.text));
      if (hit) resolve(hit);
    };
  });
  logWatchers.add(check);
  check();
  try {
    return await within(found, ms, `the log line ${re}`);
  } finally {
    logWatchers.delete(check);
  }
}

/** Waits until the fake is closed, `done()` holds, or some loop turns passed without either. */
async function settle(fake: FakePeer, done: () => boolean): Promise<void> {
  for (let i = 0; i < 40 && !fake.isClosed && !done(); i++) await turns(1);
}

/**
 * Ends the network's rate-limit interval for failed incoming handshakes (a few lines per remote
 * address per interval, the rest only counted; every case here dials from 127.0.0.1), so that
 * the next case's failure is logged as a line of its own rather than counted in a summary.
 */
function freshFailureBudget(): void {
  const failures = (node.network as unknown as { failures?: LogLimiter }).failures;
  if (failures === undefined) throw new Error('network has no failures log limiter');
  failures.flush();
}

async function goodPeerStillServed(id: string): Promise<void> {
  const good = await FakePeer.dial(node.binds[0]!);
  const hs = await good.handshake({ nodeId: id, secret: SECRET });
  expect(hs.tokenOk).toBe(true);
  good.send(['', 'time', `${id}#ok`]);
  // Skip node-port traffic (the captured streams made the node global: it sends g_global).
  expect(await good.nextMatching((m) => m[0] !== '')).toEqual(['ok', expect.any(Number)]);
  good.destroy();
  await logLine(new RegExp(`^connection to ${escapeRe(id)} lost: `));
}

describe('live node, damaged handshakes', () => {
  it('each ends completed (credentials intact) or closed with a logged reason; nothing delivered otherwise', async () => {
    let run = 0;
    const outcomes = { rejected: 0, hungUp: 0, completed: 0 };
    await fc.assert(
      fc.asyncProperty(edits, chunking, async (list, cutAt) => {
        const id = `fz${++run}`;
        delivered.length = 0;
        freshFailureBudget();
        const fake = await FakePeer.dial(node.binds[0]!);
        const theirs: [string, string] = [await fake.readLine(), await fake.readLine()];
        const own: [string, string] = [perlGreeting({ nodeId: id, peeraddr: fake.peeraddr }), perlNonce()];
        const auth = `hmac_sha3_512;${hmacToken(SECRET, fourLines(own, theirs))};cbor`;
        const original = Buffer.from(`${own[0]}\n${own[1]}\n${auth}\n`);
        const { bytes, firstChange } = mutate(original, list);
        // A frame for the sink right behind the auth line, as Perl sends its first frame.
        const wire = Buffer.concat([bytes, perlCbor([sink.slice(sink.indexOf('#') + 1), 'smuggled', id])]);
        for (const c of chunked(wire, cutAt)) fake.write(c);
        const up = () => status.some((s) => s.type === 'up' && s.node === id);
        await settle(fake, up);
        const intact = firstChange >= original.length - 5; // at most the framing/terminator changed
        if (up()) {
          outcomes.completed++;
          expect(intact, `completed with damaged credentials: ${bytes.toString()}`).toBe(true);
          fake.destroy();
          await logLine(new RegExp(`^connection to ${escapeRe(id)} lost: `));
          return;
        }
        if (!fake.isClosed) {
          outcomes.hungUp++;
          fake.end();
          await within(fake.waitClosed(), 3000, 'close after hang-up');
        } else outcomes.rejected++;
        const line = await logLine(new RegExp(`^${escapeRe(fake.localAddr)}: handshake failed: .`));
        expect(line.text.length).toBeGreaterThan(fake.localAddr.length + 20);
        expect(delivered).toEqual([]);
      }),
      { numRuns: 120 },
    );
    console.log(`damaged handshakes over TCP: ${JSON.stringify(outcomes)}`);
    expect(outcomes.rejected).toBeGreaterThan(30);
    await goodPeerStillServed('after-handshake-fuzz');
  });
});

describe('live node, damaged data-phase streams', () => {
  const streams = goldenStreams().filter((s) => s.stream.length > 0);

  it('each ends with the connection closed with a logged reason (protocol error, or the fake hanging up)', async () => {
    let run = 0;
    const outcomes = { protocolError: 0, stillUp: 0 };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...streams), edits, chunking, async (s, list, cutAt) => {
        const id = `fs${++run}`;
        const fake = await FakePeer.dial(node.binds[0]!);
        await fake.handshake({ nodeId: id, secret: SECRET, framings: s.format, sendFraming: s.format });
        await settle(fake, () => status.some((x) => x.type === 'up' && x.node === id));
        const { bytes } = mutate(s.stream, list);
        for (const c of chunked(bytes, cutAt)) fake.write(c);
        await settle(fake, () => false);
        const lost = new RegExp(`^connection to ${escapeRe(id)} lost: `);
        const closedByNode = fake.isClosed;
        if (!closedByNode) {
          fake.end();
          await within(fake.waitClosed(), 3000, 'close after hang-up');
        }
        const text = (await logLine(lost)).text;
        if (/ lost: protocol error: ./.test(text)) outcomes.protocolError++;
        else {
          // The node only ever closes a live connection on bad input with a protocol error.
          expect(closedByNode).toBe(false);
          expect(text).toMatch(/ lost: connection closed by peer$/);
          outcomes.stillUp++;
        }
        const down = status.find((x) => x.type === 'down' && x.node === id);
        expect(down).toBeDefined();
      }),
      { numRuns: 120 },
    );
    console.log(`damaged data-phase streams over TCP: ${JSON.stringify(outcomes)}`);
    expect(outcomes.protocolError).toBeGreaterThan(20);
    // Nothing worse than expected in the log: no monitor/handler crash, no unexpected error.
    const bad = logs.filter((l) => /threw|uncaught|failed to start/i.test(l.text));
    expect(bad).toEqual([]);
    await goodPeerStillServed('after-stream-fuzz');
  });
});
