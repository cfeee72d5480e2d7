/** Data connections in tests: read a stream to its end, open one, and make a node expect one. */
import type { Duplex } from 'node:stream';
import type { Observable, Subscription } from 'rxjs';
import type { Node } from '../../src/index.js';
import { deferred } from './node.js';

/** All bytes until the stream ends. */
export function readAll(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (c: Buffer) => parts.push(c));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

/** The first stream of `dataConn$` and its error, keeping the subscription (unsubscribing closes it). */
export function open(o: Observable<Duplex>): {
  stream: Promise<Duplex>;
  sub: Subscription;
  error: Promise<unknown>;
} {
  const got = deferred<Duplex>();
  const failed = deferred<unknown>();
  const sub = o.subscribe({ next: got.resolve, error: failed.resolve });
  return { stream: got.promise, sub, error: failed.promise };
}

/**
 * `node` receives, as if from node `from`, the request to expect data connection `id` (the
 * `_expect` call a `dataConn$` on `from` sends), with `Test::recv` as the init function.
 */
export function expectDataConn(node: Node, from: string, id: string): void {
  node.kernel.receive(from, ['', 'AnyEvent::MP::DataConn::_expect', id, `${from}#caller`, 5, 'Test::recv']);
}
