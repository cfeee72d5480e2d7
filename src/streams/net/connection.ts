/**
 * One AEMP connection over a transport (protocol/transport.ts): drives the sans-IO handshake
 * (with the TLS upgrade when both sides have a certificate), then runs the data phase. Its
 * timers run on the node's clock.
 *
 *   handshake  greeting + nonce out at once; peer lines fed to the state machine; read
 *              inactivity limit `monitor_timeout`, the whole handshake within
 *              `handshake_timeout`; any failure closes the transport (logged only)
 *   data       frames decoded in the peer's format → `message`; `send` queues frames and one
 *              transport write per event-loop turn carries all of them (encoded in one buffer)
 *   end        transport error/EOF/decode error/overflow → `closed(reason)` exactly once
 */
import type { Duplex } from 'node:stream';
import { AempError } from '../../errors.js';
import { AUTH, FRAMING, GREETING_KEY, PROTOCOL, REASON } from '../../protocol/constants.js';
import {
  createFrameDecoder,
  createFrameEncoder,
  type FrameDecoder,
  type FrameEncoder,
} from '../../protocol/frame-codec.js';
import {
  createHandshake,
  type Handshake,
  type HandshakeOptions,
  type HandshakeSession,
  type HandshakeStep,
} from '../../protocol/handshake.js';
import type { Transport } from '../../protocol/transport.js';
import type { Clock, Timer } from '../clock.js';
import { startBeats } from './heartbeat.js';

export interface ConnectionEvents {
  /** The handshake completed. The listener may close the connection right away. */
  established(conn: Connection): void;
  /** A decoded message `[PORTNAME, …]` from the peer. */
  message(peerId: string, msg: unknown[]): void;
  /** The connection ended; `reason` is the error text. Called once. */
  closed(conn: Connection, reason: string): void;
  /** While `watchBacklog` is set: the bytes still unsent after a write or after one was taken. */
  backlog?(conn: Connection, unsentBytes: number): void;
  /** A sub-protocol (`aemp-dataconn`) authenticated: the stream (paused, inside TLS if used,
   *  bytes past the auth line put back) is the listener's; without a listener it is closed. */
  handover?(conn: Connection, session: HandshakeSession, stream: Duplex): void;
}

export interface ConnectionOptions {
  handshake: HandshakeOptions;
  /** The node's clock: handshake limits, heartbeats, the close grace. */
  clock: Clock;
  /** PEM for TLS (key + certificate + CA certificates). */
  certPem?: string | undefined;
  /** Handshake read-inactivity limit in milliseconds (`monitor_timeout`, at most the deadline). */
  handshakeTimeoutMs: number;
  /** Milliseconds from the start of the connection to authentication (`handshake_timeout`). */
  handshakeDeadlineMs: number;
  maxFrameBytes: number;
  /** Most data items one frame may decode to (default DEFAULT_MAX_FRAME_ITEMS). */
  maxFrameItems?: number | undefined;
  /** Bytes that may wait in the transport's write buffer before the connection is dropped. */
  maxSendBufferBytes: number;
  /**
   * Asked after a write leaves at least `maxSendBufferBytes / 64` unsent here: true when all
   * connections together hold too much, and this one, with a backlog of its own, is dropped.
   */
  totalSendBufferExceeded?: () => boolean;
  /** Asked once 64 KiB of an incomplete frame wait here: true when all together hold too much. */
  totalReceiveBufferExceeded?: () => boolean;
  /** Address for log lines (the dialled address or the peer's address). */
  label: string;
  /** True for connections we dialled. */
  outgoing: boolean;
  /**
   * Our heartbeat interval in seconds (advertised as greeting key `hb`; 0 = off). Used only
   * when the peer advertises one too: each side then sends `[""]` when it had nothing else to
   * send for an interval, and declares the peer down after `heartbeatMisses` of the peer's
   * intervals without any byte from it.
   */
  heartbeatInterval: number;
  heartbeatMisses: number;
}

/** Greeting key of the heartbeat extension (Perl ignores unknown keys). */
export const HEARTBEAT_KEY = GREETING_KEY.HEARTBEAT;

/**
 * An established connection keeps of its session only what is read later (the peer's greeting,
 * the negotiated methods); the greeting lines and nonces that went into the auth tokens go.
 */
function slimSession(s: HandshakeSession): HandshakeSession {
  // The peer's auth method and framing are cut from its auth line: the constants instead.
  const authMethod = Object.values(AUTH).find((m) => m === s.authMethod) ?? s.authMethod;
  const recvFraming = Object.values(FRAMING).find((f) => f === s.recvFraming) ?? s.recvFraming;
  return { ...s, authMethod, recvFraming, peerNonce: '', ownGreeting: '', ownNonce: '' };
}

const SETTLED = Promise.resolve();

