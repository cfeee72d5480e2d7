/**
 * The effective configuration of a node (spec/config-and-cli.md §3, spec/api.md §4.1).
 *
 * Merge order, lowest to highest precedence (default mode):
 *   built-in defaults < configure arguments < rc top level < farthest ancestor profile < …
 *   < parent < the profile itself.
 * With `force` the rc data comes first and the defaults-plus-arguments overlay it — so, as in
 * Perl, even the built-in defaults then beat the rc file for the five keys they set. With
 * `norc` the rc file is not read at all. A missing profile contributes nothing.
 *
 *   const { config, warning } = resolveConfig({ profile: 'seed' });
 *   if (warning) logger.warn(warning);          // once: the rc file could not be used
 */

import { isIPv4, isIPv6 } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { ConfigError } from '../../errors.js';
import { parseTransportItem, splitItems } from '../net/binds.js';
import { perlTruthy } from './coerce.js';
import {
  embeddedRc,
  formatRcWarning,
  loadRc,
  type RcData,
  type RcState,
  rcMergeData,
  rcPath,
} from './rc-file.js';
import {
  builtinDefaults,
  CONFIG_KEY_NAMES,
  CONFIG_KEYS,
  type ConfigKey,
  checkValue,
  coerceValue,
  type NodeConfig,
  suggestKey,
  validateValues,
} from './schema.js';
import { shortSecretWarning, userSecret, userSecretPath } from './user-secret.js';

// What the `aemp` commands print log lines with (the CLI reaches src/streams through this module
// and the public entry only).
export { escapeControls } from '../log/log.js';
export { logs$, timeDiff } from '../log/log-catcher.js';
export { perlTruthy, toNumber } from './coerce.js';
export { type ExpandedNodeId, expandNodeId, type NodeIdContext, nodeIdProblem } from './nodeid.js';
export {
  embeddedRc,
  formatRcWarning,
  loadRc,
  parseRcText,
  type RcData,
  type RcState,
  rcMergeData,
  rcPath,
  saveRc,
} from './rc-file.js';
export {
  builtinDefaults,
  CONFIG_KEY_NAMES,
  CONFIG_KEYS,
  type ConfigKey,
  type KeyKind,
  type KeySpec,
  type NodeConfig,
  type ServiceEntry,
  suggestKey,
} from './schema.js';
export { runEval, runServices, type ServiceHost } from './services.js';
export {
  generateSecret,
  SECRET_LENGTH,
  SHORT_SECRET,
  shortSecretWarning,
  userSecret,
  userSecretPath,
} from './user-secret.js';

/** Arguments of `configure`: configuration keys plus `profile`, `norc` and `force`. */
export type ConfigureArgs = Record<string, unknown>;

/** Where `resolveConfig` gets its surroundings from; every field has a default. */
export interface ResolveEnvironment {
  /** The host name: default profile name and the embedded default's profile. @default os.hostname() */
  readonly hostname?: string;
  /** Environment used to find the rc file and the per-user secret file. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** An already loaded rc file (the CLI loads it once). @default loadRc(rcPath(env)) */
  readonly rc?: RcState;
}

/** The result of `resolveConfig`. */
export interface ResolvedConfig {
  /** The profile name used. */
  readonly profile: string;
  /**
   * The effective configuration exactly as merged: every key, including unknown ones and
   * `version`, `profile` (the profiles map) and `parent` when the rc file has them.
   */
  readonly raw: Record<string, unknown>;
  /** Typed, coerced and validated view of the known keys. */
  readonly config: NodeConfig;
  /** Which layer set each key of `raw` (`built-in defaults`, `configure arguments`, …). */
  readonly origins: ReadonlyMap<string, string>;
  /** The rc file that was read; undefined with `norc`. */
  readonly rc: RcState | undefined;
  /** A warning to print once: the rc file exists but could not be used. */
  readonly warning: string | undefined;
  /**
   * Warnings to log once, shown at the default level: an rc file with a secret that others may
   * read, a per-user secret file that had to be replaced.
   */
  readonly warnings: readonly string[];
  /** Set when the secret given as an argument is short (logged at warn level). */
  readonly secretWarning?: string | undefined;
  /**
   * One warning per unknown key in the arguments or the rc layers used (`configure` logs them
   * at the default level); see `unknownKeyWarnings`.
   */
  readonly unknownKeys: readonly string[];
}

const ORIGIN_DEFAULTS = 'built-in defaults';
/** The origin of the `configure` arguments' layer (see `RcLayer`). */
export const ORIGIN_ARGS = 'configure arguments';
const ORIGIN_TOP = 'the rc file top level';
const profileOrigin = (name: string): string => `profile ${JSON.stringify(name)}`;
const ORIGIN_EMBEDDED = 'the embedded default';
const embeddedProfileOrigin = (name: string): string => `${ORIGIN_EMBEDDED}'s ${profileOrigin(name)}`;

