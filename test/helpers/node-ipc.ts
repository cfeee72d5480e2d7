/**
 * The IPC vocabulary between a multiprocess test and its child nodes (test/fixtures/node-main.ts).
 * The test is the controller: it sends commands and gets one reply per command; the child also
 * pushes unsolicited events (messages seen by recording ports, monitor firings, node up/down,
 * log lines). Nothing here travels over the AEMP link under test.
 */

/** What a port created by the child does with a message. */
export type Behaviour =
  /** Sends the message minus its last element to the last element (a reply port). */
  | 'echo'
  /** Reports every message as a `msg` event. */
  | 'record'
  /** Keeps messages in the child until fetched with the `collected` command. */
  | 'collect'
  /** Throws `Error(String(msg[0]))`: the port dies with `['die', msg[0]]`. */
  | 'die'
  /** Ignores messages. */
  | 'silent';

export type Command =
  /** Configures the node: `norc`, `binds: ['127.0.0.1:0']` unless given; answers id + binds. */
  | { cmd: 'configure'; opts: Record<string, unknown> }
  | { cmd: 'port'; behaviour: Behaviour }
  /** Registers a spawn init function that gives the spawned port `behaviour`. */
  | { cmd: 'register'; name: string; behaviour: Behaviour }
  | { cmd: 'spawn'; node: string; func: string; args: unknown[] }
  /** `snd(to, ...msg)`; with `count`, sends `[...msg, i]` for i = 0 … count-1. */
  | { cmd: 'snd'; to: string; msg: unknown[]; count?: number }
  | { cmd: 'sndOn'; node: string; msg: unknown[] }
  | { cmd: 'kil'; port: string; reason: unknown[] }
  /** `mon(port, cb)`: answers a monitor number; the firing arrives as a `mon` event. */
  | { cmd: 'mon'; port: string }
  /** `cal$(to, ...msg)` with a deadline. */
  | { cmd: 'cal'; to: string; msg: unknown[]; timeoutMs: number }
  /** Waits until a `collect` port holds `count` messages and hands them over (and forgets them). */
  | { cmd: 'collected'; port: string; count: number }
  | { cmd: 'upNodes' }
  /** The framings of the established connection to `node` (diagnostic, reads node internals). */
  | { cmd: 'framing'; node: string }
  /**
   * Opens a bare TCP listener that answers every connection with AEMP greeting lines claiming
   * `nodeId`, then never says anything more (a handshake that hangs). Answers its address.
   */
  | { cmd: 'stall'; nodeId: string }
  /** Lets `ms` milliseconds pass in the child (the node stays idle), then answers. */
  | { cmd: 'idle'; ms: number }
  /**
   * Answers once `messages` more messages (heartbeats count) have arrived from `node` on the
   * established connection than when asked, looking every `everyMs` (`connectionStats$`);
   * answers the count then.
   */
  | { cmd: 'heard'; node: string; messages: number; everyMs: number }
  | { cmd: 'close' }
  /** `node.db.set(family, subkey, value)`. */
  | { cmd: 'dbSet'; family: string; subkey: string; value?: unknown }
  /** `node.db.del(family, ...subkeys)`. */
  | { cmd: 'dbDel'; family: string; subkeys: string[] }
  /** `node.db.reg(family, port, value)`. */
  | { cmd: 'dbReg'; family: string; port: string; value?: unknown }
  /** `node.db.family$/keys$/values$(family)` with a deadline: answers the result or `timedOut`. */
  | { cmd: 'dbQuery'; kind: 'family' | 'keys' | 'values'; family: string; timeoutMs: number }
  /** Subscribes `node.db.mon$(family)`: answers a monitor number; changes arrive as `db` events. */
  | { cmd: 'dbMon'; family: string }
  /** Unsubscribes a `dbMon` subscription. */
  | { cmd: 'dbUnmon'; mon: number }
  /** The node's database role: master, global flag, own entries. */
  | { cmd: 'dbInfo' };

export type CommandName = Command['cmd'];

export type CalResult = { reply: unknown[] } | { killed: readonly unknown[] } | { timedOut: true };

/** The value each command answers with. */
export interface Results {
  configure: { id: string; binds: string[] };
  port: string;
  register: null;
  spawn: string;
  snd: null;
  sndOn: null;
  kil: null;
  mon: number;
  cal: CalResult;
  collected: unknown[][];
  upNodes: string[];
  framing: { send: string; recv: string } | null;
  stall: string;
  idle: null;
  heard: number;
  close: null;
  dbSet: null;
  dbDel: null;
  dbReg: null;
  dbQuery: { result: unknown } | { timedOut: true };
  dbMon: number;
  dbUnmon: null;
  dbInfo: { master: string | null; global: boolean; own: Record<string, Record<string, unknown>> };
}

export type Request = Command & { rid: number };

export type Reply = { rid: number; ok: true; value: unknown } | { rid: number; ok: false; error: string };

export type ChildEvent =
  | { event: 'ready'; pid: number }
  | { event: 'msg'; port: string; msg: unknown[]; src: string | undefined }
  /** `ms`: time from the `mon` call to the firing, measured in the child. */
  | { event: 'mon'; mon: number; port: string; reason: readonly unknown[]; ms: number }
  | { event: 'node'; type: 'up' | 'down'; node: string; reason?: readonly unknown[] }
  | { event: 'spawned'; port: string; args: unknown[] }
  | { event: 'log'; level: number; text: string }
  /** A `stall` listener got bytes: every line it has received on that connection so far. */
  | { event: 'stall'; lines: string[] }
  /**
   * A change seen by `dbMon` subscription `mon` (a `DbChange` as plain data); `at` is the
   * child's `performance.timeOrigin + performance.now()` in milliseconds.
   */
  | {
      event: 'db';
      mon: number;
      family: string;
      entries: Record<string, unknown>;
      added: string[];
      changed: string[];
      deleted: string[];
      at: number;
    };

export type FromChild = Reply | ChildEvent;
