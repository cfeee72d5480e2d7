/**
 * The node port `""`: the request catalogue of spec/api.md §16a.
 *
 *   ""/devnull           no-op                 mon1/mon0 NAME       remote monitor on/off
 *   kil0 NAME REASON…    remote port died      kil1 NAME REASON…    kill local port now
 *   snd PORT MSG…        relay                 can NAME REPLY…      REPLY…, known?
 *   eval CODE REPLY…     REPLY…, err, result   time REPLY…          REPLY…, seconds
 *   g_*                  global database (installed by the global service)
 *   aemp::stats REPLY…   REPLY…, this node's stats (read-only, rate-limited; observe/stats-request.ts)
 *   anything else        a function name: resolved through the registry and called
 * Secure mode refuses `eval` and every function-name request (including spawn), from any
 * sender, with the logged error `remote execution not allowed`; it answers `aemp::stats`. It
 * also passes no peer's request on to another node's node port (a `snd` relay, or the reply
 * address of `time`, `can`, `aemp::stats`): the other node would take it as this node's own.
 */
import { dieReason, type KillReason } from '../../errors.js';
import { nodeOf, portNameOf } from '../../protocol/ids.js';
import { LEVEL, type Logger, logText } from '../log/log.js';
import { answerStats, STATS_REQUEST } from '../observe/stats-request.js';
import { errText, type Kernel } from './kernel.js';
import { type NodeFunction, type Registry, unresolvable } from './registry.js';

export const SPAWN_REQUEST = 'AnyEvent::MP::_spawn';

/** A node-port request handler: `src` is the sending node, `args` follow the tag. */
export type RequestHandler = (src: string, args: unknown[]) => void;

export interface NodePortEnv {
  kernel: Kernel;
  registry: Registry;
  logger: Logger;
  /** `this` of called functions (the node). */
  thisArg: unknown;
  secure(): boolean;
  /** Evaluates JavaScript for an `eval` request; may return a promise. */
  evalJs(code: string): unknown;
  upNodes(): string[];
  /** A remote port we monitor died (`kil0`). */
  remoteKilled(src: string, name: string, reason: KillReason): void;
  /** Asks the supervisor to restart this node (Perl `aemp restart`). */
  restart?(): void;
}

/** Replies of a peer's requests to this node's own node port handled inside one another at most. */
export const MAX_NESTED_REPLIES = 16;

/** Function names `can` remembers as used (spec/api.md §16a); a peer cannot grow it further. */
export const MAX_USED_FUNCTIONS = 4096;

/** True for a `g_*` request (the global database's; never a built-in name). */
const isDbTag = (tag: string): boolean => tag.charCodeAt(0) === 103 && tag.charCodeAt(1) === 95;