/**
 * True when the listeners come from the embedded default's seed profile (no rc file, profile =
 * host name): if another node on this machine already is that seed, this one listens on any
 * loopback port instead and joins it.
 */
export function bindsFromEmbeddedSeed(resolved: ResolvedConfig, hostname: string): boolean {
  return (
    resolved.rc?.embedded === true &&
    resolved.profile === hostname &&
    resolved.origins.get('binds') === embeddedProfileOrigin(hostname)
  );
}

/** One overlay of the merge: where it comes from and its keys. */
export interface RcLayer {
  readonly origin: string;
  readonly data: Record<string, unknown>;
}

/**
 * Computes the effective configuration for `configure(args)`: merges defaults, arguments and
 * the rc file in the exact AEMP order, then coerces and validates every known key. Throws
 * ConfigError for a circular parent chain, a malformed profile map or an invalid value
 * (`invalid configuration: key "K" in profile "P": <why>, got <value>`).
 */
export function resolveConfig(
  args: ConfigureArgs = {},
  environment: ResolveEnvironment = {},
): ResolvedConfig {
  const hostname = environment.hostname ?? osHostname();
  const { profile: profileArg, norc, force, ...kv } = args;
  if (profileArg !== undefined && profileArg !== null && typeof profileArg !== 'string')
    throw new ConfigError(
      `invalid configuration: the profile name must be a string, got ${show(profileArg)}`,
    );
  const profile = typeof profileArg === 'string' ? profileArg : hostname;

  const base: RcLayer[] = [
    { origin: ORIGIN_DEFAULTS, data: builtinDefaults() },
    { origin: ORIGIN_ARGS, data: kv },
  ];
  const env = environment.env ?? process.env;
  let rc: RcState | undefined;
  let layers = base;
  let embedded = false;
  if (!perlTruthy(norc)) {
    rc = environment.rc ?? loadRc(rcPath(env));
    embedded = rc.embedded && rc.error === undefined;
    if (embedded) {
      const fill = profileChain(embeddedRc(hostname), profile).map(({ origin, data }) => ({
        origin: origin === ORIGIN_TOP ? ORIGIN_EMBEDDED : `${ORIGIN_EMBEDDED}'s ${origin}`,
        data,
      }));
      layers = [base[0]!, ...fill, base[1]!];
    } else {
      const rcLayers = profileChain(rcMergeData(rc, hostname), profile);
      layers = perlTruthy(force) ? [...rcLayers, ...base] : [...base, ...rcLayers];
    }
  }

  const raw: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.data)) {
      if (v === undefined || k === '__proto__') continue;
      raw[k] = v;
      origins.set(k, layer.origin);
    }
  }

  const warnings: string[] = [];
  let secretWarning: string | undefined;
  if (rc?.exposed) warnings.push(rc.exposed);
  const given = raw.secret;
  if (origins.get('secret') === ORIGIN_ARGS && typeof given === 'string') {
    secretWarning = shortSecretWarning(given);
  }
  let ownSecret = false;
  if (embedded && (raw.secret === undefined || raw.secret === null)) {
    const user = userSecret(userSecretPath(env));
    raw.secret = user.secret;
    origins.set('secret', `the per-user secret file ${user.path}`);
    if (user.warning) warnings.push(user.warning);
    ownSecret = true;
  }

  const unknownKeys = unknownKeyWarnings(layers);
  const config = typedView(raw, origins, profile);
  if (ownSecret && config.cert === undefined) requireLoopback(config.binds, hostname, profile);
  return {
    profile,
    raw,
    config,
    origins,
    rc,
    warning: rc ? formatRcWarning(rc) : undefined,
    warnings,
    secretWarning,
    unknownKeys,
  };
}

/** What may appear besides the configuration keys: at the rc top level, and as arguments. */
const TOP_LEVEL_EXTRA = ['version', 'profile'];
const ARGUMENT_EXTRA = ['profile', 'norc', 'force'];

/**
 * Warnings for keys no layer of `layers` should have: the arguments and rc layers (the top
 * level may also hold `version` and `profile`); built-in and embedded layers are not checked.
 * Perl ignores unknown keys, and so do we, but a misspelt key silently does nothing, so each
 * one is named with the closest known key:
 *
 *   unknown configuration key "sekret" in profile "seed" is ignored; did you mean "secret"?
 */