/** On a message queued unchanged on several connections: its frame as the last encoder made it. */
const SHARED = Symbol('aemp.sharedFrame');
type Shared = unknown[] & { [SHARED]?: { encoder: FrameEncoder | undefined; bytes: Uint8Array } };

/**
 * Marks `msg` as sent unchanged to many connections (a fan-out): a connection whose turn's
 * batch is just this message writes the frame encoded by the first connection of the same
 * framing instead of encoding it again. The bytes are the same; `msg` must not change after.
 */
export function shareFrame<T extends unknown[]>(msg: T): T {
  (msg as Shared)[SHARED] = { encoder: undefined, bytes: new Uint8Array(0) };
  return msg;
}

export class Connection {
  /** The handshake's outcome (the lines and nonces it hashed left out once established). */
  session: HandshakeSession | undefined;
  /** The peer's node ID once authenticated. */
  peerId: string | undefined;
  /** The node ID the peer's greeting claimed (before authentication). */
  greetedId: string | undefined;
  readonly label: string;
  readonly outgoing: boolean;
  /** Data-phase traffic: frames and bytes each way. */
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;

  private readonly clock: Clock;
  /** The options; dropped once the data phase starts (their handshake part holds callbacks). */
  private opts: ConnectionOptions | undefined;
  /** What the data phase reads of the options. */
  private readonly maxSendBufferBytes: number;
  private readonly totalSendBufferExceeded: (() => boolean) | undefined;
  private readonly totalReceiveBufferExceeded: (() => boolean) | undefined;
  /** The handshake; dropped once the data phase starts. */
  private hs: Handshake | undefined;
  private decoder: FrameDecoder | undefined;
  private encoder: FrameEncoder | undefined;
  /** Messages queued for the next write (none kept while idle). */
  private out: unknown[][] | undefined;
  private flushQueued = false;
  private state: 'handshake' | 'up' | 'closed' = 'handshake';
  /** Heartbeats in the data phase; in the handshake, the read-inactivity limit. */
  private ticker: Timer | undefined;
  /** Ends a handshake that trickles on past its whole-handshake deadline. */
  private handshakeDeadline: Timer | undefined;
  /** Clock time of the last bytes read in the handshake (its inactivity limit). */
  private lastRead = 0;

  constructor(
    private readonly transport: Transport,
    opts: ConnectionOptions,
    private readonly events: ConnectionEvents,
  ) {
    this.opts = opts;
    this.clock = opts.clock;
    this.label = opts.label;
    this.outgoing = opts.outgoing;
    this.maxSendBufferBytes = opts.maxSendBufferBytes;
    this.totalSendBufferExceeded = opts.totalSendBufferExceeded;
    this.totalReceiveBufferExceeded = opts.totalReceiveBufferExceeded;
    const hook = opts.handshake.onPeerGreeting;
    this.hs = createHandshake({
      ...opts.handshake,
      onPeerGreeting: (g) => {
        this.greetedId = g.nodeId;
        hook?.(g);
      },
    });
    // Silence is caught by the inactivity limit; a peer sending a byte now and then is caught
    // by the deadline, however it trickles.
    const deadlineMs = opts.handshakeDeadlineMs;
    this.handshakeDeadline = this.clock.timeout(
      () => this.end(`handshake not completed within ${deadlineMs / 1000} s`),
      deadlineMs,
    );
    this.lastRead = this.clock.now();
    this.watchSilence(Math.min(opts.handshakeTimeoutMs, deadlineMs));
    transport.open(this);
    if (this.state === 'handshake') transport.write(this.hs.start());
  }

  /** Ends the handshake after `limitMs` without a byte from the peer. */
  private watchSilence(limitMs: number): void {
    const check = () => {
      const idle = this.clock.now() - this.lastRead;
      if (idle >= limitMs) this.end(REASON.HANDSHAKE_INACTIVE);
      else this.ticker = this.clock.timeout(check, limitMs - idle);
    };
    this.ticker = this.clock.timeout(check, limitMs);
  }

  private stopTicker(): void {
    this.ticker?.cancel();
    this.ticker = undefined;
  }

  get receiveBuffered(): number {
    return this.decoder?.buffered ?? 0;
  }

  /** Bytes handed to the transport that it has not taken yet. */
  get unsentBytes(): number {
    return this.transport.unsentBytes;
  }

  /** Set while someone watches this connection's backlog: writes then report `backlog` events. */
  watchBacklog = false;

  /** A batch was taken by the transport (or failed): report what is still unsent. */
  private afterWrite(): void {
    if (this.watchBacklog && this.state === 'up') this.events.backlog?.(this, this.transport.unsentBytes);
  }

  /** Transport handler: bytes from the peer. */
  data(chunk: Uint8Array): void {
    if (this.state === 'up') this.onData(chunk);
    else if (this.state === 'handshake') this.onHandshakeData(chunk);
  }

