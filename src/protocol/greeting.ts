/**
 * The two greeting lines (spec/protocol.md §3, §4): building our own and parsing the peer's the
 * way Perl does (`split /;/`, extension pairs split at the first `=`, unknown keys ignored).
 */
import { randomBytes } from 'node:crypto';
import { AempError } from '../errors.js';
import {
  AUTH,
  DEFAULT_AUTH_ACCEPT,
  FRAMING,
  GREETING_KEY,
  MAX_LINE_BYTES,
  PROTOCOL,
  PROTOCOL_VERSION,
  PROVIDER,
} from './constants.js';

/** Number of random bytes in a nonce (Perl: 66 → 88 Base64 characters, no padding). */
export const NONCE_BYTES = 66;

/**
 * Greeting key by which an aemp node states its side of the connection (not sent by Perl):
 * `d` = this side dialled, `a` = this side accepted. The auth tokens cover greeting line 1, so
 * a relay cannot change it; two sides claiming the same role betray a relayed handshake.
 */
export const ROLE_KEY = GREETING_KEY.ROLE;

/** Values of the `role` key. */
export const ROLE = { dialled: 'd', accepted: 'a' } as const;

/** Which side of a TCP connection a node is on. */
export type ConnectionRole = keyof typeof ROLE;

/** A parsed greeting line 1. Missing fields are `''` (Perl's undef interpolates and compares as ''). */
export interface Greeting {
  /** The line as received (terminator stripped). */
  readonly line: string;
  /** Field 1: `aemp` or `aemp-<word>`. */
  readonly proto: string;
  /** Field 2, verbatim; compare with `perlNumber`. */
  readonly version: string;
  /** Field 3. */
  readonly nodeId: string;
  /** Field 4 verbatim (used in error texts). */
  readonly auths: string;
  /** Field 5 verbatim (used in error texts). */
  readonly framings: string;
  /** Field 4 split on `,` (Perl semantics: trailing empty entries dropped). */
  readonly authList: readonly string[];
  /** Field 5 split on `,`. */
  readonly framingList: readonly string[];
  /** Extension pairs; a later duplicate wins; a field without `=` maps to `undefined`. */
  readonly keys: ReadonlyMap<string, string | undefined>;
}

/** An extension pair for our own greeting; an `undefined` value is written as a bare key. */
export type GreetingKeys =
  | Iterable<readonly [string, string | undefined]>
  | Readonly<Record<string, string | undefined>>;

export interface BuildGreetingOptions {
  nodeId: string;
  /** Methods we accept (AUTHS field), in preference order. */
  auths: readonly string[];
  /** Framings we can send and receive (FRAMINGS field), in preference order. */
  framings: readonly string[];
  /** `provider` value; defaults to this implementation's. */
  provider?: string;
  /** The other end's address as seen from here (`host:port`); omitted if undefined. */
  peerAddr?: string;
  /** True if a certificate is configured: adds `tls=1.0`. */
  tls?: boolean;
  /** Our side of the connection: adds `role=d` or `role=a`. */
  role?: ConnectionRole;
  /** Further pairs, e.g. `{ hb: '2' }`. A key that is already present is replaced in place. */
  extraKeys?: GreetingKeys;
}

/**
 * Perl's `split /SEP/, STR` for a one-character separator: an empty string gives no fields,
 * trailing empty fields are removed, leading and inner ones are kept.
 */
export function perlSplit(s: string, sep: string): string[] {
  const parts = s.split(sep);
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

const PERL_NUMBER = /^[ \t\n\r\f\v]*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)/;
const PERL_SPECIAL = /^[ \t\n\r\f\v]*([+-]?)(inf(?:inity)?|nan)/i;

/**
 * The numeric value Perl gives a string (`"1.0"` → 1, `" 2x"` → 2, `"abc"` → 0,
 * undefined → 0). Used for the version field and `int($tls)`.
 */