export function unknownKeyWarnings(layers: readonly RcLayer[]): string[] {
  const known = CONFIG_KEY_NAMES as readonly string[];
  const out: string[] = [];
  for (const { origin, data } of layers) {
    let where: string;
    let allowed: readonly string[];
    let hints: readonly string[];
    if (origin === ORIGIN_ARGS) {
      where = 'in the configure arguments';
      allowed = known;
      hints = [...known, ...ARGUMENT_EXTRA];
    } else if (origin === ORIGIN_TOP) {
      where = 'at the top level of the rc file';
      allowed = [...known, ...TOP_LEVEL_EXTRA];
      hints = allowed;
    } else if (origin.startsWith('profile ')) {
      where = `in ${origin}`;
      allowed = known;
      hints = known;
    } else continue;
    for (const key of Object.keys(data)) {
      if (allowed.includes(key) || data[key] === undefined) continue;
      const hint = suggestKey(key, hints);
      out.push(
        `unknown configuration key ${JSON.stringify(key)} ${where} is ignored` +
          (hint === undefined ? '' : `; did you mean ${JSON.stringify(hint)}?`),
      );
    }
  }
  return out;
}

/**
 * Refuses listeners outside loopback for a node on the embedded default's per-user secret:
 * such a node is meant for this machine only. Only literal loopback addresses and `localhost`
 * count (a host name may resolve anywhere; `*` is every interface).
 */
function requireLoopback(binds: readonly string[], hostname: string, profile: string): void {
  for (const element of binds) {
    for (const item of splitItems(element)) {
      let host: string;
      try {
        host = parseTransportItem(item, hostname).host;
      } catch {
        continue; // validation reports unparsable items
      }
      if (isLoopbackHost(host)) continue;
      throw new ConfigError(
        `invalid configuration: key "binds" in profile ${JSON.stringify(profile)}: ${JSON.stringify(item)} ` +
          'is not a loopback address, and the node has no secret or certificate of its own ' +
          '(no rc file: the embedded default listens on loopback only); give it a secret ' +
          '(configure({ secret }), or an rc file made with "aemp gensecret") or a certificate, ' +
          'or bind to 127.0.0.1',
      );
    }
  }
}

/** True for 127.0.0.0/8, ::1 (also IPv4-mapped loopback) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) {
    if (h === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/** Profiles one chain may pass through (the profile and its ancestors); a longer chain is an error. */
export const MAX_PROFILE_CHAIN = 64;

/** The names of a chain for a message: the first and last few of a long one. */
function chainText(names: readonly string[]): string {
  const quoted = names.map((n) => JSON.stringify(n));
  return (quoted.length <= 8 ? quoted : [...quoted.slice(0, 4), '…', ...quoted.slice(-3)]).join(' -> ');
}

/**
 * The rc layers for `profile`: the whole top level, then each ancestor (farthest first), then
 * the profile. A missing `profile` contributes nothing, but a missing parent is an error:
 * throws ConfigError naming the chain when a parent does not exist, a parent chain loops or
 * passes through more than MAX_PROFILE_CHAIN profiles.
 */
export function profileChain(rc: RcData, profile: string): RcLayer[] {
  const profiles = rc.profile;
  if (profiles !== undefined && profiles !== null && !isPlainObject(profiles))
    throw new ConfigError(
      `invalid configuration: "profile" in the rc file must be an object, got ${show(profiles)}`,
    );
  const chain: RcLayer[] = [];
  const seen: string[] = [];
  const seenSet = new Set<string>();
  let name: string | undefined = profile;
  while (name !== undefined) {
    if (seenSet.has(name)) {
      throw new ConfigError(
        `invalid configuration: circular profile parent chain: ${chainText([...seen, name])}`,
      );
    }
    if (seen.length === MAX_PROFILE_CHAIN)
      throw new ConfigError(
        `invalid configuration: profile chain longer than ${MAX_PROFILE_CHAIN} profiles: ${chainText([...seen, name])}`,
      );
    seen.push(name);
    seenSet.add(name);
    const entry: unknown = profiles && Object.hasOwn(profiles, name) ? (profiles as RcData)[name] : undefined;
    if (entry === undefined || entry === null) {
      if (seen.length === 1) break;
      const child = JSON.stringify(seen[seen.length - 2]);
      throw new ConfigError(
        `invalid configuration: profile ${child} has parent ${JSON.stringify(name)}, which is not a ` +
          `profile in the rc file (profile chain: ${chainText(seen)})`,
      );
    }
    if (!isPlainObject(entry))
      throw new ConfigError(
        `invalid configuration: profile ${JSON.stringify(name)} must be an object, got ${show(entry)}`,
      );
    chain.push({ origin: profileOrigin(name), data: entry });
    const parent: unknown = entry.parent;
    if (parent === undefined || parent === null) break;
    if (typeof parent !== 'string' && typeof parent !== 'number')
      throw new ConfigError(
        `invalid configuration: key "parent" in profile ${JSON.stringify(name)}: must be a string, got ${show(parent)}`,
      );
    name = String(parent);
  }
  return [{ origin: ORIGIN_TOP, data: rc }, ...chain.reverse()];
}

