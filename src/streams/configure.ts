/**
 * `configure()`: resolves the effective configuration (rc file, profile, arguments), expands
 * the node ID and returns the node (spec/api.md §4).
 */
import { hostname } from 'node:os';
import { ConfigError } from '../errors.js';
import { makeRuniq } from '../protocol/ids.js';
import { type Logger, stderrLogger } from './log.js';
import { Node } from './node.js';

/** Arguments of `configure`: any configuration key plus `profile`, `norc` and `force`. */
export interface ConfigureOptions {
  profile?: string;
  norc?: boolean;
  force?: boolean;
  nodeid?: string;
  secret?: string;
  cert?: string;
  binds?: string[] | string;
  seeds?: string[] | string;
  services?: (string | unknown[])[];
  eval?: string;
  secure?: boolean | string | number;
  monitor_timeout?: number | string;
  connect_interval?: number | string;
  framing_format?: string[] | string;
  auth_offer?: string[] | string;
  auth_accept?: string[] | string;
  autocork?: boolean | string | number;
  nodelay?: boolean | string | number;
  /** Where log lines go (default: stderr, level from `AEMP_VERBOSE`). Not a config key. */
  logger?: Logger;
  [key: string]: unknown;
}

/**
 * Configures this process's node and returns it. `configure('profile', { … })` and
 * `configure({ profile: 'name', … })` are equivalent. Invalid configuration throws a
 * `ConfigError`; failures while starting (binding, services) reject `node.ready`.
 */
export function configure(profileOrOptions?: string | ConfigureOptions, options?: ConfigureOptions): Node {
  const opts: ConfigureOptions =
    typeof profileOrOptions === 'string'
      ? { ...options, profile: profileOrOptions }
      : { ...profileOrOptions };
  const logger = opts.logger ?? stderrLogger();
  delete opts.logger;
  const host = hostname();
  const profile = opts.profile ?? host;
  const runiq = makeRuniq();
  const template = String(opts.nodeid ?? `${profile}/`);
  if (template === '' || template === '0') throw new ConfigError(`invalid node ID '${template}'`);
  let randomised = false;
  let nodeId = template.replaceAll('%n', host);
  if (nodeId.includes('%u') || nodeId.endsWith('/')) randomised = true;
  nodeId = nodeId.replaceAll('%u', runiq).replace(/\/$/, `/${runiq}`);
  return new Node({ nodeId, randomisedId: randomised, runiq, secure: truthy(opts.secure), logger });
}

function truthy(v: unknown): boolean {
  return !(v === undefined || v === null || v === false || v === 0 || v === '' || v === '0');
}
