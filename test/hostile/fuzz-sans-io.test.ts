/**
 * Damaged captures fed to the sans-IO layers: the handshake state machine, the line splitter and
 * both frame decoders get the real AnyEvent::MP 2.02 bytes (test/fixtures/handshake/,
 * test/fixtures/frames/) with random bit flips, truncations, insertions and deletions, cut into
 * random chunks. What must hold for every input:
 *   - nothing escapes but a `fail` step (handshake) or a ProtocolError (decoders);
 *   - memory stays bounded: the frame decoder's `buffered` never exceeds maxFrameBytes, the
 *     handshake never holds an unterminated line of 4096 bytes or more;
 *   - damaged credentials are never accepted, and frames before the damage still arrive intact.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AempError, AuthError, ProtocolError } from '../../src/errors.js';
import { MAX_LINE_BYTES } from '../../src/protocol/constants.js';
import { createFrameDecoder } from '../../src/protocol/frame-codec.js';
import { createHandshake, type Handshake, type HandshakeStep } from '../../src/protocol/handshake.js';
import { LineDecoder } from '../../src/protocol/line-decoder.js';
import { type GoldenStream, goldenStreams } from '../fixtures/frames/vectors.js';
import caps from '../fixtures/handshake/captures.json' with { type: 'json' };
import { chunked, chunking, edits, mutate } from '../helpers/hostile-mutate.js';

const enc = (s: string) => Uint8Array.from(Buffer.from(s, 'utf8'));
type Side = (typeof caps.captures)[number]['a'];

function replaying(side: Side): Handshake {
  return createHandshake({
    nodeId: side.nodeId,
    secret: caps.secret,
    authOffer: side.authOffer,
    framings: side.framings as ('cbor' | 'json')[],
    greetingLine: side.line1,
    nonce: side.line2,
  });
}

/** Every (listener, dialler) direction of every capture. */
const directions = caps.captures.flatMap((c) => [
  { name: `${c.name}: ${c.b.nodeId} hears ${c.a.nodeId}`, me: c.b, other: c.a },
  { name: `${c.name}: ${c.a.nodeId} hears ${c.b.nodeId}`, me: c.a, other: c.b },
]);

/** The lines a Perl-style reader would take from `bytes` (LF-terminated, CR stripped). */
function linesOf(bytes: Uint8Array): string[] {
  const text = Buffer.from(bytes).toString('latin1');
  const parts = text.split('\n');
  parts.pop(); // unterminated tail
  return parts.map((l) => Buffer.from(l.replace(/\r$/, ''), 'latin1').toString('utf8'));
}

function feedAll(hs: Handshake, chunks: readonly Uint8Array[]): HandshakeStep[] {
  const steps: HandshakeStep[] = [];
  for (const c of chunks) {
    if (hs.state !== 'greeting' && hs.state !== 'nonce' && hs.state !== 'auth') break;
    steps.push(...hs.feed(c));
  }
  return steps;
}

describe('handshake: damaged captured greetings and auth lines', () => {
  it('unchanged captures complete (sanity check of the replay)', () => {
    for (const d of directions) {
      const hs = replaying(d.me);
      const steps = feedAll(hs, [enc(`${d.other.line1}\n${d.other.line2}\n${d.other.auth}\n`)]);
      expect(
        steps.map((s) => s.kind),
        d.name,
      ).toEqual(['send', 'done']);
    }
  });

  it('only fail steps carrying a ProtocolError/AuthError; never done with damaged credentials; bounded buffer', () => {
    let done = 0;
    let failed = 0;
    let waiting = 0;
    fc.assert(
      fc.property(fc.constantFrom(...directions), edits, chunking, (d, list, cutAt) => {
        const original = enc(`${d.other.line1}\n${d.other.line2}\n${d.other.auth}\n`);
        const { bytes } = mutate(original, list);
        const hs = replaying(d.me);
        const steps = feedAll(hs, chunked(bytes, cutAt));
        for (const s of steps) {
          expect(['send', 'startTls', 'done', 'fail']).toContain(s.kind);
          if (s.kind === 'fail') {
            expect(s.error instanceof ProtocolError || s.error instanceof AuthError).toBe(true);
            expect(s.error.message.length).toBeGreaterThan(0);
          }
        }
        const last = steps[steps.length - 1];
        if (last?.kind === 'done') {
          done++;
          // Only what the token does not cover may differ from what the peer really sent: the
          // framing field of the auth line, line terminators, and — for `cleartext`, whose token
          // is just the secret in hex (Perl alike) — the greeting lines too.
          const [l1, l2, auth = ''] = linesOf(bytes);
          const [method, token] = auth.split(';');
          const [origMethod, origToken] = d.other.auth.split(';');
          expect([method, token]).toEqual([origMethod, origToken]);
          if (method !== 'cleartext') {
            expect(l1).toBe(d.other.line1);
            expect(l2).toBe(d.other.line2);
          }
        } else if (last?.kind === 'fail') failed++;
        else {
          // Still waiting for a line: whatever is held is less than one line.
          waiting++;
          expect(hs.state === 'failed').toBe(false);
          expect(hs.takeRest().length).toBeLessThan(MAX_LINE_BYTES);
        }
      }),
      { numRuns: 1500 },
    );
    // The generator must reach all three outcomes, or the property says little.
    expect(failed).toBeGreaterThan(100);
    expect(waiting).toBeGreaterThan(10);
    expect(done + failed + waiting).toBe(1500);
  });
});

