/** Made-up pieces of a `NetworkSnapshot` for tests of what shows it (dashboard, `aemp top`). */
import type { LinkStats, NodeStats } from '../../src/streams/observe/snapshot.js';

/** A node that answered the stats request and has nothing else to say, plus `extra`. */
export function statsNode(id: string, extra: Partial<NodeStats> = {}): NodeStats {
  return { node: id, kind: 'aemp', global: false, addresses: [], at: 0, ...extra };
}

/** An idle established link from `from` to `to`, plus `extra`. */
export function statsLink(from: string, to: string, extra: Partial<LinkStats> = {}): LinkStats {
  return {
    from,
    to,
    up: true,
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    msgRateIn: 0,
    msgRateOut: 0,
    byteRateIn: 0,
    byteRateOut: 0,
    queued: 0,
    unsentBytes: 0,
    ...extra,
  };
}
