/**
 * The graph layout the dashboard page uses: d3-force and the three small packages it needs
 * (about 17 kB minified together), served from node_modules as npm installed them, never from a
 * CDN. Each is the package's own UMD build, which adds its functions to the page's `d3` object.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The vendored packages in the order the page loads them (d3-force last: it uses the others). */
const VENDOR = ['d3-dispatch', 'd3-quadtree', 'd3-timer', 'd3-force'] as const;

/** The path each vendored script is served at, in load order. */
export const VENDOR_SCRIPT_PATHS: readonly string[] = VENDOR.map((n) => `/vendor/${n}.js`);

/**
 * Path → source of every vendored script. Each package is found where Node would load it from,
 * so this works from the sources, from dist/ and from an installed package alike; d3-force's
 * dependencies are looked up from d3-force, wherever npm put them.
 */
export function vendorScripts(): Map<string, string> {
  const force = createRequire(import.meta.url).resolve('d3-force');
  const fromForce = createRequire(force);
  const out = new Map<string, string>();
  for (const name of VENDOR) {
    const entry = name === 'd3-force' ? force : fromForce.resolve(name);
    out.set(`/vendor/${name}.js`, readFileSync(join(dirname(entry), `${name}.min.js`), 'utf8'));
  }
  return out;
}
