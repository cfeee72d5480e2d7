/**
 * The JavaScript cost of one call on each side, in one process and without the kernel's share
 * (syscalls, wake-ups): CPU nanoseconds and heap bytes per call of aemp's path and of the
 * ceiling's (a bare socket with cbor-x, as in bench/raw-cbor.ts), side by side.
 *
 *   node --expose-gc --max-semi-space-size=128 --import tsx bench/call-path.ts [--n 20000] [--rounds 7]
 *     [--only callee|caller|cal$|call|ceiling]
 *
 * (Not part of `npm run bench`.) Two aemp nodes connect over loopback TCP as usual; then the
 * socket under each side's connection is cut out of the path: what the connection writes is
 * captured instead of reaching the kernel, and the other side's frames, encoded before a
 * window starts, are handed to the socket's `data` listeners as a read would. Each operation
 * is one sequential call:
 *
 *   callee  a request frame `[echo, "x", REPLYPORT]` read → decode → kernel → the echo port's
 *           handler → `snd` to the reply port → encode → the one write of the reply
 *   caller  `await lastValueFrom(cal$(echo, "x"))` (or `await call(echo, ["x"])`) → the write
 *           of the request; the reply frame read → the call's outcome → the await resumes
 *
 * The ceiling's two sides run the same operations through `rawChannel` on a stand-in socket
 * (the wire benchmark's echo server, and its caller with a table of pending calls by ID). The
 * next read is handed over in a `setImmediate` after each write, as a socket's would be, for
 * every variant alike; `harness` measures that chain alone. Windows alternate between the
 * variants; figures are medians over rounds, and the least of them (what a round costs when
 * the other processes of a shared machine leave it alone). Bytes are heap growth over a window
 * without a collection (the flags above give a young generation large enough for 20,000
 * calls), -1 when one ran.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { getHeapStatistics } from 'node:v8';
import { Encoder } from 'cbor-x';
import { filter, firstValueFrom, lastValueFrom } from 'rxjs';
import { configure, memoryLogger, type Node } from '../src/index.js';
import { createFrameEncoder } from '../src/protocol/frame-codec.js';
import { noCollectionBetween } from './gc-seen.js';
import { rawChannel } from './raw-cbor.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const N = Number(arg('--n') ?? 20_000);
const ROUNDS = Number(arg('--rounds') ?? 7);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) console.error('(run with --expose-gc --max-semi-space-size=128 for bytes per call)');

// ------------------------------------------------------------------ two nodes, then no sockets
const callee = configure({
  nodeid: 'path-callee/',
  norc: true,
  binds: ['127.0.0.1:0'],
  secret: 'bench-secret',
  logger: memoryLogger(),
});
await callee.ready;
const echo = callee.port((...m: unknown[]) => callee.snd(m[m.length - 1] as string, ...m.slice(0, -1)));
const caller = configure({
  nodeid: 'path-caller/',
  norc: true,
  binds: ['127.0.0.1:0'],
  seeds: [callee.binds[0]!],
  secret: 'bench-secret',
  logger: memoryLogger(),
});
await caller.ready;
await firstValueFrom(caller.nodes$.pipe(filter((e) => e.type === 'up')));
// One real call, so that both sides have seen the path once.
await lastValueFrom(caller.cal$(echo, 'x'));

interface Cut {
  /** Hands bytes to the connection as a socket read would. */
  read(bytes: Uint8Array): void;
  /** Receives what the connection writes from now on. */
  onWrite: (bytes: Uint8Array) => void;
  /** Puts the socket back. */
  restore(): void;
}

/** Cuts the socket out of `node`'s connection to `peer`. */
function cut(node: Node, peer: string): Cut {
  const net = node.network as unknown as { peers: { get(id: string): { conn?: unknown } | undefined } };
  const conn = net.peers.get(peer)?.conn as { transport: { socket: Socket; raw: Socket } } | undefined;
  if (conn === undefined) throw new Error(`no connection from ${node.id} to ${peer}`);
  const t = conn.transport;
  const raw = t.raw;
  const listeners = raw.listeners('data') as ((chunk: Uint8Array) => void)[];
  if (listeners.length !== 1) throw new Error('expected one data listener on the socket');
  const onData = listeners[0]!;
  const c: Cut = {
    read: (bytes) => onData.call(raw, bytes),
    onWrite: () => {},
    restore: () => {
      t.socket = raw;
      raw.resume();
    },
  };
  // The connection's writes land here (its socket's other fields are read as before).
  const fake = Object.create(raw) as Socket;
  Object.defineProperty(fake, 'writableLength', { value: 0 });
  Object.defineProperty(fake, 'write', {
    value(bytes: Uint8Array, done?: () => void): boolean {
      c.onWrite(bytes);
      done?.();
      return true;
    },
  });
  t.socket = fake;
  raw.pause();
  return c;
}

