import { describe, expect, it } from 'vitest';
import { AempError } from '../../../src/errors.js';
import { MAX_LINE_BYTES } from '../../../src/protocol/constants.js';
import { LineDecoder } from '../../../src/protocol/line-decoder.js';
import reads from '../../fixtures/handshake/reads.json' with { type: 'json' };
import { chunkings, concat, hex } from '../../helpers/chunks.js';

const enc = (s: string) => new TextEncoder().encode(s);

/** Feeds every chunk, taking lines without limit. */
function allLines(chunks: readonly Uint8Array[]): { lines: string[]; rest: Uint8Array } {
  const d = new LineDecoder();
  const lines: string[] = [];
  for (const c of chunks) lines.push(...d.push(c));
  return { lines, rest: d.takeRest() };
}

/**
 * Takes exactly `n` lines, one at a time, then collects everything else as raw bytes — the way
 * the handshake hands the stream over to the frame decoder.
 */
function linesThenRest(chunks: readonly Uint8Array[], n: number): { lines: string[]; rest: Uint8Array } {
  const d = new LineDecoder();
  const lines: string[] = [];
  const after: Uint8Array[] = [];
  for (const c of chunks) {
    if (lines.length === n) {
      after.push(c);
      continue;
    }
    let input = c;
    while (lines.length < n) {
      const got = d.push(input, 1);
      input = new Uint8Array(0);
      if (got.length === 0) break;
      lines.push(...got);
    }
    if (lines.length === n) after.push(d.takeRest());
  }
  return { lines, rest: concat(after) };
}

function lineTooLong(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    expect(AempError.is(e) && e.code).toBe('ERR_LINE_TOO_LONG');
    return;
  }
  expect.fail('expected ERR_LINE_TOO_LONG');
}

describe('LineDecoder', () => {
  const text = 'aemp;1;a;b;c\nnonce\r\n\r\n\nlast;line\r\n';
  const expected = ['aemp;1;a;b;c', 'nonce', '', '', 'last;line'];

  for (const { name, chunks } of chunkings(enc(text))) {
    it(`splits LF and CR LF lines (${name})`, () => {
      const { lines, rest } = allLines(chunks);
      expect(lines).toEqual(expected);
      expect(rest.length).toBe(0);
    });
  }

  it('keeps a lone CR inside a line and an incomplete line buffered', () => {
    const d = new LineDecoder();
    expect(d.push(enc('a\rb\nc\r'))).toEqual(['a\rb']);
    expect(d.buffered).toBe(2);
    expect(d.push(enc('\n'))).toEqual(['c']);
    expect(d.buffered).toBe(0);
  });

  it('decodes lines as UTF-8', () => {
    const d = new LineDecoder();
    const bytes = enc('knoten/ä€\n');
    expect([...d.push(bytes.subarray(0, 8)), ...d.push(bytes.subarray(8))]).toEqual(['knoten/ä€']);
  });

  it('hands out at most maxLines and keeps the rest for the next call', () => {
    const d = new LineDecoder();
    expect(d.push(enc('one\ntwo\nthree\npartial'), 1)).toEqual(['one']);
    expect(d.push(new Uint8Array(0), 1)).toEqual(['two']);
    expect(d.push(new Uint8Array(0), 5)).toEqual(['three']);
    expect(new TextDecoder().decode(d.takeRest())).toBe('partial');
    expect(d.buffered).toBe(0);
    expect(d.takeRest().length).toBe(0);
  });

  it('takeRest returns a copy that later pushes do not change', () => {
    const d = new LineDecoder();
    d.push(enc('x\nabc'), 1);
    const rest = d.takeRest();
    d.push(enc('zzzzzz'));
    expect(new TextDecoder().decode(rest)).toBe('abc');
  });

  describe('line limit (4096 bytes including the terminator)', () => {
    it(`accepts ${MAX_LINE_BYTES - 1} bytes + LF and ${MAX_LINE_BYTES - 2} bytes + CR LF`, () => {
      const d = new LineDecoder();
      const a = 'a'.repeat(MAX_LINE_BYTES - 1);
      const b = 'b'.repeat(MAX_LINE_BYTES - 2);
      expect(d.push(enc(`${a}\n${b}\r\n`))).toEqual([a, b]);
    });

    it('rejects 4096 bytes + LF (4097 in all)', () => {
      lineTooLong(() => new LineDecoder().push(enc(`${'a'.repeat(MAX_LINE_BYTES)}\n`)));
    });

    it('rejects 4095 bytes + CR LF (4097 in all)', () => {
      lineTooLong(() => new LineDecoder().push(enc(`${'a'.repeat(MAX_LINE_BYTES - 1)}\r\n`)));
    });

    it('fails as soon as an unterminated line can no longer fit, without waiting for LF', () => {
      const d = new LineDecoder();
      const one = enc('x');
      for (let i = 0; i < MAX_LINE_BYTES - 1; i++) expect(d.push(one)).toEqual([]);
      expect(d.buffered).toBe(MAX_LINE_BYTES - 1);
      lineTooLong(() => d.push(one));
      // The decoder stays failed and buffers nothing more.
      lineTooLong(() => d.push(one));
      expect(d.buffered).toBe(0);
    });

    it('checks a long line that follows short ones in the same chunk', () => {
      const d = new LineDecoder();
      lineTooLong(() => d.push(enc(`ok\n${'y'.repeat(MAX_LINE_BYTES + 10)}`)));
    });

    it('does not check bytes behind the last line taken (they are data, not lines)', () => {
      const d = new LineDecoder();
      const data = new Uint8Array(3 * MAX_LINE_BYTES).fill(0x41);
      expect(d.push(concat([enc('auth;line;cbor\n'), data]), 1)).toEqual(['auth;line;cbor']);
      expect(d.takeRest()).toEqual(data);
    });

    it('honours a custom limit', () => {
      const d = new LineDecoder(4);
      expect(d.push(enc('abc\n'))).toEqual(['abc']);
      lineTooLong(() => d.push(enc('abcd')));
      expect(() => new LineDecoder(0)).toThrow(RangeError);
    });
  });

  describe('hand-over to the frame decoder (node-port-json: auth line and ["","g_global"] in one read)', () => {
    const fixture = reads['node-port-json'];
    const bytes = concat(fixture.reads.map((r) => hex(r)));
    const rest = hex(fixture.rest);

    it('the captured read boundaries', () => {
      const { lines, rest: got } = linesThenRest(
        fixture.reads.map((r) => hex(r)),
        3,
      );
      expect(lines.length).toBe(3);
      expect(lines[0]).toMatch(/^aemp;1;seed;/);
      expect(lines[2]).toMatch(/^hmac_sha3_512;[0-9a-f]{128};json$/);
      expect(got).toEqual(rest);
    });

    for (const { name, chunks } of chunkings(bytes)) {
      it(`no byte lost (${name})`, () => {
        const { lines, rest: got } = linesThenRest(chunks, 3);
        expect(lines.length).toBe(3);
        expect(got).toEqual(rest);
      });
    }
  });
});
