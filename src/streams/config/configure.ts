/**
 * `configure()`: resolves the effective configuration (rc file, profile, arguments), expands
 * the node ID and returns the node (spec/api.md §4).
 */
import { hostname } from 'node:os';
import { UsageError } from '../../errors.js';
import { makeRuniq } from '../../protocol/ids.js';
import type { TransportFactory } from '../../protocol/transport.js';
import type { Clock } from '../clock.js';
import { LEVEL, type Logger, stderrLogger } from '../log/log.js';
import { TcpNetwork } from '../net/tcp-network.js';
import { Node, type NodeSetup } from '../node.js';
import { installDashboardService } from '../observe/dashboard-service.js';
import { serveMetrics } from '../observe/metrics.js';
import { parseMetricsAddress } from '../observe/metrics-address.js';
import {
  bindsFromEmbeddedSeed,
  expandNodeId,
  perlTruthy,
  resolveConfig,
  runEval,
  runServices,
} from './config.js';

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
  /**
   * Receives one line per `snd` (`SND node <- [port, …]`) and per message from another node
   * (`RCV node -> [port, …]`). Default: stderr when `AEMP_TRACE` (or Perl's
   * `PERL_ANYEVENT_MP_TRACE`) is true, else no tracing. Not a config key.
   */
  trace?: (line: string) => void;
  /**
   * The source of time of every timer of the node: for tests, a `VirtualClock` runs timeouts,
   * heartbeats and backoff without waiting. Default: real time. Not a config key.
   */
  clock?: Clock;
  [key: string]: unknown;
}

/**
 * Configures a node and returns it (AnyEvent::MP's `configure`). `configure('profile', { … })`
 * and `configure({ profile: 'name', … })` are equivalent. The effective configuration merges
 * built-in defaults, these arguments and the rc file exactly as AnyEvent::MP does (the rc file
 * wins unless `force`; `norc` ignores it). Invalid configuration throws a `ConfigError`;
 * arguments of another form (`configure(42)`, an array) throw a `UsageError`; unknown keys are
 * logged at the default level, with the closest known key. Failures while starting (binding
 * or resolving listeners, services, `eval`) reject `node.ready`.
 */
export function configure(profileOrOptions?: string | ConfigureOptions, options?: ConfigureOptions): Node {
  return configureNode(configureArguments(profileOrOptions, options));
}

/**
 * `configure` with the node's transports given (`aemp/testing`: nodes on an
 * in-memory network). Default: TCP.
 */
