/**
 * The dashboard in a real browser over a real network: a global seed node in this process
 * serving the dashboard (observeNetwork of itself), two child-process nodes with it as their
 * seed, one of them receiving a stream of messages. Headless Chromium (Debian's `chromium`,
 * driven by puppeteer-core) must show three nodes and two links, rates that rise while the
 * traffic flows and fall when it stops, and the graph must lose a node that stops answering
 * (SIGSTOP) once the heartbeat declares it down. A screenshot goes to a temporary directory
 * (and to $DASHBOARD_SCREENSHOT if set, which is how docs/dashboard.png is made).
 *
 * Skipped, saying why, where Chromium is not installed.
 */
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configure, LEVEL } from '../../src/index.js';
import { type DashboardServer, startDashboard } from '../../src/streams/observe/dashboard-server.js';
import { observeNetwork } from '../../src/streams/observe/network-view.js';
import { launchChromium, NO_CHROMIUM } from '../helpers/dashboard.js';
import { within } from '../helpers/fake-peer.js';
import { SECRET, startNode } from '../helpers/spawn-node.js';

/** Short heartbeats: a silent node is down after 3 × 0.2 s. */
const HB = { heartbeat_interval: 0.2, heartbeat_misses: 3 };
const GLOBAL = { services: ['AnyEvent::MP::Global::'] };

/** What the graph element says about itself (see dashboard-page.ts). */
interface GraphState {
  nodes: number;
  links: number;
  msgRate: number;
  updates: number;
  labels: string[];
}

if (NO_CHROMIUM) console.warn(NO_CHROMIUM);

describe('dashboard in Chromium', () => {
  if (NO_CHROMIUM) it.skip(NO_CHROMIUM, () => {});
  it.skipIf(NO_CHROMIUM)(
    'shows three nodes and two links, moving rates, and drops a silent node',
    async () => {
      const seed = configure({
        nodeid: 'dash-seed/',
        norc: true,
        secret: SECRET,
        binds: ['127.0.0.1:0'],
        seeds: [],
        ...GLOBAL,
        ...HB,
      });
      let dash: DashboardServer | undefined;
      let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
      let traffic: NodeJS.Timeout | undefined;
      const shots = mkdtempSync(join(tmpdir(), 'aemp-dashboard-'));
      try {
        await within(seed.ready, 10_000, 'the seed node to listen');
        const [busy, quiet] = await Promise.all([
          startNode('busy', { seeds: seed.binds, ...HB }),
          startNode('quiet', { seeds: seed.binds, ...HB }),
        ]);
        await Promise.all([
          busy.nodeEvent('up', seed.id, { timeoutMs: 10_000 }),
          quiet.nodeEvent('up', seed.id, { timeoutMs: 10_000 }),
        ]);
        const sink = await busy.port('silent');

        dash = await startDashboard(observeNetwork(seed, { intervalMs: 250, families: true, logs: true }));
        browser = await launchChromium();
        const page = await browser.newPage();
        await page.setViewport({ width: 1280, height: 900 });
        await within(page.goto(dash.url), 10_000, 'the dashboard page to load');

        const state = (): Promise<GraphState> =>
          page.evaluate(() => {
            // Runs in the page: the test's own type library has no DOM.
            const doc = (globalThis as any).document;
            const g = doc.getElementById('graph');
            return {
              nodes: Number(g.dataset.nodes),
              links: Number(g.dataset.links),
              msgRate: Number(g.dataset.msgRate),
              updates: Number(g.dataset.updates),
              labels: [...doc.querySelectorAll('#graph .node title')].map((t: any) => String(t.textContent)),
            };
          });
        /** Waits until the page's graph satisfies `test` (checked in the page at every change). */
        const graphShows = async (what: string, test: string) => {
          await within(
            page.waitForFunction(
              `(() => { const d = document.getElementById('graph').dataset; return ${test}; })()`,
              { timeout: 0, polling: 'mutation' },
            ),
            20_000,
            what,
          );
          return state();
        };

        const full = await graphShows('three nodes and two links', 'd.nodes === "3" && d.links === "2"');
        expect(full.labels.some((l) => l.startsWith(`${seed.id} (global)`))).toBe(true);
        expect(full.labels.some((l) => l.startsWith(busy.id))).toBe(true);
        expect(full.labels.some((l) => l.startsWith(quiet.id))).toBe(true);

        // A stream of messages to the busy node: its link's rate rises above zero.
        seed.log(LEVEL.info, `sending a stream of messages to ${sink}`, 'dashboard-test');
        traffic = setInterval(() => {
          for (let i = 0; i < 20; i++) seed.snd(sink, 'tick', i);
        }, 10);
        const busyState = await graphShows('a message rate while traffic flows', 'Number(d.msgRate) > 50');
        expect(busyState.msgRate).toBeGreaterThan(50);
        // Let the layout settle for the picture (two more views).
        const settled = await graphShows('two more views', `Number(d.updates) >= ${busyState.updates + 2}`);
        expect(settled.msgRate).toBeGreaterThan(200);
        const shot = join(shots, 'dashboard.png');
        await page.screenshot({ path: shot, fullPage: true });
        expect(statSync(shot).size).toBeGreaterThan(10_000);
        const keep = process.env.DASHBOARD_SCREENSHOT;
        if (keep) copyFileSync(shot, keep);

        // Without the stream only the dashboard's own polling and the heartbeats are left.
        clearInterval(traffic);
        traffic = undefined;
        const calm = await graphShows(
          'the rate to fall after the traffic stopped',
          `Number(d.msgRate) < ${settled.msgRate / 4}`,
        );
        expect(calm.msgRate).toBeLessThan(settled.msgRate / 4);

        // A node that stops answering is declared down by the heartbeat and leaves the graph.
        quiet.signal('SIGSTOP');
        const left = await graphShows(
          'the silent node to leave the graph',
          'd.nodes === "2" && d.links === "1"',
        );
        expect(left.labels.some((l) => l.startsWith(quiet.id))).toBe(false);
        expect(left.labels.some((l) => l.startsWith(busy.id))).toBe(true);
      } finally {
        if (traffic) clearInterval(traffic);
        await browser?.close();
        await dash?.close();
        await seed.close();
        rmSync(shots, { recursive: true, force: true });
      }
    },
    90_000,
  );
});
