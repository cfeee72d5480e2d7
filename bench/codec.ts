/**
 * Frame codec throughput vs raw cbor-x / JSON.parse.  Run: npx tsx bench/codec.ts [frames]
 *
 * Decode: a buffer of N small frames (["b","ping",i]) is pushed in 64 KiB chunks.
 *   baseline = cbor-x Decoder.decodeMultiple per chunk, carrying the incomplete tail to the next chunk
 *   (the cheapest correct streaming use of cbor-x; no byte-string/map fix-up).
 * Encode: N single-message encode() calls, and encodeBatch() of 64-message batches, vs cbor-x encode().
 */
import { Decoder, Encoder } from 'cbor-x';
import { createFrameDecoder, createFrameEncoder } from '../src/protocol/frame-codec.js';

const N = Number(process.argv[2] ?? 1_000_000);
const CHUNK = 64 * 1024;
const ROUNDS = 5;

function chunksOf(buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < buf.length; i += CHUNK) out.push(buf.subarray(i, i + CHUNK));
  return out;
}

/** Best of ROUNDS, in messages per second. */
function measure(name: string, n: number, fn: () => number): number {
  let best = Number.POSITIVE_INFINITY;
  let check = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    check = fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  const rate = n / best;
  console.log(`${name.padEnd(44)} ${(rate / 1e6).toFixed(2).padStart(6)} M msg/s  (${check})`);
  return rate;
}

/** cbor-x streamed the usual way: the incomplete tail is decoded again with the next chunk. */
function cborxStream(chunks: Uint8Array[], mapsAsObjects = true): number {
  const dec = new Decoder({ mapsAsObjects, useRecords: false } as ConstructorParameters<typeof Decoder>[0]);
  let count = 0;
  let tail: Buffer | null = null;
  for (const c of chunks) {
    const buf: Buffer = tail ? Buffer.concat([tail, c]) : (c as Buffer);
    tail = null;
    try {
      dec.decodeMultiple(buf, () => {
        count++;
      });
    } catch (e) {
      const err = e as { incomplete?: boolean; lastPosition?: number };
      if (!err.incomplete) throw e;
      tail = buf.subarray(err.lastPosition ?? 0);
    }
  }
  return count;
}

function oursStream(format: 'cbor' | 'json', chunks: Uint8Array[]): number {
  const dec = createFrameDecoder(format);
  let count = 0;
  const onMessage = (_m: unknown[]): void => {
    count++;
  };
  for (const c of chunks) dec.push(c, onMessage);
  return count;
}

const msgs: unknown[][] = [];
for (let i = 0; i < N; i++) msgs.push(['b', 'ping', i % 100000]);

// --- CBOR decode ---------------------------------------------------------------------------
const cborEnc = createFrameEncoder('cbor');
const textFrames = Buffer.from(cborEnc.encodeBatch(msgs));
// Perl style: the same with byte strings (major 2), as CBOR::XS sends them.
const perlFrames = Buffer.from(textFrames);
for (let i = 0; i < perlFrames.length; i++) {
  // rewrite the two string heads of each 9- to 12-byte frame: 61 62 64 … → 41 62 44 …
  if (perlFrames[i] === 0x83 && perlFrames[i + 1] === 0x61 && perlFrames[i + 3] === 0x64) {
    perlFrames[i + 1] = 0x41;
    perlFrames[i + 3] = 0x44;
  }
}
const textChunks = chunksOf(textFrames);
const perlChunks = chunksOf(perlFrames);
console.log(`${N} frames, ${textFrames.length} bytes CBOR, ${CHUNK}-byte chunks, best of ${ROUNDS}`);

const base = measure('cbor-x decodeMultiple, streamed (text strs)', N, () => cborxStream(textChunks));
const ours = measure('ours cbor push (text strings)', N, () => oursStream('cbor', textChunks));
const basePerl = measure('cbor-x decodeMultiple, streamed (byte strs)', N, () => cborxStream(perlChunks));
const oursPerl = measure('ours cbor push (byte strings, Perl style)', N, () =>
  oursStream('cbor', perlChunks),
);
const wholeDec = new Decoder({ mapsAsObjects: true, useRecords: false });
const whole = measure(
  'cbor-x decodeMultiple, one buffer (text)',
  N,
  () => wholeDec.decodeMultiple(textFrames)!.length,
);
console.log(
  `decode ratio ours/cbor-x streamed: text ${(ours / base).toFixed(2)}, byte strings ${(oursPerl / basePerl).toFixed(2)}; ` +
    `vs cbor-x one-buffer ${(ours / whole).toFixed(2)}`,
);

