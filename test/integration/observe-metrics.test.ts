/**
 * The metrics endpoint over HTTP: scraped and read with a parser of the Prometheus text
 * format, its values follow the traffic; loopback by default, read-only, gone with the node.
 */
import { createRequire } from 'node:module';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { parseMetricsAddress, reasonLabel, serveMetrics } from '../../src/streams/observe/metrics.js';
import { aempHere, cleanUpAfter, readRc, tempRc } from '../cli/helpers.js';
import { FakePeer, within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

interface Family {
  name: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string> }[];
}
const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

cleanUpAfter('all');

const secret = 'observe-metrics';
const WAIT = 10_000;

async function scrape(url: string): Promise<Family[]> {
  const res = await within(fetch(url), WAIT, `GET ${url}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

function value(families: Family[], name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.find((x) => x.name === name);
  const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m?.value === undefined ? undefined : Number(m.value);
}

describe('metrics endpoint', () => {
  it('serves per-peer traffic, ports and DB sizes that move with traffic', async () => {
    const a = testNode({ nodeid: 'om-a', secret, binds: ['127.0.0.1:0'] });
    await within(a.ready, WAIT, 'a to start');
    const b = testNode({ nodeid: 'om-b', secret, binds: ['127.0.0.1:0'], seeds: [...a.binds] });
    await within(b.ready, WAIT, 'b to start');
    await within(
      firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'up' && e.node === 'om-b'))),
      WAIT,
      'b to connect',
    );
    const m = await serveMetrics(a, { port: 0 });
    expect(m.host).toBe('127.0.0.1');
    expect(m.url).toBe(`http://127.0.0.1:${m.port}/metrics`);

    const before = await scrape(m.url);
    const out0 = value(before, 'aemp_link_messages_out_total', { peer: 'om-b' }) ?? 0;
    const bytes0 = value(before, 'aemp_link_bytes_out_total', { peer: 'om-b' }) ?? 0;
    expect(value(before, 'aemp_link_up', { peer: 'om-b' })).toBe(1);
    // b was up before the metrics started: no connection came up since.
    expect(value(before, 'aemp_connections_up_total')).toBe(0);
    expect(before.find((f) => f.name === 'aemp_link_messages_out_total')?.type).toBe('COUNTER');

    const all = deferred();
    let n = 0;
    const sink = b.port(() => {
      if (++n === 100) all.resolve();
    });
    for (let i = 0; i < 100; i++) a.snd(sink, 'x'.repeat(20));
    await within(all.promise, WAIT, '100 messages at b');
    a.port();
    a.db.set('om-fam', 'k', 1);

    const after = await scrape(m.url);
    expect(value(after, 'aemp_link_messages_out_total', { peer: 'om-b' })! - out0).toBeGreaterThanOrEqual(
      100,
    );
    expect(value(after, 'aemp_link_bytes_out_total', { peer: 'om-b' })! - bytes0).toBeGreaterThanOrEqual(
      2000,
    );
    expect(value(after, 'aemp_ports')).toBeGreaterThanOrEqual(1);
    expect(value(after, 'aemp_db_families')).toBeGreaterThanOrEqual(2);
    expect(value(after, 'aemp_heartbeat_timeouts_total')).toBe(0);
    expect(value(after, 'aemp_event_loop_delay_seconds', { stat: 'max' })).toBeGreaterThanOrEqual(0);
    expect(value(after, 'aemp_heap_used_bytes')).toBeGreaterThan(0);

    // b goes: a down event with its reason, the link gone.
    const down = firstValueFrom(a.nodes$.pipe(filter((e) => e.type === 'down' && e.node === 'om-b')));
    await within(b.close(), WAIT, 'b to close');
    await within(down, WAIT, 'b to go down at a');
    const gone = await scrape(m.url);
    const downs = gone.find((f) => f.name === 'aemp_connections_down_total')!.metrics;
    expect(downs.reduce((s, x) => s + Number(x.value), 0)).toBe(1);
    expect(value(gone, 'aemp_link_up', { peer: 'om-b' })).toBeUndefined();
    await m.close();
  });

  it('is read-only: other methods 405, other paths 404; closes with the node', async () => {
    const a = testNode({ nodeid: 'om-r', secret });
    const m = await serveMetrics(a, { port: 0 });
    const post = await within(fetch(m.url, { method: 'POST', body: 'x' }), WAIT, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const put = await within(fetch(m.url, { method: 'DELETE' }), WAIT, 'DELETE');
    expect(put.status).toBe(405);
    const other = await within(fetch(m.url.replace('/metrics', '/admin')), WAIT, 'GET /admin');
    expect(other.status).toBe(404);
    expect(other.headers.get('x-content-type-options')).toBe('nosniff');
    await a.close();
    await expect(within(fetch(m.url), WAIT, 'GET after close')).rejects.toThrow();
  });

  it('reads the config value and labels reasons from a fixed set', () => {
    expect(parseMetricsAddress('9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseMetricsAddress('0.0.0.0:9100')).toEqual({ host: '0.0.0.0', port: 9100 });
    expect(parseMetricsAddress('[::1]:9100')).toEqual({ host: '::1', port: 9100 });
    expect(parseMetricsAddress('host:99999')).toBeUndefined();
    expect(parseMetricsAddress('a b:1')).toBeUndefined();
    expect(reasonLabel('heartbeat timeout')).toBe('heartbeat_timeout');
    expect(reasonLabel('connection closed by peer')).toBe('closed_by_peer');
    expect(reasonLabel('<script>attacker text')).toBe('other');
  });
});

describe('refusals and failed handshakes', () => {
  it('count a failed handshake by reason and a refused or replaced connection by kind', async () => {
    const a = testNode({
      nodeid: 'om-f',
      secret,
      binds: ['127.0.0.1:0'],
      max_pending_handshakes: 1,
      max_connections: 1,
    });
    await within(a.ready, WAIT, 'the node to start');
    const m = await serveMetrics(a, { port: 0 });

    // Another secret: the handshake fails (auth).
    const liar = await within(FakePeer.dial(a.binds[0]!), WAIT, 'a connection with the wrong secret');
    const failed = within(a.logged(/handshake failed: /), WAIT, 'the handshake failure');
    await liar.handshake({ nodeId: 'liar', secret: 'not-the-secret' });
    await failed;
    // A silent connection holds the only handshake place until the next one takes it.
    const holder = await within(FakePeer.dial(a.binds[0]!), WAIT, 'a silent connection');
    const taker = await within(FakePeer.dial(a.binds[0]!), WAIT, 'a connection over the pending cap');
    await within(holder.closed, WAIT, 'the silent connection to be replaced');
    // The one connection allowed is established: the next is refused.
    await within(taker.handshake({ nodeId: 'om-peer', secret }), WAIT, 'a handshake with the secret');
    const refused = await within(FakePeer.dial(a.binds[0]!), WAIT, 'a connection over max_connections');
    await within(refused.closed, WAIT, 'the refused connection to close');

    const families = await scrape(m.url);
    expect(value(families, 'aemp_handshake_failures_total', { reason: 'auth' })).toBe(1);
    expect(value(families, 'aemp_connections_refused_total', { kind: 'replaced' })).toBe(1);
    expect(value(families, 'aemp_connections_refused_total', { kind: 'incoming' })).toBe(1);
    taker.destroy();
    await m.close();
  });
});

describe('the metrics configuration key', () => {
  it('serves the metrics of a configured node on loopback and closes with it', async () => {
    const a = testNode({ nodeid: 'om-c', secret, metrics: '0' });
    await within(a.ready, WAIT, 'the node with metrics to start');
    const line = await within(a.logged(/^metrics at /), WAIT, 'the metrics address in the log');
    const url = line.text.replace(/^metrics at /, '');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(value(await scrape(url), 'aemp_ports')).toBeGreaterThanOrEqual(0);
    await a.close();
    await expect(within(fetch(url), WAIT, 'GET after close')).rejects.toThrow();
  });

  it('aemp setmetrics stores a valid address and refuses another', async () => {
    const rc = tempRc({ version: 1 });
    expect((await aempHere(rc, ['setmetrics', '9464'])).code).toBe(0);
    expect(readRc(rc).metrics).toBe('9464');
    const bad = await aempHere(rc, ['setmetrics', 'not an address']);
    expect(bad.code).toBe(255);
    expect(bad.err).toMatch(/metrics.*must be a port or host:port/);
    expect(readRc(rc).metrics).toBe('9464');
  });

  it('refuses a value that is no address', () => {
    expect(() => testNode({ nodeid: 'om-x', metrics: 'not an address' })).toThrow(
      /key "metrics".*must be a port or host:port/,
    );
  });
});
