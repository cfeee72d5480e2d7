/**
 * Chunking matrix for decoder tests: the same bytes fed whole, byte by byte, and split in two
 * at every boundary. A decoder must produce the same result for every variant.
 */

export interface Chunking {
  name: string;
  chunks: Uint8Array[];
}

/** Every way the tests feed `bytes` to a decoder. Splits at every boundary only up to `maxSplits`. */
export function chunkings(bytes: Uint8Array, maxSplits = 4096): Chunking[] {
  const out: Chunking[] = [{ name: 'whole', chunks: [bytes] }];
  const single: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i++) single.push(bytes.subarray(i, i + 1));
  out.push({ name: 'byte by byte', chunks: single });
  const step = Math.max(1, Math.ceil(bytes.length / maxSplits));
  for (let i = 1; i < bytes.length; i += step) {
    out.push({ name: `split at ${i}`, chunks: [bytes.subarray(0, i), bytes.subarray(i)] });
  }
  return out;
}

/** Parses a hex dump ("82 40 48 …" or "8240…") into bytes. */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, '');
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
}
