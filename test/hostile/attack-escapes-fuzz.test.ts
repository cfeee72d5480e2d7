/**
 * Random requests from an authenticated peer, against a global node in secure mode and one
 * that is not. fast-check builds messages from the grammar of the node port (spec/api.md §16a,
 * global.md §6: `["", TAG, ARGS…]` with every known tag, and function-name tags), followed by
 * values of any type (huge and negative-zero numbers, NaN and infinities, big integers, byte
 * strings, prototype-named keys, objects whose `toString` is no function), and messages to the
 * node's local ports, in CBOR and in JSON. Afterwards:
 *   - nothing escaped to the process (no uncaught exception, no unhandled rejection);
 *   - the node still answers a `time` request;
 *   - once the peer is gone (and the node's deadlines passed, in virtual time), the tables a
 *     peer's requests reach are back to their size before: peers, connections, remote
 *     monitors, call watches, pending lookups, the global database's families, shards and
 *     monitors, kept global nodes, log sinks, expected data connections; no port was added.
 * A node may close a connection on input it cannot take (a protocol error, logged); the next
 * batch then comes on a new connection.
 *
 * A second test sends extreme values in every request slot (1 MB strings, node IDs and port
 * names, 256 KB byte strings and keys, values nested as deep as the decoder takes, prototype-named
 * keys, numbers at the limits, 50,000-item lists), then a value nested 10,000 deep, which ends
 * the connection with a logged protocol error; the same checks follow.
 */
import fc from 'fast-check';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/streams/clock.js';
import { logCatcherCounts } from '../../src/streams/log/log-catcher.js';
import type { DataConns } from '../../src/streams/net/dataconn.js';
import type { TcpNetwork } from '../../src/streams/net/tcp-network.js';
import { escapesOfEachTest } from '../helpers/escapes.js';
import { nodeWithFakeMaster } from '../helpers/fake-master.js';
import { FakePeer, perlCbor, SECRET, Text, WAIT_MS, within } from '../helpers/fake-peer.js';
import { testNode } from '../helpers/node.js';

const escaped = escapesOfEachTest();

/** Messages per mode and framing: batches of up to BATCH, each followed by a `time` probe. */
const MESSAGES = 300;
const BATCH = 10;

type Framing = 'cbor' | 'json';

/** Every request of the node port, the function-name requests aemp and Perl know, and oddities. */
const TAGS = [
  '',
  'devnull',
  'mon1',
  'mon0',
  'kil0',
  'kil1',
  'snd',
  'can',
  'eval',
  'time',
  'g_global',
  'g_slave',
  'g_set',
  'g_upd',
  'g_find',
  'g_found',
  'g_db_family',
  'g_db_keys',
  'g_db_values',
  'g_reply',
  'g_mon0',
  'g_mon1',
  'g_chg1',
  'g_chg2',
  'g_clr',
  'g_disconnect',
  'aemp::stats',
  'AnyEvent::MP::_spawn',
  'AnyEvent::MP::DataConn::_expect',
  'AnyEvent::MP::DataConn::_connect',
  'AnyEvent::MP::LogCatcher::connect',
  'AnyEvent::MP::LogCatcher::catch',
  'AnyEvent::MP::Global::',
  'AnyEvent::Watchdog::restart',
  'Fuzz::ok',
  'Fuzz::throws',
  'Fuzz::rejects',
  'Nope::nothing',
  'fs::nope',
  'relay',
  'kil',
  'info',
  'up_nodes',
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
];

/** `eval` code (only for the node that is not secure): harmless, but of every outcome. */
const CODE = [
  '1+1',
  'throw new Error("x")',
  'throw {toString: 1}',
  'Promise.reject(new Error("y"))',
  'Promise.reject({toString: 1, n: 2n ** 70n})',
  'Promise.resolve(Symbol("s"))',
  'up_nodes',
  'AnyEvent::MP::Kernel::up_nodes',
  'undefined',
  '({toString: 1, n: 2n ** 70n})',
  '[1n, -0, NaN, Infinity]',
  'new Promise(() => {})',
  '({}).constructor',
  'NODE',
  'x y z',
  '',
];

const KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', "'l", "'g", '', 'k'];

interface Names {
  victim: string;
  attacker: string;
  /** Local port names of the victim. */
  ports: string[];
}

