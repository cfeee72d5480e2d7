/**
 * The dashboard's picture of a snapshot: links merged per pair with each direction's rate from
 * the sender, peer text bounded and turned into plain strings, history bounded per metric, and
 * the Host check against DNS rebinding.
 */

import { describe, expect, it } from 'vitest';
import { hostAllowed, hostOf } from '../../src/streams/observe/dashboard-server.js';
import {
  clip,
  dashboardView,
  FAMILY_ENTRIES_MAX,
  MetricHistory,
  metricKey,
  VALUE_TEXT_MAX,
  valueText,
} from '../../src/streams/observe/dashboard-view.js';
import type { NetworkSnapshot } from '../../src/streams/observe/snapshot.js';
import { statsLink, statsNode } from '../helpers/snapshots.js';

const node = statsNode;
const link = statsLink;

function snapshot(extra: Partial<NetworkSnapshot> = {}): NetworkSnapshot {
  return { at: 1, observer: 'a', nodes: [], links: [], families: [], logs: [], ...extra };
}

describe('dashboardView', () => {
  it('merges both ends of a connection into one link, each direction rated by its sender', () => {
    const v = dashboardView(
      snapshot({
        nodes: [node('a'), node('b')],
        links: [
          link('b', 'a', { msgRateOut: 7, msgRateIn: 99, byteRateOut: 70, queued: 1 }),
          link('a', 'b', { msgRateOut: 5, msgRateIn: 98, byteRateOut: 50, unsentBytes: 10 }),
        ],
      }),
    );
    expect(v.links).toEqual([
      {
        a: 'a',
        b: 'b',
        msgRateAB: 5,
        msgRateBA: 7,
        byteRateAB: 50,
        byteRateBA: 70,
        queued: 1,
        unsentBytes: 10,
      },
    ]);
  });

  it("takes a direction from the receiver's in rate when only the receiver reported", () => {
    const v = dashboardView(
      snapshot({ nodes: [node('a'), node('b')], links: [link('b', 'a', { msgRateIn: 3, byteRateIn: 30 })] }),
    );
    expect(v.links[0]).toMatchObject({ msgRateAB: 3, byteRateAB: 30, msgRateBA: 0 });
  });

  it('leaves out links that are down or lead to a node not in the picture', () => {
    const v = dashboardView(
      snapshot({
        nodes: [node('a'), node('b')],
        links: [link('a', 'b', { up: false }), link('a', 'gone'), link('a', 'a')],
      }),
    );
    expect(v.links).toEqual([]);
  });

  it('turns DB values into bounded text and bounds the entries of a family', () => {
    const entries: { key: string; value: unknown }[] = Array.from(
      { length: FAMILY_ENTRIES_MAX + 5 },
      (_, i) => ({
        key: `k${i}`,
        value: i,
      }),
    );
    entries[0] = { key: 'k0', value: { html: '<img src=x onerror=alert(1)>', big: 10n } };
    entries[1] = { key: 'x'.repeat(5000), value: 'y'.repeat(5000) };
    const v = dashboardView(snapshot({ families: [{ family: 'f', entries, truncated: false }] }));
    const f = v.families[0]!;
    expect(f.entries).toHaveLength(FAMILY_ENTRIES_MAX);
    expect(f.truncated).toBe(true);
    expect(f.entries[0]!.value).toBe('{"html":"<img src=x onerror=alert(1)>","big":"10"}');
    expect(f.entries[1]!.key).toHaveLength(VALUE_TEXT_MAX);
    expect(f.entries[1]!.value).toHaveLength(VALUE_TEXT_MAX);
    expect(f.entries.every((e) => typeof e.value === 'string')).toBe(true);
  });

  it('renders byte strings, maps and cycles without throwing', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(valueText(new Uint8Array(3))).toBe('"<3 bytes>"');
    expect(valueText(new Map([['k', 1]]))).toBe('{"k":1}');
    expect(valueText(cyclic)).toBe('<unprintable>');
    expect(valueText(undefined)).toBe('undefined');
  });

  it('keeps node fields it understands and drops malformed ones', () => {
    const v = dashboardView(
      snapshot({
        nodes: [
          node('n', {
            kind: 'bogus' as never,
            global: 'yes' as never,
            rss: Number.NaN,
            heapUsed: 5,
            loopDelayMs: { p50: 1, max: 2 },
          }),
        ],
      }),
    );
    expect(v.nodes[0]).toMatchObject({ kind: 'unknown', global: false, rss: null, heapUsed: 5, loopMax: 2 });
  });

  it('keeps the newest log lines, each bounded', () => {
    const logs = Array.from({ length: 300 }, (_, i) => ({ time: i, node: 'n', level: 7, message: `m${i}` }));
    logs[299]!.message = 'z'.repeat(2000);
    const v = dashboardView(snapshot({ logs }));
    expect(v.logs).toHaveLength(100);
    expect(v.logs[0]!.message).toBe('m200');
    expect(v.logs[99]!.message.length).toBe(500);
  });

  it('clip marks the cut', () => {
    expect(clip('abcdef', 4)).toBe('abc…');
    expect(clip('abc', 4)).toBe('abc');
  });
});

