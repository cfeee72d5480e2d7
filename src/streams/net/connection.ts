/**
 * One AEMP connection over a socket: drives the sans-IO handshake (with the TLS upgrade when
 * both sides have a certificate), then runs the data phase.
 *
 *   handshake  greeting + nonce out at once; peer lines fed to the state machine; read
 *              inactivity limit `monitor_timeout`, the whole handshake within
 *              `handshake_timeout`; any failure closes the socket (logged only)
 *   data       frames decoded in the peer's format → `message`; `send` queues frames and one
 *              socket write per event-loop turn carries all of them (encoded in one buffer)
 *   end        socket error/EOF/decode error/overflow → `closed(reason)` exactly once
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { AempError } from '../../errors.js';
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
import { peerCertificateError, tlsHandshakeErrorText, upgradeTls } from '../../protocol/tcp-transport.js';

export interface ConnectionEvents {
  /** The handshake completed. The listener may close the connection right away. */
  established(conn: Connection): void;
  /** A decoded message `[PORTNAME, …]` from the peer. */
  message(peerId: string, msg: unknown[]): void;
  /** The connection ended; `reason` is the error text. Called once. */
  closed(conn: Connection, reason: string): void;
  /** While `watchBacklog` is set: the bytes still unsent after a write or after one was taken. */
  backlog?(conn: Connection, unsentBytes: number): void;
  /**
   * The handshake completed for a sub-protocol (`aemp-dataconn`): the connection is over and
   * its stream (paused, inside TLS if used, bytes read past the auth line put back) belongs to
   * the listener. Without this listener such a connection is closed.
   */
  handover?(conn: Connection, session: HandshakeSession, stream: Socket): void;
}

export interface ConnectionOptions {
  handshake: HandshakeOptions;
  /** PEM for TLS (key + certificate + CA certificates). */
  certPem?: string | undefined;
  /** Handshake read-inactivity limit in milliseconds (`monitor_timeout`, at most the deadline). */
  handshakeTimeoutMs: number;
  /** Milliseconds from the start of the connection to authentication (`handshake_timeout`). */
  handshakeDeadlineMs: number;
  maxFrameBytes: number;
  /** Most data items one frame may decode to (default DEFAULT_MAX_FRAME_ITEMS). */
  maxFrameItems?: number | undefined;
  /** Bytes that may wait in the socket's write buffer before the connection is dropped. */
  maxSendBufferBytes: number;
  /**
   * Asked after a write leaves at least `maxSendBufferBytes / 64` unsent here: true when all
   * connections together hold too much, and this one, with a backlog of its own, is dropped.
   */
  totalSendBufferExceeded?: () => boolean;
  /** Address for log lines (the dialled address or the peer's socket address). */
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
export const HEARTBEAT_KEY = 'hb';

export class Connection {
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

  private socket: Socket;
  private readonly raw: Socket;
  /** The handshake; dropped once the data phase starts. */
  private hs: Handshake | undefined;
  private decoder: FrameDecoder | undefined;
  private encoder: FrameEncoder | undefined;
  private out: unknown[][] = [];
  private flushQueued = false;
  private state: 'handshake' | 'up' | 'closed' = 'handshake';
  private heartbeat: NodeJS.Timeout | undefined;
  /** Ends a handshake that trickles on past its whole-handshake deadline. */
  private handshakeDeadline: NodeJS.Timeout | undefined;
  private lastRead = 0;
  private wroteSinceBeat = false;
  private onTlsError: ((err: Error) => void) | undefined;

