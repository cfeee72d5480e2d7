/** examples/dataconn/move.ts run for real with a small size: the bytes arrive intact. */
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { example } from './example-process.js';

describe('examples', { timeout: 30_000 }, () => {
  it('dataconn: moves 4 MB between two nodes over a data connection, intact', async () => {
    const env = { seed: `127.0.0.1:${await freePort()}`, secret: 'examples-test-secret' };
    const run = example('dataconn/move.ts', ['--mb', '4'], env);
    expect(await run.exited(), run.output).toBe(0);
    expect(run.lines[0]).toBe('store: receiving generated.bin');
    const sent = /^client: sent 4194304 bytes, sha256 ([0-9a-f]{64})$/.exec(run.lines[1] ?? '');
    expect(sent, run.output).not.toBeNull();
    expect(run.lines[2]).toBe(`store: got 4194304 bytes, sha256 ${sent![1]}`);
    expect(run.lines[3]).toMatch(/^dataconn: intact, \d+ MB\/s$/);
  });
});
