/**
 * Frames that decode to far more memory than their size, sent by an authenticated peer to a node
 * in its own process (memory read from /proc: peak RSS since a reset, and heap after a full GC).
 *
 * At the default limits (max_frame_bytes 16 MiB, max_frame_items 1,000,000) every amplifying
 * frame just under the byte limit is refused by its item count: the attacker's connection ends
 * with a protocol error, the node's memory stays within a stated bound, and a peer connected
 * before the attack is still served. Frames at the limits (1,000,000 items; 16 MiB of bytes that
 * are not UTF-8; a 16 MiB bignum; both limits at once) are delivered quickly, within the same
 * bound.
 * With the item cap raised, an indefinite-length string of millions of empty chunks decodes
 * without costing memory per chunk.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_ITEMS } from '../../src/protocol/constants.js';
import { FakePeer, within } from '../helpers/fake-peer.js';
import { CHILD_SECRET, type HostileChild, mib, startChild } from '../helpers/hostile-child.js';

const MiB = 1024 * 1024;
/** Most the node's peak RSS may grow while it receives and drops (or delivers) one such frame. */
const PEAK_BOUND = 192 * MiB;
/** Most its heap (after a full GC) may grow over all the attacks of one test. */
const HEAP_BOUND = 16 * MiB;

/** Just under the default frame limit, so the byte limit never decides. */
const FRAME = DEFAULT_MAX_FRAME_BYTES - 64;

