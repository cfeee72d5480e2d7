/**
 * Node IDs are the peer's choice, and a decoded map is an ordinary object: a peer named
 * `constructor` (or `toString`, …) whose `g_set` carries an `'l` family without its own entry made a
 * global node mirror the inherited property (a function) into the `'l` family, whose monitors
 * then received updates that cannot be encoded.
 */
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

describe('node IDs named like Object.prototype properties', () => {
  for (const id of ['constructor', 'toString', 'hasOwnProperty']) {
    it(`g_set with an empty 'l from a peer named ${id}: its 'l entry is null, not an inherited function`, async () => {
      const victim = testNode({
        nodeid: `proto-victim-${id}`,
        binds: ['127.0.0.1:0'],
        secret: SECRET,
        secure: true,
      });
      await within(victim.ready, WAIT_MS, 'the victim to listen');
      victim.db.becomeGlobal();
      const peer = await FakePeer.dial(victim.binds[0]!);
      await peer.handshake({ nodeId: id, secret: SECRET, sendFraming: 'cbor' });
      peer.send(['', 'g_set', { "'l": {} }]);
      peer.send(['', 'time', `${id}#t`]);
      await peer.nextMatching((m) => m[0] === 't');
      const l = await within(firstValueFrom(victim.db.family$("'l")), WAIT_MS, "the 'l family");
      expect(Object.hasOwn(l, id)).toBe(true);
      expect(l[id]).toBeNull();
    });
  }
});
