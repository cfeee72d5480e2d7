/**
 * The configuration keys (spec/config-and-cli.md §2 plus our extensions), their coercion from
 * what rc files and command lines hold, and their validation with a convict schema.
 *
 * Values written by Perl's `aemp` are often strings (`"30"`, `"1"`), so every key is first
 * coerced: numeric strings become numbers, booleans follow Perl truthiness, comma strings
 * become lists. Convict then validates the coerced values; each failure is reported with the
 * key, the profile and the value as it was written.
 */
import convict from 'convict';
import {
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_FRAME_ITEMS,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS,
  DEFAULT_MAX_SEND_BUFFER_BYTES,
  DEFAULT_MAX_TOTAL_SEND_BUFFER_BYTES,
} from '../../protocol/constants.js';
import { splitItems, transportItemProblem } from '../net/binds.js';
import { metricsAddressProblem } from '../observe/metrics-address.js';
import { perlTruthy, toList, toNumber, toText } from './coerce.js';
import { nodeIdProblem } from './nodeid.js';

/** A `services` entry: `"Module::"`, `"Module::func"` or `["Module::func", ...args]`. */
export type ServiceEntry = string | readonly [string, ...unknown[]];

/** The typed, coerced, validated configuration of one node. */
export interface NodeConfig {
  /** The profile name the configuration was resolved for. */
  readonly profile: string;
  /** Node ID template (`%n`, `%u`, trailing `/`); `"<profile>/"` when not configured. */
  readonly nodeid: string;
  /** Listen addresses (unresolved descriptors). @default ["*"] */
  readonly binds: readonly string[];
  /** Seed addresses (unresolved descriptors). @default [] */
  readonly seeds: readonly string[];
  /** Run at startup, in order. @default [] */
  readonly services: readonly ServiceEntry[];
  /** JavaScript evaluated after the services. */
  readonly eval: string | undefined;
  /** Shared secret for `hmac_sha3_512` / `cleartext`. */
  readonly secret: string | undefined;
  /** PEM private key + certificate (+ CA certificates); enables TLS. */
  readonly cert: string | undefined;
  /** Refuse remote code execution. @default false */
  readonly secure: boolean;
  /** Seconds: handshake read timeout and cap of the retry backoff. @default 30 */
  readonly monitor_timeout: number;
  /** Seconds: on-demand connect deadline and spacing between address attempts. @default 2 */
  readonly connect_interval: number;
  /** Framings in preference order (`storable` is never offered by us). */
  readonly framing_format: readonly string[];
  /** Auth methods this node is willing to send. */
  readonly auth_offer: readonly string[];
  /** Auth methods advertised as acceptable. */
  readonly auth_accept: readonly string[];
  /** Write coalescing hint (our writes are always batched per event-loop turn). @default false */
  readonly autocork: boolean;
  /** TCP_NODELAY. @default true (only an explicit false value turns it off) */
  readonly nodelay: boolean;
  /** Profile inherited from (informational after resolution). */
  readonly parent: string | undefined;
  /** Extension: seconds between heartbeats on idle connections; 0 disables. @default 5 */
  readonly heartbeat_interval: number;
  /** Extension: missed heartbeats before the peer is declared down. @default 3 */
  readonly heartbeat_misses: number;
  /** Extension: largest accepted data frame in bytes. @default 16 MiB */
  readonly max_frame_bytes: number;
  /** Extension: unsent bytes one connection may hold before it is dropped. @default 256 MiB */
  readonly max_send_buffer_bytes: number;
  /** Extension: unsent bytes all connections together may hold. @default 1 GiB */
  readonly max_total_send_buffer_bytes: number;
  /** Extension: most data items (values, arrays, maps, chunks) one frame may decode to. @default 1000000 */
  readonly max_frame_items: number;
  /** Extension: refuse peers that do not state their connection role (all-aemp networks). @default false */
  readonly strict_peers: boolean;
  /** Extension: seconds a connection may take from TCP connect to authentication. @default 5 */
  readonly handshake_timeout: number;
  /** Extension: accepted connections still in their handshake, node-wide. @default 256 */
  readonly max_pending_handshakes: number;
  /** Extension: accepted connections still in their handshake from one remote address. @default 64 */
  readonly max_pending_handshakes_per_address: number;
  /** Extension: connections of all kinds (accepted, dialled, established). @default 4096 */
  readonly max_connections: number;
  /** Extension: serve Prometheus metrics here (`PORT` = on 127.0.0.1, or `HOST:PORT`); unset = off. */
  readonly metrics: string | undefined;
}

