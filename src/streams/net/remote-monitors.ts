/**
 * Monitors of remote ports, multiplexed: however many local monitors watch a remote port, the
 * other node holds one (`["", "mon1", NAME]` for the first, `["", "mon0", NAME]` once the last
 * one is gone). Monitors of a node (`""`) need no message: they fire when the node is lost.
 */
import type { KillReason } from '../../errors.js';
import type { MonEntry } from '../kernel/kernel.js';
import { errText } from '../kernel/message-text.js';
import { LEVEL, type Logger } from '../log/log.js';
import type { Peer, PeerTable } from './peer-table.js';

export interface RemoteMonitorsInit {
  readonly peers: PeerTable;
  /** Sends a node-port message to a node (connecting on demand). */
  send(nodeId: string, msg: unknown[]): void;
  readonly logger: Logger;
}

export class RemoteMonitors {
  private lingering: [Peer, string, MonEntry[]][] = [];
  private sweepQueued = false;

  constructor(private readonly init: RemoteMonitorsInit) {}

  /** Adds `entry` to the monitors of `portName` on `nodeId`; returns its cancel. */
  monitor(nodeId: string, portName: string, entry: MonEntry): () => void {
    const p = this.init.peers.ensure(nodeId);
    let list = p.monitors.get(portName);
    if (!list) {
      list = [];
      p.setMonitors(portName, list);
      if (portName !== '') this.init.send(nodeId, ['', 'mon1', portName]);
    }
    list.push(entry);
    const mine = list;
    return () => {
      if (p.monitors.get(portName) !== mine) return;
      const i = mine.indexOf(entry);
      if (i >= 0) mine.splice(i, 1);
      if (mine.length > 0) return;
      // Keep the emptied list until the microtasks queued so far ran: a caller awaiting a reply
      // and calling again (back-to-back cal$) reuses the remote monitor instead of sending a
      // mon0/mon1 pair. (rxjs runs finalizers after resolving the awaited promise, so the
      // caller's continuation is queued before this sweep.)
      this.lingering.push([p, portName, mine]);
      if (!this.sweepQueued) {
        this.sweepQueued = true;
        queueMicrotask(this.sweep);
      }
    };
  }

  private readonly sweep = (): void => {
    this.sweepQueued = false;
    const items = this.lingering;
    this.lingering = [];
    for (const [p, portName, list] of items) {
      if (list.length > 0 || p.monitors.get(portName) !== list) continue;
      p.deleteMonitors(portName);
      // The peer only holds our monitor if the mon1 got (or will get) there.
      if (portName !== '' && (p.conn || p.deadline)) this.init.send(p.id, ['', 'mon0', portName]);
      this.init.peers.release(p);
    }
  };

  /** A remote port we monitor died (`kil0` from `src`). */
  remoteKilled(src: string, name: string, reason: KillReason): void {
    const p = this.init.peers.get(src);
    const list = p?.monitors.get(name);
    if (!p || !list) return;
    p.deleteMonitors(name);
    this.fire(list, reason);
    this.init.peers.release(p);
  }

  /** Takes every monitor of `p` (they are no longer registered). */
  take(p: Peer): MonEntry[][] {
    return p.takeMonitors();
  }

  /** Every monitor of `p` fires with `reason` and is gone. */
  fireAll(p: Peer, reason: KillReason): void {
    for (const list of this.take(p)) this.fire(list, reason);
  }

  fire(list: MonEntry[], reason: KillReason): void {
    for (const m of list) {
      try {
        m.fire(reason);
      } catch (err) {
        this.init.logger.log(LEVEL.error, `monitor callback threw: ${errText(err)}`);
      }
    }
  }
}
