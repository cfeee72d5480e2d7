/**
 * IPC vocabulary between the tests in test/hostile/ and their child nodes
 * (test/fixtures/hostile-node.ts): commands with one reply each, plus pushed events.
 */

export interface MemFigures {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export type PortKind = 'record' | 'echo' | 'collect' | 'silent';

export type HostileCommand =
  | { cmd: 'configure'; opts: Record<string, unknown> }
  | { cmd: 'port'; kind: PortKind }
  /** Creates `count` ports with a no-op handler; memory after a full GC before and after. */
  | { cmd: 'ports'; count: number }
  | { cmd: 'mem' }
  /** Messages delivered so far to the ports made by `ports`. */
  | { cmd: 'hits' }
  /** Adds known listen addresses of other nodes (what seeds or the global DB would provide). */
  | { cmd: 'addresses'; map: Record<string, string[]> }
  /**
   * At epoch ms `at`: monitors every port in `monitor`, then sends `['seq', ownId, k]` for
   * k = 0 … count-1 to every port in `targets`, pausing 1 ms after every `perTurn` rounds.
   * With `freeze`, the process stops itself (SIGSTOP) right after the first round, i.e. with
   * its connects issued but nothing of them processed; the test resumes it (SIGCONT).
   */
  | {
      cmd: 'burst';
      at: number;
      targets: string[];
      monitor: string[];
      count: number;
      perTurn: number;
      freeze?: boolean;
    }
  /** Everything a `collect` port received so far. */
  | { cmd: 'collected'; port: string }
  | { cmd: 'mon'; port: string }
  | { cmd: 'snd'; to: string; msg: unknown[] }
  | { cmd: 'kil'; port: string; reason: unknown[] }
  | { cmd: 'cal'; to: string; msg: unknown[]; timeoutMs: number }
  /** Sends `['flood', 'x' × size]` to `to` once per loop turn until its node is down or maxBytes. */
  | { cmd: 'flood'; to: string; size: number; maxBytes: number }
  | { cmd: 'upNodes' }
  /** Closes every established connection (reason `dropped by test`). */
  | { cmd: 'drop' }
  /** `node.db.set(family, key, value)` (the guard is kept: the entry lives until close). */
  | { cmd: 'dbSet'; family: string; key: string; value: unknown }
  /**
   * The subkeys of a family in the merged global view (`node.db.keys$`), sorted; with `want`,
   * once they are exactly those (watching the family with `node.db.mon$`, up to `timeoutMs`).
   */
  | { cmd: 'dbKeys'; family: string; timeoutMs: number; want?: string[] }
  /** TCP socket handles of the process, established peers, connections still handshaking. */
  | { cmd: 'sockets' }
  /**
   * Ends the node's log rate-limit intervals now (the network's failed-handshake limiter and
   * the kernel's `logLimit`): one summary line per key with suppressed lines, logged before the
   * reply, and every key starts a fresh burst.
   */
  | { cmd: 'flushLogs' }
  | { cmd: 'close' };

export interface HostileResults {
  configure: { id: string; binds: string[]; hasDb: boolean };
  port: string;
  ports: { before: MemFigures; after: MemFigures; ms: number; first: string; last: string };
  mem: MemFigures;
  hits: number;
  addresses: null;
  burst: { startedLateMs: number; ms: number };
  collected: unknown[][];
  mon: number;
  snd: null;
  kil: null;
  cal: { reply: unknown[] } | { killed: readonly unknown[] } | { timedOut: true };
  flood: {
    sent: number;
    ms: number;
    down: boolean;
    baseRss: number;
    peakRss: number;
    after: MemFigures;
  };
  upNodes: string[];
  drop: number;
  dbSet: null;
  dbKeys: string[];
  sockets: { tcp: number; established: number; handshaking: number };
  flushLogs: null;
  close: null;
}

export type HostileEvent =
  | { event: 'ready'; pid: number }
  | { event: 'log'; level: number; text: string }
  | { event: 'node'; type: 'up' | 'down'; node: string; reason?: readonly unknown[] }
  | { event: 'mon'; mon: number; port: string; reason: readonly unknown[] }
  | { event: 'msg'; port: string; msg: unknown[]; src: string | undefined };

export type HostileReply =
  | { rid: number; ok: true; value: unknown }
  | { rid: number; ok: false; error: string };
