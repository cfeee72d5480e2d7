/** How messages and errors are shown in log and trace lines. */
import { formatReason } from '../../errors.js';

/** The first message element as shown in `unhandled_message`: 30 chars, printable ASCII. */
export function tagText(v: unknown): string {
  const s =
    typeof v === 'string'
      ? v
      : v === undefined || v === null
        ? ''
        : typeof v === 'object'
          ? formatReason([v])
          : String(v);
  return s.slice(0, 30).replace(/[^\x20-\x7e]/g, '.');
}

/** Text of an error for log lines. */
export function errText(err: unknown): string {
  // Errors from a vm context are not `instanceof Error` here, so look at the shape.
  if (typeof err === 'object' && err !== null && typeof (err as Error).message === 'string')
    return (err as Error).message;
  try {
    return String(err);
  } catch {
    // Anything can be thrown, a value from a peer too: one whose `toString` is no function.
    return formatReason([err]);
  }
}

/** A message as JSON for trace lines (bigints as digits, bytes as Latin-1 text). */
export function traceJson(msg: unknown[]): string {
  try {
    return JSON.stringify(msg, (_key, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v,
    );
  } catch (err) {
    return `[not representable as JSON: ${(err as Error).message}]`;
  }
}
