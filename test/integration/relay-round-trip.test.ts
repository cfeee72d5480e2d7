/**
 * Perl → aemp → Perl is the identity: a Perl-like peer (byte-string CBOR, as CBOR::XS writes)
 * sends values to a port of our node that sends them straight back (`snd` to the peer), and the
 * peer gets the same Perl values — byte for byte where JS can know the encoding (byte strings
 * with a byte ≥ 0x80, wide text, numbers, null, booleans, arrays of those).
 */
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Node } from '../../src/index.js';
import { createFrameDecoder } from '../../src/protocol/frame-codec.js';
import { FakePeer, perlCbor, SECRET, Text, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close();
});

async function echoSetup(framings: string): Promise<{ fake: FakePeer; echo: string }> {
  const node = testNode({ nodeid: 'relay-node', secret: SECRET, binds: ['127.0.0.1:0'] });
  nodes.push(node);
  await within(node.ready, WAIT_MS, 'the node to listen');
  const echo = node.port((replyTo: string, ...values: unknown[]) => node.snd(replyTo, ...values));
  const up = within(
    firstValueFrom(node.nodes$.pipe(filter((s) => s.type === 'up' && s.node === 'perl'))),
    WAIT_MS,
    'up',
  );
  const fake = await FakePeer.dial(node.binds[0]!);
  await fake.handshake({ secret: SECRET, nodeId: 'perl', framings });
  await up;
  return { fake, echo };
}

/** The values a Perl node holds for a frame: our decoder reads strings as Perl's code points. */
function perlValues(bytes: Uint8Array): unknown[] {
  const out: unknown[][] = [];
  createFrameDecoder('cbor').push(bytes, (m) => out.push(m));
  return out[0]!;
}

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
// Encoded by the fake exactly as CBOR::XS encodes the Perl value, and sent back so by us.
const exact: unknown[] = [
  Buffer.from([0xc3, 0xa9]), // Perl "\xC3\xA9": byte string c3 a9, must not become "é"
  Buffer.from(allBytes),
  Buffer.from([0xe9, 0x74, 0xe9]),
  new Text('€uro 😀'),
  0,
  23,
  24,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  2n ** 53n + 1n,
  18446744073709551615n,
  -9223372036854775808n,
  -1,
  -(2 ** 53) + 1,
  2.5,
  1e20,
  2 ** 64,
  0.1 + 0.2,
  Number.POSITIVE_INFINITY,
  null,
  true,
  false,
  [],
  [Buffer.from([0xff]), [1e20, 18446744073709551615n]],
];
// Same Perl value back, not the same bytes (ASCII and Latin-1 text kinds, byte-string map keys).
const sameValue: unknown[] = ['ascii', '', new Text('é'), {}, { k: 'v', n: [1, { x: null }] }];

describe('relay: Perl → aemp → Perl returns what Perl sent', () => {
  it('CBOR: byte strings, integers, floats, containers come back byte for byte', async () => {
    const { fake, echo } = await echoSetup('cbor');
    const port = echo.split('#')[1]!;
    fake.send([port, 'perl#back', ...exact]);
    const frame = await fake.nextFrame();
    // [ "back", ...values ]: the values after the reply port name are Perl's own bytes
    const n = exact.length + 1;
    const head = Buffer.concat([
      Buffer.from(n < 24 ? [0x80 | n] : [0x98, n]),
      Buffer.from('646261636b', 'hex'),
    ]);
    expect(frame.bytes.subarray(0, head.length).toString('hex')).toBe(head.toString('hex'));
    expect(frame.bytes.subarray(head.length).toString('hex')).toBe(
      Buffer.concat(exact.map((v) => perlCbor(v))).toString('hex'),
    );
  });

  it('CBOR: ASCII strings, Latin-1 text and maps come back as the same Perl values; NaN stays NaN', async () => {
    const { fake, echo } = await echoSetup('cbor');
    fake.send([echo.split('#')[1]!, 'perl#back', ...sameValue, Number.NaN]);
    const frame = await fake.nextFrame();
    const sent = perlValues(perlCbor(['back', ...sameValue]));
    const got = perlValues(frame.bytes);
    expect(got.slice(0, -1)).toEqual(sent);
    expect(Number.isNaN(got.at(-1))).toBe(true);
  });

  it('JSON: Perl texts come back byte for byte (byte strings, 64-bit integers, 1e+20)', async () => {
    const { fake, echo } = await echoSetup('json');
    const values =
      '"\u00c3\u00a9",18446744073709551615,-9223372036854775808,9007199254740993,1e+20,1.84467440737096e+19,2.5,' +
      '{"k":[null,true,false]},[],{}';
    fake.write(Buffer.from(`["${echo.split('#')[1]!}","perl#back",${values}]`, 'utf8'));
    const frame = await fake.nextFrame();
    expect(frame.bytes.toString('utf8')).toBe(`["back",${values}]`);
  });
});
