/**
 * The dashboard server over loopback HTTP, fed by a Subject of fake snapshots: the page and its
 * assets with their security headers, the event stream (latest view at once, then one per
 * snapshot, with history), a client that stops reading is dropped while the others go on,
 * and close() ends everything.
 */
import { createConnection } from 'node:net';
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { startDashboard } from '../../src/streams/observe/dashboard-server.js';
import { metricKey } from '../../src/streams/observe/dashboard-view.js';
import type { NetworkSnapshot } from '../../src/streams/observe/snapshot.js';
import { EventStream, fakeSnapshot, fetchText, testDashboard } from '../helpers/dashboard.js';
import { within } from '../helpers/fake-peer.js';
import { turn } from '../helpers/node.js';

/** Waits (turn by turn, bounded) until `test()` holds on the server's side. */
async function serverSees(test: () => boolean, what: string): Promise<void> {
  await within(
    (async () => {
      while (!test()) await turn();
    })(),
    5000,
    what,
  );
}

describe('dashboard server', () => {
  it('listens on 127.0.0.1 by default', async () => {
    const { d } = await testDashboard();
    expect(d.host).toBe('127.0.0.1');
    expect(d.url).toBe(`http://127.0.0.1:${d.port}/`);
  });

  it('serves the page without inline script or style, with CSP and nosniff on every response', async () => {
    const { d } = await testDashboard();
    const page = await fetchText(d.port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = page.headers['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    // Every script has a src and is served here; no style attribute or element.
    const scripts = [...page.body.matchAll(/<script([^>]*)>([^<]*)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(1);
    for (const [, attrs, inline] of scripts) {
      expect(inline).toBe('');
      const src = /src="([^"]+)"/.exec(attrs!)![1]!;
      const js = await fetchText(d.port, src);
      expect(js.status, src).toBe(200);
      expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(js.headers['x-content-type-options']).toBe('nosniff');
      expect(js.body.length, src).toBeGreaterThan(500);
    }
    expect(page.body).not.toMatch(/style=|<style/);
    const css = await fetchText(d.port, '/dashboard.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    const missing = await fetchText(d.port, '/nothing');
    expect(missing.status).toBe(404);
    expect(missing.headers['content-security-policy']).toBe(csp);
  });

  it('sends the latest view on connecting, then one per snapshot, with sparkline history', async () => {
    const { d, snapshots } = await testDashboard({ historyPoints: 3 });
    snapshots.next(fakeSnapshot(['g', 'a', 'b']));
    await serverSees(() => d.updates === 1, 'first snapshot taken');
    const events = new EventStream(d.port);
    const first = await events.view(1);
    expect(first.nodes.map((n) => n.id)).toEqual(['g', 'a', 'b']);
    expect(first.links).toHaveLength(2);
    for (let i = 0; i < 4; i++) snapshots.next(fakeSnapshot(['g', 'a']));
    const fifth = await events.view(5);
    expect(fifth.nodes.map((n) => n.id)).toEqual(['g', 'a']);
    expect(fifth.history[metricKey('link', 'a', 'g', 'msgs')]).toEqual([5, 5, 5]);
    expect(fifth.history[metricKey('node', 'b', 'rss')]).toBeUndefined();
    expect(d.clients).toBe(1);
  });

  it('drops a client that stops reading and keeps serving the others', async () => {
    const { d, snapshots } = await testDashboard({ maxBacklogBytes: 64 * 1024 });
    const reader = new EventStream(d.port);
    expect(await reader.opened()).toBe(200);
    const stuck = createConnection({ host: '127.0.0.1', port: d.port });
    stuck.on('error', () => {});
    stuck.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n\r\n`);
    stuck.pause();
    await serverSees(() => d.clients === 2, 'both clients connected');
    // About 200 kB per view; the stuck client's socket buffers fill, then its backlog grows.
    const families = Array.from({ length: 20 }, (_, f) => ({
      family: `f${f}`,
      entries: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: 'v'.repeat(190) })),
      truncated: false,
    }));
    let sent = 0;
    while (d.dropped === 0 && sent < 2000) {
      snapshots.next(fakeSnapshot(['g', 'a'], { families }));
      sent++;
      await reader.view(sent);
    }
    expect(d.dropped, `dropped after ${sent} views`).toBe(1);
    expect(d.clients).toBe(1);
    snapshots.next(fakeSnapshot(['g']));
    expect((await reader.view(sent + 1)).nodes).toHaveLength(1);
    stuck.destroy();
  });

  it('close() ends every stream and stops listening', async () => {
    const { d, snapshots } = await testDashboard();
    const events = new EventStream(d.port);
    snapshots.next(fakeSnapshot(['g']));
    await events.view(1);
    await within(d.close(), 5000, 'dashboard close');
    await events.until(() => events.ended, 'event stream ended by close()');
    expect(snapshots.observed).toBe(false);
    await expect(fetchText(d.port, '/')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses to start on a port in use', async () => {
    const { d } = await testDashboard();
    await expect(startDashboard(new Subject<NetworkSnapshot>(), { port: d.port })).rejects.toThrow(
      /EADDRINUSE/,
    );
  });
});
