/**
 * Transports inside one process: nodes on a `MemoryNetwork` listen and dial like over TCP, but
 * bytes pass from one end's write to the other end's handler in a later turn of the event loop
 * (as socket I/O does), without a socket. For tests: no port is taken, and with a virtual
 * clock no wall time passes.
 *
 *   const net = new MemoryNetwork();
 *   const a = net.host();                 // a TransportFactory (one per node)
 *   a.freeze(); … a.thaw();                // the node stops reading and writing, then goes on
 *   net.blackhole('10.9.9.9:4040');        // dials there never connect
 *
 * Listen addresses are `host:port` strings; port 0 gets a free port. A dial to an address
 * nobody listens on fails with `connect ECONNREFUSED <addr>`. There is no TLS here.
 */
import { Duplex } from 'node:stream';
import { ConnectionError } from '../errors.js';
import { joinHostPort, splitHostPort } from './address.js';
import { REASON } from './constants.js';
import type { Listener, Transport, TransportFactory, TransportHandlers } from './transport.js';

/** Options of one host on the network. */
export interface MemoryHostOptions {
  /** The address other ends see as `remoteAddress` (default `10.0.0.N`). */
  readonly address?: string;
  /** Called with the address of each dial this host starts (synchronously). */
  readonly onDial?: (addr: string) => void;
}

/** The in-process network: listeners by address, and every open end. */
export class MemoryNetwork {
  private readonly listeners = new Map<string, { host: MemoryHost; accept: (t: Transport) => void }>();
  private readonly holes = new Set<string>();
  /** @internal */
  readonly ends = new Set<MemoryEnd>();
  private hosts = 0;
  private nextPort = 40_000;

  /** A new host (one per node): its transport factory. */
  host(opts: MemoryHostOptions = {}): MemoryHost {
    this.hosts++;
    return new MemoryHost(this, opts.address ?? `10.0.${this.hosts >> 8}.${this.hosts & 255}`, opts.onDial);
  }

  /** Dials to `addr` stay connecting until they are closed. */
  blackhole(addr: string): void {
    this.holes.add(addr);
  }

  /** Ends not closed yet (of every host). */
  get openEnds(): number {
    return this.ends.size;
  }

  /** @internal */
  listen(host: MemoryHost, addr: string, accept: (t: Transport) => void): Promise<Listener> {
    let bound: string;
    try {
      const { host: h, port } = splitHostPort(addr);
      bound = joinHostPort(h, port === 0 ? this.nextPort++ : port);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.listeners.has(bound)) {
      const cause = Object.assign(new Error(`listen EADDRINUSE: address already in use ${bound}`), {
        code: 'EADDRINUSE',
      });
      return Promise.reject(
        new ConnectionError('ERR_BIND_FAILED', `cannot listen on ${addr}: ${cause.message}`, { cause }),
      );
    }
    const entry = { host, accept };
    this.listeners.set(bound, entry);
    return Promise.resolve({
      bound,
      close: async () => {
        if (this.listeners.get(bound) === entry) this.listeners.delete(bound);
      },
    });
  }

  /** @internal */
  dial(host: MemoryHost, addr: string): Transport {
    const { host: h, port } = splitHostPort(addr);
    const end = new MemoryEnd(this, host, h, port);
    setImmediate(() => {
      if (end.isClosed || this.holes.has(addr)) return;
      const listener = this.listeners.get(addr);
      if (!listener) {
        end.hangup(`connect ECONNREFUSED ${addr}`);
        return;
      }
      const other = new MemoryEnd(this, listener.host, host.address, this.nextPort++);
      end.link(other);
      other.link(end);
      listener.accept(other);
      end.pump();
    });
    return end;
  }

  /** @internal Lets held bytes go where neither side is frozen any more. */
  pumpAll(): void {
    for (const e of [...this.ends]) e.pump();
  }
}

/** One node's transports on a `MemoryNetwork`; `freeze()` stops the node's traffic. */
export class MemoryHost implements TransportFactory {
  private frozenNow = false;

  /** @internal */
  constructor(
    private readonly net: MemoryNetwork,
    readonly address: string,
    private readonly onDial: ((addr: string) => void) | undefined,
  ) {}

  get frozen(): boolean {
    return this.frozenNow;
  }

  /**
   * The node stops reading and writing (a stopped process): bytes to and from it wait,
   * counted as unsent by their writers, until `thaw()`.
   */
  freeze(): void {
    this.frozenNow = true;
  }