const calleeCut = cut(callee, caller.id);
const callerCut = cut(caller, callee.id);
const HEARTBEAT = 0x81; // `[""]`: a heartbeat frame starts with a one-element array

// ------------------------------------------------------------------ the ceiling's stand-ins
/** A socket for `rawChannel`: reads are emitted by hand, writes go to `onWrite`. */
class FakeSocket extends EventEmitter {
  onWrite: (bytes: Uint8Array) => void = () => {};
  write(bytes: Uint8Array): boolean {
    this.onWrite(bytes);
    return true;
  }
}
const rawServer = new FakeSocket();
const serverSend = rawChannel(rawServer as unknown as Socket, (m) =>
  serverSend([m[m.length - 1], ...m.slice(1, -1)]),
);
const rawClient = new FakeSocket();
const waiting = new Map<number, (m: unknown[]) => void>();
const clientSend = rawChannel(rawClient as unknown as Socket, (m) => {
  const resolve = waiting.get(m[0] as number);
  if (resolve === undefined) return;
  waiting.delete(m[0] as number);
  resolve(m);
});
let nextId = 0;

// ------------------------------------------------------------------ operations
const enc = new Encoder({ useRecords: false });
const aempEnc = createFrameEncoder('cbor');
const echoName = echo.slice(echo.indexOf('#') + 1);
const callerKernel = caller.kernel as unknown as { uniq: string; replies: { seq: number } };

/**
 * Prepares `n` operations (the frames the other side would send) and returns their run, which
 * resolves when the last one completed.
 */
type Variant = (n: number) => () => Promise<void>;

/** The callee's side: `frames` read one after the other, each after the write of the last reply. */
function calleeRun(
  frames: Uint8Array[],
  read: (b: Uint8Array) => void,
  set: (w: (b: Uint8Array) => void) => void,
) {
  return new Promise<void>((resolve) => {
    let i = 0;
    const next = () => {
      if (i === frames.length) {
        set(() => {});
        resolve();
        return;
      }
      read(frames[i++]!);
    };
    set((bytes) => {
      if (bytes[0] === HEARTBEAT && bytes.length === 2) return;
      setImmediate(next);
    });
    next();
  });
}

const aempCallee: Variant = (n) => {
  // Requests as the caller sends them: each from a new reply port.
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++)
    frames.push(
      Buffer.from(aempEnc.encode([echoName, 'x', `${caller.id}#${callerKernel.uniq}${1_000_000 + i}`])),
    );
  return () => calleeRun(frames, calleeCut.read, (w) => (calleeCut.onWrite = w));
};

const rawCallee: Variant = (n) => {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) frames.push(Buffer.from(enc.encode(['echo', 'x', 1_000_000 + i])));
  return () =>
    calleeRun(
      frames,
      (b) => rawServer.emit('data', b),
      (w) => (rawServer.onWrite = w),
    );
};

/** The caller's side: `op` n times in sequence; each write is answered by `reply()` a turn later. */
async function callerRun(
  n: number,
  op: () => Promise<unknown>,
  set: (w: (b: Uint8Array) => void) => void,
  reply: () => void,
): Promise<void> {
  set((bytes) => {
    if (bytes[0] === HEARTBEAT && bytes.length === 2) return;
    setImmediate(reply);
  });
  for (let i = 0; i < n; i++) await op();
  set(() => {});
}