/** Values of any type a decoder can produce, shaped to hit the node's checks. */
function values(n: Names) {
  const portIds = [...n.ports.map((p) => `${n.victim}#${p}`), `${n.attacker}#r`, `${n.victim}#`, 'far#x'];
  const str = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.string({ maxLength: 6, unit: 'binary' }),
    fc.constantFrom(n.victim, n.attacker, 'far', '', '#', ...KEYS, ...portIds, ...n.ports),
    fc.constantFrom('127.0.0.1:5507\n', '127.0.0.1:1', '[::1]:99999', 'x'.repeat(400)),
  );
  const num = fc.oneof(
    fc.integer(),
    fc.double(),
    fc.constantFrom(-0, Number.NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53), 1e308, 5e-324, 0.5, 1, 9),
  );
  const big = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n });
  const leaf = fc.oneof(
    { weight: 4, arbitrary: str },
    { weight: 3, arbitrary: num },
    big,
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 6 }),
    fc.string({ maxLength: 4 }).map((s) => new Text(`${s}é`)),
    // Objects neither String nor JSON can render.
    fc
      .constantFrom<[string, unknown][]>(
        [['toString', 1]],
        [
          ['toString', 1],
          ['n', 2n ** 63n],
        ],
        [
          ['valueOf', 0],
          ['toString', null],
        ],
      )
      .map(objectOf),
  );
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      { weight: 5, arbitrary: leaf },
      fc.array(tie('value'), { maxLength: 4 }),
      fc
        .array(
          fc.tuple(fc.oneof(fc.constantFrom(...KEYS, ...portIds), fc.string({ maxLength: 5 })), tie('value')),
          {
            maxLength: 4,
          },
        )
        .map(objectOf),
    ),
  }));
  return { value, str, portIds };
}

/** An object with own properties for every key, `__proto__` included. */
function objectOf(entries: [string, unknown][]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries)
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** One message: a node-port request or a message to a local port. */
function messages(n: Names, secure: boolean) {
  const { value, str, portIds } = values(n);
  const args = fc.array(value, { maxLength: 5 });
  const typed = fc.oneof(
    // Argument lists shaped like the real ones, so that requests get past their first checks.
    fc.tuple(fc.constantFrom(...n.ports, 'r', 'p', ''), args).map(([name, rest]) => [name, ...rest]),
    fc.tuple(fc.constantFrom(...portIds), args).map(([to, rest]) => [to, ...rest]),
    fc
      .tuple(
        fc.oneof(str, fc.constantFrom("'l", "'g", 'fam')),
        fc.dictionary(str, value, { maxKeys: 3 }),
        fc.array(value, { maxLength: 3 }),
      )
      .map(([family, set, del]) => [family, set, del]),
    fc
      .dictionary(
        fc.constantFrom("'l", "'g", 'fam', '__proto__'),
        fc.dictionary(str, value, { maxKeys: 3 }),
        { maxKeys: 3 },
      )
      .map((db) => [db]),
    fc
      .tuple(str, fc.constantFrom(...portIds), value, fc.constantFrom(...TAGS), args)
      .map(([id, port, timeout, func, rest]) => [id, port, timeout, func, ...rest]),
  );
  const code = secure
    ? value
    : fc.oneof(fc.constantFrom(...CODE), fc.constant({ toString: 1 }), fc.integer());
  const request = fc.oneof(
    fc
      .tuple(fc.constantFrom(...TAGS.filter((t) => t !== 'eval')), fc.oneof(typed, args))
      .map(([tag, rest]) => ['', tag, ...rest]),
    fc.tuple(code, args).map(([c, rest]) => ['', 'eval', c, ...rest]),
    // A relay, possibly to the node's own port or through chains of relays.
    fc
      .tuple(
        fc.constantFrom(`${n.victim}#`, n.victim, ...portIds),
        fc.constantFrom(...TAGS.filter((t) => t !== 'eval')),
        args,
      )
      .map(([to, tag, rest]) => ['', 'snd', to, tag, ...rest]),
    // A request whose reply goes to a port of the peer's choice: the node's own node port makes
    // the reply a request of its own (`[..., TAG, ARGS..., ANSWER]`).
    fc
      .tuple(
        fc.constantFrom('time', 'can', 'aemp::stats'),
        fc.constantFrom(n.victim, `${n.victim}#`, ...portIds),
        fc.constantFrom(...TAGS.filter((t) => t !== 'eval')),
        fc.oneof(typed, args),
      )
      .map(([tag, to, inner, rest]) =>
        tag === 'can' ? ['', tag, 'devnull', to, inner, ...rest] : ['', tag, to, inner, ...rest],
      ),
    // Only a tag, or nothing at all.
    fc.constantFrom(...TAGS.filter((t) => t !== 'eval')).map((tag) => ['', tag]),
    fc.constant<unknown[]>(['']),
  );
  const toPort = fc.tuple(fc.oneof(fc.constantFrom(...n.ports), str), args).map(([p, rest]) => [p, ...rest]);
  return fc.oneof({ weight: 4, arbitrary: request }, { weight: 1, arbitrary: toPort });
}

