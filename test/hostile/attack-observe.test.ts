/**
 * Attacks on the observation surface:
 * - an authenticated peer floods a secure node with `aemp::stats` requests: the node answers a
 *   few per second (the burst, then the refill on its clock), stays responsive, and each
 *   answer is bounded however many connections it has;
 * - the metrics endpoint binds 127.0.0.1 by default, refuses other methods and paths, and
 *   turns peer-chosen reason texts into a fixed set of labels.
 */
import { request } from 'node:http';
import { filter, firstValueFrom, skip } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { serveMetrics } from '../../src/streams/observe/metrics.js';
import { observeNetwork } from '../../src/streams/observe/network-view.js';
import {
  collectStats,
  MAX_STATS_LINKS,
  STATS_BURST,
  STATS_PER_SECOND,
  STATS_REQUEST,
  type StatsSource,
} from '../../src/streams/observe/stats-request.js';
import { MemoryNetwork, VirtualClock } from '../../src/testing.js';
import { FakePeer, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';
import { network, node, nodeEvent } from '../unit/net/memory-nodes.js';

describe('stats request flood', () => {
  it('N requests from one secure-mode peer get at most the burst plus the refill, and the node stays responsive', async () => {
    const net = new MemoryNetwork();
    const clock = new VirtualClock();
    const victim = node(net.host(), clock, { nodeid: 'of-v', binds: ['10.0.0.1:4040'], secure: true });
    const attacker = node(net.host(), clock, { nodeid: 'of-a', binds: ['10.0.0.2:4040'] });
    await Promise.all([victim.ready, attacker.ready]);
    network(attacker).addresses.set('of-v', ['10.0.0.1:4040']);
    attacker.snd('of-v', 'devnull');
    await nodeEvent(attacker, 'up', 'of-v');

    let answers = 0;
    const sink = attacker.port(() => void answers++);
    const flood = async (n: number) => {
      for (let i = 0; i < n; i++) attacker.snd('of-v', STATS_REQUEST, sink);
      // `time` goes behind the flood on the same connection: its answer proves every request
      // before it was handled, and that the node still answers.
      await within(firstValueFrom(attacker.cal$('of-v', 'time')), 5000, 'the time answer after the flood');
    };

    await flood(2000);
    expect(answers).toBe(STATS_BURST);
    // One second later the allowance has grown by the refill, not more.
    await clock.run(1000);
    await flood(2000);
    expect(answers).toBe(STATS_BURST + STATS_PER_SECOND);
    // No time passes: nothing more.
    await flood(500);
    expect(answers).toBe(STATS_BURST + STATS_PER_SECOND);
    // Refused requests are not logged one by one.
    expect(victim.logs.filter((l) => l.text.includes('aemp::stats'))).toEqual([]);
  });

  it('an answer is bounded however many connections and families the node has', () => {
    const conns = Array.from({ length: 5000 }, (_, i) => ({
      node: i % 2 ? `peer-${i}` : `long-${'x'.repeat(1000)}-${i}`,
      up: true,
      messagesIn: 1,
      messagesOut: 1,
      bytesIn: 1,
      bytesOut: 1,
      queued: 0,
      unsentBytes: 0,
    }));
    const families = new Map<string, Map<string, unknown>>(
      Array.from({ length: 1000 }, (_, i) => [`f${i}`, new Map([['k', 1]])]),
    );
    const source: StatsSource = {
      id: 'big',
      binds: [],
      kernel: { portCount: 1, remoteMonitorCount: 0, snd() {} },
      network: { stats: () => conns },
      db: { isGlobal: true, known: families },
    };
    const s = collectStats(source);
    expect(s.links!.length).toBeLessThanOrEqual(MAX_STATS_LINKS);
    expect(s.links!.every((l) => l.to.length <= 256)).toBe(true);
    expect(s.familyKeys!.length).toBeLessThanOrEqual(200);
    expect(s.db).toEqual({ families: 1000, keys: 1000 });
    expect(s.truncated).toBe(true);
    expect(JSON.stringify(s).length).toBeLessThan(200_000);
  });
});

describe('a hostile node answering the stats request', () => {
  it('with malformed answers: the view goes on and shows only checked numbers', async () => {
    const obs = testNode({ nodeid: 'oh-obs', secret: 'oh-secret', binds: ['127.0.0.1:0'] });
    await within(obs.ready, 10_000, 'the observer to start');
    const up = firstValueFrom(obs.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'evil')));
    const evil = await within(FakePeer.dial(obs.binds[0]!), 10_000, 'the hostile peer to connect');
    // The role key makes it look like one of our nodes: it gets asked.
    await evil.handshake({ nodeId: 'evil', secret: 'oh-secret', role: 'd' });
    await within(up, 10_000, 'the hostile peer to be up');
    const answers: unknown[] = [
      { node: 'evil', links: 'not a list', loopDelayMs: 'slow', db: 7, ports: -5, heapUsed: 'x' },
      { node: 'evil', links: [{ from: 'evil', to: 42 }, { from: 'someone-else', to: 'x' }, null], at: 'now' },
      { node: 'evil', familyKeys: [[1, 2], 'x', ['f'.repeat(10_000), 1]], addresses: [1, {}, 'a:1'] },
      [1, 2, 3],
      null,
    ];
    let i = 0;
    void (async () => {
      for (;;) {
        const m = await evil.next(60_000).catch(() => undefined);
        if (!m) return;
        const reply = m[0] === '' && m[1] === 'aemp::stats' ? String(m[2]) : undefined;
        if (reply) evil.send([reply.slice(reply.indexOf('#') + 1), answers[i++ % answers.length]]);
      }
    })();
    const view = observeNetwork(obs, { intervalMs: 100, families: false });
    const later = await within(
      firstValueFrom(
        view.pipe(
          filter(() => i >= answers.length * 2),
          skip(1),
        ),
      ),
      20_000,
      'pictures after every malformed answer twice',
    );
    const shown = later.nodes.find((n) => n.node === 'evil')!;
    for (const v of [shown.ports, shown.heapUsed, shown.loopDelayMs?.p50])
      expect(['number', 'undefined']).toContain(typeof v);
    expect(Array.isArray(shown.links)).toBe(true);
    for (const l of shown.links ?? []) expect(l.from).toBe('evil');
    expect(shown.addresses.every((a) => typeof a === 'string')).toBe(true);
    evil.destroy();
  });
});

