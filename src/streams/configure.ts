/**
 * `configure()`: resolves the effective configuration (rc file, profile, arguments), expands
 * the node ID and returns the node (spec/api.md §4).
 */
import { hostname } from 'node:os';
import { makeRuniq } from '../protocol/ids.js';
import {
  bindsFromEmbeddedSeed,
  expandNodeId,
  perlTruthy,
  resolveConfig,
  runEval,
  runServices,
} from './config.js';
import { LEVEL, type Logger, stderrLogger } from './log.js';
import { Node, type NodeSetup } from './node.js';
import { TcpNetwork } from './tcp-network.js';

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
  [key: string]: unknown;
}

/**
 * Configures a node and returns it (AnyEvent::MP's `configure`). `configure('profile', { … })`
 * and `configure({ profile: 'name', … })` are equivalent. The effective configuration merges
 * built-in defaults, these arguments and the rc file exactly as AnyEvent::MP does (the rc file
 * wins unless `force`; `norc` ignores it). Invalid configuration throws a `ConfigError`;
 * failures while starting (binding listeners, services, `eval`) reject `node.ready`.
 */
export function configure(profileOrOptions?: string | ConfigureOptions, options?: ConfigureOptions): Node {
  const opts: ConfigureOptions =
    typeof profileOrOptions === 'string'
      ? { ...options, profile: profileOrOptions }
      : { ...profileOrOptions };
  const logger = opts.logger ?? stderrLogger();
  delete opts.logger;
  const trace = opts.trace ?? envTrace();
  delete opts.trace;
  const host = hostname();
  const resolved = resolveConfig(opts, { hostname: host });
  if (resolved.warning) logger.log(LEVEL.error, resolved.warning);
  // Exposed secrets are shown at the default level; a short secret is a warning.
  for (const w of resolved.warnings) logger.log(LEVEL.error, w);
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
    network: (kernel) =>
      new TcpNetwork(kernel, {
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
        logger,
      }),
  };
  return new Node(setup, async (node) => {
    await runServices(cfg.services, {
      resolveFunction: async (name) => {
        const fn = await node.registry.resolve(name);
        return (...args: unknown[]) => fn.apply(node, args);
      },
      loadModule: (name) => node.registry.loadModule(name),
    });
    if (cfg.eval !== undefined) await runEval(cfg.eval, node.evalScope());
  });
}

/** Trace lines to stderr when `AEMP_TRACE` or `PERL_ANYEVENT_MP_TRACE` is true. */
function envTrace(env: NodeJS.ProcessEnv = process.env): ((line: string) => void) | undefined {
  if (!perlTruthy(env.AEMP_TRACE) && !perlTruthy(env.PERL_ANYEVENT_MP_TRACE)) return undefined;
  return (line) => process.stderr.write(`${line}\n`);
}