/** JSON text of a value, with what JSON.stringify cannot say: -0, big integers, 1e400. */
function jsonText(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (Object.is(v, -0)) return '-0';
    if (Number.isNaN(v)) return 'null';
    if (v === Infinity) return '1e400';
    if (v === -Infinity) return '-1e400';
    return JSON.stringify(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Text) return JSON.stringify(v.text);
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('latin1'));
  if (Array.isArray(v)) return `[${v.map(jsonText).join(',')}]`;
  return `{${Object.entries(v as object)
    .map(([k, x]) => `${JSON.stringify(k)}:${jsonText(x)}`)
    .join(',')}}`;
}

function encode(framing: Framing, msg: unknown[]): Buffer {
  return framing === 'cbor' ? perlCbor(msg) : Buffer.from(jsonText(msg), 'utf8');
}

type Victim = ReturnType<typeof testNode>;

/** The tables a peer's requests reach. */
/** A new, well-behaved peer is served (a `time` answer); once it left, a minute of virtual time passes. */
async function goodPeerServedAndGone(node: Victim, clock: VirtualClock): Promise<void> {
  const good = await FakePeer.dial(node.binds[0]!);
  await good.handshake({ nodeId: 'good', secret: SECRET });
  good.send(['', 'time', 'good#t']);
  expect(await good.nextMatching((m) => m[0] === 't')).toEqual(['t', expect.any(Number)]);
  const down = firstValueFrom(node.nodes$.pipe(filter((e) => e.type === 'down' && e.node === 'good')));
  good.destroy();
  await within(down, WAIT_MS, 'the node to see the good peer go');
  await clock.run(60_000);
}

function tables(node: Victim) {
  const net = node.network as TcpNetwork;
  const db = node.db.sizes();
  return {
    peers: net.peerCount,
    connections: net.openConnections,
    remoteMonitors: node.kernel.remoteMonitorCount,
    callWatches: node.kernel.callWatches.size,
    pendingFinds: db.pendingFinds,
    findWaiters: db.findWaiters,
    families: db.global?.families,
    shards: db.global?.shards,
    monitoredFamilies: db.global?.monitoredFamilies,
    monitors: db.global?.monitors,
    keptNodes: db.global?.keptNodes,
    logSinks: logCatcherCounts(node).sinks,
    catcherPorts: logCatcherCounts(node).catcherPorts,
    expectedDataConns: (node.dataConns as DataConns).pending,
  };
}

