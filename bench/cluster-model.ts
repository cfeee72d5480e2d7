/**
 * What the global database's algorithm (spec global.md §7.1) implies for one `db.set`, and the
 * small statistics the cluster benchmark reports. Pure functions.
 *
 * A network of `nodes` nodes, `globals` of them global, every node monitoring the family, the
 * writer an ordinary node:
 *   writer → its master                  1 g_upd
 *   master → the other global nodes      G − 1 g_upd (the master's slave changed)
 *   every global → its monitoring slaves g_chg2 to each; a global's own monitor is local
 * so 1 + (G − 1) + (N − G) = N messages on the network, and the path is writer → master →
 * slave (2 hops) for the master's own slaves and writer → master → other global → slave
 * (3 hops) for the others. A global node sends to N/G monitors and G − 1 globals per update:
 * its work per update grows ∝ N/G.
 */

export function expectedMessagesPerSet(nodes: number, globals: number): number {
  return 1 + (globals - 1) + (nodes - globals);
}

/** Hops from the writer to the farthest monitoring node. */
export function expectedHops(globals: number): number {
  return globals > 1 ? 3 : 2;
}

/** The q-quantile of ascending `sorted` (nearest rank below), 0 for none. */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;
}

/**
 * The exponent k of y ∝ x^k fitted through the points by least squares on log–log axes
 * (NaN with fewer than two distinct positive x).
 */
export function growthExponent(points: readonly (readonly [number, number])[]): number {
  const ps = points.filter(([x, y]) => x > 0 && y > 0).map(([x, y]) => [Math.log(x), Math.log(y)] as const);
  if (ps.length < 2) return Number.NaN;
  const mx = ps.reduce((s, [x]) => s + x, 0) / ps.length;
  const my = ps.reduce((s, [, y]) => s + y, 0) / ps.length;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of ps) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx === 0 ? Number.NaN : sxy / sxx;
}

/** "∝ N^1.02" style text for an exponent. */
export function growthText(k: number, variable = 'N'): string {
  if (!Number.isFinite(k)) return 'n/a';
  if (Math.abs(k) < 0.15) return `flat (∝ ${variable}^${k.toFixed(2)})`;
  return `∝ ${variable}^${k.toFixed(2)}`;
}

/** Least-squares line y = a + b·x through the points ({a: NaN, b: NaN} with fewer than two x). */
export function linearFit(points: readonly (readonly [number, number])[]): { a: number; b: number } {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  if (n < 2 || sxx === 0) return { a: Number.NaN, b: Number.NaN };
  const b = sxy / sxx;
  return { a: my - b * mx, b };
}