  constructor(
    socket: Socket,
    private readonly opts: ConnectionOptions,
    private readonly events: ConnectionEvents,
  ) {
    this.raw = this.socket = socket;
    this.label = opts.label;
    this.outgoing = opts.outgoing;
    const hook = opts.handshake.onPeerGreeting;
    this.hs = createHandshake({
      ...opts.handshake,
      onPeerGreeting: (g) => {
        this.greetedId = g.nodeId;
        hook?.(g);
      },
    });
    socket.setTimeout(Math.min(opts.handshakeTimeoutMs, opts.handshakeDeadlineMs));
    // The socket timeout catches silence; a peer sending a byte now and then is caught here,
    // however it trickles.
    const deadlineMs = opts.handshakeDeadlineMs;
    this.handshakeDeadline = setTimeout(
      () => this.end(`handshake not completed within ${deadlineMs / 1000} s`),
      deadlineMs,
    );
    socket.on('timeout', this.onTimeout);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('data', this.onHandshakeData);
    socket.write(this.hs.start());
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Bytes handed to the socket that the operating system has not taken yet. */
  get unsentBytes(): number {
    return this.socket.writableLength;
  }

  /** Set while someone watches this connection's backlog: writes then report `backlog` events. */
  watchBacklog = false;

  /** A batch was taken by the operating system (or failed): report what is still unsent. */
  private readonly afterWrite = (): void => {
    if (this.watchBacklog && this.state === 'up') this.events.backlog?.(this, this.socket.writableLength);
  };

  /** True once the TCP connection is set up (the peer then gets our greeting). */
  get connected(): boolean {
    return !this.raw.connecting && !this.raw.destroyed;
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
    this.out.push(msg);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }

  /** Ends the connection at once with `reason` (reported through `closed`). */
  close(reason: string): void {
    this.end(reason);
  }

  /**
   * Ends the connection gracefully: frames queued so far are written, then the socket is
   * closed (destroyed after `graceMs` if the peer does not let it finish).
   */
  shutdown(reason: string, graceMs = 1000): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    const wasUp = this.state === 'up';
    if (wasUp && this.out.length > 0) this.flush();
    // flush() ends the connection itself when the peer's buffer overflowed.
    if (!this.isOpen()) return Promise.resolve();
    this.state = 'closed';
    clearTimeout(this.handshakeDeadline);
    this.out = [];
    this.stopHeartbeat();
    const socket = this.socket;
    for (const s of new Set([socket, this.raw])) {
      s.removeAllListeners();
      s.on('error', () => {});
    }
    this.events.closed(this, reason);
    return new Promise((resolve) => {
      const timer = setTimeout(() => socket.destroy(), graceMs);
      socket.once('close', () => {
        clearTimeout(timer);
        if (socket !== this.raw) this.raw.destroy();
        resolve();
      });
      if (wasUp) socket.end();
      else socket.destroy();
    });
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.state !== 'up') return;
    const batch = this.out;
    this.out = [];
    let chunks: Uint8Array[];
    try {
      chunks = this.encoder!.encodeChunks(batch);
    } catch {
      chunks = [this.encodeEach(batch)];
    }
    // A watched backlog learns when the batch's last chunk was taken.
    const done = this.watchBacklog ? this.afterWrite : undefined;
    if (chunks.length === 1) this.write(chunks[0]!, done);
    else {
      // One writev for all of them.
      this.socket.cork();
      for (let i = 0; i < chunks.length; i++)
        this.write(chunks[i]!, i === chunks.length - 1 ? done : undefined);
      this.socket.uncork();
    }
    this.wroteSinceBeat = true;
    const unsent = this.socket.writableLength;
    if (unsent > this.opts.maxSendBufferBytes) {
      this.end(`send buffer overflow (${unsent} bytes unsent, peer not reading)`);
    } else if (unsent >= this.opts.maxSendBufferBytes / 64 && this.opts.totalSendBufferExceeded?.()) {
      this.end(`send buffer overflow (${unsent} bytes unsent, all connections over their total limit)`);
    } else if (this.watchBacklog) this.events.backlog?.(this, unsent);
  };