describe.each([
  ['secure', true],
  ['not secure', false],
])('random requests from an authenticated peer to a global node (%s)', (_mode, secure) => {
  it(`${MESSAGES} messages in CBOR and ${MESSAGES} in JSON: nothing escapes, the node answers, its tables are back to their size`, {
    timeout: 120_000,
  }, async () => {
    const clock = new VirtualClock();
    const victimId = secure ? 'fz-secure' : 'fz-open';
    const node = testNode({ nodeid: victimId, secret: SECRET, secure, binds: ['127.0.0.1:0'], clock });
    node.register('Fuzz::ok', () => 'ok');
    node.register('Fuzz::throws', () => {
      throw new Error('fuzz');
    });
    node.register('Fuzz::rejects', () => Promise.reject(new Error('fuzz')));
    await within(node.ready, WAIT_MS, 'the node to listen');
    node.db.becomeGlobal();
    // Local ports of every kind: a handler, tag handlers only, a stream, a throwing handler.
    const plain = node.port(() => {});
    const tagged = node.rcv(node.port(), 'a', () => {});
    const stream = node.port$();
    const streamSub = stream.subscribe({ error: () => {} });
    const thrower = node.port(() => {
      throw new Error('handler');
    });
    const ports = [plain, tagged, stream.id, thrower].map((id) => id.slice(id.indexOf('#') + 1));
    const before = tables(node);
    const portsBefore = node.kernel.portCount;
    const outcomes = { batches: 0, closedByNode: 0 };

    for (const framing of ['cbor', 'json'] as const) {
      const attacker = `fz-${framing}`;
      const names: Names = { victim: victimId, attacker, ports };
      let fake: FakePeer | undefined;
      const connect = async () => {
        const f = await FakePeer.dial(node.binds[0]!);
        await f.handshake({ nodeId: attacker, secret: SECRET, framings: framing, sendFraming: framing });
        f.send(['', 'time', `${attacker}#up`]);
        await f.nextMatching((m) => m[0] === 'up');
        return f;
      };
      // The node calls a port of the attacker and links a port of its own to one: kil0 and the
      // connection's end reach both.
      const linked = node.port(() => {});
      const call = node.call(`${attacker}#r`, ['q']).catch(() => {});
      let sent = 0;
      let probe = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(messages(names, secure), { minLength: 1, maxLength: BATCH }),
          async (batch) => {
            if (sent >= MESSAGES) return;
            if (!fake || fake.isClosed) {
              fake = await connect();
              node.mon(`${attacker}#r`, linked);
            }
            const msgs = batch.slice(0, MESSAGES - sent);
            sent += msgs.length;
            const id = `${attacker}#probe${++probe}`;
            fake.write(
              Buffer.concat([...msgs.map((m) => encode(framing, m)), encode(framing, ['', 'time', id])]),
            );
            outcomes.batches++;
            try {
              await fake.nextMatching((m) => m[0] === `probe${probe}`, 20_000);
            } catch (err) {
              if (!fake.isClosed) throw err;
              // Closed by the node: only for input it cannot take, and said in the log.
              outcomes.closedByNode++;
              await within(
                node.logged(new RegExp(`^connection to ${attacker} lost: protocol error`)),
                WAIT_MS,
                'the log line of the close',
              );
            }
            expect(escaped.map(String)).toEqual([]);
          },
        ),
        // The node's state carries over from batch to batch: the batch that failed is reported as is.
        { numRuns: Math.ceil(MESSAGES / (BATCH / 2)) * 2, endOnFailure: true },
      );
      expect(sent).toBe(MESSAGES);
      if (!secure) fake?.send(['', 'AnyEvent::MP::LogCatcher::catch', null]);
      // Still answering, then gone.
      if (fake && !fake.isClosed) {
        fake.send(['', 'time', `${attacker}#last`]);
        await fake.nextMatching((m) => m[0] === 'last', 20_000);
        const down = firstValueFrom(
          node.nodes$.pipe(filter((e) => e.type === 'down' && e.node === attacker)),
        );
        fake.destroy();
        await within(down, WAIT_MS, `the node to see ${attacker} go`);
      }
      await within(call, WAIT_MS, 'the call to the attacker to end');
      node.kil(linked);
    }
    // Past every deadline the peer's requests started (connects, lookups, data connections).
    await clock.run(3_700_000);
    expect(escaped).toEqual([]);
    // A new peer is still served.
    await goodPeerServedAndGone(node, clock);
    expect(tables(node)).toEqual(before);
    expect(node.kernel.portCount).toBeLessThanOrEqual(portsBefore);
    expect(escaped).toEqual([]);
    console.log(`random requests (${_mode}): ${JSON.stringify(outcomes)}`);
    streamSub.unsubscribe();
  });

  it('extreme values in every request: nothing escapes, the node answers, its tables are back to their size', {
    timeout: 120_000,
  }, async () => {
    const clock = new VirtualClock();
    const victimId = secure ? 'fx-secure' : 'fx-open';
    const node = testNode({ nodeid: victimId, secret: SECRET, secure, binds: ['127.0.0.1:0'], clock });
    await within(node.ready, WAIT_MS, 'the node to listen');
    node.db.becomeGlobal();
    const plain = node.port(() => {});
    const name = plain.slice(plain.indexOf('#') + 1);
    const before = tables(node);
    const portsBefore = node.kernel.portCount;
    const deep = (n: number): unknown => {
      let v: unknown = 'bottom';
      for (let i = 0; i < n; i++) v = [v];
      return v;
    };
    const extremes: unknown[] = [
      'x'.repeat(1 << 20),
      `${victimId}#${'y'.repeat(1 << 20)}`,
      new Uint8Array(256 * 1024).fill(0x23),
      objectOf([['k'.repeat(256 * 1024), 1]]),
      // The decoder takes 500 levels: the message array, the tag's slot, then this.
      deep(497),
      objectOf([
        ['__proto__', { polluted: 1 }],
        ['constructor', 1],
        ['toString', 2],
        ['valueOf', null],
      ]),
      [-0, Number.NaN, Infinity, -Infinity, 2n ** 64n - 1n, -(2n ** 63n), 5e-324, Number.MAX_VALUE],
      Array.from({ length: 50_000 }, (_, i) => i),
    ];
    let sent = 0;
    for (const framing of ['cbor', 'json'] as const) {
      // Each extreme value encoded once; a message is its array head and its encoded elements.
      const encoded = new Map<unknown, Buffer>();
      const part = (v: unknown): Buffer => {
        const known = encoded.get(v);
        if (known) return known;
        // The element alone: the one-element array's encoding without its head.
        const b = framing === 'cbor' ? perlCbor([v]).subarray(1) : Buffer.from(jsonText(v), 'utf8');
        if ((typeof v === 'object' && v !== null) || (typeof v === 'string' && v.length > 1000))
          encoded.set(v, b);
        return b;
      };
      const message = (msg: unknown[]): Buffer =>
        framing === 'cbor'
          ? Buffer.concat([Buffer.from([0x80 + msg.length]), ...msg.map(part)])
          : Buffer.concat([
              Buffer.from('['),
              ...msg.flatMap((v, i) => (i ? [Buffer.from(','), part(v)] : [part(v)])),
              Buffer.from(']'),
            ]);
      const attacker = `fx-${framing}`;
      const fake = await FakePeer.dial(node.binds[0]!);
      await fake.handshake({ nodeId: attacker, secret: SECRET, framings: framing, sendFraming: framing });
      const tags = TAGS.filter((t) => !(t === 'eval' && !secure));
      for (const x of extremes) {
        const batch: unknown[][] = [[name, x], [x]];
        const big = typeof x === 'string' || x instanceof Uint8Array || (Array.isArray(x) && x.length > 1000);
        for (const tag of tags) batch.push(['', tag, x], ...(big ? [] : [['', tag, 'fam', x]]));
        batch.push(
          ['', 'snd', x, 'm'],
          ['', 'time', x],
          ['', 'g_upd', 'fam', { k: x }],
          ['', 'g_set', { fam: { k: x } }],
        );
        for (const m of batch) fake.write(message(m));
        sent += batch.length;
        fake.send(['', 'time', `${attacker}#done`]);
        await fake.nextMatching((m) => m[0] === 'done', 30_000);
        expect(escaped.map(String)).toEqual([]);
      }
      // Nested deeper than the decoder takes: the connection ends with a protocol error.
      fake.write(
        framing === 'cbor'
          ? Buffer.concat([
              Buffer.from([0x83]),
              perlCbor(''),
              perlCbor('snd'),
              Buffer.alloc(10_000, 0x81),
              Buffer.from([0xf6]),
            ])
          : `["","snd",${'['.repeat(10_000)}${']'.repeat(10_000)}]`,
      );
      await within(fake.closed, WAIT_MS, 'the node to close the connection');
      await within(
        node.logged(new RegExp(`^connection to ${attacker} lost: protocol error: .*nested deeper`)),
        WAIT_MS,
        'the log line',
      );
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await clock.run(3_700_000);
    await goodPeerServedAndGone(node, clock);
    expect(tables(node)).toEqual(before);
    expect(node.kernel.portCount).toBeLessThanOrEqual(portsBefore);
    expect(escaped).toEqual([]);
    console.log(`extreme values (${_mode}): ${sent} messages`);
  });
});

