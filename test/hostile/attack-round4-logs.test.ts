/**
 * The log catcher against a peer that lists made-up nodes in the `'l` family: a catcher asks
 * every listed node for its records (a port and a connection each), so the nodes it asks are
 * bounded, whatever a peer registers.
 */
import { describe, expect, it } from 'vitest';
import { logCatcherCounts, MAX_LOG_SOURCES } from '../../src/streams/log/log-catcher.js';
import { escapesOfEachTest } from '../helpers/escapes.js';
import { FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const escaped = escapesOfEachTest();

describe("made-up nodes in 'l", () => {
  it(`5,000 listed by one peer: a catcher asks at most ${MAX_LOG_SOURCES} of them`, async () => {
    const node = testNode({ nodeid: 'r4-catcher', secret: SECRET, binds: ['127.0.0.1:0'] });
    const sub = node.logs$().subscribe();
    try {
      await within(node.ready, WAIT_MS, 'the catcher to listen');
      node.db.becomeGlobal();
      const fake = await FakePeer.dial(node.binds[0]!);
      await fake.handshake({ nodeId: 'evil', secret: SECRET });
      const listed: Record<string, string[]> = { evil: ['127.0.0.1:1'] };
      for (let i = 0; i < 5000; i++) listed[`ghost-logger-${i}`] = ['127.0.0.1:1'];
      fake.send(['', 'g_slave', { "'l": listed }]);
      await fake.nextMatching((m) => m[1] === 'AnyEvent::MP::LogCatcher::connect');
      fake.send(['', 'time', 'evil#done']);
      await fake.nextMatching((m) => m[0] === 'done');
      expect(logCatcherCounts(node).catcherPorts).toBeLessThanOrEqual(MAX_LOG_SOURCES);
      await within(
        node.logged(
          new RegExp(
            `^${5001 - MAX_LOG_SOURCES} nodes listed in 'l past the ${MAX_LOG_SOURCES} a catcher asks`,
          ),
        ),
        WAIT_MS,
        'the log line about the nodes not asked',
      );
      fake.destroy();
      expect(escaped).toEqual([]);
    } finally {
      sub.unsubscribe();
      await node.close();
    }
  });
});