export function configureNode(opts: ConfigureOptions, transports?: TransportFactory): Node {
  const logger = opts.logger ?? stderrLogger();
  delete opts.logger;
  const trace = opts.trace ?? envTrace();
  delete opts.trace;
  const clock = opts.clock;
  delete opts.clock;
  const host = hostname();
  const resolved = resolveConfig(opts, { hostname: host });
  if (resolved.warning) logger.log(LEVEL.error, resolved.warning);
  // Exposed secrets are shown at the default level; a short secret is a warning.
  for (const w of resolved.warnings) logger.log(LEVEL.error, w);
  for (const w of resolved.unknownKeys) logger.log(LEVEL.error, w);
  if (resolved.secretWarning) logger.log(LEVEL.warn, resolved.secretWarning);
  const cfg = resolved.config;
  const runiq = makeRuniq();
  const { nodeId, randomised } = expandNodeId(cfg.nodeid, { hostname: host, runiq });
  const setup: NodeSetup = {
    nodeId,
    randomisedId: randomised,
    runiq,
    secure: cfg.secure,
    logger,
    trace,
    clock,
    network: (env) =>
      new TcpNetwork(env, {
        nodeId,
        hostname: host,
        secret: cfg.secret,
        cert: cfg.cert,
        authOffer: cfg.auth_offer,
        authAccept: cfg.auth_accept,
        framings: cfg.framing_format,
        binds: cfg.binds,
        seeds: cfg.seeds,
        monitorTimeout: cfg.monitor_timeout,
        connectInterval: cfg.connect_interval,
        nodelay: cfg.nodelay,
        maxFrameBytes: cfg.max_frame_bytes,
        maxSendBufferBytes: cfg.max_send_buffer_bytes,
        maxTotalSendBufferBytes: cfg.max_total_send_buffer_bytes,
        maxFrameItems: cfg.max_frame_items,
        strictPeers: cfg.strict_peers,
        handshakeTimeout: cfg.handshake_timeout,
        maxPendingHandshakes: cfg.max_pending_handshakes,
        maxPendingHandshakesPerAddress: cfg.max_pending_handshakes_per_address,
        maxConnections: cfg.max_connections,
        heartbeatInterval: cfg.heartbeat_interval,
        heartbeatMisses: cfg.heartbeat_misses,
        fallbackBinds: bindsFromEmbeddedSeed(resolved, host) ? ['127.0.0.1:*'] : undefined,
        transports,
        logger,
      }),
  };
  return new Node(setup, async (node) => {
    installDashboardService(node);
    await runServices(cfg.services, {
      resolveFunction: async (name) => {
        const fn = await node.registry.resolve(name);
        return (...args: unknown[]) => fn.apply(node, args);
      },
      loadModule: (name) => node.registry.loadModule(name),
    });
    if (cfg.eval !== undefined) await runEval(cfg.eval, node.evalScope());
    if (cfg.metrics !== undefined) {
      // Closed with the node.
      const metrics = await serveMetrics(node, parseMetricsAddress(cfg.metrics));
      logger.log(LEVEL.info, `metrics at ${metrics.url}`);
    }
  });
}

const CONFIGURE_FORMS =
  'configure() takes an options object, a profile name, or both: configure({ … }), ' +
  'configure("profile"), configure("profile", { … })';

/**
 * The options of one `configure` call from its accepted forms; `null` and `undefined` stand
 * for "no profile name" or "no options". Anything else throws a UsageError naming the forms.
 */
function configureArguments(first: unknown, second: unknown): ConfigureOptions {
  const given = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : describe(v));
  if (typeof first === 'string') {
    if (second !== undefined && second !== null && !isOptionsObject(second))
      throw new UsageError(
        'ERR_BAD_ARGUMENT',
        `${CONFIGURE_FORMS}; got ${given(second)} after the profile name`,
      );
    return { ...(second as ConfigureOptions | null | undefined), profile: first };
  }
  if (first === undefined || first === null) {
    if (second === undefined || second === null) return {};
    if (isOptionsObject(second)) return { ...second };
    throw new UsageError('ERR_BAD_ARGUMENT', `${CONFIGURE_FORMS}; got ${given(second)} as the options`);
  }
  if (!isOptionsObject(first))
    throw new UsageError('ERR_BAD_ARGUMENT', `${CONFIGURE_FORMS}; got ${given(first)}`);
  if (second !== undefined && second !== null)
    throw new UsageError(
      'ERR_BAD_ARGUMENT',
      `${CONFIGURE_FORMS}; got a second argument after the options object (put the profile in it: { profile: "…" })`,
    );
  return { ...first };
}

/** A plain object (not an array, a Map, a Date, a class instance …). */
function isOptionsObject(v: unknown): v is ConfigureOptions {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/** A short description of a value for a usage message: `42`, `true`, `a function`, `a Map`. */
function describe(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'object' && v !== null) {
    const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
  }
  return typeof v;
}

/** Trace lines to stderr when `AEMP_TRACE` or `PERL_ANYEVENT_MP_TRACE` is true. */
function envTrace(env: NodeJS.ProcessEnv = process.env): ((line: string) => void) | undefined {
  if (!perlTruthy(env.AEMP_TRACE) && !perlTruthy(env.PERL_ANYEVENT_MP_TRACE)) return undefined;
  return (line) => process.stderr.write(`${line}\n`);
}
