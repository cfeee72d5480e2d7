import { Encoder } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import {
  expectedHops,
  expectedMessagesPerSet,
  growthExponent,
  growthText,
  linearFit,
  percentile,
} from '../../bench/cluster-model.js';
import { asciiPlot, svgPlot } from '../../bench/plot.js';
import { itemEnd, itemScanner } from '../../bench/raw-cbor.js';

describe('cluster benchmark model', () => {
  it('a db.set costs N messages: to the master, to the other globals, to every other monitor', () => {
    expect(expectedMessagesPerSet(20, 1)).toBe(20);
    expect(expectedMessagesPerSet(200, 3)).toBe(200);
    expect(expectedHops(1)).toBe(2);
    expect(expectedHops(3)).toBe(3);
  });

  it('fits the exponent of a power law on log-log axes', () => {
    const linear = [20, 50, 100, 200].map((n) => [n, 3 * n] as [number, number]);
    expect(growthExponent(linear)).toBeCloseTo(1, 6);
    const square = [20, 50, 100].map((n) => [n, n * n] as [number, number]);
    expect(growthExponent(square)).toBeCloseTo(2, 6);
    expect(growthExponent([[20, 5]])).toBeNaN();
    expect(growthText(growthExponent(linear))).toBe('∝ N^1.00');
    expect(growthText(0.05)).toMatch(/^flat/);
  });

  it('percentile takes the nearest rank below, 0 for no samples', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 0.5)).toBe(51);
    expect(percentile(xs, 0.99)).toBe(100);
    expect(percentile([], 0.5)).toBe(0);
  });
});

describe('benchmark plots', () => {
  const series = [
    {
      name: 'aemp',
      mark: 'a',
      points: [
        [20, 20],
        [200, 200],
      ] as [number, number][],
    },
    {
      name: 'relay',
      mark: 'r',
      points: [
        [20, 10],
        [200, 100],
      ] as [number, number][],
    },
  ];

  it('puts the extremes of the character plot in its corners', () => {
    const lines = asciiPlot('t', series, 10, 5).split('\n');
    expect(lines[0]).toBe('t');
    // Top row: aemp at N=200 (the largest y), right edge; bottom row: relay at N=20.
    expect(lines[1]!.endsWith('a')).toBe(true);
    expect(lines[5]!.includes('|r')).toBe(true);
    expect(lines.at(-1)).toContain('a aemp');
  });

  it('writes an SVG document with one polyline per series', () => {
    const svg = svgPlot([{ title: 'x < y', xLabel: 'nodes', series }]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg).toContain('x &lt; y');
  });
});

describe('bytes-only scanner', () => {
  const enc = new Encoder({ useRecords: false });
  const frames = [
    enc.encode(['port', 'ping', 1, null]),
    enc.encode(['port', 'ping', 2, 'x'.repeat(1024)]),
    enc.encode(['port', 'ping', 3, 'y'.repeat(70_000)]),
    enc.encode({ a: [1, 2, { b: 'c' }] }),
    Buffer.from([0xf7]),
  ];
  const all = Buffer.concat(frames);

  it('finds the end of each item from its heads', () => {
    let pos = 0;
    for (const f of frames) {
      expect(itemEnd(all, pos)).toBe(pos + f.length);
      pos += f.length;
    }
    expect(itemEnd(all.subarray(0, 3), 0)).toBe(0);
  });

  for (const size of [1, 7, 1000, all.length]) {
    it(`counts every item once, however the bytes are cut (${size}-byte chunks)`, () => {
      const firsts: number[] = [];
      const scan = itemScanner((first) => firsts.push(first));
      for (let at = 0; at < all.length; at += size) scan(all.subarray(at, at + size));
      expect(firsts).toEqual(frames.map((f) => f[0]));
    });
  }
});

describe('linear fit', () => {
  it('recovers intercept and slope', () => {
    const fit = linearFit([20, 50, 100, 200].map((x) => [x, 700 + 9.5 * x] as [number, number]));
    expect(fit.a).toBeCloseTo(700, 6);
    expect(fit.b).toBeCloseTo(9.5, 6);
    expect(linearFit([[1, 2]]).b).toBeNaN();
  });
});