/** The keys of `NodeConfig` that can be configured (all but `profile`). */
export type ConfigKey = Exclude<keyof NodeConfig, 'profile'>;

/** How a key's value is coerced and validated; the CLI uses it for `set<key>` commands. */
export type KeyKind =
  | 'nodeid'
  | 'string'
  | 'descriptors'
  | 'list'
  | 'services'
  | 'bool'
  | 'number'
  | 'listen';

/** Built-in defaults that `configure` overlays first (config-and-cli.md §3), in Perl order. */
export function builtinDefaults(): Record<string, unknown> {
  return {
    monitor_timeout: 30,
    connect_interval: 2,
    framing_format: ['cbor', 'json', 'storable'],
    auth_offer: ['tls_sha3_512', 'hmac_sha3_512'],
    auth_accept: ['tls_sha3_512', 'hmac_sha3_512', 'tls_anon', 'cleartext'],
  };
}

/** Marks a value no format accepts (keeps convict from flattening plain objects). */
const INVALID = Symbol('invalid');

type Check = (v: unknown) => string | undefined;

const isStringList = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');

const checks: Record<KeyKind, Check> = {
  nodeid: (v) => (typeof v === 'string' ? nodeIdProblem(v) : 'must be a string'),
  string: (v) => (typeof v === 'string' ? undefined : 'must be a string'),
  list: (v) => (isStringList(v) ? undefined : 'must be a list of strings (or a comma-separated string)'),
  descriptors: (v) => {
    if (!isStringList(v)) return 'must be a list of addresses (or a comma-separated string)';
    for (const el of v as string[]) {
      for (const item of splitItems(el)) {
        const problem = transportItemProblem(item);
        if (problem !== undefined) return `has an unparsable address ${JSON.stringify(item)} (${problem})`;
      }
    }
    return undefined;
  },
  services: (v) =>
    Array.isArray(v) &&
    v.every((e) => typeof e === 'string' || (Array.isArray(e) && e.length > 0 && typeof e[0] === 'string'))
      ? undefined
      : 'must be a list of "Module::" names, function names or [function, args…] arrays',
  bool: () => undefined,
  number: () => undefined,
  listen: (v) => (typeof v === 'string' ? metricsAddressProblem(v) : 'must be a port or host:port'),
};

/** How one configuration key is handled. */
export interface KeySpec {
  readonly kind: KeyKind;
  readonly doc: string;
  /** The default in the typed view (null = not set). */
  readonly default: unknown;
  /** Extra check for numbers (NaN is rejected before). */
  readonly range?: (n: number) => boolean;
  /** Reason given when a number fails `range` or is not numeric. */
  readonly rangeText?: string;
  /** True for keys Perl AEMP does not know. */
  readonly extension?: boolean;
  /** Never shown in messages (only its type is). */
  readonly sensitive?: boolean;
}

