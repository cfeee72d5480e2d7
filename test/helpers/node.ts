/**
 * Test nodes: every node made here is closed after the test, logs into memory, and the
 * `next` helper waits for an event instead of sleeping.
 */
import { afterEach } from 'vitest';
import { type ConfigureOptions, configure, type Node } from '../../src/index.js';
import { WAIT_MS, within } from './fake-peer.js';

const open: Node[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.close()));
});

type Line = { level: number; text: string };

/** An offline node that logs into memory: `node.logs`, and `node.logged(re)` waits for a line. */
export function testNode(
  opts: ConfigureOptions = {},
): Node & { logs: Line[]; logged(re: RegExp): Promise<Line> } {
  const lines: Line[] = [];
  const waiters: { re: RegExp; resolve: (l: Line) => void }[] = [];
  const logger = {
    log(level: number, text: string) {
      const line = { level, text };
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.re.test(text)) w.resolve(line);
        else waiters.push(w);
      }
    },
  };
  const node = configure({ nodeid: 'test/', norc: true, binds: [], ...opts, logger });
  open.push(node);
  const logged = (re: RegExp) =>
    new Promise<Line>((resolve) => {
      const hit = lines.find((l) => re.test(l.text));
      if (hit) resolve(hit);
      else waiters.push({ re, resolve });
    });
  return Object.assign(node, { logs: lines, logged });
}

/** A node listening on loopback that runs the global service (with `secret`), once it is ready. */
export async function globalTestNode(nodeid: string, secret: string): Promise<ReturnType<typeof testNode>> {
  const node = testNode({ nodeid, secret, binds: ['127.0.0.1:0'], services: ['AnyEvent::MP::Global::'] });
  await within(node.ready, WAIT_MS, `the global node ${nodeid} to start`);
  return node;
}

/** Resolves on the next turn of the event loop after everything queued now ran. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A promise with its resolver, for waiting on callbacks. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
