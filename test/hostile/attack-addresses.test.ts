/**
 * Addresses come from peers: a master answers `g_find` with whatever it likes, and a slave
 * registers whatever it likes in `'l`. An address the node cannot dial (no port, a port past
 * 65535, a trailing newline, a broken IPv6 bracket, a huge string) must fail that one connect
 * attempt — the node's monitors fire with a transport error — and never throw out of a timer or
 * a promise (an unhandled rejection ends a Node process).
 */
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { tcpTransports } from '../../src/protocol/tcp-transport.js';
import { escapesOfEachTest } from '../helpers/escapes.js';
import { nodeWithFakeMaster } from '../helpers/fake-master.js';
import { FakeListener, FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const BAD = [
  '127.0.0.1:5507\n',
  '127.0.0.1:99999',
  '127.0.0.1:99999999999999999999',
  'no-port',
  '[::1:4040',
  ':',
  `${'x'.repeat(70_000)}:1`,
];

const escaped = escapesOfEachTest();

/** A node whose only seed (and so its master) is a scripted fake. */
async function withFakeMaster() {
  const { node, master } = await nodeWithFakeMaster('addr-victim', 'evil-master');
  expect(await master.next()).toEqual(['', 'g_slave']);
  expect((await master.next())[1]).toBe('g_slave');
  return { node, master };
}

/** One turn of the event loop after `p`, so that a throw from a later callback is seen. */
async function afterTurn<T>(p: Promise<T>): Promise<T> {
  const v = await p;
  await new Promise((r) => setImmediate(r));
  return v;
}

describe('addresses from a peer that cannot be dialled', () => {
  it.each(BAD.map((a) => [JSON.stringify(a.length > 40 ? `${a.slice(0, 20)}…` : a), a]))(
    'g_found %s: the monitor fires with a transport error; nothing escapes',
    async (_name, bad) => {
      const { node, master } = await withFakeMaster();
      const down = firstValueFrom(node.mon$('far#p'));
      node.snd('far#p', 'hello');
      expect(await master.next()).toEqual(['', 'g_find', 'far']);
      master.send(['', 'g_found', 'far', [bad]]);
      const reason = await afterTurn(within(down, WAIT_MS, 'the monitor of far#p'));
      expect(reason[0]).toBe('transport_error');
      expect(reason[1]).toBe('far');
      expect(escaped).toEqual([]);
      // The node still works: its master still gets answers.
      master.send(['', 'time', 'evil-master#alive']);
      expect(await master.nextMatching((m) => m[0] === 'alive')).toEqual(['alive', expect.any(Number)]);
      expect(escaped).toEqual([]);
    },
  );

  it('a good address behind bad ones is still dialled', async () => {
    const { node, master } = await withFakeMaster();
    const target = await FakeListener.open();
    node.snd('target#p', 'hi');
    expect(await master.next()).toEqual(['', 'g_find', 'target']);
    master.send(['', 'g_found', 'target', ['127.0.0.1:99999', 'no-port', target.addr]]);
    const conn = await within(target.accept(), WAIT_MS, 'the dial of the good address');
    await conn.handshake({ nodeId: 'target', secret: SECRET });
    expect(await conn.nextMatching((m) => m[0] === 'p')).toEqual(['p', 'hi']);
    expect(escaped).toEqual([]);
  });

  it('a slave registering bad addresses on a global node: lookups of it fail cleanly', async () => {
    const node = testNode({ nodeid: 'addr-global', secret: SECRET, binds: ['127.0.0.1:0'] });
    await within(node.ready, WAIT_MS, 'the global node to start');
    const slave = await FakePeer.dial(node.binds[0]!);
    await slave.handshake({ nodeId: 'liar', secret: SECRET });
    // A g_slave makes the node global. The slave's own entry stays reachable; 'phantom' is
    // only its invention.
    slave.send(['', 'g_slave', { "'l": { liar: [], phantom: BAD } }]);
    slave.send(['', 'time', 'liar#synced']);
    expect(await slave.nextMatching((m) => m[0] === 'synced')).toEqual(['synced', expect.any(Number)]);
    const down = firstValueFrom(node.mon$('phantom#p'));
    node.snd('phantom#p', 'x');
    const reason = await afterTurn(within(down, WAIT_MS, 'the monitor of phantom#p'));
    expect(reason[0]).toBe('transport_error');
    expect(escaped).toEqual([]);
  });
});

describe('the TCP transport dialling a bad address', () => {
  it.each(BAD.map((a) => [JSON.stringify(a.slice(0, 20)), a]))(
    '%s: no throw; the transport closes with the reason',
    async (_name, bad) => {
      const t = tcpTransports({ nodelay: true }).dial(bad);
      const reason = await within(
        new Promise<string>((resolve) => t.open({ data: () => {}, closed: resolve })),
        WAIT_MS,
        'the transport to close',
      );
      expect(reason).toMatch(/bad (address|port)|ENOTFOUND|EAI_|ERR_SOCKET_BAD_PORT|getaddrinfo/);
      expect(t.connected).toBe(false);
      expect(escaped).toEqual([]);
    },
  );
});