/** Every configuration key: kind, documentation and typed default. */
export const CONFIG_KEYS: Readonly<Record<ConfigKey, KeySpec>> = {
  nodeid: {
    kind: 'nodeid',
    doc: 'node ID; %n = host name, %u and a trailing / = random suffix',
    default: null,
  },
  binds: { kind: 'descriptors', doc: 'listen addresses', default: ['*'] },
  seeds: { kind: 'descriptors', doc: 'seed addresses (give a port)', default: [] },
  services: { kind: 'services', doc: 'modules to load / functions to call at startup', default: [] },
  eval: { kind: 'string', doc: 'JavaScript evaluated after the services', default: null },
  secret: {
    kind: 'string',
    doc: 'shared secret for hmac_sha3_512 / cleartext auth',
    default: null,
    sensitive: true,
  },
  cert: {
    kind: 'string',
    doc: 'PEM private key and certificate; enables TLS',
    default: null,
    sensitive: true,
  },
  secure: { kind: 'bool', doc: 'refuse remote code execution', default: false },
  monitor_timeout: {
    kind: 'number',
    doc: 'seconds: handshake timeout, retry backoff cap',
    default: 30,
    range: (n) => n > 0,
    rangeText: 'must be a positive number',
  },
  connect_interval: {
    kind: 'number',
    doc: 'seconds: connect deadline and address spacing',
    default: 2,
    range: (n) => n > 0,
    rangeText: 'must be a positive number',
  },
  framing_format: {
    kind: 'list',
    doc: 'framings in preference order',
    default: ['cbor', 'json', 'storable'],
  },
  auth_offer: { kind: 'list', doc: 'auth methods to send', default: ['tls_sha3_512', 'hmac_sha3_512'] },
  auth_accept: {
    kind: 'list',
    doc: 'auth methods to accept',
    default: ['tls_sha3_512', 'hmac_sha3_512', 'tls_anon', 'cleartext'],
  },
  autocork: { kind: 'bool', doc: 'write coalescing (always on here)', default: false },
  nodelay: { kind: 'bool', doc: 'TCP_NODELAY (true unless set to a false value)', default: true },
  parent: { kind: 'string', doc: 'rc profiles only: profile to inherit from', default: null },
  heartbeat_interval: {
    kind: 'number',
    doc: 'seconds between heartbeats on a connection; 0 disables (extension)',
    default: 5,
    range: (n) => n >= 0,
    rangeText: 'must be a number of seconds >= 0 (0 disables heartbeats)',
    extension: true,
  },
  heartbeat_misses: {
    kind: 'number',
    doc: 'missed heartbeats before the peer is declared down (extension)',
    default: 3,
    range: (n) => Number.isInteger(n) && n >= 1,
    rangeText: 'must be a positive integer',
    extension: true,
  },
  max_frame_bytes: {
    kind: 'number',
    doc: 'largest accepted frame in bytes (extension)',
    default: DEFAULT_MAX_FRAME_BYTES,
    range: (n) => Number.isInteger(n) && n >= 1024,
    rangeText: 'must be an integer >= 1024',
    extension: true,
  },
  max_send_buffer_bytes: {
    kind: 'number',
    doc: 'unsent bytes one connection may hold before it is dropped (extension)',
    default: DEFAULT_MAX_SEND_BUFFER_BYTES,
    range: (n) => Number.isInteger(n) && n >= 65536,
    rangeText: 'must be an integer >= 65536',
    extension: true,
  },
  max_total_send_buffer_bytes: {
    kind: 'number',
    doc: 'unsent bytes all connections together may hold (extension)',
    default: DEFAULT_MAX_TOTAL_SEND_BUFFER_BYTES,
    range: (n) => Number.isInteger(n) && n >= 65536,
    rangeText: 'must be an integer >= 65536',
    extension: true,
  },
  max_frame_items: {
    kind: 'number',
    doc: 'most data items one frame may decode to (extension)',
    default: DEFAULT_MAX_FRAME_ITEMS,
    range: (n) => Number.isInteger(n) && n >= 1024,
    rangeText: 'must be an integer >= 1024',
    extension: true,
  },
  strict_peers: {
    kind: 'bool',
    doc: 'refuse peers that do not state their connection role, e.g. Perl nodes (extension)',
    default: false,
    extension: true,
  },
  handshake_timeout: {
    kind: 'number',
    doc: 'seconds from connect to authentication before a connection is dropped (extension)',
    default: DEFAULT_HANDSHAKE_TIMEOUT,
    range: (n) => n > 0,
    rangeText: 'must be a positive number',
    extension: true,
  },
  max_pending_handshakes: {
    kind: 'number',
    doc: 'accepted connections still in their handshake, node-wide (extension)',
    default: DEFAULT_MAX_PENDING_HANDSHAKES,
    range: (n) => Number.isInteger(n) && n >= 1,
    rangeText: 'must be a positive integer',
    extension: true,
  },
  max_pending_handshakes_per_address: {
    kind: 'number',
    doc: 'accepted connections still in their handshake from one address (extension)',
    default: DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS,
    range: (n) => Number.isInteger(n) && n >= 1,
    rangeText: 'must be a positive integer',
    extension: true,
  },
  max_connections: {
    kind: 'number',
    doc: 'connections of all kinds together (extension)',
    default: DEFAULT_MAX_CONNECTIONS,
    range: (n) => Number.isInteger(n) && n >= 1,
    rangeText: 'must be a positive integer',
    extension: true,
  },
  metrics: {
    kind: 'listen',
    doc: 'serve Prometheus metrics on this port (127.0.0.1) or host:port; unset = off (extension)',
    default: null,
    extension: true,
  },
};

