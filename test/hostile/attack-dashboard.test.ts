/**
 * Attacks on the dashboard: a web page that rebinds its DNS name to 127.0.0.1 (Host check),
 * requests that try to change something (only GET is answered), paths outside the page's
 * assets, a crowd of event-stream clients (bounded), malformed HTTP, and peer-controlled text
 * (node IDs, addresses, DB keys and values, log lines) carrying markup, which the page must
 * show as text in a real browser.
 */
import { createConnection, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_MAX_CLIENTS } from '../../src/streams/observe/dashboard-server.js';
import type { NetworkSnapshot } from '../../src/streams/observe/snapshot.js';
import {
  EventStream,
  fakeLink,
  fakeNode,
  fakeSnapshot,
  fetchText,
  launchChromium,
  NO_CHROMIUM,
  testDashboard,
} from '../helpers/dashboard.js';
import { within } from '../helpers/fake-peer.js';

describe('dashboard attacks', () => {
  it('refuses a rebinding Host on the page, the assets and the event stream', async () => {
    const { d, snapshots } = await testDashboard();
    snapshots.next(fakeSnapshot(['secret-node']));
    for (const path of ['/', '/dashboard.js', '/vendor/d3-force.js', '/events']) {
      for (const host of [`evil.example:${d.port}`, 'evil.example', `127.0.0.1.nip.example:${d.port}`]) {
        const r = await fetchText(d.port, path, { host });
        expect(r.status, `${host} ${path}`).toBe(403);
        expect(r.body).not.toContain('secret-node');
      }
    }
    expect(d.clients).toBe(0);
    expect((await fetchText(d.port, '/', { host: `localhost:${d.port}` })).status).toBe(200);
  });

  it('answers only GET: every other method is 405 on known paths, 404 elsewhere', async () => {
    const { d } = await testDashboard();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']) {
      for (const path of ['/', '/events', '/dashboard.js']) {
        const r = await fetchText(d.port, path, { method, body: method === 'HEAD' ? undefined : '{}' });
        expect(r.status, `${method} ${path}`).toBe(405);
        expect(r.headers.allow).toBe('GET');
      }
      expect((await fetchText(d.port, '/admin', { method })).status).toBe(404);
    }
    expect(d.clients).toBe(0);
  });

  it('serves nothing outside its own assets', async () => {
    const { d } = await testDashboard();
    for (const path of [
      '/vendor/../../package.json',
      '/vendor/%2e%2e/%2e%2e/package.json',
      '/vendor/d3-force/package.json',
      '/../../../etc/passwd',
      '/dashboard.js/',
      '//events',
      'http://evil.example/events',
    ]) {
      const r = await fetchText(d.port, path);
      expect(r.status, path).toBe(404);
    }
  });

  it(`bounds the event-stream clients (${DASHBOARD_MAX_CLIENTS} at once)`, async () => {
    const { d } = await testDashboard();
    const clients = Array.from({ length: DASHBOARD_MAX_CLIENTS + 20 }, () => new EventStream(d.port));
    const statuses = await Promise.all(clients.map((c) => c.opened()));
    expect(statuses.filter((s) => s === 200)).toHaveLength(DASHBOARD_MAX_CLIENTS);
    expect(statuses.filter((s) => s === 503)).toHaveLength(20);
    expect(d.clients).toBe(DASHBOARD_MAX_CLIENTS);
    expect(d.refused).toBe(20);
    for (const c of clients) c.close();
  });

  it('bounds idle connections that never send a request, and the newest takes the place of the oldest', async () => {
    const { d } = await testDashboard({ maxClients: 4 });
    const idleLimit = 4 + 16;
    const sockets: Socket[] = [];
    const closed: Promise<void>[] = [];
    // One at a time, each accepted before the next, so that "oldest" is the order opened.
    for (let i = 0; i < idleLimit + 10; i++) {
      const s = createConnection({ host: '127.0.0.1', port: d.port });
      s.on('error', () => {});
      closed.push(new Promise<void>((resolve) => s.once('close', () => resolve())));
      await within(
        new Promise((resolve) => s.once('connect', resolve)),
        5000,
        `idle connection ${i} to be accepted`,
      );
      sockets.push(s);
    }
    // The ten oldest are closed by the server; the newest stay open.
    await within(Promise.all(closed.slice(0, 10)), 5000, 'the ten oldest idle connections to be closed');
    // A page load still gets in: held connections cannot keep a browser out.
    expect((await fetchText(d.port, '/')).status).toBe(200);
    await within(closed[10]!, 5000, 'the next oldest idle connection to make room for the page load');
    expect(sockets.slice(11).every((s) => !s.destroyed && s.readyState === 'open')).toBe(true);
    for (const s of sockets) s.destroy();
  });

  it('closes a connection that sends garbage and goes on serving', async () => {
    const { d } = await testDashboard();
    const closed = await within(
      new Promise<string>((resolve) => {
        const s = createConnection({ host: '127.0.0.1', port: d.port });
        let got = '';
        s.on('data', (b) => (got += b.toString()));
        s.on('error', () => {});
        s.on('close', () => resolve(got));
        s.write('\x00\x01GARBAGE \xff\r\n\r\n');
      }),
      5000,
      'connection closed after garbage',
    );
    expect(closed).not.toContain('200 OK');
    expect((await fetchText(d.port, '/')).status).toBe(200);
  });

  if (NO_CHROMIUM) it.skip(NO_CHROMIUM, () => {});
  it.skipIf(NO_CHROMIUM)('shows markup in node IDs, DB entries and log lines as text', async () => {
    const { d, snapshots } = await testDashboard();
    const img = '<img src=x onerror="window.__pwned=1">';
    const script = '<script>window.__pwned=2</script>';
    const evilNode = `evil/${img}`;
    const snapshot: NetworkSnapshot = {
      ...fakeSnapshot(['seed']),
      nodes: [fakeNode('seed', { global: true }), fakeNode(evilNode, { addresses: [script] })],
      links: [fakeLink('seed', evilNode, 3)],
      families: [{ family: `fam${img}`, entries: [{ key: script, value: img }], truncated: false }],
      logs: [{ time: 1, node: evilNode, level: 3, message: `hello ${script}${img}` }],
    };
    snapshots.next(snapshot);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      // The page must work under its own Content-Security-Policy: nothing it does is refused.
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(String(e)));
      await within(page.goto(d.url), 10_000, 'the dashboard page to load');
      await within(
        page.waitForFunction(
          () => Number((globalThis as any).document.getElementById('graph')?.dataset.updates) >= 1,
        ),
        10_000,
        'the page to show the first view',
      );
      const seen = await page.evaluate(() => {
        // Runs in the page: the test's own type library has no DOM.
        const doc = (globalThis as any).document;
        const texts = (sel: string, f: (e: any) => string) => [...doc.querySelectorAll(sel)].map(f);
        return {
          pwned: (globalThis as any).__pwned ?? null,
          images: doc.querySelectorAll('img').length as number,
          scripts: texts('script', (e) => e.getAttribute('src')),
          labels: texts('#graph .node title', (e) => e.textContent),
          table: doc.querySelector('#nodes').textContent as string,
          tableTitles: texts('#nodes td.id', (e) => e.title),
          db: doc.querySelector('#families').textContent as string,
          log: doc.querySelector('#logs').textContent as string,
        };
      });
      expect(problems).toEqual([]);
      expect(seen.pwned).toBeNull();
      expect(seen.images).toBe(0);
      expect(seen.scripts.every((s) => s !== null)).toBe(true);
      expect(seen.labels.join('\n')).toContain(evilNode);
      expect(seen.labels.join('\n')).toContain(script);
      expect(seen.table).toContain('evil/<img src=x onerror=');
      expect(seen.tableTitles).toContain(evilNode);
      expect(seen.db).toContain(script);
      expect(seen.db).toContain(img);
      expect(seen.db).toContain(`fam${img}`);
      expect(seen.log).toContain(`hello ${script}${img}`);
    } finally {
      await browser.close();
    }
  });
});
