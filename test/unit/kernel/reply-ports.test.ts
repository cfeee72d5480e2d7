import { describe, expect, it } from 'vitest';
import type { KilledError } from '../../../src/errors.js';
import { Kernel, type Remote } from '../../../src/streams/kernel/kernel.js';
import type { ReplyPort } from '../../../src/streams/kernel/reply-table.js';
import { turn } from '../../helpers/node.js';

/** A kernel whose network only records what it would send. */
function kernel(randomisedId = true) {
  const sent: [string, unknown[]][] = [];
  const remote: Remote = {
    send: (node, msg) => sent.push([node, msg]),
    sendIfUp: (node, msg) => sent.push([node, msg]),
    monitor: () => () => {},
  };
  const k = new Kernel({ nodeId: 'me/x', randomisedId, logger: { log() {} }, remote });
  return { k, sent };
}

/** A reply port that records what reaches it. */
function reply(): ReplyPort & { got: unknown[] } {
  const got: unknown[] = [];
  return {
    got,
    replySeq: 0,
    replyId: '',
    replyRecord: undefined,
    next: (m) => got.push(['next', m]),
    complete: () => got.push(['complete']),
    error: (e) => got.push(['error', (e as KilledError).reason]),
  };
}

const nameOf = (id: string) => id.slice(id.indexOf('#') + 1);

describe('reply ports', () => {
  it('are named node#(random part)(number), get messages from peers and local senders, and nothing after closing', async () => {
    for (const randomised of [true, false]) {
      const { k } = kernel(randomised);
      const p = reply();
      const id = k.openReply(p);
      expect(id).toMatch(randomised ? /^me\/x#[1-9][0-9]*$/ : /^me\/x#[A-Za-z0-9]{9}[1-9][0-9]*$/);
      expect(k.hasPort(id)).toBe(true);
      expect(k.portIds()).toContain(id);
      k.receive('peer/y', [nameOf(id), 'from', 'peer']);
      k.snd(id, ['from', 'here']);
      await turn();
      expect(p.got).toEqual([
        ['next', ['from', 'peer']],
        ['next', ['from', 'here']],
      ]);
      k.closeReply(p);
      expect(k.hasPort(id)).toBe(false);
      k.receive('peer/y', [nameOf(id), 'late']);
      k.snd(id, ['late']);
      await turn();
      expect(p.got).toHaveLength(2);
    }
  });

  it('a monitor from a peer (mon1) makes it a full port: its end sends kil0', () => {
    const { k, sent } = kernel();
    const p = reply();
    const id = k.openReply(p);
    expect(k.remoteMonitor('peer/y', nameOf(id), true)).toBe(true);
    expect(k.remoteMonitorCount).toBe(1);
    k.receive('peer/y', [nameOf(id), 'answer']);
    expect(p.got).toEqual([['next', ['answer']]]);
    k.closeReply(p);
    expect(sent).toEqual([['peer/y', ['', 'kil0', nameOf(id)]]]);
    expect(k.remoteMonitorCount).toBe(0);
    expect(k.hasPort(id)).toBe(false);
  });

  it('a kill (kil1) ends it with the reason; close() ends the open ones', () => {
    const { k } = kernel();
    const a = reply();
    const b = reply();
    const idA = k.openReply(a);
    const idB = k.openReply(b);
    k.killNow(nameOf(idA), ['bye']);
    expect(a.got).toEqual([['error', ['bye']]]);
    expect(k.hasPort(idA)).toBe(false);
    k.close();
    expect(b.got).toEqual([['complete']]);
    expect(k.hasPort(idB)).toBe(false);
    expect(k.portCount).toBe(0);
  });

  it('a name that only looks like a reply port is an ordinary port', async () => {
    const { k } = kernel();
    const got: unknown[] = [];
    k.setDefault('me/x#900', (...m: unknown[]) => got.push(m));
    const p = reply();
    k.openReply(p);
    k.receive('peer/y', ['900', 'hi']);
    k.receive('peer/y', [42, 'not a name']);
    expect(got).toEqual([['hi']]);
    expect(p.got).toEqual([]);
  });
});