/** Names of all configuration keys, in documentation order. */
export const CONFIG_KEY_NAMES = Object.keys(CONFIG_KEYS) as ConfigKey[];

/**
 * Coerces a raw value of `key` for validation: numbers from numeric strings, Perl truthiness
 * for booleans, lists from comma strings. Values that cannot be coerced are returned so that
 * validation rejects them. `undefined` (and `null`, except for `nodeid`) means "not set".
 */
export function coerceValue(key: ConfigKey, raw: unknown): unknown {
  const spec = CONFIG_KEYS[key];
  if (spec.kind === 'bool') return raw === undefined ? undefined : perlTruthy(raw);
  if (raw === undefined || (raw === null && spec.kind !== 'nodeid')) return undefined;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) return INVALID;
  switch (spec.kind) {
    case 'number':
      return toNumber(raw);
    case 'list':
    case 'descriptors':
      return toList(raw);
    case 'services':
      return typeof raw === 'string' ? toList(raw) : raw;
    default:
      return toText(raw);
  }
}

/** One rejected key. */
export interface KeyFailure {
  readonly key: ConfigKey;
  readonly reason: string;
}

/** Why `value` (already coerced) is not acceptable for `key`, or undefined if it is. */
export function checkValue(key: ConfigKey, value: unknown): string | undefined {
  const spec = CONFIG_KEYS[key];
  if (value === INVALID) return spec.kind === 'number' ? spec.rangeText : checks[spec.kind](INVALID);
  if (spec.kind === 'number') {
    return typeof value === 'number' && !Number.isNaN(value) && spec.range!(value)
      ? undefined
      : spec.rangeText;
  }
  return checks[spec.kind](value);
}

/** The convict schema of all keys (doc, default, format); formats report into `sink`. */
function buildSchema(sink: KeyFailure[]): convict.Schema<Record<ConfigKey, unknown>> {
  const schema: Record<string, convict.SchemaObj> = {};
  for (const key of CONFIG_KEY_NAMES) {
    const spec = CONFIG_KEYS[key];
    schema[key] = {
      doc: spec.doc,
      default: spec.default,
      // an explicit null nodeid is an error (Perl croaks); other unset keys stay null
      nullable: spec.default === null && spec.kind !== 'nodeid',
      format: (v: unknown) => {
        const reason = checkValue(key, v);
        if (reason !== undefined) {
          sink.push({ key, reason });
          throw new Error(reason);
        }
      },
    };
  }
  return schema as convict.Schema<Record<ConfigKey, unknown>>;
}

/**
 * Validates coerced values with convict and returns every key's value with defaults applied
 * (null for unset optional keys), or the list of failures. `nodeid` must be given (it has no
 * static default: it is derived from the profile name).
 */
export function validateValues(
  values: Partial<Record<ConfigKey, unknown>>,
): { ok: true; values: Record<ConfigKey, unknown> } | { ok: false; failures: KeyFailure[] } {
  const sink: KeyFailure[] = [];
  // empty env/args: convict must not read process.env or process.argv
  const conf = convict(buildSchema(sink), { env: {}, args: [] });
  const defined: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) defined[k] = v;
  conf.load(defined);
  try {
    conf.validate({ allowed: 'warn', output: () => {} });
  } catch (err) {
    if (sink.length === 0) sink.push({ key: 'nodeid', reason: (err as Error).message });
    return { ok: false, failures: sink };
  }
  return { ok: true, values: conf.getProperties() as Record<ConfigKey, unknown> };
}

/**
 * The closest of `candidates` to the unknown key `name`, for a "did you mean" hint: the
 * smallest edit distance (insertions, deletions, substitutions and swaps of neighbours, case
 * ignored), if it is small for the key's length (1 up to 4 characters, 2 up to 8, else 3).
 * Ties go to the earlier candidate.
 */
export function suggestKey(name: string, candidates: readonly string[]): string | undefined {
  const a = name.toLowerCase();
  const limit = a.length <= 4 ? 1 : a.length <= 8 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = editDistance(a, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal-string-alignment distance: Levenshtein plus swapping two neighbouring characters. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Number.POSITIVE_INFINITY;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}
