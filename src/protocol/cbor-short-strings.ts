/**
 * Short strings of the CBOR reader (cbor-read.ts): up to SHORT_MAX bytes of ASCII become a
 * string without a call into native code, and the ones that recur are handed out again from a
 * small cache. Anything else (longer, or not ASCII) is left to the reader (null).
 */
import type { FastBuffer } from './cbor-buffer.js';

const fcc = String.fromCharCode;

/** The string of the `n` (0 … SHORT_MAX) bytes at `p` of `s` if they are ASCII, else null. */
export function shortString(s: FastBuffer, p: number, n: number): string | null {
  return n < 2 ? shortAscii(s, p, n) : cachedAscii(s, p, n);
}

/** ASCII fast path for short strings: explicit-argument fromCharCode beats any native call. */
function shortAscii(s: FastBuffer, p: number, n: number): string | null {
  switch (n) {
    case 0:
      return '';
    case 1: {
      const a = s[p]!;
      return a < 0x80 ? fcc(a) : null;
    }
    case 2: {
      const a = s[p]!;
      const b = s[p + 1]!;
      return (a | b) < 0x80 ? fcc(a, b) : null;
    }
    case 3: {
      const a = s[p]!;
      const b = s[p + 1]!;
      const c = s[p + 2]!;
      return (a | b | c) < 0x80 ? fcc(a, b, c) : null;
    }
    case 4: {
      const a = s[p]!;
      const b = s[p + 1]!;
      const c = s[p + 2]!;
      const d = s[p + 3]!;
      return (a | b | c | d) < 0x80 ? fcc(a, b, c, d) : null;
    }
    default:
      return longerAscii(s, p, n);
  }
}

function longerAscii(s: FastBuffer, p: number, n: number): string | null {
  const a = s[p]!;
  const b = s[p + 1]!;
  const c = s[p + 2]!;
  const d = s[p + 3]!;
  const e = s[p + 4]!;
  if ((a | b | c | d | e) >= 0x80) return null;
  if (n === 5) return fcc(a, b, c, d, e);
  const f = s[p + 5]!;
  if (f >= 0x80) return null;
  if (n === 6) return fcc(a, b, c, d, e, f);
  const g = s[p + 6]!;
  if (g >= 0x80) return null;
  if (n === 7) return fcc(a, b, c, d, e, f, g);
  const h = s[p + 7]!;
  if (h >= 0x80) return null;
  if (n === 8) return fcc(a, b, c, d, e, f, g, h);
  const i = s[p + 8]!;
  if (i >= 0x80) return null;
  if (n === 9) return fcc(a, b, c, d, e, f, g, h, i);
  const j = s[p + 9]!;
  if (j >= 0x80) return null;
  if (n === 10) return fcc(a, b, c, d, e, f, g, h, i, j);
  const k = s[p + 10]!;
  if (k >= 0x80) return null;
  if (n === 11) return fcc(a, b, c, d, e, f, g, h, i, j, k);
  const l = s[p + 11]!;
  if (l >= 0x80) return null;
  if (n === 12) return fcc(a, b, c, d, e, f, g, h, i, j, k, l);
  const m = s[p + 12]!;
  if (m >= 0x80) return null;
  if (n === 13) return fcc(a, b, c, d, e, f, g, h, i, j, k, l, m);
  const o = s[p + 13]!;
  if (o >= 0x80) return null;
  if (n === 14) return fcc(a, b, c, d, e, f, g, h, i, j, k, l, m, o);
  const q = s[p + 14]!;
  if (q >= 0x80) return null;
  if (n === 15) return fcc(a, b, c, d, e, f, g, h, i, j, k, l, m, o, q);
  const r = s[p + 15]!;
  if (r >= 0x80) return null;
  return fcc(a, b, c, d, e, f, g, h, i, j, k, l, m, o, q, r);
}

/** Largest length handled by the JS fast path (see longerAscii). */
export const SHORT_MAX = 16;

/**
 * Short ASCII strings that came more than once, by a hash of their bytes: a tag, a family, a map
 * key or a node ID comes again and again, and the cached string is handed out again instead of
 * a fresh one. That saves the allocation, and more: V8 keeps a string's hash and its
 * internalised twin (made the first time it is used as a property key) with the string, so the
 * Map lookups and property stores that follow skip hashing it and looking it up in V8's string
 * table again. A string is taken into its slot only when the slot's last miss had the same hash
 * (it came twice in a row there): strings that come once (reply port names, counters) neither
 * push out the recurring ones nor stay alive in the table. The size is fixed, whatever peers send.
 */
const CACHE_SLOTS = 4096;
const cache: string[] = new Array<string>(CACHE_SLOTS).fill('');
/** Per slot: the cached string's bytes (SHORT_MAX each; compared instead of its characters). */
const cachedBytes = new Uint8Array(CACHE_SLOTS * SHORT_MAX);
/** Per slot: the hash of the last string that missed there. */
const missed = new Int32Array(CACHE_SLOTS);

/**
 * The ASCII string of the `n` (2 … SHORT_MAX) bytes at `p`, cached; null if not ASCII. (V8 keeps
 * the one-character strings internalised already.)
 */
function cachedAscii(s: FastBuffer, p: number, n: number): string | null {
  // The hash reads the first and the last four bytes (all of a string of up to eight): cheap,
  // and a hit compares every byte anyway. The cache holds only ASCII, so a hit is ASCII; a miss
  // is checked by `shortAscii`.
  let head: number;
  let tail = 0;
  if (n >= 4) {
    const q = p + n - 4;
    head = s[p]! | (s[p + 1]! << 8) | (s[p + 2]! << 16) | (s[p + 3]! << 24);
    tail = s[q]! | (s[q + 1]! << 8) | (s[q + 2]! << 16) | (s[q + 3]! << 24);
  } else head = s[p]! | (s[p + 1]! << 8) | (n === 3 ? s[p + 2]! << 16 : 0);
  const h = Math.imul(head ^ Math.imul(tail ^ n, 0x85ebca6b), 0x9e3779b1);
  const slot = (h ^ (h >>> 15)) & (CACHE_SLOTS - 1);
  const hit = cache[slot]!;
  const at = slot * SHORT_MAX;
  if (hit.length === n) {
    let i = 0;
    while (i < n && cachedBytes[at + i] === s[p + i]) i++;
    if (i === n) return hit;
  }
  const str = shortAscii(s, p, n);
  if (str === null) return null;
  if (missed[slot] === h) {
    cache[slot] = str;
    for (let i = 0; i < n; i++) cachedBytes[at + i] = s[p + i]!;
  } else missed[slot] = h;
  return str;
}