export function perlNumber(s: string | undefined): number {
  if (s === undefined) return 0;
  const m = PERL_NUMBER.exec(s);
  if (m) return Number(m[1]);
  const sp = PERL_SPECIAL.exec(s);
  if (sp) {
    if (sp[2]!.toLowerCase() === 'nan') return Number.NaN;
    return sp[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  return 0;
}

/** Perl's `int(STR)`. */
export function perlInt(s: string | undefined): number {
  return Math.trunc(perlNumber(s));
}

/** True if `proto` names a sub-protocol (`^aemp-\w+$`, e.g. `aemp-dataconn`). */
export function isSubProtocol(proto: string): boolean {
  return /^aemp-[A-Za-z0-9_]+$/.test(proto);
}

/** Parses greeting line 1. Never throws: whatever the line, the checks of §5 decide. */
export function parseGreeting(line: string): Greeting {
  const [proto = '', version = '', nodeId = '', auths = '', framings = '', ...rest] = perlSplit(line, ';');
  const keys = new Map<string, string | undefined>();
  for (const field of rest) {
    // Perl: /^([^=]+)(?:=(.*))?/ — the key must be non-empty; a field starting with '=' is dropped.
    const eq = field.indexOf('=');
    if (eq === 0 || field === '') continue;
    if (eq < 0) keys.set(common(field), undefined);
    else keys.set(common(field.slice(0, eq)), common(field.slice(eq + 1)));
  }
  return {
    line,
    proto: common(proto),
    version: common(version),
    nodeId,
    auths: common(auths),
    framings: common(framings),
    authList: perlSplit(auths, ',').map(common),
    framingList: perlSplit(framings, ',').map(common),
    keys,
  };
}

/**
 * The words most greetings contain, each kept once: a parsed greeting lives as long as its
 * connection and refers to these instead of copies of its own.
 */
const COMMON_WORDS = new Map<string, string>(
  [
    PROTOCOL,
    PROVIDER,
    ...Object.values(GREETING_KEY),
    ...Object.values(AUTH),
    ...Object.values(FRAMING),
    ...Object.values(ROLE),
    DEFAULT_AUTH_ACCEPT.join(','),
    `${FRAMING.CBOR},${FRAMING.JSON}`,
    `${FRAMING.JSON},${FRAMING.CBOR}`,
    ...Array.from({ length: 10 }, (_, i) => String(i)),
  ].map((w) => [w, w]),
);

/** `s`, or the same text from `COMMON_WORDS`. */
function common(s: string): string {
  return COMMON_WORDS.get(s) ?? s;
}

function badArgument(message: string): AempError {
  return new AempError('ERR_BAD_ARGUMENT', message);
}

const FORBIDDEN = /[;\r\n]/;

function checkField(what: string, value: string): void {
  if (FORBIDDEN.test(value))
    throw badArgument(`greeting ${what} must not contain ';', CR or LF: ${JSON.stringify(value)}`);
}

function checkList(what: string, list: readonly string[]): void {
  for (const item of list) {
    checkField(what, item);
    if (item === '' || item.includes(','))
      throw badArgument(`greeting ${what} entry must be non-empty without ',': ${JSON.stringify(item)}`);
  }
}

function pairsOf(keys: GreetingKeys): Iterable<readonly [string, string | undefined]> {
  return Symbol.iterator in keys
    ? (keys as Iterable<readonly [string, string | undefined]>)
    : Object.entries(keys as Readonly<Record<string, string | undefined>>);
}

/**
 * Builds our greeting line 1 (without terminator):
 * `aemp;1;NODEID;AUTHS;FRAMINGS;provider=…;peeraddr=…;mproto=1;gproto=1[;tls=1.0][;role=d|a][;extra…]`.
 * Throws `ERR_BAD_ARGUMENT` if a field would break the line format or the line exceeds the
 * handshake line limit.
 */
export function buildGreeting(opts: BuildGreetingOptions): string {
  checkField('node ID', opts.nodeId);
  if (opts.nodeId === '') throw badArgument('greeting node ID must not be empty');
  checkList('auth', opts.auths);
  checkList('framing', opts.framings);
  const keys = new Map<string, string | undefined>();
  keys.set(GREETING_KEY.PROVIDER, opts.provider ?? PROVIDER);
  if (opts.peerAddr !== undefined) keys.set(GREETING_KEY.PEERADDR, opts.peerAddr);
  keys.set(GREETING_KEY.MPROTO, '1');
  keys.set(GREETING_KEY.GPROTO, '1');
  if (opts.tls) keys.set(GREETING_KEY.TLS, '1.0');
  if (opts.role !== undefined) keys.set(ROLE_KEY, ROLE[opts.role]);
  if (opts.extraKeys) for (const [k, v] of pairsOf(opts.extraKeys)) keys.set(k, v);

  const fields = [
    PROTOCOL,
    String(PROTOCOL_VERSION),
    opts.nodeId,
    opts.auths.join(','),
    opts.framings.join(','),
  ];
  for (const [k, v] of keys) {
    checkField('key', k);
    if (k === '' || k.includes('='))
      throw badArgument(`greeting key must be non-empty without '=': ${JSON.stringify(k)}`);
    if (v === undefined) fields.push(k);
    else {
      checkField(`value of ${k}`, v);
      fields.push(`${k}=${v}`);
    }
  }
  const line = fields.join(';');
  if (Buffer.byteLength(line, 'utf8') + 1 > MAX_LINE_BYTES) {
    throw badArgument(`greeting line longer than ${MAX_LINE_BYTES - 1} bytes`);
  }
  return line;
}

/** A fresh nonce line: Base64 of `bytes` (≥ 32, default 66) random bytes from the CSPRNG. */
export function makeNonce(bytes = NONCE_BYTES): string {
  if (!Number.isInteger(bytes) || bytes < 32) throw badArgument('a nonce needs at least 32 random bytes');
  return randomBytes(bytes).toString('base64');
}