  private write(bytes: Uint8Array, done?: () => void): void {
    this.socket.write(bytes, done);
    this.bytesOut += bytes.length;
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

  private readonly onHandshakeData = (chunk: Buffer): void => {
    if (this.state !== 'handshake') return;
    let steps: HandshakeStep[];
    try {
      steps = this.hs!.feed(chunk);
    } catch (err) {
      this.end(errorText(err));
      return;
    }
    for (const step of steps) this.handleStep(step);
  };

  private handleStep(step: HandshakeStep): void {
    switch (step.kind) {
      case 'send':
        this.socket.write(step.text);
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

  private startTls(client: boolean): void {
    if (!this.opts.certPem) {
      this.end('TLS requested without a certificate');
      return;
    }
    this.raw.off('data', this.onHandshakeData);
    this.raw.setTimeout(0);
    const tls = upgradeTls(this.raw, this.opts.certPem, client, this.hs!.takeRest());
    this.socket = tls;
    tls.setTimeout(this.opts.handshakeTimeoutMs);
    tls.on('timeout', this.onTimeout);
    let secured = false;
    this.onTlsError = (err) => {
      if (secured) this.onError(err);
      else this.end(tlsHandshakeErrorText(tls, err));
    };
    tls.on('error', this.onTlsError);
    tls.on('close', this.onClose);
    tls.on('data', this.onHandshakeData);
    tls.once(client ? 'secureConnect' : 'secure', () => {
      secured = true;
      this.tlsEstablished(tls);
    });
  }

  /**
   * The TLS handshake completed: only a peer whose certificate verifies against our CA
   * (spec/protocol.md §7) gets our auth line and may send its own; any other is cut off here,
   * whatever auth method it would claim (`tls_anon` included).
   */
  private tlsEstablished(tls: TLSSocket): void {
    if (this.state !== 'handshake') return;
    const rejected = peerCertificateError(tls);
    if (rejected !== undefined) {
      this.end(`TLS peer certificate rejected: ${rejected}`);
      return;
    }
    this.handleStep(this.hs!.tlsReady());
  }

  /** A sub-protocol connection: our listeners go, the stream goes to `handover`. */
  private handOver(session: HandshakeSession): void {
    clearTimeout(this.handshakeDeadline);
    this.session = session;
    this.state = 'closed';
    const stream = this.socket;
    stream.pause();
    for (const s of new Set([stream, this.raw])) {
      s.setTimeout(0);
      s.off('timeout', this.onTimeout);
      s.off('error', this.onError);
      s.off('close', this.onClose);
      s.off('data', this.onHandshakeData);
      if (this.onTlsError) s.off('error', this.onTlsError);
    }
    const rest = this.hs!.takeRest();
    this.hs = undefined;
    if (rest.length > 0) stream.unshift(Buffer.from(rest.buffer, rest.byteOffset, rest.length));
    if (stream !== this.raw) {
      const raw = this.raw;
      raw.on('error', () => {});
      stream.once('close', () => raw.destroy());
    }
    if (!this.events.handover) {
      stream.on('error', () => {});
      stream.destroy();
      this.events.closed(this, `${session.protocol}: sub-protocol not supported`);
      return;
    }
    this.events.handover(this, session, stream);
  }

  private enterDataPhase(session: HandshakeSession): void {
    if (session.protocol !== 'aemp') {
      this.handOver(session);
      return;
    }
    clearTimeout(this.handshakeDeadline);
    this.session = session;
    this.peerId = session.peerNodeId;
    this.socket.setTimeout(0);
    this.socket.off('data', this.onHandshakeData);
    this.decoder = createFrameDecoder(session.recvFraming, {
      maxFrameBytes: this.opts.maxFrameBytes,
      maxFrameItems: this.opts.maxFrameItems,
    });
    this.encoder = createFrameEncoder(session.sendFraming);
    this.state = 'up';
    const rest = this.hs!.takeRest();
    this.hs = undefined;
    this.events.established(this);
    if (this.state !== 'up') return;
    this.startHeartbeat(session);
    this.socket.on('data', this.onData);
    if (rest.length > 0) this.onData(rest);
  }

  private readonly onData = (chunk: Uint8Array): void => {
    if (this.state !== 'up') return;
    if (this.heartbeat) this.lastRead = performance.now();
    this.bytesIn += chunk.length;
    try {
      this.decoder!.push(chunk, this.onMessage);
    } catch (err) {
      this.end(`protocol error: ${errorText(err)}`);
    }
  };

  private readonly onMessage = (msg: unknown[]): void => {
    if (this.state !== 'up') return;
    this.messagesIn++;
    this.events.message(this.peerId!, msg);
  };

  /** Starts heartbeats if both sides advertised an interval (design.md §4). */
  private startHeartbeat(session: HandshakeSession): void {
    const own = this.opts.heartbeatInterval;
    const peer = Number(session.peerGreeting.keys.get(HEARTBEAT_KEY));
    if (!(own > 0) || !(peer > 0)) return;
    const silenceMs = peer * 1000 * Math.max(1, this.opts.heartbeatMisses);
    this.lastRead = performance.now();
    this.heartbeat = setInterval(() => {
      if (performance.now() - this.lastRead > silenceMs) {
        this.end('heartbeat timeout');
        return;
      }
      if (!this.wroteSinceBeat) this.send(['']);
      this.wroteSinceBeat = false;
    }, own * 1000);
  }

  private readonly onTimeout = (): void => this.end('Connection timed out');

  private readonly onError = (err: Error): void => this.end(err.message);

  private readonly onClose = (): void => this.end('connection closed by peer');

  private end(reason: string): void {
    if (this.state === 'closed') return;
    clearTimeout(this.handshakeDeadline);
    this.state = 'closed';
    this.out = [];
    this.stopHeartbeat();
    for (const s of new Set([this.socket, this.raw])) {
      s.removeAllListeners();
      s.on('error', () => {});
      s.destroy();
    }
    this.events.closed(this, reason);
  }
}

function errorText(err: unknown): string {
  if (AempError.is(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}
