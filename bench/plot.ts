/**
 * Small plots of series y over x for the benchmark's terminal output (characters) and as an SVG
 * file, both on log–log axes (growth ∝ x^k shows as a straight line of slope k).
 */

export interface Series {
  name: string;
  /** Character used in the terminal plot. */
  mark: string;
  points: [number, number][];
}

interface Range {
  lo: number;
  hi: number;
}

function logRange(values: number[]): Range {
  const vs = values.filter((v) => v > 0);
  if (vs.length === 0) return { lo: 0, hi: 1 };
  let lo = Math.log10(Math.min(...vs));
  let hi = Math.log10(Math.max(...vs));
  if (hi - lo < 1e-9) {
    lo -= 0.5;
    hi += 0.5;
  }
  return { lo, hi };
}

const scale = (v: number, r: Range, size: number) => ((Math.log10(v) - r.lo) / (r.hi - r.lo)) * size;

function short(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** A character plot `width` × `height` cells, with a legend; later series overdraw earlier. */
export function asciiPlot(title: string, series: Series[], width = 48, height = 12): string {
  const all = series.flatMap((s) => s.points);
  const xr = logRange(all.map(([x]) => x));
  const yr = logRange(all.map(([, y]) => y));
  const grid = Array.from({ length: height }, () => Array<string>(width).fill(' '));
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (!(x > 0 && y > 0)) continue;
      const col = Math.round(scale(x, xr, width - 1));
      const row = height - 1 - Math.round(scale(y, yr, height - 1));
      grid[row]![col] = s.mark;
    }
  }
  const yLabels = [short(10 ** yr.hi), short(10 ** yr.lo)];
  const pad = Math.max(...yLabels.map((l) => l.length));
  const lines = [title];
  grid.forEach((cells, i) => {
    const label = i === 0 ? yLabels[0]! : i === height - 1 ? yLabels[1]! : '';
    lines.push(`${label.padStart(pad)} |${cells.join('')}`);
  });
  lines.push(`${' '.repeat(pad)} +${'-'.repeat(width)}`);
  const xLo = short(10 ** xr.lo);
  const xHi = short(10 ** xr.hi);
  lines.push(`${' '.repeat(pad + 2)}${xLo}${xHi.padStart(width - xLo.length)}   (log-log)`);
  lines.push(`${' '.repeat(pad + 2)}${series.map((s) => `${s.mark} ${s.name}`).join('   ')}`);
  return lines.join('\n');
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One SVG document with the panels side by side, each a log–log line plot with a legend. */
export function svgPlot(panels: { title: string; xLabel: string; series: Series[] }[]): string {
  const W = 420;
  const H = 300;
  const m = { l: 60, r: 15, t: 30, b: 45 };
  const parts: string[] = [];
  panels.forEach((p, i) => {
    const ox = i * W;
    const all = p.series.flatMap((s) => s.points);
    const xr = logRange(all.map(([x]) => x));
    const yr = logRange(all.map(([, y]) => y));
    const pw = W - m.l - m.r;
    const ph = H - m.t - m.b;
    const X = (x: number) => ox + m.l + scale(x, xr, pw);
    const Y = (y: number) => m.t + ph - scale(y, yr, ph);
    parts.push(`<text x="${ox + W / 2}" y="18" text-anchor="middle" font-size="13">${esc(p.title)}</text>`);
    parts.push(
      `<rect x="${ox + m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`,
      `<text x="${ox + m.l + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="11">${esc(p.xLabel)} (log)</text>`,
    );
    for (const [v, anchor] of [
      [10 ** xr.lo, 'start'],
      [10 ** xr.hi, 'end'],
    ] as const)
      parts.push(
        `<text x="${X(v)}" y="${m.t + ph + 14}" text-anchor="${anchor}" font-size="10">${short(v)}</text>`,
      );
    for (const v of [10 ** yr.lo, 10 ** yr.hi])
      parts.push(
        `<text x="${ox + m.l - 4}" y="${Y(v) + 4}" text-anchor="end" font-size="10">${short(v)}</text>`,
      );
    p.series.forEach((s, j) => {
      const colour = COLOURS[j % COLOURS.length]!;
      const pts = s.points.filter(([x, y]) => x > 0 && y > 0).sort((a, b) => a[0] - b[0]);
      if (pts.length > 0)
        parts.push(
          `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts
            .map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`)
            .join(' ')}"/>`,
          ...pts.map(
            ([x, y]) => `<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${colour}"/>`,
          ),
        );
      parts.push(
        `<text x="${ox + m.l + 6}" y="${m.t + 14 + j * 13}" font-size="10" fill="${colour}">${esc(s.name)}</text>`,
      );
    });
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W * panels.length}" height="${H}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
