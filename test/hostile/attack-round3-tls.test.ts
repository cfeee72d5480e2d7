/**
 * TLS entry variants beside the self-signed intruder of attack-entry.test.ts: an intruder that
 * takes the TLS-client role and presents no certificate at all, and one that leaves `tls` out
 * of its greeting to fall back to HMAC against a node that has a certificate (with and without
 * a secret). None of them gets in, gets our auth line, or has its frames handled.
 */
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  FakePeer,
  fourLines,
  perlCbor,
  perlGreeting,
  SECRET,
  sha3Token,
  WAIT_MS,
  within,
} from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const PEM = readFileSync(new URL('../fixtures/tls/aemp-cert.pem', import.meta.url), 'utf8');
const EVAL_FLAG = '__aempRound3TlsEval';
const flags = globalThis as Record<string, unknown>;

async function listening(nodeid: string, opts: Record<string, unknown>) {
  const node = testNode({ nodeid, binds: ['127.0.0.1:0'], ...opts });
  await within(node.ready, WAIT_MS, `node ${nodeid} ready`);
  return node;
}

describe('TLS entry variants', () => {
  it('an intruder in the TLS-client role without any certificate is cut off after the TLS handshake', async () => {
    const node = await listening('tls-nocert', { cert: PEM });
    const fake = await FakePeer.dial(node.binds[0]!);
    // '!' sorts before Base64: the intruder is the TLS client.
    const nonce = '!'.repeat(88);
    const line1 = perlGreeting({ nodeId: 'intruder', tls: true, peeraddr: node.binds[0]! });
    fake.write(`${line1}\n${nonce}\n`);
    const theirs: [string, string] = [await fake.readLine(), await fake.readLine()];
    const raw = fake.raw;
    raw.removeAllListeners('data');
    const t = tlsConnect({ socket: raw, rejectUnauthorized: false });
    const outcome = await within(
      new Promise<string>((resolve) => {
        let got = '';
        t.on('data', (d: Buffer) => {
          got += d.toString('latin1');
        });
        t.once('secureConnect', () => {
          // What a node would accept under TLS, then a frame of code to run.
          const token = sha3Token(fourLines([line1, nonce], theirs));
          t.write(`tls_sha3_512;${token};cbor\n`);
          t.write(perlCbor(['', 'eval', `globalThis.${EVAL_FLAG} = true`]));
        });
        t.on('error', () => {});
        t.once('close', () => resolve(got));
      }),
      WAIT_MS,
      'the node to close the connection',
    );
    // Nothing came back inside TLS (no auth line), and nothing ran.
    expect(outcome).toBe('');
    expect(flags[EVAL_FLAG]).toBeUndefined();
    const line = await within(node.logged(/handshake failed/), WAIT_MS, 'the refusal');
    // OpenSSL refuses it during the TLS handshake (the server requires a client certificate).
    expect(line.text).toMatch(/handshake failed: TLS handshake failed: .*peer did not return a certificate/);
    expect(node.upNodes()).toEqual([]);
  });

  for (const secret of [undefined, SECRET]) {
    it(`a greeting without tls against a node with a certificate${secret ? ' and a secret' : ''}: no way in without the secret`, async () => {
      const node = await listening(`tls-downgrade-${secret ? 's' : 'n'}`, {
        cert: PEM,
        ...(secret && { secret }),
      });
      const fake = await FakePeer.dial(node.binds[0]!);
      const result = await fake
        .handshake({
          nodeId: 'intruder',
          secret: 'not-the-secret',
          afterAuth: perlCbor(['', 'eval', `globalThis.${EVAL_FLAG} = true`]),
        })
        .catch((e: Error) => e);
      await fake.waitClosed();
      if (!(result instanceof Error)) expect(result.authWithheld).toBe(true);
      expect(flags[EVAL_FLAG]).toBeUndefined();
      expect(node.upNodes()).toEqual([]);
    });
  }
});