function head(major: number, n: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Peak resident set of a process, in bytes. */
function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** Current resident set of a process, in bytes. */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** Resets the peak RSS to the current RSS (clear_refs 5); false where that is not allowed. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** A hub node in its own process, and a good peer connected to it before any attack. */
async function hubWithBystander(opts: Record<string, unknown> = {}) {
  const hub = await (await startChild('hub')).configure({ nodeid: 'frames-hub', ...opts });
  const good = await FakePeer.dial(hub.addr);
  await good.handshake({ nodeId: 'good', secret: CHILD_SECRET });
  let k = 0;
  const check = async () => {
    const tag = `g${++k}`;
    good.send(['', 'time', `good#${tag}`]);
    expect(await good.next(15_000)).toEqual([tag, expect.any(Number)]);
  };
  await check();
  return { hub, check };
}

async function attacker(hub: HostileChild, nodeId: string, framing: 'cbor' | 'json'): Promise<FakePeer> {
  const fake = await FakePeer.dial(hub.addr);
  await fake.handshake({ nodeId, secret: CHILD_SECRET, framings: framing, sendFraming: framing });
  fake.send(['', 'time', `${nodeId}#hs`]);
  expect(await fake.next()).toEqual(['hs', expect.any(Number)]);
  return fake;
}

/** Peak RSS growth of the hub while `run` goes on (from a reset peak, or from the RSS before). */
async function peakDuring(hub: HostileChild, run: () => Promise<void>): Promise<number> {
  const base = rss(hub.pid);
  const reset = resetPeak(hub.pid);
  const before = reset ? peakRss(hub.pid) : base;
  await run();
  return peakRss(hub.pid) - before;
}

const cborAttacks: [string, () => Buffer][] = [
  [
    'CBOR [(_ h"", h"", …)]: an indefinite byte string of ~16.8 million empty chunks',
    () => Buffer.concat([Buffer.of(0x81, 0x5f), Buffer.alloc(FRAME - 3, 0x40), Buffer.of(0xff)]),
  ],
  [
    'CBOR [[], [], …]: ~16.8 million empty arrays',
    () => Buffer.concat([head(4, FRAME - 5), Buffer.alloc(FRAME - 5, 0x80)]),
  ],
  [
    'CBOR [{}, {}, …]: ~16.8 million empty maps',
    () => Buffer.concat([head(4, FRAME - 5), Buffer.alloc(FRAME - 5, 0xa0)]),
  ],
  [
    'CBOR [{h"": 0, h"": 0, …}]: a map of ~8.4 million empty keys',
    () => {
      const pairs = (FRAME - 6) >> 1;
      return Buffer.concat([Buffer.of(0x81), head(5, pairs), Buffer.alloc(pairs * 2, 0x40).fill(0, 1, 2)]);
    },
  ],
  [
    'CBOR [(_ [], [], …)]: an indefinite array of ~16.8 million empty arrays',
    () => Buffer.concat([Buffer.of(0x81, 0x9f), Buffer.alloc(FRAME - 3, 0x80), Buffer.of(0xff)]),
  ],
];

/** `[u,u,…,u]` of about FRAME bytes. */
function jsonOf(unit: string): Buffer {
  const n = Math.floor((FRAME - 2) / (unit.length + 1));
  return Buffer.from(`[${Array(n).fill(unit).join(',')}]`);
}

const jsonAttacks: [string, () => Buffer][] = [
  ['JSON [[],[],…]: ~5.6 million empty arrays', () => jsonOf('[]')],
  ['JSON [{},{},…]: ~5.6 million empty objects', () => jsonOf('{}')],
  ['JSON [0,0,…]: ~8.4 million zeros', () => jsonOf('0')],
];

describe('amplifying frames from an authenticated peer', () => {
  it.each([
    ['cbor' as const, cborAttacks],
    ['json' as const, jsonAttacks],
  ])(
    '%s: each is refused by its item count, memory stays bounded, the good peer is served',
    async (framing, attacks) => {
      const { hub, check } = await hubWithBystander();
      const heapBefore = (await hub.request({ cmd: 'mem' })).heapUsed;
      let i = 0;
      for (const [what, make] of attacks) {
        const frame = make();
        expect(frame.length).toBeLessThanOrEqual(DEFAULT_MAX_FRAME_BYTES);
        const id = `amp${framing}${++i}`;
        const fake = await attacker(hub, id, framing);
        const t0 = performance.now();
        const peak = await peakDuring(hub, async () => {
          const lost = hub.logged(new RegExp(`^connection to ${id} lost: `), { timeoutMs: 30_000 });
          fake.write(frame);
          const line = await lost;
          expect(line.text, what).toMatch(
            new RegExp(
              `protocol error: (CBOR|JSON) frame holds more than ${DEFAULT_MAX_FRAME_ITEMS} data items$`,
            ),
          );
          await within(fake.waitClosed(15_000), 20_000, 'attacker closed');
        });
        console.log(
          `${what} (${mib(frame.length)} MiB): refused in ${(performance.now() - t0).toFixed(0)} ms, ` +
            `node peak RSS +${mib(peak)} MiB`,
        );
        expect(peak, what).toBeLessThan(PEAK_BOUND);
        await check();
      }
      const heapAfter = (await hub.request({ cmd: 'mem' })).heapUsed;
      console.log(`${framing}: node heap after GC ${mib(heapBefore)} → ${mib(heapAfter)} MiB`);
      expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND);
      expect(await hub.request({ cmd: 'upNodes' })).toEqual(['good']);
    },
    120_000,
  );

  it('frames at the limits are delivered, each within the memory bound', async () => {
    const { hub, check } = await hubWithBystander();
    // a port that counts what it receives and keeps nothing
    const port = (await hub.request({ cmd: 'ports', count: 1 })).first;
    const name = port.slice(port.indexOf('#') + 1);
    const fake = await attacker(hub, 'atcap', 'cbor');
    const nameBytes = Buffer.concat([Buffer.of(0x40 | name.length), Buffer.from(name)]);
    // [name, [{} × n]]: 1 + 2 + n items
    const n = DEFAULT_MAX_FRAME_ITEMS - 3;
    const maps = Buffer.concat([Buffer.of(0x82), nameBytes, head(4, n), Buffer.alloc(n, 0xa0)]);
    // [name, {key: 0, …}] with ~16 MiB of distinct 28-byte keys: at both limits at once
    const pairs = (DEFAULT_MAX_FRAME_ITEMS - 3) >> 1;
    const keyLen = Math.min(28, Math.floor((FRAME - 64) / pairs) - 2);
    // each pair: 58 LEN KEY… 00
    const pairsBuf = Buffer.alloc(pairs * (keyLen + 3));
    for (let k = 0, p = 0; k < pairs; k++) {
      pairsBuf[p++] = 0x58;
      pairsBuf[p++] = keyLen;
      p += pairsBuf.write(k.toString(36).padStart(keyLen, '.'), p, 'latin1');
      pairsBuf[p++] = 0;
    }
    const keyed = Buffer.concat([Buffer.of(0x82), nameBytes, head(5, pairs), pairsBuf]);
    // [name, h'ff ff …']: ~16 MiB of bytes that are not UTF-8 (decoded twice: UTF-8, then Latin-1)
    const bytes = Buffer.concat([
      Buffer.of(0x82),
      nameBytes,
      head(2, FRAME - 6 - nameBytes.length),
      Buffer.alloc(FRAME - 6 - nameBytes.length, 0xff),
    ]);
    // [name, 2(h'ab ab …')]: a ~16 MiB bignum
    const bignum = Buffer.concat([
      Buffer.of(0x82),
      nameBytes,
      Buffer.of(0xc2),
      head(2, FRAME - 7 - nameBytes.length),
      Buffer.alloc(FRAME - 7 - nameBytes.length, 0xab),
    ]);
    for (const [what, frame] of [
      [`[name, [{} × ${n}]]`, maps],
      ['[name, h"ff ff …"]', bytes],
      ['[name, 2(h"ab ab …")]', bignum],
      [`[name, {${pairs} distinct ${keyLen}-byte keys: 0}]`, keyed],
    ] as const) {
      expect(frame.length).toBeLessThanOrEqual(DEFAULT_MAX_FRAME_BYTES);
      const t0 = performance.now();
      const peak = await peakDuring(hub, async () => {
        const before = await hub.request({ cmd: 'hits' });
        fake.write(frame);
        fake.send(['', 'time', 'atcap#after']);
        expect(await fake.next(30_000)).toEqual(['after', expect.any(Number)]);
        expect(await hub.request({ cmd: 'hits' })).toBe(before + 1);
      });
      console.log(
        `${what} (${mib(frame.length)} MiB): delivered in ` +
          `${(performance.now() - t0).toFixed(0)} ms, node peak RSS +${mib(peak)} MiB`,
      );
      expect(peak, what).toBeLessThan(PEAK_BOUND);
    }
    await check();
  }, 120_000);

  it('with the item cap raised, ~16.8 million empty string chunks cost no memory per chunk', async () => {
    const { hub, check } = await hubWithBystander({ max_frame_items: 100_000_000 });
    const port = await hub.request({ cmd: 'port', kind: 'silent' });
    const name = port.slice(port.indexOf('#') + 1);
    const fake = await attacker(hub, 'chunks', 'cbor');
    const nameBytes = Buffer.concat([Buffer.of(0x40 | name.length), Buffer.from(name)]);
    const frame = Buffer.concat([
      Buffer.of(0x82),
      nameBytes,
      Buffer.of(0x5f),
      Buffer.alloc(FRAME - 3 - nameBytes.length, 0x40),
      Buffer.of(0xff),
    ]);
    const t0 = performance.now();
    const peak = await peakDuring(hub, async () => {
      fake.write(frame);
      fake.send(['', 'time', 'chunks#after']);
      expect(await fake.next(30_000)).toEqual(['after', expect.any(Number)]);
    });
    console.log(
      `[name, (_ h"" × ${frame.length - 4 - nameBytes.length})] (${mib(frame.length)} MiB) with max_frame_items ` +
        `100,000,000: delivered in ${(performance.now() - t0).toFixed(0)} ms, node peak RSS +${mib(peak)} MiB`,
    );
    expect(peak).toBeLessThan(PEAK_BOUND);
    await check();
  }, 120_000);
});