describe('metrics endpoint', () => {
  /** A raw HTTP request: status and body. */
  const send = (port: number, method: string, path: string, host = '127.0.0.1', hostHeader?: string) =>
    within(
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const headers = hostHeader === undefined ? {} : { Host: hostHeader };
        const req = request({ host, port, method, path, headers }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end(method === 'POST' || method === 'PUT' ? 'kil1 everything' : undefined);
      }),
      5000,
      `${method} ${path}`,
    );

  it('binds 127.0.0.1 by default and accepts only GET/HEAD of /metrics', async () => {
    const a = testNode({ nodeid: 'om-h' });
    const m = await serveMetrics(a, { port: 0 });
    expect(m.host).toBe('127.0.0.1');
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])
      expect((await send(m.port, method, '/metrics')).status).toBe(405);
    for (const path of ['/', '/admin', '/metrics/../x', '/metrics2', '//metrics'])
      expect((await send(m.port, 'GET', path)).status).toBe(404);
    expect((await send(m.port, 'GET', '/metrics?x=1')).status).toBe(200);
    // Nothing is served on another address of this machine.
    await expect(send(m.port, 'GET', '/metrics', '::1')).rejects.toThrow();
    await m.close();
  });

  it('on loopback answers only loopback Host names (no DNS rebinding)', async () => {
    const a = testNode({ nodeid: 'om-d' });
    const m = await serveMetrics(a, { port: 0 });
    const get = (name: string) => send(m.port, 'GET', '/metrics', '127.0.0.1', name);
    expect((await get('attacker.example')).status).toBe(421);
    expect((await get(`attacker.example:${m.port}`)).status).toBe(421);
    expect((await get(`localhost:${m.port}`)).status).toBe(200);
    expect((await get(`127.0.0.1:${m.port}`)).status).toBe(200);
    expect((await get(`[::1]:${m.port}`)).status).toBe(200);
    await m.close();
  });

  it('shows no secret and no peer-chosen reason text', async () => {
    const a = testNode({ nodeid: 'om-s', secret: 'top-secret-value' });
    const m = await serveMetrics(a, { port: 0 });
    const { body } = await send(m.port, 'GET', '/metrics');
    expect(body).not.toContain('top-secret-value');
    expect(body).toMatch(/^aemp_ports \d+$/m);
    await m.close();
  });
});
