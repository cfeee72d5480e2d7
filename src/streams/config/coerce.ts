/**
 * Coercion of configuration values as Perl's `aemp` writes them: string numbers, string
 * booleans (Perl truthiness) and comma-separated lists.
 */

/**
 * Perl truthiness: false for undefined, null, `""`, `"0"`, `0` and `false`; everything else
 * (including `"false"`, `"0.0"`, `[]` and `{}`) is true.
 */
export function perlTruthy(v: unknown): boolean {
  return !(v === undefined || v === null || v === false || v === 0 || v === '' || v === '0');
}

const NUMERIC = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** A number from a number or a numeric string (`"30"` → 30); anything else → NaN. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && NUMERIC.test(v)) return Number(v);
  return Number.NaN;
}

/** A list from an array (numbers become strings) or a comma-separated string (Perl split). */
export function toList(v: unknown): unknown {
  if (typeof v === 'string') {
    const parts = v.split(',');
    while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
    return parts;
  }
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'number' ? String(x) : x));
  return v;
}

/** A string from a number; other values unchanged. */
export function toText(v: unknown): unknown {
  return typeof v === 'number' ? String(v) : v;
}
