/**
 * Node and port identifiers (spec/api.md §0–§3).
 *
 * A port ID is `NODEID#PORTNAME`, split at the first `#`; a bare node ID addresses the node
 * port (name `""`). Port names are never reused within a node's lifetime.
 */
import { randomInt } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The node part of a port ID (text before the first `#`), or the whole string. */
export function nodeOf(portOrNode: string): string {
  const i = portOrNode.indexOf('#');
  return i < 0 ? portOrNode : portOrNode.slice(0, i);
}

/** The port name part of a port ID (text after the first `#`), `""` for a bare node ID. */
export function portNameOf(portOrNode: string): string {
  const i = portOrNode.indexOf('#');
  return i < 0 ? '' : portOrNode.slice(i + 1);
}

/** `n` characters drawn uniformly from `0-9A-Za-z`. */
export function nonce62(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET.charAt(randomInt(62));
  return s;
}

/**
 * The per-process random suffix (RUNIQ): ten base-62 characters, the last upper-cased.
 */
export function makeRuniq(): string {
  const s = nonce62(10);
  return s.slice(0, 9) + s.slice(9).toUpperCase();
}

/**
 * The per-process port-name prefix (UNIQ): five characters derived from the process ID and
 * the clock, then four random ones.
 */
export function makeUniq(pid = process.pid, nowSeconds = Date.now() / 1000): string {
  const c = (n: number) => ALPHABET.charAt(Math.floor(n) % 62);
  return c(pid / 62) + c(pid) + c(nowSeconds) + c(nowSeconds * 100) + c(nowSeconds * 10000) + nonce62(4);
}

/**
 * Perl's "magic" string increment for alphanumeric strings: `a`→`b`, `z`→`aa`, `az`→`ba`,
 * `a9`→`b0`, `Zz`→`AAa`. Used for the port-name counter.
 */
export function magicIncrement(s: string): string {
  if (s === '') return '1';
  const last = s.charCodeAt(s.length - 1);
  // Fast path: the last character simply advances (no carry).
  if (last !== 0x7a && last !== 0x5a && last !== 0x39) return s.slice(0, -1) + String.fromCharCode(last + 1);
  const chars = s.split('');
  for (let i = chars.length - 1; i >= 0; i--) {
    const ch = chars[i]!;
    if (ch === 'z') chars[i] = 'a';
    else if (ch === 'Z') chars[i] = 'A';
    else if (ch === '9') chars[i] = '0';
    else {
      chars[i] = String.fromCharCode(ch.charCodeAt(0) + 1);
      return chars.join('');
    }
  }
  const first = s[0]!;
  const lead = first >= 'a' && first <= 'z' ? 'a' : first >= 'A' && first <= 'Z' ? 'A' : '1';
  return lead + chars.join('');
}
