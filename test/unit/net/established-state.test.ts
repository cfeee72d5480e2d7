/**
 * What an established connection keeps: of its handshake only what is read later (the peer's
 * greeting, the negotiated methods), not the greeting lines and nonces the auth tokens were
 * computed from, nor the handshake options with their callbacks.
 */
import { describe, expect, it } from 'vitest';
import { MemoryNetwork, VirtualClock } from '../../../src/testing.js';
import { within } from '../../helpers/fake-peer.js';
import { network, node, nodeEvent } from './memory-nodes.js';

interface ConnView {
  session?: Record<string, unknown> & { peerGreeting: { keys: ReadonlyMap<string, unknown> } };
  opts?: unknown;
  hs?: unknown;
  out?: unknown;
}

describe('established connection state', () => {
  it('keeps the peer greeting and methods, drops the handshake lines, nonces, options and empty collections', async () => {
    const net = new MemoryNetwork();
    const opts = { secret: 'est', heartbeat_interval: 2 };
    const a = node(net.host(), new VirtualClock(), { nodeid: 'est-a', binds: ['10.0.0.1:4040'], ...opts });
    const b = node(net.host(), new VirtualClock(), { nodeid: 'est-b', binds: ['10.0.0.2:4040'], ...opts });
    await Promise.all([a.ready, b.ready]);
    network(a).addresses.set('est-b', ['10.0.0.2:4040']);
    a.snd('est-b#nobody', 'hello');
    await nodeEvent(a, 'up', 'est-b');
    type PeerView = { conn?: ConnView; monitors: ReadonlyMap<string, unknown>; tries: ReadonlySet<unknown> };
    const peers = (network(a) as unknown as { peers: { get(id: string): PeerView } }).peers;
    const peer = peers.get('est-b');
    const conn = peer.conn!;
    const session = conn.session!;
    expect(session.peerNodeId).toBe('est-b');
    expect(session.authMethod).toBe('hmac_sha3_512');
    expect(session.recvFraming).toBe('cbor');
    expect(session.peerGreeting.keys.get('hb')).toBe('2');
    expect(network(a).peerGreeting?.('est-b')?.nodeId).toBe('est-b');
    expect([session.ownGreeting, session.ownNonce, session.peerNonce]).toEqual(['', '', '']);
    expect(conn.opts).toBeUndefined();
    expect(conn.hs).toBeUndefined();
    expect(conn.out).toBeUndefined();
    // No monitors and no dial under way: the peer holds no map or set for them.
    expect(Object.values(peer).filter((v) => v instanceof Map || v instanceof Set)).toEqual([]);
    expect(peer.monitors.size + peer.tries.size).toBe(0);
    await within(Promise.all([a.close(), b.close()]), 5000, 'both nodes closed');
  });
});
