/**
 * Nodes on an in-memory network for the unit tier: built by `memoryNode` (aemp/testing), the
 * same components as production with the in-memory transport and a virtual clock. Every node
 * made here is closed after the test.
 */
import { filter, firstValueFrom } from 'rxjs';
import { afterEach } from 'vitest';
import type { ConfigureOptions, Node } from '../../../src/index.js';
import type { TcpNetwork } from '../../../src/streams/net/tcp-network.js';
import { type MemoryHost, memoryNode, type VirtualClock } from '../../../src/testing.js';
import { within } from '../../helpers/fake-peer.js';

const open: { node: Node; clock: VirtualClock }[] = [];

afterEach(async () => {
  const nodes = open.splice(0);
  await Promise.all(
    nodes.map(async ({ node, clock }) => {
      const closed = node.close();
      // The close grace and lingering shutdowns run on the node's clock.
      for (let i = 0; i < 20 && !(await settledWithin(closed)); i++) await clock.run(1000);
      await within(closed, 5000, `${node.id} to close`);
    }),
  );
});

async function settledWithin(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

export type Line = { level: number; text: string };

/** A node on `host` with `clock`, logging into `logs`. */
export function node(host: MemoryHost, clock: VirtualClock, opts: ConfigureOptions): Node & { logs: Line[] } {
  const logs: Line[] = [];
  const n = memoryNode(host, {
    secret: 'unit-secret',
    ...opts,
    clock,
    logger: { log: (level: number, text: string) => logs.push({ level, text }) },
  });
  open.push({ node: n, clock });
  return Object.assign(n, { logs });
}

/** The node's network (tests reach its address table). */
export function network(n: Node): TcpNetwork {
  return (n as unknown as { network: TcpNetwork }).network;
}

/** Resolves with the next up or down event of `peer` on `n`. */
export function nodeEvent(n: Node, type: 'up' | 'down', peer: string) {
  return within(
    firstValueFrom(n.nodes$.pipe(filter((e) => e.type === type && e.node === peer))),
    5000,
    `${peer} ${type} on ${n.id}`,
  );
}
