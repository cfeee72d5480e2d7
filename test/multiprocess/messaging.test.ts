/**
 * Messages between aemp nodes in separate processes over loopback TCP: ordering under load,
 * request/reply, relaying through a third node, and the JSON/CBOR framings.
 */
import { describe, expect, it } from 'vitest';
import { startPair, startStar } from '../helpers/spawn-node.js';

/** Values that must cross the wire unchanged, whatever the framing. */
const PAYLOAD: unknown[] = [
  'payload',
  {
    nested: { list: [1, -2, 3.25, null, true, false, 'x'], deeper: { a: { b: { c: [[], {}] } } } },
    'key with spaces & ünïcödé': 'value',
  },
  'unicode: äöü ß € 日本語 𝄞 😀 "quoted" \\ back\nslash\ttab \u0001',
  0.1 + 0.2,
  -1.5e-7,
  1e300,
  Number.MAX_SAFE_INTEGER,
  -(2 ** 31),
  null,
  [null, [null, { n: null }]],
  '',
];

describe('snd across processes', () => {
  it('keeps the order of 10,000 messages in each direction, sent concurrently', async () => {
    const N = 10_000;
    const [hub, leaf] = await startPair();
    const [atHub, atLeaf, rec] = await Promise.all([
      hub.port('collect'),
      leaf.port('collect'),
      hub.port('record'),
    ]);
    await Promise.all([
      hub.request({ cmd: 'snd', to: atLeaf, msg: ['seq', 'hub'], count: N }),
      leaf.request({ cmd: 'snd', to: atHub, msg: ['seq', 'leaf'], count: N }),
    ]);
    const [gotLeaf, gotHub] = await Promise.all([
      leaf.request({ cmd: 'collected', port: atLeaf, count: N }, 15_000),
      hub.request({ cmd: 'collected', port: atHub, count: N }, 15_000),
    ]);
    expect(gotLeaf).toEqual(Array.from({ length: N }, (_, i) => ['seq', 'hub', i]));
    expect(gotHub).toEqual(Array.from({ length: N }, (_, i) => ['seq', 'leaf', i]));

    // The receiving handler sees the sending node as the source node.
    await leaf.snd(rec, 'hello', 1, [2, 3]);
    const got = await hub.received(rec, 'hello');
    expect(got.msg).toEqual(['hello', 1, [2, 3]]);
    expect(got.src).toBe(leaf.id);
  });
});

describe('cal$ across processes', () => {
  it('gets the reply of a remote port, in both directions', async () => {
    const [hub, leaf] = await startPair();
    const [echoHub, echoLeaf] = await Promise.all([hub.port('echo'), leaf.port('echo')]);
    expect(await hub.cal(echoLeaf, ['ping', { n: 1 }, [2.5]])).toEqual({ reply: ['ping', { n: 1 }, [2.5]] });
    expect(await leaf.cal(echoHub, ['pong', 'ü'])).toEqual({ reply: ['pong', 'ü'] });
    // Several calls in flight at once each get their own reply.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => hub.cal(echoLeaf, ['n', i])));
    expect(many).toEqual(Array.from({ length: 20 }, (_, i) => ({ reply: ['n', i] })));
  });

  it('errors with the kill reason, with no_such_port, or times out when no reply comes', async () => {
    const [hub, leaf] = await startPair();
    const [dies, silent] = await Promise.all([leaf.port('die'), leaf.port('silent')]);
    // The port dies handling the request: the call errors with its kill reason.
    expect(await hub.cal(dies, ['bad request'])).toEqual({ killed: ['die', 'bad request'] });
    // The port does not exist: the remote node answers the call's monitor.
    const missing = `${leaf.id}#nothing-here`;
    expect(await hub.cal(missing, ['hello'])).toEqual({
      killed: ['no_such_port', 'cannot monitor nonexistent port', missing],
    });
    expect(await hub.cal(silent, ['anyone?'], 300)).toEqual({ timedOut: true });
  });
});

describe('snd_on relay', () => {
  it('has the middle node send to a third node and back to the requester', async () => {
    const [hub, [left, right]] = await startStar(2);
    const [atRight, atLeft] = await Promise.all([right!.port('record'), left!.port('record')]);

    await left!.request({ cmd: 'sndOn', node: hub.id, msg: [atRight, 'relayed', 1, { k: 'v' }] });
    const there = await right!.received(atRight, 'relayed');
    expect(there.msg).toEqual(['relayed', 1, { k: 'v' }]);
    expect(there.src).toBe(hub.id);

    // `snd_on` also takes a port ID for the node (its node part is used).
    const hubPort = await hub.port('silent');
    await left!.request({ cmd: 'sndOn', node: hubPort, msg: [atLeft, 'back', 'home'] });
    const back = await left!.received(atLeft, 'back');
    expect(back.msg).toEqual(['back', 'home']);
    expect(back.src).toBe(hub.id);
  });
});

describe('framings', () => {
  it.each([
    { what: 'JSON only on one side', leaf: ['json'], leafSends: 'json', hubSends: 'json' },
    { what: 'json,cbor against the default', leaf: ['json', 'cbor'], leafSends: 'cbor', hubSends: 'json' },
  ])('$what: structured values survive both directions', async ({ leaf: framings, leafSends, hubSends }) => {
    const [hub, leaf] = await startPair({}, { framing_format: framings });
    expect(await leaf.request({ cmd: 'framing', node: hub.id })).toEqual({ send: leafSends, recv: hubSends });
    expect(await hub.request({ cmd: 'framing', node: leaf.id })).toEqual({ send: hubSends, recv: leafSends });

    const [echoHub, echoLeaf, recHub, recLeaf] = await Promise.all([
      hub.port('echo'),
      leaf.port('echo'),
      hub.port('record'),
      leaf.port('record'),
    ]);
    // One way each…
    await leaf.snd(recHub, ...PAYLOAD);
    await hub.snd(recLeaf, ...PAYLOAD);
    expect((await hub.received(recHub, 'payload')).msg).toEqual(PAYLOAD);
    expect((await leaf.received(recLeaf, 'payload')).msg).toEqual(PAYLOAD);
    // …and round trips through the other node.
    expect(await leaf.cal(echoHub, PAYLOAD)).toEqual({ reply: PAYLOAD });
    expect(await hub.cal(echoLeaf, PAYLOAD)).toEqual({ reply: PAYLOAD });
  });
});
