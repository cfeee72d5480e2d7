/**
 * What a node needs from its network layer, and the offline implementation used by a node
 * that has no transport: every remote send is dropped and every remote monitor fires with
 * `["transport_error", NODE, "no known address"]` on the next turn.
 */
import type { Observable } from 'rxjs';
import { Subject } from 'rxjs';
import type { KillReason } from '../errors.js';
import type { Kernel, MonEntry, Remote } from './kernel.js';

/** A connection to a node came up or went down (`mon_nodes`). Up and down alternate per node. */
export type NodeStatus = { type: 'up'; node: string } | { type: 'down'; node: string; reason: KillReason };

export interface Network extends Remote {
  /** Up/down events of connections to other nodes. */
  readonly nodes$: Observable<NodeStatus>;
  /** IDs of nodes with an established connection. */
  upNodes(): string[];
  /** True if connected, false if known but not connected, undefined if unknown. */
  nodeIsUp(nodeId: string): boolean | undefined;
  /** A remote port we monitor died (`kil0` from `src`). */
  remoteKilled(src: string, name: string, reason: KillReason): void;
  /** The bound listener addresses (`host:port`) once listening. */
  readonly binds: readonly string[];
  /** Binds listeners and starts seeds. */
  start(): Promise<void>;
  /** Closes listeners and connections. */
  close(): Promise<void>;
}

/** The network of a node without transport. */
export class OfflineNetwork implements Network {
  readonly binds: readonly string[] = [];
  private readonly status = new Subject<NodeStatus>();
  readonly nodes$ = this.status.asObservable();

  constructor(private readonly kernel: Kernel) {}

  send(): void {}

  sendIfUp(): void {}

  monitor(nodeId: string, _portName: string, entry: MonEntry): () => void {
    let live = true;
    this.kernel.defer(() => live && entry.fire(['transport_error', nodeId, 'no known address']));
    return () => {
      live = false;
    };
  }

  remoteKilled(): void {}

  upNodes(): string[] {
    return [];
  }

  nodeIsUp(): boolean | undefined {
    return undefined;
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.status.complete();
  }
}
