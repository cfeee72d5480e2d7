/**
 * The dashboard as a node's own service (`services: [["aemp::dashboard", { port }]]`): the page
 * shows the network as that node sees it, the node's close() takes the page down, and bad
 * options or a port in use fail the node's start with an error naming the service.
 */
import { describe, expect, it } from 'vitest';
import { dashboardServiceOptions } from '../../src/streams/observe/dashboard-service.js';
import { EventStream, fetchText } from '../helpers/dashboard.js';
import { within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';
import { freePort, listening } from '../helpers/ports.js';

describe('aemp::dashboard service', () => {
  it('serves the node’s view of the network until the node closes', async () => {
    const port = await freePort();
    const node = testNode({ services: [['aemp::dashboard', { port, intervalMs: 100 }]] });
    await within(node.ready, 5000, 'the node with the dashboard service to start');
    await within(node.logged(/^dashboard at http:\/\/127\.0\.0\.1:\d+\/$/), 5000, 'the dashboard log line');
    expect((await fetchText(port, '/')).status).toBe(200);
    const events = new EventStream(port);
    const v = await events.view(1);
    expect(v.observer).toBe(node.id);
    expect(v.nodes.map((n) => n.id)).toContain(node.id);
    await within(node.close(), 5000, 'node close');
    await events.until(() => events.ended, 'the event stream to end with the node');
    await expect(fetchText(port, '/')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('fails the node’s start when its port is in use', async () => {
    const { server, port } = await listening();
    try {
      const node = testNode({ services: [['aemp::dashboard', { port }]] });
      await expect(within(node.ready, 5000, 'start with the port in use')).rejects.toThrow(
        /service \["aemp::dashboard",\{"port":\d+\}\] failed: .*EADDRINUSE/,
      );
    } finally {
      server.close();
    }
  });

  it('defaults to 127.0.0.1:4080, a picture a second', () => {
    expect(dashboardServiceOptions(undefined)).toEqual({ port: 4080, host: '127.0.0.1', intervalMs: 1000 });
  });

  it('refuses bad options, naming them', async () => {
    for (const [opts, message] of [
      [{ port: -1 }, /port: expected a port number/],
      [{ prot: 4080 }, /unknown option "prot"/],
      [{ host: 7 }, /host: expected an address/],
      [{ intervalMs: 1 }, /intervalMs: expected at least 100/],
      ['4080', /expected an options object/],
    ] as const) {
      const node = testNode({ services: [['aemp::dashboard', opts]] });
      await expect(within(node.ready, 5000, `start with ${JSON.stringify(opts)}`)).rejects.toThrow(message);
    }
  });
});