/** Builds the node-port dispatcher; `extra` holds further handlers (the `g_*` requests). */
export function createNodePort(env: NodePortEnv, extra: Map<string, RequestHandler>) {
  const { kernel, registry } = env;
  const usedFunctions = new Set<string>();

  const isOwnNodePort = (dest: unknown): boolean =>
    typeof dest === 'string' && nodeOf(dest) === kernel.nodeId && portNameOf(dest) === '';

  /**
   * Secure mode: a peer's message for a third node's node port is not passed on (logged).
   * Sent by this node, `g_upd`, `g_global`, `kil1` or `eval` there would be this node's own.
   * Back to the requester's own node port it harms nobody else, and is passed on as Perl does.
   */
  const refusedRelay = (src: string, dest: string): boolean => {
    if (src === kernel.nodeId || portNameOf(dest) !== '' || !env.secure()) return false;
    if (nodeOf(dest) === src) return false;
    kernel.logFromPeer(
      'refused requests',
      src,
      LEVEL.error,
      `error processing node message from ${logText(src, 100)}: relaying to the node port of ${logText(nodeOf(dest), 100)} not allowed`,
    );
    return true;
  };

  // The reply address is the requester's choice. A peer's reply to our own node port is that
  // peer's request (as a relay to it is): through the local queue it would run as the node's
  // own, whose database entries never vanish. Such replies nest (`time` replying to a `time`
  // request replying to …), each level copying the rest of the message: beyond
  // MAX_NESTED_REPLIES levels the reply is dropped.
  let nestedReplies = 0;
  const reply = (src: string, to: unknown[], values: unknown[]) => {
    const dest = to[0];
    if (typeof dest !== 'string') return;
    if (src !== kernel.nodeId && isOwnNodePort(dest)) {
      if (nestedReplies >= MAX_NESTED_REPLIES) {
        kernel.logFromPeer(
          'refused requests',
          src,
          LEVEL.warn,
          `dropping a reply of ${logText(src, 100)} to this node: more than ${MAX_NESTED_REPLIES} nested`,
        );
        return;
      }
      nestedReplies++;
      try {
        dispatch(src, [...to.slice(1), ...values]);
      } catch (err) {
        kernel.logNodeMessageError(src, err);
      } finally {
        nestedReplies--;
      }
      return;
    }
    if (refusedRelay(src, dest)) return;
    kernel.snd(dest, [...to.slice(1), ...values]);
  };

  // The tag is the peer's choice: escaped, cut short and rate-limited per peer, so that it can
  // neither forge log lines nor flood the log.
  const refuse = (src: string, tag: string) =>
    kernel.logFromPeer(
      'refused requests',
      src,
      LEVEL.error,
      `error processing node message from ${logText(src, 100)}: remote execution not allowed (${logText(tag)})`,
    );

  const builtins: Record<string, RequestHandler> = {
    '': () => {},
    devnull: () => {},
    mon1: (src, [name]) => {
      if (typeof name !== 'string' || name === '') return;
      if (!kernel.remoteMonitor(src, name, true))
        kernel.remote.send(src, [
          '',
          'kil0',
          name,
          'no_such_port',
          'cannot monitor nonexistent port',
          `${kernel.nodeId}#${name}`,
        ]);
    },
    mon0: (src, [name]) => {
      if (typeof name === 'string') kernel.remoteMonitor(src, name, false);
    },
    kil0: (src, [name, ...reason]) => {
      if (typeof name === 'string') env.remoteKilled(src, name, reason);
    },
    kil1: (_src, [name, ...reason]) => {
      if (typeof name === 'string' && name !== '') kernel.killNow(name, reason);
    },
    snd: (src, args) => {
      // A relay to our own node port is handled as a request from the relaying peer: through
      // the local queue it would count as the node's own (whose database entries never vanish).
      // Chains of such relays are peeled in one pass.
      let i = 0;
      while (isOwnNodePort(args[i]) && args[i + 1] === 'snd') i += 2;
      const dest = args[i];
      if (typeof dest !== 'string') return;
      if (isOwnNodePort(dest)) dispatch(src, args.slice(i + 1));
      else if (!refusedRelay(src, dest)) kernel.snd(dest, args.slice(i + 1));
    },
    can: (src, [name, ...to]) => {
      const known =
        typeof name === 'string' &&
        (Object.hasOwn(builtins, name) || extra.has(name) || usedFunctions.has(name));
      reply(src, to, [known]);
    },
    time: (src, to) => reply(src, to, [kernel.clock.epochMs() / 1000]),
    eval: (src, [code, ...to]) => {
      if (env.secure()) return refuse(src, 'eval');
      runEval(src, String(code ?? ''), to);
    },
    [STATS_REQUEST]: (src, to) => answerStats(env.thisArg, src, to, (values) => reply(src, to, values)),
    [SPAWN_REQUEST]: (src, [name, func, ...args]) => {
      usedFunctions.add(SPAWN_REQUEST);
      if (env.secure()) return refuse(src, SPAWN_REQUEST);
      // The name '' is the node port: no port of that name can be made or killed.
      if (typeof name !== 'string' || name === '' || typeof func !== 'string') return;
      const self = `${kernel.nodeId}#${name}`;
      if (!registry.needsImport(func)) {
        runInPort(self, registry.lookup(func) ?? unresolvable(func), args);
        return;
      }
      // The port exists (holding messages) while the module loads, so that messages sent
      // right after spawn are not lost.
      const release = kernel.hold(name);
      void registry.resolve(func).then((fn) => {
        runInPort(self, fn, args);
        release();
      });
    },
  };

  /** Calls `use` with the resolved function: synchronously when it is registered. */
  const withFunction = (name: string, use: (fn: NodeFunction) => void) => {
    const fn = registry.lookup(name);
    if (fn) use(fn);
    else void registry.resolve(name).then(use);
  };

  /** Runs a spawn init function as port `self`; a throw or rejection kills that port. */
  const runInPort = (self: string, fn: NodeFunction, args: unknown[]) => {
    const result = kernel.peval(self, () => fn.apply(env.thisArg, args));
    if (isThenable(result)) result.then(undefined, (err) => kernel.kil(self, dieReason(err)));
  };

  const runEval = (src: string, code: string, to: unknown[]) => {
    const send = (err: string, results: unknown[]) => reply(src, to, [err, ...results]);
    let value: unknown;
    try {
      value = evalRequest(code);
    } catch (err) {
      return send(errText(err), []);
    }
    if (isThenable(value))
      value.then(
        (v) => send('', toResults(v)),
        (err) => send(errText(err), []),
      );
    else send('', toResults(value));
  };

  /** Evaluates JavaScript, recognising the few Perl expressions Perl's own tools send. */
  const evalRequest = (code: string): unknown => {
    if (/^\s*(AnyEvent::MP::Kernel::)?up_nodes\s*;?\s*$/.test(code)) return listResult(env.upNodes());
    if (code.includes('AnyEvent::Watchdog::Util::restart')) {
      setImmediate(() => env.restart?.());
      return undefined;
    }
    return env.evalJs(code);
  };

  // Dispatch skips the built-ins for `g_*` tags: none of theirs may be one.
  for (const name of Object.keys(builtins))
    if (isDbTag(name)) throw new Error(`node port: built-in ${name} would be shadowed by the database`);

  /** `owned`: nothing else holds `msg` (a message from a connection): the tag is taken off it. */
  const dispatch = (src: string, msg: unknown[], owned = false): void => {
    const tag = msg.length === 0 ? '' : msg[0];
    if (typeof tag !== 'string') return;
    let args = msg;
    if (owned) msg.shift();
    else args = msg.slice(1);
    // No built-in name starts with `g_`: the database's traffic skips that table.
    const builtin = isDbTag(tag) ? undefined : Object.hasOwn(builtins, tag) ? builtins[tag] : undefined;
    if (builtin) {
      builtin(src, args);
      return;
    }
    const handler = extra.get(tag);
    if (handler) {
      handler(src, args);
      return;
    }
    if (isDbTag(tag)) {
      // A global-database request for a node that is not (or no longer) a global node.
      kernel.logFromPeer(
        'ignored requests',
        src,
        LEVEL.debug,
        `ignoring ${logText(tag)} from ${logText(src, 100)}: this node is not a global node`,
      );
      return;
    }
    // Peers choose these names: remember a bounded number (later ones stay unknown to `can`).
    if (usedFunctions.size < MAX_USED_FUNCTIONS) usedFunctions.add(tag);
    if (env.secure()) {
      refuse(src, tag);
      return;
    }
    withFunction(tag, (fn) => {
      try {
        const result = fn.apply(env.thisArg, args);
        if (isThenable(result)) result.then(undefined, (err) => kernel.logNodeMessageError(src, err));
      } catch (err) {
        kernel.logNodeMessageError(src, err);
      }
    });
  };
  return dispatch;
}

/** A list result travels as several reply values (Perl list context). */
const LIST = Symbol('aemp.list');
function listResult(values: unknown[]): unknown {
  return Object.assign([...values], { [LIST]: true });
}

/** Reply values of an eval result: none for `undefined`, spread for a list result. */
function toResults(v: unknown): unknown[] {
  if (v === undefined) return [];
  if (Array.isArray(v) && (v as unknown as Record<symbol, unknown>)[LIST] === true) return [...v];
  return [v];
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
