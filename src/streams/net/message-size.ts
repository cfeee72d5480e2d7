/**
 * An estimate of the memory a message holds, for bounding what is kept for a node that is not
 * connected yet (the frame it becomes is not known before a connection chose the framing).
 *
 * Every value counts `ITEM_BYTES`, strings one byte per character and byte arrays their length
 * on top. The walk uses no recursion (a relayed message may nest a million levels deep) and
 * stops once the estimate passes `limit` or after `MAX_WALKED_ITEMS` values (a value that
 * refers to itself cannot be sent anyway; the estimate is then what was counted so far).
 */

/** What one value (array, object, number, …) is counted as, besides its characters or bytes. */
export const ITEM_BYTES = 16;
/** Values looked at per message at most. */
export const MAX_WALKED_ITEMS = 4_000_000;

/**
 * The estimated size of `msg` in bytes, or any number above `limit` once it passes it. A value
 * that throws when looked at (a getter, a proxy) ends the walk: it cannot be sent either.
 */
export function messageSize(msg: unknown, limit: number): number {
  const counted = { size: 0 };
  try {
    walk(msg, limit, counted);
  } catch {
    // What was counted so far stands.
  }
  return counted.size;
}

function walk(msg: unknown, limit: number, counted: { size: number }): void {
  let size = 0;
  let walked = 0;
  const stack: unknown[] = [msg];
  while (stack.length > 0 && size <= limit && walked < MAX_WALKED_ITEMS) {
    counted.size = size;
    const v = stack.pop();
    walked++;
    size += ITEM_BYTES;
    if (typeof v === 'string') size += v.length;
    else if (typeof v !== 'object' || v === null) continue;
    else if (ArrayBuffer.isView(v)) size += v.byteLength;
    else if (Array.isArray(v)) {
      // The order of the walk does not change the sum; a huge sparse array stops at the budget.
      const n = Math.max(0, Math.min(v.length, MAX_WALKED_ITEMS - walked - stack.length));
      for (let i = 0; i < n; i++) stack.push(v[i]);
      size += (v.length - n) * ITEM_BYTES;
    } else if (v instanceof Map)
      for (const [k, x] of v) {
        stack.push(k);
        stack.push(x);
      }
    else
      for (const k of Object.keys(v)) {
        size += k.length;
        stack.push((v as Record<string, unknown>)[k]);
      }
  }
  counted.size = size;
}
