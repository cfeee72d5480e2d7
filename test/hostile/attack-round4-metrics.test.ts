/**
 * The metrics endpoint against a local client holding its connections: silent ones, ones that
 * send half a request, and ones kept alive after an answer must not lock a scraper out (each
 * stays until the server's request timeout, and the holder opens new ones as they close).
 */
import { request } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { METRICS_MAX_CONNECTIONS, serveMetrics } from '../../src/streams/observe/metrics.js';
import { within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

/** A GET of /metrics: its status. */
const scrape = (port: number) =>
  within(
    new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    }),
    5000,
    'the scrape',
  );

/** A connection to `port`, open. */
const connect = (port: number) =>
  within(
    new Promise<Socket>((resolve, reject) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => resolve(s));
      s.on('error', reject);
    }),
    5000,
    'a connection',
  );

describe('metrics endpoint held by a local client', () => {
  it(`${METRICS_MAX_CONNECTIONS} connections held (silent, half a request, kept alive): a scrape still gets its answer`, async () => {
    const a = testNode({ nodeid: 'r4-metrics' });
    const m = await serveMetrics(a, { port: 0 });
    const held: Socket[] = [];
    try {
      for (let i = 0; i < METRICS_MAX_CONNECTIONS; i++) {
        const s = await connect(m.port);
        s.on('error', () => {});
        held.push(s);
        if (i % 3 === 1) s.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        if (i % 3 === 2)
          s.write('GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
      }
      expect(await scrape(m.port)).toBe(200);
      expect(await scrape(m.port)).toBe(200);
    } finally {
      for (const s of held) s.destroy();
      await m.close();
      await a.close();
    }
  });

  it(`${3 * METRICS_MAX_CONNECTIONS} silent connections: the oldest are closed, ${METRICS_MAX_CONNECTIONS} stay, a scrape gets its answer`, async () => {
    const a = testNode({ nodeid: 'r4-metrics-many' });
    const m = await serveMetrics(a, { port: 0 });
    const held: Socket[] = [];
    try {
      let closed = 0;
      for (let i = 0; i < 3 * METRICS_MAX_CONNECTIONS; i++) {
        const s = await connect(m.port);
        s.on('error', () => {});
        s.once('close', () => closed++);
        held.push(s);
      }
      expect(await scrape(m.port)).toBe(200);
      await within(
        new Promise<void>((resolve) => {
          const check = () => (closed >= 2 * METRICS_MAX_CONNECTIONS + 1 ? resolve() : setImmediate(check));
          check();
        }),
        5000,
        'the oldest connections to be closed',
      );
      expect(held.slice(0, 2 * METRICS_MAX_CONNECTIONS + 1).every((s) => s.destroyed)).toBe(true);
      expect(held.slice(-(METRICS_MAX_CONNECTIONS - 1)).some((s) => s.destroyed)).toBe(false);
    } finally {
      for (const s of held) s.destroy();
      await m.close();
      await a.close();
    }
  });
});