// Realistic Perl traffic: byte strings everywhere, longer port names, floats, byte-string map keys.
// cbor-x needs mapsAsObjects:false here (byte-string keys) and still returns Buffers and Maps that
// would need a fix-up pass; that pass is NOT included in its number.
function perlStr(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([b.length < 24 ? Buffer.of(0x40 | b.length) : Buffer.of(0x58, b.length), b]);
}
const perlMix: Buffer[] = [];
for (let i = 0; i < N; i++) {
  const k = i % 3;
  if (k === 0)
    perlMix.push(
      Buffer.concat([
        Buffer.of(0x84),
        perlStr(''),
        perlStr('snd'),
        perlStr('capclient#7zhbQNOXpc'),
        perlStr('message sent successfully'),
      ]),
    );
  else if (k === 1)
    perlMix.push(
      Buffer.concat([Buffer.of(0x82), perlStr('7zhbQNOXpb'), Buffer.from('fb41dac0977e4a47cc', 'hex')]),
    );
  else
    perlMix.push(
      Buffer.concat([
        Buffer.of(0x84),
        perlStr(''),
        perlStr('g_reply'),
        perlStr('q1'),
        Buffer.of(0xa2),
        perlStr('seed'),
        Buffer.of(0x81),
        perlStr('127.0.0.1:4040'),
        perlStr('k'),
        perlStr('v'),
      ]),
    );
}
const perlMixChunks = chunksOf(Buffer.concat(perlMix));
const mixBase = measure('cbor-x streamed, Perl mix (no fix-up!)', N, () => cborxStream(perlMixChunks, false));
const mixOurs = measure('ours cbor push, Perl mix', N, () => oursStream('cbor', perlMixChunks));
console.log(`Perl-mix decode ratio ours/cbor-x: ${(mixOurs / mixBase).toFixed(2)}`);

// --- CBOR encode ---------------------------------------------------------------------------
const cx = new Encoder({ useRecords: false, mapsAsObjects: true });
const encBase = measure('cbor-x encode() per message', N, () => {
  let bytes = 0;
  for (const m of msgs) bytes += cx.encode(m).length;
  return bytes;
});
const encOurs = measure('ours cbor encode() per message', N, () => {
  let bytes = 0;
  for (const m of msgs) bytes += cborEnc.encode(m).length;
  return bytes;
});
const batches: unknown[][][] = [];
for (let i = 0; i < N; i += 64) batches.push(msgs.slice(i, i + 64));
const encBatch = measure('ours cbor encodeBatch(64 msgs)', N, () => {
  let bytes = 0;
  for (const b of batches) bytes += cborEnc.encodeBatch(b).length;
  return bytes;
});
console.log(
  `encode ratio ours/cbor-x: per message ${(encOurs / encBase).toFixed(2)}, batch ${(encBatch / encBase).toFixed(2)}`,
);

// --- JSON ----------------------------------------------------------------------------------
const jsonEnc = createFrameEncoder('json');
const jsonFrames = Buffer.from(jsonEnc.encodeBatch(msgs));
const jsonChunks = chunksOf(jsonFrames);
const jsonTexts = msgs.map((m) => JSON.stringify(m));
const jsonBase = measure('JSON.parse per text (boundaries known)', N, () => {
  let count = 0;
  for (const t of jsonTexts) count += (JSON.parse(t) as unknown[]).length > 0 ? 1 : 0;
  return count;
});
const jsonOurs = measure('ours json push', N, () => oursStream('json', jsonChunks));
console.log(`json decode ratio ours/JSON.parse: ${(jsonOurs / jsonBase).toFixed(2)}`);
const jsonEncOurs = measure('ours json encode() per message', N, () => {
  let bytes = 0;
  for (const m of msgs) bytes += jsonEnc.encode(m).length;
  return bytes;
});
const jsonEncBase = measure('Buffer.from(JSON.stringify()) per message', N, () => {
  let bytes = 0;
  for (const m of msgs) bytes += Buffer.from(JSON.stringify(m)).length;
  return bytes;
});
console.log(`json encode ratio ours/baseline: ${(jsonEncOurs / jsonEncBase).toFixed(2)}`);
