/**
 * JSON text as Perl's `aemp` prints it (JSON::XS): `pretty` indents by three spaces and puts
 * a space on both sides of the colon; `ascii` escapes every non-ASCII character.
 *
 *   pretty({ binds: ['*:4040'] })  →  '{\n   "binds" : [\n      "*:4040"\n   ]\n}\n'
 *   compact(['a', 1])              →  '["a",1]'
 */

export interface JsonTextOptions {
  /** Escape non-ASCII characters as `\uXXXX` (JSON::XS `ascii`). @default false */
  readonly ascii?: boolean;
}

const INDENT = '   ';

/**
 * Characters JSON.stringify leaves raw that a terminal acts on or shows as a line break: DEL,
 * the C1 controls (0x9b starts an escape sequence on some terminals), the line and paragraph
 * separators and the bidirectional overrides. They only occur inside strings, where `\uXXXX`
 * is the same JSON.
 */
const RAW_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** JSON text with the characters of {@link RAW_UNSAFE} escaped (still the same JSON value). */
export function terminalJson(text: string): string {
  return text.replace(RAW_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Pretty JSON in JSON::XS style, with a trailing newline. */
export function pretty(value: unknown, options: JsonTextOptions = {}): string {
  return `${prettyValue(value, '', options.ascii ?? false)}\n`;
}

/** Compact JSON (no spaces), optionally ASCII-only. */
export function compact(value: unknown, options: JsonTextOptions = {}): string {
  const text = terminalJson(JSON.stringify(value, jsonReplacer) ?? 'null');
  return options.ascii ? toAscii(text) : text;
}

function prettyValue(v: unknown, indent: string, ascii: boolean): string {
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    const inner = indent + INDENT;
    const items = v.map((x) => inner + prettyValue(x, inner, ascii));
    return `[\n${items.join(',\n')}\n${indent}]`;
  }
  if (isObject(v)) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return '{}';
    const inner = indent + INDENT;
    const items = entries.map(([k, x]) => `${inner}${scalar(k, ascii)} : ${prettyValue(x, inner, ascii)}`);
    return `{\n${items.join(',\n')}\n${indent}}`;
  }
  return scalar(v, ascii);
}

function scalar(v: unknown, ascii: boolean): string {
  const text = terminalJson(JSON.stringify(v, jsonReplacer) ?? 'null');
  return ascii ? toAscii(text) : text;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array);
}

/** Byte strings (CBOR) travel as Uint8Array: show them as text, as Perl would. */
function jsonReplacer(_key: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
  if (typeof v === 'bigint') return Number(v);
  return v;
}

function toAscii(text: string): string {
  return text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
