/**
 * The monitors other nodes set on our ports (`mon1`/`mon0`): each port record lists the
 * watching nodes, and this table lists the ports each node watches, so that all of a node's
 * monitors can be forgotten when its connection goes away.
 */
import type { PortRecord } from './port-record.js';

export class RemoteMonitors {
  private readonly byNode = new Map<string, Set<PortRecord>>();

  /** Number of (node, local port) monitors. */
  get count(): number {
    let n = 0;
    for (const ports of this.byNode.values()) n += ports.size;
    return n;
  }

  /** Node `src` monitors port `r`. */
  add(r: PortRecord, src: string): void {
    (r.rmons ??= new Set()).add(src);
    let watched = this.byNode.get(src);
    if (!watched) this.byNode.set(src, (watched = new Set()));
    watched.add(r);
  }

  /** Node `src` no longer monitors port `r`. */
  drop(r: PortRecord, src: string): void {
    if (r.rmons) {
      r.rmons.delete(src);
      if (r.rmons.size === 0) r.rmons = null;
    }
    this.forget(r, src);
  }

  /** Port `r` died: it is no longer in `src`'s list (the record's own list is cleared by the caller). */
  forget(r: PortRecord, src: string): void {
    const watched = this.byNode.get(src);
    if (!watched) return;
    watched.delete(r);
    if (watched.size === 0) this.byNode.delete(src);
  }

  /** Forgets every monitor node `src` set. */
  dropNode(src: string): void {
    const watched = this.byNode.get(src);
    if (!watched) return;
    for (const r of watched) this.drop(r, src);
  }
}