/** aemp's caller: replies to reply ports numbered from the table's next number on. */
function aempCaller(op: () => Promise<unknown>): Variant {
  return (n) => {
    const seq0 = callerKernel.replies.seq;
    const frames: Uint8Array[] = [];
    for (let i = 1; i <= n; i++)
      frames.push(Buffer.from(aempEnc.encode([`${callerKernel.uniq}${seq0 + i}`, 'x'])));
    let k = 0;
    return () =>
      callerRun(
        n,
        op,
        (w) => (callerCut.onWrite = w),
        () => {
          if (callerKernel.replies.seq !== seq0 + k + 1)
            throw new Error('reply port numbers not as expected');
          callerCut.read(frames[k++]!);
        },
      );
  };
}
const aempCal$ = aempCaller(() => lastValueFrom(caller.cal$(echo, 'x')));
const aempCall = aempCaller(() => caller.call(echo, ['x']));

const rawCaller: Variant = (n) => {
  const id0 = nextId;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) frames.push(Buffer.from(enc.encode([id0 + i, 'x'])));
  let k = 0;
  return () =>
    callerRun(
      n,
      () =>
        new Promise<unknown[]>((resolve) => {
          const id = nextId++;
          waiting.set(id, resolve);
          clientSend(['echo', 'x', id]);
        }),
      (w) => (rawClient.onWrite = w),
      () => rawClient.emit('data', frames[k++]!),
    );
};

/** The chain every variant runs in, with nothing in it: a write answered a turn later. */
const harness: Variant = (n) => async () => {
  let answer: () => void = () => {};
  const write = () => setImmediate(answer);
  for (let i = 0; i < n; i++)
    await new Promise<void>((resolve) => {
      answer = resolve;
      queueMicrotask(write);
    });
};

// ------------------------------------------------------------------ measuring

interface Cost {
  ns: number;
  bytes: number;
}

async function measure(v: Variant): Promise<Cost> {
  await v(N >> 2)(); // warm-up
  const run = v(N);
  gc?.();
  await new Promise((r) => setImmediate(r));
  const h0 = getHeapStatistics().used_heap_size;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await run();
  const c1 = process.cpuUsage(c0);
  const ms = performance.now() - t0;
  const h1 = getHeapStatistics().used_heap_size;
  const clean = await noCollectionBetween(t0, t0 + ms, 5);
  return { ns: ((c1.user + c1.system) * 1000) / N, bytes: clean && gc ? (h1 - h0) / N : -1 };
}

const variants: [string, Variant][] = [
  ['harness', harness],
  ['callee aemp', aempCallee],
  ['callee ceiling', rawCallee],
  ['caller cal$', aempCal$],
  ['caller call', aempCall],
  ['caller ceiling', rawCaller],
];
const only = arg('--only');
if (only !== undefined)
  variants.splice(
    0,
    variants.length,
    ...variants.filter(([name]) => name === 'harness' || name.includes(only)),
  );
const got = new Map<string, Cost[]>(variants.map(([name]) => [name, []]));
for (let r = 0; r < ROUNDS; r++) for (const [name, v] of variants) got.get(name)!.push(await measure(v));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const out: Record<string, number> = {};
for (const [name] of variants) {
  const cs = got.get(name)!;
  const ns = median(cs.map((c) => c.ns));
  const least = Math.min(...cs.map((c) => c.ns));
  const clean = cs.map((c) => c.bytes).filter((b) => b >= 0);
  const bytes = clean.length ? median(clean) : -1;
  out[`${name.replace(/[ $]/g, '_')}_ns`] = ns;
  out[`${name.replace(/[ $]/g, '_')}_min_ns`] = least;
  out[`${name.replace(/[ $]/g, '_')}_bytes`] = bytes;
  console.log(
    `${name.padEnd(15)} ${ns.toFixed(0).padStart(6)} ns/op (least ${least.toFixed(0).padStart(6)})  ${bytes < 0 ? '   (gc)' : bytes.toFixed(0).padStart(6)} B/op`,
  );
}
const ceilingCallee = out.callee_ceiling_ns!;
const ceilingCaller = out.caller_ceiling_ns!;
if (only === undefined)
  console.log(
    `JS over the ceiling per call: callee ${(out.callee_aemp_ns! - ceilingCallee).toFixed(0)} ns, ` +
      `caller cal$ ${(out.caller_cal__ns! - ceilingCaller).toFixed(0)} ns, call ${(out.caller_call_ns! - ceilingCaller).toFixed(0)} ns`,
  );
calleeCut.restore();
callerCut.restore();
await caller.close();
await callee.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