describe('MetricHistory', () => {
  const view = (rss: number, ids = ['a']) =>
    dashboardView(snapshot({ nodes: ids.map((id) => node(id, { rss })) }));

  it('keeps the last N points per metric, oldest first', () => {
    const h = new MetricHistory(3);
    let v = h.record(view(1));
    for (const r of [2, 3, 4]) v = h.record(view(r));
    expect(v.history[metricKey('node', 'a', 'rss')]).toEqual([2, 3, 4]);
  });

  it('forgets the metrics of a node that left', () => {
    const h = new MetricHistory(3);
    h.record(view(1, ['a', 'b']));
    expect(h.size).toBe(2);
    const v = h.record(view(1, ['a']));
    expect(h.size).toBe(1);
    expect(Object.keys(v.history)).toEqual([metricKey('node', 'a', 'rss')]);
  });

  it('cannot be confused by node IDs that look like keys or __proto__', () => {
    const h = new MetricHistory(3);
    const v = h.record(view(1, ['__proto__', 'a", "b']));
    expect(Object.keys(v.history)).toHaveLength(2);
    expect(v.history[metricKey('node', '__proto__', 'rss')]).toEqual([1]);
  });
});

describe('Host check', () => {
  it('allows loopback names and addresses, with or without a port', () => {
    for (const h of ['127.0.0.1', '127.0.0.1:4080', 'localhost:1', 'LOCALHOST', '[::1]:4080', '127.1.2.3'])
      expect(hostAllowed(h, '127.0.0.1'), h).toBe(true);
  });

  it('refuses other names (DNS rebinding) and a missing header', () => {
    for (const h of [
      'evil.example',
      'evil.example:4080',
      '127.0.0.1.evil.example',
      'localhost.evil.com:1',
      '',
    ])
      expect(hostAllowed(h, '127.0.0.1'), h).toBe(false);
    expect(hostAllowed(undefined, '127.0.0.1')).toBe(false);
  });

  it('allows the configured host, and address literals only when listening on every interface', () => {
    expect(hostAllowed('dash.lan:4080', 'dash.lan')).toBe(true);
    expect(hostAllowed('10.0.0.5:4080', 'dash.lan')).toBe(false);
    expect(hostAllowed('10.0.0.5:4080', '0.0.0.0')).toBe(true);
    expect(hostAllowed('[fe80::1]:4080', '::')).toBe(true);
    expect(hostAllowed('evil.example', '0.0.0.0')).toBe(false);
  });

  it('hostOf strips the port', () => {
    expect(hostOf('[::1]:80')).toBe('[::1]');
    expect(hostOf('Example.COM:80')).toBe('example.com');
  });
});