  /** Transport handler: the carrier ended (the connection ends with `reason`). */
  closed(reason: string): void {
    this.end(reason);
  }

  /** True once the transport is connected (the peer then gets our greeting). */
  get connected(): boolean {
    return this.transport.connected;
  }

  private isOpen(): boolean {
    return this.state !== 'closed';
  }

  /** True once the handshake completed and until the connection ends. */
  get isUp(): boolean {
    return this.state === 'up';
  }

  /** Queues a message; all messages queued in one turn go out in one write. */
  send(msg: unknown[]): void {
    if (this.state !== 'up') return;
    this.messagesOut++;
    // A new batch is made holding its first message (an empty array's first push allocates
    // room for many, and most batches of a caller or a callee hold one message).
    if (this.out === undefined) this.out = [msg];
    else this.out.push(msg);
    if (!this.flushQueued) {
      this.flushQueued = true;
      SETTLED.then(this.flushTask);
    }
  }

  /**
   * `flush` as a microtask: a reaction on a settled promise runs where `queueMicrotask` would
   * have run it, without the async resource and the closure Node makes for each of those (one
   * per event-loop turn that sends, so one per call of a caller awaiting each reply). An
   * exception is rethrown from a microtask of its own, as an uncaught exception as before.
   */
  private readonly flushTask = (): void => {
    try {
      this.flush();
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  };

  /** Ends the connection at once with `reason` (reported through `closed`). */
  close(reason: string): void {
    this.end(reason);
  }

  /**
   * Ends the connection gracefully: frames queued so far are written, then the transport is
   * closed (destroyed after `graceMs` if the peer does not let it finish).
   */
  shutdown(reason: string, graceMs = 1000): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    const wasUp = this.state === 'up';
    if (wasUp && this.out !== undefined) this.flush();
    // flush() ends the connection itself when the peer's buffer overflowed.
    if (!this.isOpen()) return Promise.resolve();
    this.stop();
    this.events.closed(this, reason);
    if (!wasUp) {
      this.transport.destroy();
      return Promise.resolve();
    }
    const timer = this.clock.timeout(() => this.transport.destroy(), graceMs);
    return this.transport.end().then(() => timer.cancel());
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.state !== 'up') return;
    const batch = this.out;
    this.out = undefined;
    if (batch === undefined) return;
    let chunks: Uint8Array[];
    // Encoded only as far as there is room: replies may be far larger than their requests.
    const room = this.maxSendBufferBytes - this.transport.unsentBytes;
    try {
      const shared = batch.length === 1 ? (batch[0] as Shared)[SHARED] : undefined;
      // A lone message (a call's request or reply) is one frame: encoded as such.
      if (shared === undefined)
        chunks =
          batch.length === 1 ? [this.encoder!.encode(batch[0]!)] : this.encoder!.encodeChunks(batch, room);
      else {
        if (shared.encoder !== this.encoder) {
          shared.bytes = this.encoder!.encode(batch[0]!);
          shared.encoder = this.encoder;
        }
        chunks = [shared.bytes];
      }
    } catch {
      chunks = [this.encodeEach(batch)];
    }
    let bytes = 0;
    for (const c of chunks) bytes += c.length;
    if (bytes > room) {
      this.end(`send buffer overflow (${this.transport.unsentBytes + bytes} bytes unsent, peer not reading)`);
      return;
    }
    // A watched backlog learns when the batch's last chunk was taken.
    const done = this.watchBacklog ? () => this.afterWrite() : undefined;
    if (chunks.length === 1) this.transport.write(chunks[0]!, done);
    else this.transport.writeAll(chunks, done);
    this.bytesOut += bytes;
    const unsent = this.transport.unsentBytes;
    if (unsent > this.maxSendBufferBytes) {
      this.end(`send buffer overflow (${unsent} bytes unsent, peer not reading)`);
    } else if (unsent >= this.maxSendBufferBytes / 64 && this.totalSendBufferExceeded?.()) {
      this.end(`send buffer overflow (${unsent} bytes unsent, all connections over their total limit)`);
    } else if (this.watchBacklog) this.events.backlog?.(this, unsent);
  }

  /** Encodes messages one by one, leaving out (and reporting) the ones that cannot be encoded. */
  private encodeEach(batch: unknown[][]): Uint8Array {
    const parts: Uint8Array[] = [];
    for (const msg of batch) {
      try {
        parts.push(this.encoder!.encode(msg));
      } catch (err) {
        process.emitWarning(`aemp: message to ${this.peerId} not sent: ${(err as Error).message}`);
      }
    }
    return Buffer.concat(parts);
  }

  private onHandshakeData(chunk: Uint8Array): void {
    this.lastRead = this.clock.now();
    let steps: HandshakeStep[];
    try {
      steps = this.hs!.feed(chunk);
    } catch (err) {
      this.end(errorText(err));
      return;
    }
    for (const step of steps) this.handleStep(step);
  }

  private handleStep(step: HandshakeStep): void {
    if (this.state !== 'handshake') return;
    switch (step.kind) {
      case 'send':
        this.transport.write(step.text);
        break;
      case 'startTls':
        this.startTls(step.client);
        break;
      case 'done':
        this.enterDataPhase(step.session);
        break;
      case 'fail':
        this.end(step.error.message);
        break;
      case 'wait':
        break;
    }
  }

  /**
   * TLS: only a peer whose certificate verifies against our CA (spec/protocol.md §7) gets our
   * auth line and may send its own; any other is cut off once the TLS handshake completed,
   * whatever auth method it would claim (`tls_anon` included).
   */
  private startTls(client: boolean): void {
    const certPem = this.opts?.certPem;
    if (!certPem || !this.transport.startTls) {
      this.end(REASON.TLS_WITHOUT_CERT);
      return;
    }
    this.transport.startTls(certPem, client, this.hs!.takeRest(), (rejected) => {
      if (this.state !== 'handshake') return;
      if (rejected !== undefined) this.end(`TLS peer certificate rejected: ${rejected}`);
      else this.handleStep(this.hs!.tlsReady());
    });
  }

  /** A sub-protocol connection: our timers go, the stream goes to `handover`. */
  private handOver(session: HandshakeSession): void {
    this.stop();
    this.session = session;
    const rest = this.hs!.takeRest();
    this.hs = undefined;
    this.opts = undefined;
    const stream = this.transport.detach(rest);
    if (!this.events.handover) {
      stream.on('error', () => {});
      stream.destroy();
      this.events.closed(this, `${session.protocol}: sub-protocol not supported`);
      return;
    }
    this.events.handover(this, session, stream);
  }

  private enterDataPhase(session: HandshakeSession): void {
    if (session.protocol !== PROTOCOL) {
      this.handOver(session);
      return;
    }
    this.handshakeDeadline?.cancel();
    this.handshakeDeadline = undefined;
    this.stopTicker();
    const opts = this.opts!;
    this.opts = undefined;
    this.session = slimSession(session);
    this.peerId = session.peerNodeId;
    this.decoder = createFrameDecoder(session.recvFraming, {
      maxFrameBytes: opts.maxFrameBytes,
      maxFrameItems: opts.maxFrameItems,
    });
    this.encoder = createFrameEncoder(session.sendFraming);
    this.state = 'up';
    const rest = this.hs!.takeRest();
    this.hs = undefined;
    this.events.established(this);
    if (this.state !== 'up') return;
    this.startHeartbeat(session, opts.heartbeatInterval, opts.heartbeatMisses);
    if (rest.length > 0) this.onData(rest);
  }

  private onData(chunk: Uint8Array): void {
    this.bytesIn += chunk.length;
    try {
      this.decoder!.push(chunk, this.onMessage);
    } catch (err) {
      this.end(`protocol error: ${errorText(err)}`);
    }
    if (this.decoder!.buffered >= 65_536 && this.state === 'up' && this.totalReceiveBufferExceeded?.())
      this.end('receive buffer overflow (incomplete frames of all connections over their total limit)');
  }

  private readonly onMessage = (msg: unknown[]): void => {
    if (this.state !== 'up') return;
    this.messagesIn++;
    this.events.message(this.peerId!, msg);
  };

  /** Starts heartbeats if both sides advertised an interval (design.md §4). */
  private startHeartbeat(session: HandshakeSession, own: number, misses: number): void {
    const peer = Number(session.peerGreeting.keys.get(HEARTBEAT_KEY));
    if (!(own > 0) || !(peer > 0)) return;
    const silenceMs = peer * 1000 * Math.max(1, misses);
    this.ticker = startBeats(this.clock, own * 1000, silenceMs, this);
  }

  /** @internal A heartbeat (heartbeat.ts): the empty message. */
  beat(): void {
    this.send(['']);
  }

  /** @internal The peer was silent past the heartbeat limit (heartbeat.ts). */
  silent(): void {
    this.end(REASON.HEARTBEAT_TIMEOUT);
  }

  /** No more timers, no more queued frames; the state is closed. */
  private stop(): void {
    this.state = 'closed';
    this.handshakeDeadline?.cancel();
    this.handshakeDeadline = undefined;
    this.stopTicker();
    this.out = undefined;
  }

  private end(reason: string): void {
    if (this.state === 'closed') return;
    this.stop();
    this.transport.destroy();
    this.events.closed(this, reason);
  }
}

function errorText(err: unknown): string {
  if (AempError.is(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}
