/**
 * The parts of observation that need no network: telling Perl greetings from ours, the fixed
 * reason labels of the metrics, and the stats answer of a node given by its shape.
 */
import { describe, expect, it } from 'vitest';
import { buildGreeting, parseGreeting } from '../../src/protocol/greeting.js';
import { reasonLabel } from '../../src/streams/observe/metrics.js';
import { kindOfGreeting } from '../../src/streams/observe/network-view.js';
import {
  collectStats,
  LOOP_RESOLUTION_MS,
  loopDelayMs,
  type StatsSource,
} from '../../src/streams/observe/stats-request.js';
import { perlGreeting } from '../helpers/fake-peer.js';

describe('kind of a peer', () => {
  it('a Perl greeting has none of our keys; ours has them', () => {
    expect(kindOfGreeting(parseGreeting(perlGreeting({ nodeId: 'perl' })))).toBe('perl');
    const ours = buildGreeting({
      nodeId: 'ours',
      auths: ['hmac_sha3_512'],
      framings: ['cbor'],
      extraKeys: { tb: '1', hb: '5' },
    });
    expect(kindOfGreeting(parseGreeting(ours))).toBe('aemp');
    expect(kindOfGreeting(undefined)).toBe('unknown');
  });
});

describe('reason labels', () => {
  it.each([
    ['heartbeat timeout', 'heartbeat_timeout'],
    ['handshake not completed within 5 s', 'timeout'],
    ['Connection timed out', 'timeout'],
    ['connection closed by peer', 'closed_by_peer'],
    ['connect ECONNREFUSED 127.0.0.1:1', 'unreachable'],
    ['authentication failure/shared secret mismatch', 'auth'],
    ['TLS peer certificate rejected: self signed', 'tls'],
    ['cbor,json: no common framing method supported', 'framing'],
    ['simultaneous connection with x, keeping the one dialled by y', 'duplicate'],
    ['I refuse to talk to myself', 'self'],
    ['send buffer overflow (1 bytes unsent, peer not reading)', 'limit'],
    ['node shutting down', 'shutdown'],
    ['\u001b[31mwhatever a peer says', 'other'],
  ])('%s → %s', (text, label) => {
    expect(reasonLabel(text)).toBe(label);
  });
});

describe('stats answer', () => {
  it("counts the node's ports, monitors, families and keys and lists its links", () => {
    const source: StatsSource = {
      id: 'n1',
      binds: ['127.0.0.1:4040'],
      kernel: { portCount: 7, remoteMonitorCount: 2, snd() {} },
      network: {
        stats: () => [
          {
            node: 'n2',
            up: true,
            messagesIn: 5,
            messagesOut: 6,
            bytesIn: 50,
            bytesOut: 60,
            queued: 0,
            unsentBytes: 3,
          },
        ],
        counts: () => ({ heartbeatTimeouts: 4 }),
      },
      db: { isGlobal: false, known: new Map([["'l", new Map([['n1', ['127.0.0.1:4040']]])]]) },
    };
    const s = collectStats(source);
    expect(s).toMatchObject({
      node: 'n1',
      kind: 'aemp',
      global: false,
      addresses: ['127.0.0.1:4040'],
      ports: 7,
      monitors: 2,
      db: { families: 1, keys: 1 },
      heartbeatMisses: 4,
      familyKeys: [["'l", 1]],
    });
    expect(s.truncated).toBeUndefined();
    expect(s.links).toEqual([
      {
        from: 'n1',
        to: 'n2',
        up: true,
        messagesIn: 5,
        messagesOut: 6,
        bytesIn: 50,
        bytesOut: 60,
        msgRateIn: 0,
        msgRateOut: 0,
        byteRateIn: 0,
        byteRateOut: 0,
        queued: 0,
        unsentBytes: 3,
      },
    ]);
  });
});

describe('event-loop delay', () => {
  /** A histogram as Node fills it: each sample is the whole time between two samples. */
  const histogram = (samplesMs: number[]) => {
    const ns = samplesMs.map((ms) => ms * 1e6).sort((a, b) => a - b);
    return {
      count: ns.length,
      max: ns.length ? ns[ns.length - 1]! : 0,
      percentile: (p: number) => ns[Math.max(0, Math.ceil((p / 100) * ns.length) - 1)] ?? Number.NaN,
    };
  };

  it('an idle loop reads 0, not the sampling interval', () => {
    expect(loopDelayMs(histogram([LOOP_RESOLUTION_MS, LOOP_RESOLUTION_MS, LOOP_RESOLUTION_MS]))).toEqual({
      p50: 0,
      max: 0,
    });
  });

  it('a 50 ms stall reads as 50 ms; a sample shorter than the interval is no negative delay', () => {
    const d = loopDelayMs(histogram([9.2, 10.4, 10.4, 60]));
    expect(d.p50).toBeCloseTo(0.4, 6);
    expect(d.max).toBeCloseTo(50, 6);
    expect(loopDelayMs(histogram([9.2])).p50).toBe(0);
  });

  it('no samples yet: zeros', () => {
    expect(loopDelayMs(histogram([]))).toEqual({ p50: 0, max: 0 });
  });
});