describe('line decoder: damaged handshake bytes', () => {
  it('never holds an unterminated line reaching the limit; only ERR_LINE_TOO_LONG is thrown', () => {
    const all = directions.map((d) => enc(`${d.other.line1}\n${d.other.line2}\n${d.other.auth}\n`));
    fc.assert(
      fc.property(
        fc.constantFrom(...all),
        edits,
        chunking,
        fc.integer({ min: 16, max: MAX_LINE_BYTES }),
        (original, list, cutAt, limit) => {
          const dec = new LineDecoder(limit);
          for (const c of chunked(mutate(original, list).bytes, cutAt)) {
            let lines: string[];
            try {
              lines = dec.push(c);
            } catch (e) {
              expect(e).toBeInstanceOf(ProtocolError);
              expect((e as ProtocolError).code).toBe('ERR_LINE_TOO_LONG');
              expect(dec.buffered).toBe(0);
              return;
            }
            // One UTF-16 unit at most per byte (invalid bytes become one U+FFFD each).
            for (const line of lines) expect(line.length).toBeLessThan(limit);
            expect(dec.buffered).toBeLessThan(limit);
          }
        },
      ),
      { numRuns: 800 },
    );
  });
});

describe('frame decoders: damaged captured data-phase streams', () => {
  const streams = goldenStreams().filter((s) => s.stream.length > 0);

  /** The captured frames decoded unchanged: the reference for frames before the damage. */
  function reference(s: GoldenStream): { end: number; size: number; msg: unknown[] }[] {
    const dec = createFrameDecoder(s.format);
    let end = 0;
    return s.frames.map((f) => {
      const out: unknown[][] = [];
      dec.push(f.bytes, (m) => out.push(m));
      expect(out).toHaveLength(1);
      end += f.bytes.length;
      return { end, size: f.bytes.length, msg: out[0]! };
    });
  }
  const refs = new Map(streams.map((s) => [s, reference(s)]));

  it('throw only ProtocolError, buffer at most maxFrameBytes, deliver the frames before the damage', () => {
    let errors = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...streams),
        edits,
        chunking,
        fc.constantFrom(64, 200, 1024, 64 * 1024 * 1024),
        fc.constantFrom(4, 16, 500),
        (s, list, cutAt, maxFrameBytes, maxDepth) => {
          const { bytes, firstChange } = mutate(s.stream, list);
          const dec = createFrameDecoder(s.format, { maxFrameBytes, maxDepth });
          const got: unknown[][] = [];
          let error: unknown;
          for (const c of chunked(bytes, cutAt)) {
            try {
              dec.push(c, (m) => {
                expect(Array.isArray(m)).toBe(true);
                got.push(m);
              });
            } catch (e) {
              error = e;
              break;
            }
            expect(dec.buffered).toBeLessThanOrEqual(maxFrameBytes);
          }
          if (error !== undefined) {
            errors++;
            expect(error).toBeInstanceOf(ProtocolError);
            expect(['ERR_BAD_FRAME', 'ERR_FRAME_TOO_LARGE']).toContain((error as AempError).code);
            expect(dec.buffered).toBe(0);
            // Dead afterwards, still with a ProtocolError.
            expect(() => dec.push(enc('[]'), () => {})).toThrow(ProtocolError);
          }
          // Frames that end before the first damaged byte arrive exactly as captured, as long
          // as none of them is over the size limit (that one ends the stream).
          const before = refs.get(s)!.filter((r) => r.end <= firstChange);
          let intact = 0;
          while (intact < before.length && before[intact]!.size <= maxFrameBytes) intact++;
          const depthOk = (m: unknown, d: number): boolean =>
            !(Array.isArray(m) || (m !== null && typeof m === 'object')) ||
            (d <= maxDepth && Object.values(m as object).every((x) => depthOk(x, d + 1)));
          while (intact > 0 && !before.slice(0, intact).every((r) => depthOk(r.msg, 1))) intact--;
          expect(got.slice(0, intact)).toEqual(before.slice(0, intact).map((r) => r.msg));
        },
      ),
      { numRuns: 1500 },
    );
    expect(errors).toBeGreaterThan(200);
  });

  // A decoder that stalls or goes super-linear on damaged input runs into this test's deadline:
  // each run yields to the event loop afterwards, so the deadline can fire between runs. The
  // slowest run is logged as a figure, not bounded (timing is the benchmarks' business).
  it('a damaged stream cannot stall the decoder: every run finishes', { timeout: 60_000 }, async () => {
    const big = streams.reduce((a, b) => (a.stream.length > b.stream.length ? a : b));
    let slowest = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(edits, chunking, async (list, cutAt) => {
        const { bytes } = mutate(big.stream, list);
        const t0 = performance.now();
        const dec = createFrameDecoder(big.format);
        try {
          for (const c of chunked(bytes, cutAt)) dec.push(c, () => {});
        } catch (e) {
          if (!AempError.is(e)) throw e;
        }
        slowest = Math.max(slowest, performance.now() - t0);
        runs++;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }),
      { numRuns: 300 },
    );
    expect(runs).toBe(300);
    console.log(
      `damaged ${big.format} stream of ${big.stream.length} bytes: slowest of ${runs} runs ${slowest.toFixed(1)} ms`,
    );
  });
});
