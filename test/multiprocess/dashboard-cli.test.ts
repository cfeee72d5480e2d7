/**
 * `aemp dashboard` against a node run by `aemp run`: it prints the page's address on
 * 127.0.0.1, the event stream shows the network (the run node and the tool's own node, linked),
 * and SIGINT ends it with exit status 0. Wrong arguments are usage errors.
 */
import { describe, expect, it } from 'vitest';
import { aemp, cleanUpAfter, runNode, WAIT_MS } from '../cli/helpers.js';
import { EventStream, fetchText } from '../helpers/dashboard.js';
import { listening } from '../helpers/ports.js';

cleanUpAfter('all');

describe('aemp dashboard', () => {
  it('serves the network on 127.0.0.1 until SIGINT', async () => {
    const srv = await runNode();
    const proc = aemp(['dashboard', srv.id, '--port', '0'], { AEMP_RC: srv.rc });
    const m = await proc.waitOut(
      /^aemp dashboard: http:\/\/127\.0\.0\.1:(\d+)\/ \(Ctrl-C ends it\)$/m,
      WAIT_MS,
    );
    const port = Number(m[1]);
    const page = await fetchText(port, '/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>aemp dashboard</title>');
    const events = new EventStream(port);
    await events.until(
      () => {
        const v = events.views.at(-1);
        return !!v && v.nodes.some((n) => n.id === srv.id) && v.links.length === 1;
      },
      'a view with the run node linked to the tool node',
      WAIT_MS,
    );
    const v = events.views.at(-1)!;
    expect(v.observer).toMatch(/^aemp\//);
    expect(v.nodes.find((n) => n.id === srv.id)?.kind).toBe('aemp');
    events.close();
    proc.child.kill('SIGINT');
    expect(await proc.exited(WAIT_MS)).toBe(0);
    expect(proc.err()).toBe('');
  });

  it('says so when the port is in use (exit status 255)', async () => {
    const srv = await runNode();
    const { server, port } = await listening();
    try {
      const proc = aemp(['dashboard', '--port', String(port)], { AEMP_RC: srv.rc });
      expect(await proc.exited(WAIT_MS)).toBe(255);
      expect(proc.err()).toMatch(
        new RegExp(`aemp dashboard: cannot listen on 127\\.0\\.0\\.1 port ${port}: .*EADDRINUSE`),
      );
    } finally {
      server.close();
    }
  });

  it('refuses unknown options and bad ports', async () => {
    for (const [args, message] of [
      [['--bogus'], /--bogus: unknown option/],
      [['--port', 'x'], /--port x: expected a port number/],
      [['--port'], /--port needs a value/],
      [['a', 'b'], /b: only one NODE/],
    ] as const) {
      const proc = aemp(['dashboard', ...args]);
      expect(await proc.exited(WAIT_MS)).toBe(2);
      expect(proc.err()).toMatch(message);
    }
  });
});
