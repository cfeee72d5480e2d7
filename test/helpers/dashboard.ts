/**
 * Talking to a dashboard server in tests: plain HTTP requests with any method and Host header,
 * an event-stream reader that waits for the n-th view, fake snapshots, and the system Chromium
 * (Debian's `chromium` package) driven by puppeteer-core, which downloads no browser.
 */

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import { Subject } from 'rxjs';
import { afterEach } from 'vitest';
import { type DashboardServer, startDashboard } from '../../src/streams/observe/dashboard-server.js';
import type { DashboardView } from '../../src/streams/observe/dashboard-view.js';
import type { LinkStats, NetworkSnapshot, NodeStats } from '../../src/streams/observe/snapshot.js';
import { within } from './fake-peer.js';
import { statsLink, statsNode } from './snapshots.js';

const servers: DashboardServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((d) => d.close()));
}, 10_000);

/** A dashboard on a Subject of snapshots the test feeds; closed after the test. */
export async function testDashboard(opts: Parameters<typeof startDashboard>[1] = {}) {
  const snapshots = new Subject<NetworkSnapshot>();
  const d = await startDashboard(snapshots, opts);
  servers.push(d);
  return { d, snapshots };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request to 127.0.0.1:`port`; `host` replaces the Host header. */
export function fetchText(
  port: number,
  path: string,
  opts: { method?: string; host?: string; body?: string } = {},
): Promise<Reply> {
  return within(
    new Promise<Reply>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: opts.method ?? 'GET',
          headers: { host: opts.host ?? `127.0.0.1:${port}`, connection: 'close' },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString(),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(opts.body);
    }),
    5000,
    `${opts.method ?? 'GET'} ${path}`,
  );
}

const streams = new Set<EventStream>();
afterEach(() => {
  for (const s of streams) s.close();
});

/** A reader of /events: every `view` event parsed, in order. */
export class EventStream {
  readonly views: DashboardView[] = [];
  status = 0;
  ended = false;
  private res: IncomingMessage | undefined;
  private readonly req: ReturnType<typeof request>;
  private buffer = '';
  private waiters: (() => void)[] = [];

  constructor(port: number) {
    streams.add(this);
    this.req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/events',
        headers: { host: `127.0.0.1:${port}`, accept: 'text/event-stream' },
        agent: false,
      },
      (res) => {
        this.res = res;
        this.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => this.take(chunk));
        res.on('close', () => this.end());
        res.on('error', () => this.end());
        this.wake();
      },
    );
    this.req.on('error', () => this.end());
    this.req.end();
  }

  private take(chunk: string): void {
    this.buffer += chunk;
    let cut: number;
    while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
      const frame = this.buffer.slice(0, cut);
      this.buffer = this.buffer.slice(cut + 2);
      const lines = frame.split('\n');
      if (!lines.includes('event: view')) continue;
      const data = lines
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      this.views.push(JSON.parse(data) as DashboardView);
    }
    this.wake();
  }

  private end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `test()` holds, checked on every chunk, response and end. */
  until(test: () => boolean, what: string, ms = 5000): Promise<void> {
    return within(
      new Promise<void>((resolve) => {
        const check = () => {
          if (test()) resolve();
          else this.waiters.push(check);
        };
        check();
      }),
      ms,
      what,
    );
  }

  /** The `n`-th view (1-based). */
  async view(n: number): Promise<DashboardView> {
    await this.until(() => this.views.length >= n, `view ${n} on /events`);
    return this.views[n - 1]!;
  }

  /** The response status once the headers arrived. */
  async opened(): Promise<number> {
    await this.until(() => this.status !== 0 || this.ended, 'response to GET /events');
    return this.status;
  }

  close(): void {
    streams.delete(this);
    this.res?.destroy();
    this.req.destroy();
  }
}

export function fakeNode(id: string, extra: Partial<NodeStats> = {}): NodeStats {
  return statsNode(id, {
    addresses: ['127.0.0.1:1'],
    ports: 1,
    rss: 1e7,
    heapUsed: 1e6,
    loopDelayMs: { p50: 0.1, max: 1 },
    ...extra,
  });
}

export function fakeLink(from: string, to: string, msgRateOut = 0): LinkStats {
  return statsLink(from, to, { msgRateOut, byteRateOut: msgRateOut * 10 });
}

/** A network of `ids`, the first linked to every other one. */
export function fakeSnapshot(ids: string[], extra: Partial<NetworkSnapshot> = {}): NetworkSnapshot {
  return {
    at: Date.now(),
    observer: ids[0] ?? '',
    nodes: ids.map((id, i) => fakeNode(id, { global: i === 0 })),
    links: ids.slice(1).map((id) => fakeLink(ids[0]!, id, 5)),
    families: [],
    logs: [],
    ...extra,
  };
}

/** Debian's Chromium, if installed. */
export function chromiumPath(): string | undefined {
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(p)) return p;
  try {
    const found = execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
    return found || undefined;
  } catch {
    return undefined;
  }
}

/** Why browser tests are skipped here, or undefined if Chromium is there. */
export const NO_CHROMIUM = chromiumPath()
  ? undefined
  : 'Chromium is not installed (Debian: apt-get install -y chromium); the dashboard browser tests are skipped';

/** Headless Chromium through puppeteer-core; closed by the caller. */
export async function launchChromium() {
  process.env.PUPPETEER_SKIP_DOWNLOAD = '1';
  const { default: puppeteer } = await import('puppeteer-core');
  return within(
    puppeteer.launch({
      executablePath: chromiumPath()!,
      headless: true,
      // Root in a container: Chromium's sandbox needs user namespaces that may be missing.
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    }),
    30_000,
    'Chromium to start',
  );
}