/**
 * Everything in rc data that would make `configure` refuse a profile, one message per problem
 * (empty when the file is fine): a malformed profiles map or profile, a parent that does not
 * exist or loops, and every invalid value where it is set — at the top level (which every
 * profile inherits) or in a profile. The `aemp` tool refuses to write a file with problems.
 *
 *   invalid configuration: key "monitor_timeout" in profile "seed": must be a positive number, got "soon"
 */
export function rcDataProblems(rc: RcData): string[] {
  const problems: string[] = [];
  const chainProblems = new Set<string>();
  const checkLayer = (data: Record<string, unknown>, where: string) => {
    for (const key of CONFIG_KEY_NAMES) {
      if (!Object.hasOwn(data, key)) continue;
      const reason = checkValue(key, coerceValue(key, data[key]));
      if (reason !== undefined)
        problems.push(
          `invalid configuration: key "${key}" ${where}: ${reason}, got ${showValue(key, data[key])}`,
        );
    }
  };
  checkLayer(rc, 'at the top level of the rc file');
  const profiles = rc.profile;
  if (profiles === undefined || profiles === null) return problems;
  if (!isPlainObject(profiles)) {
    problems.push(`invalid configuration: "profile" in the rc file must be an object, got ${show(profiles)}`);
    return problems;
  }
  for (const [name, entry] of Object.entries(profiles)) {
    if (isPlainObject(entry)) checkLayer(entry, `in profile ${JSON.stringify(name)}`);
    try {
      profileChain(rc, name);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      if (!chainProblems.has(err.message)) {
        chainProblems.add(err.message);
        problems.push(err.message);
      }
    }
  }
  return problems;
}

/** A value for a message: as JSON, or only its type for the secret and the certificate. */
function showValue(key: ConfigKey, v: unknown): string {
  if (CONFIG_KEYS[key].sensitive)
    return `a value of type ${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v}`;
  return show(v);
}

/** Coerces and validates the known keys of `raw`; throws one ConfigError listing every failure. */
function typedView(
  raw: Record<string, unknown>,
  origins: ReadonlyMap<string, string>,
  profile: string,
): NodeConfig {
  const coerced: Partial<Record<ConfigKey, unknown>> = {};
  for (const key of CONFIG_KEY_NAMES) coerced[key] = coerceValue(key, raw[key]);
  if (!Object.hasOwn(raw, 'nodeid')) coerced.nodeid = `${profile}/`;
  const result = validateValues(coerced);
  if (!result.ok) {
    const lines = result.failures.map(({ key, reason }) => {
      const origin = origins.get(key);
      const value = CONFIG_KEYS[key].sensitive
        ? showValue(key, raw[key])
        : Object.hasOwn(raw, key)
          ? show(raw[key])
          : `${show(coerced[key])} (the default)`;
      const from = origin && origin !== profileOrigin(profile) ? ` (set by ${origin})` : '';
      return `invalid configuration: key "${key}" in profile ${JSON.stringify(profile)}: ${reason}, got ${value}${from}`;
    });
    throw new ConfigError(lines.join('\n'));
  }
  const v = result.values;
  const opt = (x: unknown): string | undefined => (x === null || x === undefined ? undefined : (x as string));
  return {
    profile,
    nodeid: v.nodeid as string,
    binds: v.binds as string[],
    seeds: v.seeds as string[],
    services: v.services as NodeConfig['services'],
    eval: opt(v.eval),
    secret: opt(v.secret),
    cert: opt(v.cert),
    secure: v.secure as boolean,
    monitor_timeout: v.monitor_timeout as number,
    connect_interval: v.connect_interval as number,
    framing_format: v.framing_format as string[],
    auth_offer: v.auth_offer as string[],
    auth_accept: v.auth_accept as string[],
    autocork: v.autocork as boolean,
    nodelay: v.nodelay as boolean,
    parent: opt(v.parent),
    heartbeat_interval: v.heartbeat_interval as number,
    heartbeat_misses: v.heartbeat_misses as number,
    max_frame_bytes: v.max_frame_bytes as number,
    max_send_buffer_bytes: v.max_send_buffer_bytes as number,
    max_total_send_buffer_bytes: v.max_total_send_buffer_bytes as number,
    max_frame_items: v.max_frame_items as number,
    strict_peers: v.strict_peers as boolean,
    handshake_timeout: v.handshake_timeout as number,
    max_pending_handshakes: v.max_pending_handshakes as number,
    max_pending_handshakes_per_address: v.max_pending_handshakes_per_address as number,
    max_connections: v.max_connections as number,
    metrics: opt(v.metrics),
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as it would be written in JSON (numbers and strings as typed). */
function show(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
