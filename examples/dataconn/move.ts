/**
 * dataconn: moves a stream of bytes from one node to another over a data connection.
 *
 * Two nodes in one process for brevity (they would usually run on different machines): the
 * `store` node listens on the seed address and registers `Store::put`, which receives the
 * stream and hashes what arrives; the `client` node opens a data connection to it
 * (`node.dataConn$`) and writes a generated stream (default 1 GB), honouring backpressure.
 *
 *   npx tsx examples/dataconn/move.ts            (1024 MB)
 *   npx tsx examples/dataconn/move.ts --mb 16
 *
 * Options (environment variables give the defaults):
 *   --seed HOST:PORT   address of the store node ($AEMP_SEED, else 127.0.0.1:4040)
 *   --secret TEXT      shared secret ($AEMP_SECRET, else this user's own, as aemp uses)
 *   --mb N             megabytes (2^20 bytes) to move
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { configure, localSecret } from 'aemp';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: process.env.AEMP_SEED ?? '127.0.0.1:4040' },
    secret: { type: 'string', default: process.env.AEMP_SECRET ?? localSecret() },
    mb: { type: 'string', default: '1024' },
  },
});
const total = Number(opts.mb) * 1024 * 1024;

const store = configure({ nodeid: 'store', norc: true, secret: opts.secret, binds: [opts.seed] });
await store.ready;
const stored = new Promise<{ bytes: number; sha256: string }>((resolve) => {
  store.register('Store::put', (name: string, stream: Duplex) => {
    console.log(`store: receiving ${name}`);
    const hash = createHash('sha256');
    let bytes = 0;
    stream.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    stream.on('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
  });
});

const client = configure({
  nodeid: 'client',
  norc: true,
  secret: opts.secret,
  binds: [],
  seeds: [opts.seed],
});
await client.ready;
const started = performance.now();
const sent = await new Promise<string>((resolve, reject) => {
  client.dataConn$('store', { initFunc: 'Store::put', initData: ['generated.bin'], timeout: 10 }).subscribe({
    next: async (stream) => {
      const hash = createHash('sha256');
      const chunk = Buffer.alloc(256 * 1024);
      for (let off = 0; off < total; off += chunk.length) {
        const part = chunk.subarray(0, Math.min(chunk.length, total - off));
        part.fill(off & 0xff);
        hash.update(part);
        if (!stream.write(part)) await once(stream, 'drain');
      }
      stream.end();
      resolve(hash.digest('hex'));
    },
    error: reject,
  });
});
const got = await stored;
const seconds = (performance.now() - started) / 1000;
console.log(`client: sent ${total} bytes, sha256 ${sent}`);
console.log(`store: got ${got.bytes} bytes, sha256 ${got.sha256}`);
console.log(
  `dataconn: ${got.sha256 === sent && got.bytes === total ? 'intact' : 'MISMATCH'}, ${(total / 1e6 / seconds).toFixed(0)} MB/s`,
);
await Promise.all([client.close(), store.close()]);