describe("random answers from a node's master", () => {
  it(`${MESSAGES} random g_* messages to a slave with queries, monitors and lookups in flight: nothing escapes, answered queries complete`, {
    timeout: 120_000,
  }, async () => {
    const clock = new VirtualClock();
    const { node, master } = await nodeWithFakeMaster('fz-slave', 'fz-master', { clock });
    await master.nextMatching((m) => m[1] === 'g_slave' && m.length > 2);
    const errors: unknown[] = [];
    let events = 0;
    const subs: { unsubscribe(): void }[] = ['fam', "'l", '__proto__'].map((f) =>
      node.db.mon$(f).subscribe({ next: () => events++, error: (e: unknown) => errors.push(e) }),
    );
    const names: Names = { victim: node.id, attacker: 'fz-master', ports: ['p'] };
    const { value, str } = values(names);
    /** Stands for the ID of the round's query number `k` (known only once the node sent it). */
    const QUERIES = ['g_db_keys', 'g_db_values', 'g_db_family'] as const;
    const idOf = fc.constantFrom(0, 1, 2).map((k) => ({ query: k }));
    const answer = fc.oneof(
      fc.tuple(
        fc.constant('g_reply'),
        fc.oneof({ weight: 3, arbitrary: idOf }, value),
        fc.oneof(value, fc.array(value, { maxLength: 4 })),
      ),
      fc.tuple(fc.constant('g_found'), fc.oneof(fc.constantFrom('far1', 'far2', 'far3'), str), value),
      fc.tuple(fc.constant('g_chg1'), fc.constantFrom('fam', "'l", '__proto__', 'other'), value),
      fc.tuple(fc.constant('g_chg2'), fc.constantFrom('fam', "'l", '__proto__'), value, value),
      // Not g_slave: a node that gets it becomes global, its own master (tested above).
      fc.tuple(
        fc.constantFrom(...TAGS.filter((t) => t.startsWith('g_') && t !== 'g_slave')),
        fc.array(value, { maxLength: 4 }),
      ),
    );
    const isRef = (v: unknown): v is { query: number } =>
      typeof v === 'object' && v !== null && typeof (v as { query?: unknown }).query === 'number';
    let sent = 0;
    let probe = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(answer, { minLength: 1, maxLength: BATCH }), async (batch) => {
        if (sent >= MESSAGES) return;
        // This round's queries, and a lookup; their requests reach the master first.
        const done = QUERIES.map(() => ({ complete: false }));
        const queries = [node.db.keys$('fam'), node.db.values$('fam'), node.db.family$("'l")];
        for (const [k, q] of (queries as { subscribe(o: object): { unsubscribe(): void } }[]).entries()) {
          const flag = done[k]!;
          subs.push(
            q.subscribe({ complete: () => (flag.complete = true), error: (e: unknown) => errors.push(e) }),
          );
        }
        const ids: unknown[] = [];
        for (const tag of QUERIES) ids.push((await master.nextMatching((m) => m[1] === tag))[3]);
        node.snd(`far${1 + (probe % 3)}#p`, 'x');
        const msgs = batch
          .slice(0, MESSAGES - sent)
          .map((m) => ['', ...m.map((v) => (isRef(v) ? ids[v.query] : v))]);
        sent += msgs.length;
        master.write(
          Buffer.concat([
            ...msgs.map((m) => perlCbor(m)),
            perlCbor(['', 'time', `fz-master#probe${++probe}`]),
          ]),
        );
        await master.nextMatching((m) => m[0] === `probe${probe}`, 20_000);
        await new Promise((r) => setImmediate(r));
        expect(escaped.map(String)).toEqual([]);
        // A query whose ID was answered has completed, whatever the answer held.
        for (const [k, id] of ids.entries())
          if (msgs.some((m) => m[1] === 'g_reply' && m[2] === id)) expect(done[k]!.complete).toBe(true);
      }),
      { numRuns: Math.ceil(MESSAGES / (BATCH / 2)) * 2, endOnFailure: true },
    );
    expect(sent).toBe(MESSAGES);
    expect(errors).toEqual([]);
    const down = firstValueFrom(node.nodes$.pipe(filter((e) => e.type === 'down' && e.node === 'fz-master')));
    master.destroy();
    await within(down, WAIT_MS, 'the node to see its master go');
    await clock.run(120_000);
    for (const s of subs) s.unsubscribe();
    expect(escaped).toEqual([]);
    console.log(`random master answers: ${events} monitor events`);
  });
});