  thaw(): void {
    this.frozenNow = false;
    this.net.pumpAll();
  }

  dial(addr: string): Transport {
    this.onDial?.(addr);
    return this.net.dial(this, addr);
  }

  listen(addr: string, onAccept: (t: Transport) => void): Promise<Listener> {
    return this.net.listen(this, addr, onAccept);
  }
}

interface Pending {
  readonly bytes: Uint8Array;
  readonly done: (() => void) | undefined;
}

/** One end of an in-memory connection. */
export class MemoryEnd implements Transport {
  private peer: MemoryEnd | undefined;
  private handlers: TransportHandlers | undefined;
  /** Bytes received before `open()`. */
  private inbox: Uint8Array[] = [];
  /** A close before `open()`. */
  private early: string | undefined;
  private outbox: Pending[] = [];
  private outBytes = 0;
  private scheduled = false;
  private closed = false;
  /** Set by `end()`: once the outbox is delivered, the peer sees the close. */
  private finishing: (() => void) | undefined;

  constructor(
    private readonly net: MemoryNetwork,
    private readonly host: MemoryHost,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {
    net.ends.add(this);
  }

  get connected(): boolean {
    return this.peer !== undefined && !this.closed;
  }

  get unsentBytes(): number {
    return this.outBytes;
  }

  /** @internal */
  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal */
  link(peer: MemoryEnd): void {
    this.peer = peer;
  }

  open(handlers: TransportHandlers): void {
    this.handlers = handlers;
    const held = this.inbox;
    this.inbox = [];
    for (const chunk of held) if (this.handlers) this.handlers.data(chunk);
    if (this.early !== undefined) this.hangup(this.early);
  }

  write(bytes: Uint8Array | string, done?: () => void): void {
    if (this.closed || this.finishing) return;
    const b = typeof bytes === 'string' ? Buffer.from(bytes) : Uint8Array.prototype.slice.call(bytes);
    this.outbox.push({ bytes: b, done });
    this.outBytes += b.length;
    this.schedule();
  }

  writeAll(chunks: readonly Uint8Array[], done?: () => void): void {
    for (let i = 0; i < chunks.length; i++)
      this.write(chunks[i]!, i === chunks.length - 1 ? done : undefined);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** @internal Delivers what waits, unless either side is frozen or not connected yet. */
  pump(): void {
    const peer = this.peer;
    if (this.closed || !peer || this.host.frozen || peer.host.frozen) return;
    const items = this.outbox;
    this.outbox = [];
    this.outBytes = 0;
    for (const { bytes, done } of items) {
      peer.receive(bytes);
      done?.();
    }
    const finishing = this.finishing;
    if (finishing) {
      this.close();
      peer.hangup(REASON.CLOSED_BY_PEER);
      finishing();
    }
  }

  private receive(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.handlers) this.handlers.data(bytes);
    else this.inbox.push(bytes);
  }

  /** @internal The other side went away (or the dial failed): one `closed`, then nothing. */
  hangup(reason: string): void {
    if (this.closed) return;
    const finishing = this.finishing;
    if (finishing) {
      this.close();
      finishing();
      return;
    }
    if (!this.handlers) {
      this.early ??= reason;
      return;
    }
    const h = this.handlers;
    this.close();
    h.closed(reason);
  }

  private close(): void {
    this.closed = true;
    this.handlers = undefined;
    this.outbox = [];
    this.outBytes = 0;
    this.net.ends.delete(this);
  }

  end(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.handlers = undefined;
    return new Promise((resolve) => {
      this.finishing = resolve;
      this.pump();
    });
  }

  destroy(): void {
    if (this.closed) return;
    const peer = this.peer;
    const finishing = this.finishing;
    this.close();
    finishing?.();
    if (peer) setImmediate(() => peer.hangup(REASON.CLOSED_BY_PEER));
  }

  detach(rest: Uint8Array): Duplex {
    const stream = new Duplex({
      allowHalfOpen: false,
      read() {},
      write: (chunk: Buffer, _encoding, callback) => {
        if (this.closed) callback(new Error('write after the connection closed'));
        else this.write(chunk, () => callback());
      },
      final: (callback) => {
        void this.end().then(() => callback());
      },
      destroy: (err, callback) => {
        this.destroy();
        callback(err);
      },
    });
    if (rest.length > 0) stream.push(Buffer.from(rest));
    this.handlers = {
      data: (chunk) => stream.push(Buffer.from(chunk)),
      closed: () => stream.push(null),
    };
    return stream;
  }
}
