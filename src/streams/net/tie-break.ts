/**
 * Connections in their handshake by the node ID their peer's greeting claimed, and the
 * simultaneous-connect tie-break between two of our nodes that dial each other at the same
 * moment: settled on the greeting, before either connection carries a message; the connection
 * dialled by the smaller node ID is kept. (AEMP's own rule, kept for peers that do not
 * advertise the key, lets the last completed handshake win, which can lose or reorder messages
 * written on the replaced connection.)
 *
 * The greeting is not authenticated yet, so anyone may claim any node ID here. Only the
 * smaller node acts, and only on incoming connections: it fails an incoming one while its own
 * dial to that node is connected, and closes incoming ones claiming the node once its own dial
 * is greeted by it. The larger node does nothing (the real smaller node closes the losing
 * connection before authenticating it), so a claim never costs a node its own dial.
 */
import { GREETING_KEY, REASON } from '../../protocol/constants.js';
import type { Greeting } from '../../protocol/greeting.js';
import type { Connection } from './connection.js';

export class TieBreak {
  /** Connections still in their handshake, by the node ID their peer's greeting claimed. */
  private readonly handshaking = new Map<string, Set<Connection>>();

  /**
   * @param nodeId Our node ID.
   * @param dials Our dials counting as connect attempts to a node.
   */
  constructor(
    private readonly nodeId: string,
    private readonly dials: (id: string) => Iterable<Connection>,
  ) {}

  /** A peer's greeting arrived on `conn` (before authentication); throws to fail `conn`. */
  greeted(conn: Connection, g: Greeting): void {
    const id = g.nodeId;
    if (g.keys.get(GREETING_KEY.TIEBREAK) === '1' && this.nodeId < id) {
      const text = `${REASON.SIMULTANEOUS} with ${id}, keeping the one dialled by ${this.nodeId}`;
      if (conn.outgoing) {
        for (const other of [...(this.handshaking.get(id) ?? [])]) if (!other.outgoing) other.close(text);
      } else {
        for (const t of this.dials(id)) if (t.connected) throw new Error(text);
      }
    }
    let set = this.handshaking.get(id);
    if (!set) this.handshaking.set(id, (set = new Set()));
    set.add(conn);
  }

  /** `conn`'s handshake ended. */
  settle(conn: Connection): void {
    const id = conn.greetedId;
    const set = id === undefined ? undefined : this.handshaking.get(id);
    if (!set) return;
    set.delete(conn);
    if (set.size === 0) this.handshaking.delete(id!);
  }

  /** Handshakes under way whose peer's greeting claimed `nodeId`. */
  claiming(nodeId: string): number {
    return this.handshaking.get(nodeId)?.size ?? 0;
  }
}
