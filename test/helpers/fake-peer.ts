/**
 * A scripted fake peer that behaves on the wire like a Perl AnyEvent::MP 2.02 node, for
 * integration tests over real loopback TCP.
 *
 * Everything here is written independently of src/: the greeting, the HMAC-SHA3-512 and
 * SHA3-512 tokens (node:crypto), the TLS upgrade, Perl-style CBOR (byte strings for strings and
 * map keys, `40` for "", float32 when exact) and the frame splitting of what our node sends.
 * That makes every successful handshake a real cross-check of src/protocol/.
 *
 *   const fake = await FakePeer.dial(node.binds[0]!);     // or (await FakeListener.open()).accept()
 *   const hs = await fake.handshake({ nodeId: 'fake', secret: SECRET });
 *   fake.send(['', 'time', 'fake#r1']);                  // Perl byte-string CBOR
 *   expect((await fake.next())).toEqual(['r1', expect.any(Number)]);
 *
 * Reads never sleep: they wait for bytes (or the close) with a deadline and fail with a
 * message saying what was awaited.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server, Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { Decoder } from 'cbor-x';
import { afterEach } from 'vitest';

/** The shared secret of the captured Perl sessions. */
export const SECRET = 'ref-secret-42';

/** Default deadline for one awaited read, in milliseconds. */
export const WAIT_MS = 5000;

const PERL_AUTHS = 'tls_sha3_512,hmac_sha3_512,tls_anon,cleartext';
const PERL_FRAMINGS = 'cbor,json,storable';

const live = new Set<{ destroy(): void }>();

afterEach(() => {
  for (const x of [...live]) x.destroy();
  live.clear();
});

// ---------------------------------------------------------------------------------------------
// Greeting and tokens

export interface PerlGreetingOptions {
  nodeId: string;
  /** Greeting field 2; Perl sends `1`. */
  version?: string;
  /** AUTHS field; default Perl's `tls_sha3_512,hmac_sha3_512,tls_anon,cleartext`. */
  auths?: string;
  /** FRAMINGS field; default Perl's `cbor,json,storable`. */
  framings?: string;
  /** `peeraddr` value (the other end as seen from here). */
  peeraddr?: string;
  /** Adds `tls=1.0` (a certificate is configured). */
  tls?: boolean;
  /** PROTO field; default `aemp`. */
  proto?: string;
  /**
   * Adds `role=<value>` (the connection-role key of aemp nodes, `d` = dialled, `a` = accepted);
   * Perl sends no such key.
   */
  role?: string;
}

/** Greeting line 1 as Perl writes it, with its key/value pairs in a shuffled (hash-like) order. */
export function perlGreeting(o: PerlGreetingOptions): string {
  const keys = ['mproto=1', 'provider=AE-2.02', 'gproto=1'];
  if (o.tls) keys.splice(1, 0, 'tls=1.0');
  if (o.peeraddr !== undefined) keys.push(`peeraddr=${o.peeraddr}`);
  if (o.role !== undefined) keys.push(`role=${o.role}`);
  return [
    o.proto ?? 'aemp',
    o.version ?? '1',
    o.nodeId,
    o.auths ?? PERL_AUTHS,
    o.framings ?? PERL_FRAMINGS,
    ...keys,
  ].join(';');
}

/** A nonce line like Perl's: Base64 of 66 random bytes (88 characters). */
export function perlNonce(): string {
  return randomBytes(66).toString('base64');
}

/** The four greeting lines, `first` side's two lines first, each followed by LF. */
export function fourLines(first: [string, string], second: [string, string]): string {
  return `${first[0]}\n${first[1]}\n${second[0]}\n${second[1]}\n`;
}

/** hex(HMAC-SHA3-512(secret, data)). */
export function hmacToken(secret: string, data: string): string {
  return createHmac('sha3-512', secret).update(data, 'utf8').digest('hex');
}

/** hex(SHA3-512(data)). */
export function sha3Token(data: string): string {
  return createHash('sha3-512').update(data, 'utf8').digest('hex');
}

/** A parsed greeting line 1 (just enough for assertions). */
export interface ParsedGreeting {
  line: string;
  fields: string[];
  proto: string;
  version: string;
  nodeId: string;
  auths: string[];
  framings: string[];
  keys: Map<string, string | undefined>;
}

export function parseGreetingLine(line: string): ParsedGreeting {
  const fields = line.split(';');
  const keys = new Map<string, string | undefined>();
  for (const f of fields.slice(5)) {
    const eq = f.indexOf('=');
    if (eq < 0) keys.set(f, undefined);
    else keys.set(f.slice(0, eq), f.slice(eq + 1));
  }
  return {
    line,
    fields,
    proto: fields[0] ?? '',
    version: fields[1] ?? '',
    nodeId: fields[2] ?? '',
    auths: (fields[3] ?? '').split(','),
    framings: (fields[4] ?? '').split(','),
    keys,
  };
}

// ---------------------------------------------------------------------------------------------
// Perl-style CBOR (what CBOR::XS with default options writes)

/** Forces a CBOR text string (major type 3), as Perl does for strings it holds as Unicode. */
export class Text {
  constructor(readonly text: string) {}
}

function head(major: number, n: number | bigint): Buffer {
  const v = BigInt(n);
  const m = major << 5;
  if (v < 24n) return Buffer.from([m | Number(v)]);
  if (v < 0x100n) return Buffer.from([m | 24, Number(v)]);
  if (v < 0x10000n) {
    const b = Buffer.alloc(3);
    b[0] = m | 25;
    b.writeUInt16BE(Number(v), 1);
    return b;
  }
  if (v < 0x100000000n) {
    const b = Buffer.alloc(5);
    b[0] = m | 26;
    b.writeUInt32BE(Number(v), 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = m | 27;
  b.writeBigUInt64BE(v, 1);
  return b;
}

/**
 * Encodes a value the way a Perl 2.02 node does: ASCII strings and all map keys as byte strings
 * (`""` → `40`), non-ASCII strings and `Text` as text strings, integers in the shortest form
 * (bigint for 64-bit values), other numbers as float32 when exact else float64, null/undefined
 * → `f6`, booleans → `f5`/`f4`, Uint8Array as raw byte strings.
 */
export function perlCbor(v: unknown): Buffer {
  if (v === null || v === undefined) return Buffer.from([0xf6]);
  if (v === true) return Buffer.from([0xf5]);
  if (v === false) return Buffer.from([0xf4]);
  if (v instanceof Text) {
    const b = Buffer.from(v.text, 'utf8');
    return Buffer.concat([head(3, b.length), b]);
  }
  if (typeof v === 'string') {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII range check
    const ascii = /^[\x00-\x7f]*$/.test(v);
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([head(ascii ? 2 : 3, b.length), b]);
  }
  if (v instanceof Uint8Array) return Buffer.concat([head(2, v.length), Buffer.from(v)]);
  if (typeof v === 'bigint') return v >= 0n ? head(0, v) : head(1, -1n - v);
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v >= 0 ? head(0, v) : head(1, -1 - v);
    if (Math.fround(v) === v || Number.isNaN(v)) {
      const b = Buffer.alloc(5);
      b[0] = 0xfa;
      b.writeFloatBE(v, 1);
      return b;
    }
    const b = Buffer.alloc(9);
    b[0] = 0xfb;
    b.writeDoubleBE(v, 1);
    return b;
  }
  if (Array.isArray(v)) return Buffer.concat([head(4, v.length), ...v.map(perlCbor)]);
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    const parts: Buffer[] = [head(5, entries.length)];
    for (const [k, x] of entries) {
      const kb = Buffer.from(k, 'utf8');
      parts.push(head(2, kb.length), kb, perlCbor(x));
    }
    return Buffer.concat(parts);
  }
  throw new TypeError(`perlCbor: cannot encode ${typeof v}`);
}

// ---------------------------------------------------------------------------------------------
// Frame splitting and decoding of what our node sends

/** End offset of the CBOR data item starting at `pos`, -1 if incomplete; throws if malformed. */
export function cborItemEnd(b: Uint8Array, pos: number): number {
  if (pos >= b.length) return -1;
  const ib = b[pos]!;
  const major = ib >> 5;
  const ai = ib & 31;
  let p = pos + 1;
  if (ai === 31) {
    if (major < 2 || major === 6 || major === 7) throw new Error(`malformed CBOR at ${pos}`);
    for (;;) {
      if (p >= b.length) return -1;
      if (b[p] === 0xff) return p + 1;
      const e = cborItemEnd(b, p);
      if (e < 0) return -1;
      p = e;
    }
  }
  if (ai >= 28) throw new Error(`malformed CBOR at ${pos}`);
  let arg = ai;
  if (ai >= 24) {
    const n = 1 << (ai - 24);
    if (p + n > b.length) return -1;
    arg = 0;
    for (let i = 0; i < n; i++) arg = arg * 256 + b[p + i]!;
    p += n;
  }
  switch (major) {
    case 0:
    case 1:
    case 7:
      return p;
    case 2:
    case 3:
      return p + arg <= b.length ? p + arg : -1;
    case 4:
    case 5: {
      const items = major === 4 ? arg : arg * 2;
      for (let i = 0; i < items; i++) {
        const e = cborItemEnd(b, p);
        if (e < 0) return -1;
        p = e;
      }
      return p;
    }
    default:
      return cborItemEnd(b, p);
  }
}

/** End offset of the JSON array/object text starting at `pos`, -1 if incomplete. */
export function jsonTextEnd(b: Uint8Array, pos: number): number {
  const first = b[pos];
  if (first === undefined) return -1;
  if (first !== 0x5b && first !== 0x7b) throw new Error(`JSON text does not start with [ or { at ${pos}`);
  let depth = 0;
  let inString = false;
  for (let i = pos; i < b.length; i++) {
    const c = b[i]!;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) depth++;
    else if (c === 0x5d || c === 0x7d) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

const cborDecoder = new Decoder({ mapsAsObjects: false, useRecords: false } as never);

/** Maps from cbor-x (keys may be byte strings) → plain objects; byte strings stay Buffers. */
function plain(v: unknown): unknown {
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v)
      o[k instanceof Uint8Array ? Buffer.from(k).toString('utf8') : String(k)] = plain(x);
    return o;
  }
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

export function decodeCbor(bytes: Uint8Array): unknown {
  return plain(cborDecoder.decode(Buffer.from(bytes)));
}

export type Framing = 'cbor' | 'json';

/** One frame received from our node: the decoded message and its exact bytes. */
export interface Frame {
  value: unknown[];
  bytes: Buffer;
}

// ---------------------------------------------------------------------------------------------
// The peer

export interface FakeHandshakeOptions extends Partial<PerlGreetingOptions> {
  nodeId: string;
  /** Greeting line 1 verbatim (default: `perlGreeting` of the options). */
  line1?: string;
  /** Nonce line (default: 88 random Base64 characters). */
  nonce?: string;
  secret?: string;
  /** PEM (certificate + key); with `tls`, TLS is used if our node also has a certificate. */
  cert?: string;
  /** Accept any certificate from our node (an intruder that does not care whom it talks to). */
  tlsAnyPeer?: boolean;
  /** Auth method the fake sends (default `tls_sha3_512` under TLS, else `hmac_sha3_512`). */
  authMethod?: string;
  /** Rewrites the computed token (e.g. to flip a character). */
  tamper?: (token: string) => string;
  /** Framing the fake sends and names in its auth line (default: Perl's pick from our list). */
  sendFraming?: string;
  /** Bytes written in the same write as the auth line (e.g. a first frame, as Perl does). */
  afterAuth?: Uint8Array;
  /** Line terminator of the fake's lines (default LF, as Perl; CR LF is also legal). */
  eol?: string;
  /**
   * Runs before the fake sends its auth line, once our node has read the fake's greeting: when
   * our node dialled the fake, after our node's auth line arrived (the dialling side sends it at
   * once); when the fake dialled, our node holds its auth line until the fake's verified, so
   * the fake lets the event loop poll twice instead (in-process loopback: bytes written are
   * read by the next poll).
   */
  beforeAuth?: () => void | Promise<void>;
  /**
   * Writes the greeting only after reading ours; as TLS client the fake then sends its TLS
   * ClientHello in the same turn, so both reach our node in one read.
   */
  greetLate?: boolean;
}

export interface FakeHandshakeResult {
  own: [string, string];
  /** Our node's greeting lines. */
  theirs: [string, string];
  theirGreeting: ParsedGreeting;
  /** Our node's auth line, split (all empty if withheld). */
  theirAuth: { method: string; token: string; framing: string };
  /** True if our node's token is what a Perl node expects. */
  tokenOk: boolean;
  /**
   * True if our node (accepting) closed the connection instead of sending its auth line: it
   * refused the fake's auth line and gave away no token.
   */
  authWithheld: boolean;
  tls: boolean;
  tlsClient: boolean;
}

export class FakePeer {
  /** The socket currently carrying the stream (the TLS socket after an upgrade). */
  socket: Socket;
  readonly raw: Socket;
  /** Bytes received and not yet consumed. */
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();
  private ended = false;
  private endText = '';
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  /** Format of frames from our node (named in its auth line). */
  recvFraming: Framing = 'cbor';
  /** Format of frames the fake sends. */
  sendFraming: Framing = 'cbor';
  /** Set by `handshake`. */
  result: FakeHandshakeResult | undefined;

  /** This end's address (`127.0.0.1:port`), as our node labels the connection. */
  readonly localAddr: string;

  private constructor(
    socket: Socket,
    /** The other end's address as seen from here (`peeraddr`). */
    readonly peeraddr: string,
    /** True if the fake dialled (our node accepted the connection). */
    readonly dialled: boolean,
  ) {
    this.raw = this.socket = socket;
    this.localAddr = `${socket.localAddress}:${socket.localPort}`;
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    live.add(this);
    this.watch(socket);
  }

  /** Connects to `addr` (`host:port`); resolves once the TCP connection is up. */
  static dial(addr: string): Promise<FakePeer> {
    const m = /^(.*):(\d+)$/.exec(addr);
    if (!m) throw new Error(`bad address ${addr}`);
    const socket = new Socket();
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.connect({ host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) }, () => {
        socket.off('error', reject);
        resolve(new FakePeer(socket, addr, true));
      });
    });
  }

  /** Wraps a socket accepted by a listener. */
  static accepted(socket: Socket): FakePeer {
    return new FakePeer(socket, `${socket.remoteAddress}:${socket.remotePort}`, false);
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /** Why the socket closed (error text or `closed`). */
  get closeText(): string {
    return this.endText;
  }

  destroy(): void {
    this.socket.destroy();
    this.raw.destroy();
  }

  /** Closes the connection like a Perl node that goes away (FIN). */
  end(): void {
    this.socket.end();
  }

  write(data: string | Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  writeLine(line: string): void {
    this.write(`${line}\n`);
  }

  /** The next line (terminator stripped; CR LF accepted). */
  readLine(ms = WAIT_MS): Promise<string> {
    return this.until('a handshake line', ms, () => {
      const lf = this.buf.indexOf(0x0a);
      if (lf < 0) return undefined;
      const end = lf > 0 && this.buf[lf - 1] === 0x0d ? lf - 1 : lf;
      const line = this.buf.subarray(0, end).toString('utf8');
      this.buf = this.buf.subarray(lf + 1);
      return line;
    });
  }

  /** Resolves when our node closed the connection; rejects after `ms`. */
  async waitClosed(ms = WAIT_MS): Promise<void> {
    await this.until('the connection to close', ms, () => (this.ended ? true : undefined), true);
  }

  /**
   * Runs the whole handshake as a Perl node: writes the greeting, reads ours, upgrades to TLS if
   * both sides have a certificate, sends its auth line and checks ours. Throws if our node
   * closes the connection on the way.
   */
  async handshake(o: FakeHandshakeOptions): Promise<FakeHandshakeResult> {
    const line1 =
      o.line1 ?? perlGreeting({ ...o, peeraddr: o.peeraddr ?? this.peeraddr, tls: o.tls ?? !!o.cert });
    const nonce = o.nonce ?? perlNonce();
    const own: [string, string] = [line1, nonce];
    const eol = o.eol ?? '\n';
    if (!o.greetLate) this.write(`${line1}${eol}${nonce}${eol}`);
    const theirs: [string, string] = [await this.readLine(), await this.readLine()];
    if (o.greetLate) this.write(`${line1}${eol}${nonce}${eol}`);
    const theirGreeting = parseGreetingLine(theirs[0]);
    const ownGreeting = parseGreetingLine(line1);
    const tls = !!o.cert && Math.trunc(Number.parseFloat(theirGreeting.keys.get('tls') ?? '0')) === 1;
    const tlsClient = Buffer.compare(Buffer.from(nonce), Buffer.from(theirs[1])) < 0;
    if (tls) await this.startTls(o.cert!, tlsClient, WAIT_MS, o.tlsAnyPeer);
    const method = o.authMethod ?? (tls ? 'tls_sha3_512' : 'hmac_sha3_512');
    const token = (o.tamper ?? ((t: string) => t))(this.token(method, fourLines(own, theirs), o.secret));
    const sendFraming =
      o.sendFraming ?? theirGreeting.framings.find((f) => ownGreeting.framings.includes(f)) ?? 'none';
    const authLine = Buffer.from(`${method};${token};${sendFraming}${eol}`);
    let theirAuthLine: string | undefined;
    if (o.beforeAuth) {
      if (this.dialled) await turns(2);
      else theirAuthLine = await this.readLine();
      await o.beforeAuth();
    }
    // Like Perl, the fake sends its auth line without waiting for ours.
    this.write(o.afterAuth ? Buffer.concat([authLine, o.afterAuth]) : authLine);
    theirAuthLine ??= await this.readAuthLine();
    const authWithheld = theirAuthLine === undefined;
    const [tm = '', tt = '', tf = ''] = (theirAuthLine ?? '').split(';');
    const expected = authWithheld ? undefined : this.token(tm, fourLines(theirs, own), o.secret);
    this.sendFraming = sendFraming as Framing;
    this.recvFraming = tf as Framing;
    this.result = {
      own,
      theirs,
      theirGreeting,
      theirAuth: { method: tm, token: tt, framing: tf },
      tokenOk: expected !== undefined && tt === expected,
      authWithheld,
      tls,
      tlsClient,
    };
    return this.result;
  }

  /**
   * Our node's auth line; undefined if the fake dialled and our node closed the connection
   * without sending one (the accepting side sends its auth line only after the peer's verified).
   */
  private async readAuthLine(): Promise<string | undefined> {
    try {
      return await this.readLine();
    } catch (err) {
      if (this.dialled && this.ended) return undefined;
      throw err;
    }
  }

  /** The token a Perl node sends for `method` over `lines` (sender's lines first). */
  private token(method: string, lines: string, secret: string | undefined): string {
    switch (method) {
      case 'hmac_sha3_512':
        return secret ? hmacToken(secret, lines) : '';
      case 'tls_sha3_512':
        return sha3Token(lines);
      case 'cleartext':
        return Buffer.from(secret ?? '', 'utf8').toString('hex');
      default:
        return '';
    }
  }

  /**
   * Upgrades to TLS as Perl does: the shared PEM is certificate and only CA, the peer must
   * present a certificate, no host name check. With `anyPeer` the fake accepts whatever
   * certificate our node presents (as an intruder would).
   */
  async startTls(pem: string, client: boolean, ms = WAIT_MS, anyPeer = false): Promise<void> {
    const raw = this.raw;
    raw.removeAllListeners('data');
    raw.pause();
    if (this.buf.length > 0) raw.unshift(this.buf);
    this.buf = Buffer.alloc(0);
    const common = { key: pem, cert: pem, ca: pem, rejectUnauthorized: !anyPeer };
    const t = client
      ? tlsConnect({ ...common, socket: raw, checkServerIdentity: () => undefined })
      : new TLSSocket(raw, { ...common, isServer: true, requestCert: true });
    this.socket = t;
    this.watch(t);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`TLS: no handshake within ${ms} ms`)), ms);
      t.once(client ? 'secureConnect' : 'secure', () => {
        clearTimeout(timer);
        resolve();
      });
      t.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      t.once('close', () => {
        clearTimeout(timer);
        reject(new Error('TLS: connection closed during the TLS handshake'));
      });
    });
  }

  /** Sends one message in the fake's sending format (Perl-style CBOR or JSON). */
  send(msg: unknown[]): void {
    this.write(this.encode(msg));
  }

  encode(msg: unknown[]): Buffer {
    return this.sendFraming === 'json' ? Buffer.from(JSON.stringify(msg), 'utf8') : perlCbor(msg);
  }

  /** The next frame from our node. */
  nextFrame(ms = WAIT_MS): Promise<Frame> {
    return this.until(`a ${this.recvFraming} frame`, ms, () => {
      let start = 0;
      if (this.recvFraming === 'json') {
        while (start < this.buf.length && /\s/.test(String.fromCharCode(this.buf[start]!))) start++;
      }
      const end = this.recvFraming === 'json' ? jsonTextEnd(this.buf, start) : cborItemEnd(this.buf, start);
      if (end < 0) return undefined;
      const bytes = Buffer.from(this.buf.subarray(start, end));
      this.buf = this.buf.subarray(end);
      const value = this.recvFraming === 'json' ? JSON.parse(bytes.toString('utf8')) : decodeCbor(bytes);
      if (!Array.isArray(value)) throw new Error(`frame is not an array: ${bytes.toString('hex')}`);
      return { value, bytes };
    });
  }

  /** The next message from our node. */
  async next(ms = WAIT_MS): Promise<unknown[]> {
    return (await this.nextFrame(ms)).value;
  }

  /** Skips messages until one satisfies `pred` (e.g. past `["","g_slave"]`). */
  async nextMatching(pred: (m: unknown[]) => boolean, ms = WAIT_MS): Promise<unknown[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (pred(m)) return m;
    }
  }

  /** Bytes received and not consumed yet. */
  get pending(): Buffer {
    return this.buf;
  }

  private watch(s: Socket): void {
    s.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.wake();
    });
    s.on('error', (err) => {
      this.endText ||= err.message;
    });
    s.on('close', () => {
      if (this.ended) return;
      this.ended = true;
      this.endText ||= 'closed';
      live.delete(this);
      this.markClosed();
      this.wake();
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private async until<T>(
    what: string,
    ms: number,
    take: () => T | undefined,
    quietClose = false,
  ): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = take();
      if (v !== undefined) return v;
      if (this.ended && !quietClose)
        throw new Error(`waiting for ${what}: connection closed (${this.endText})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`waiting for ${what}: nothing within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
  }
}

/** A listening fake node: `accept()` yields the next incoming connection. */
export class FakeListener {
  private readonly queue: FakePeer[] = [];
  private readonly waiters: ((p: FakePeer) => void)[] = [];
  /** Number of connections accepted so far. */
  count = 0;

  private constructor(
    private readonly server: Server,
    readonly addr: string,
  ) {
    live.add(this);
  }

  static open(): Promise<FakeListener> {
    return new Promise((resolve, reject) => {
      let listener: FakeListener | undefined;
      const server = createServer((s) => {
        listener!.count++;
        const p = FakePeer.accepted(s);
        const w = listener!.waiters.shift();
        if (w) w(p);
        else listener!.queue.push(p);
      });
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => {
        const a = server.address();
        if (a === null || typeof a === 'string') return reject(new Error('no address'));
        listener = new FakeListener(server, `127.0.0.1:${a.port}`);
        resolve(listener);
      });
    });
  }

  /** The next accepted connection. */
  accept(ms = WAIT_MS): Promise<FakePeer> {
    const ready = this.queue.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(got);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no connection to ${this.addr} within ${ms} ms`));
      }, ms);
      const got = (p: FakePeer) => {
        clearTimeout(timer);
        resolve(p);
      };
      this.waiters.push(got);
    });
  }

  destroy(): void {
    this.server.close();
    for (const p of this.queue) p.destroy();
    live.delete(this);
  }
}

/** Resolves after `n` turns of the event loop (each turn polls the sockets once). */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A TCP relay that records what passes through, to look at the wire between two of our nodes.
 * `down` = bytes from the dialling side to the target, `up` = the other direction.
 *
 * With `separateGreeting`, each direction's bytes after the first two lines (the greeting) are
 * held back for a few event-loop turns after the greeting was passed on, so the receiving node
 * has read the greeting before any TLS record reaches it (in-process loopback: a written chunk is
 * readable by the next poll of the loop).
 */
export class RecordingProxy {
  readonly down: Buffer[] = [];
  readonly up: Buffer[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly addr: string,
  ) {
    live.add(this);
  }

  static open(target: string, opts: { separateGreeting?: boolean } = {}): Promise<RecordingProxy> {
    const m = /^(.*):(\d+)$/.exec(target)!;
    return new Promise((resolve, reject) => {
      let proxy: RecordingProxy | undefined;
      const server = createServer((client) => {
        const p = proxy!;
        const upstream = new Socket();
        p.sockets.add(client);
        p.sockets.add(upstream);
        client.pause();
        upstream.connect({ host: m[1]!, port: Number(m[2]) }, () => client.resume());
        const relay = (from: Socket, to: Socket, log: Buffer[]) => {
          let lines = 0;
          let chain = Promise.resolve();
          let gate = Promise.resolve();
          from.on('data', (d: Buffer) => {
            log.push(Buffer.from(d));
            let head = d;
            let rest: Buffer | undefined;
            if (opts.separateGreeting && lines < 2) {
              let cut = -1;
              for (let i = 0; i < d.length && lines < 2; i++) {
                if (d[i] === 0x0a && ++lines === 2) cut = i + 1;
              }
              if (cut >= 0) {
                head = d.subarray(0, cut);
                rest = d.subarray(cut);
              }
            }
            chain = chain
              .then(() => gate)
              .then(() => {
                if (head.length > 0) to.write(head);
                if (rest !== undefined) gate = turns(4);
              })
              .then(() => gate)
              .then(() => {
                if (rest !== undefined && rest.length > 0) to.write(rest);
              });
          });
        };
        relay(client, upstream, p.down);
        relay(upstream, client, p.up);
        for (const [a, b] of [
          [client, upstream],
          [upstream, client],
        ] as const) {
          a.on('error', () => b.destroy());
          a.on('close', () => b.destroy());
        }
      });
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => {
        const a = server.address();
        if (a === null || typeof a === 'string') return reject(new Error('no address'));
        proxy = new RecordingProxy(server, `127.0.0.1:${a.port}`);
        resolve(proxy);
      });
    });
  }

  /** Everything the dialling side sent so far. */
  get downBytes(): Buffer {
    return Buffer.concat(this.down);
  }

  /** Everything the target sent so far. */
  get upBytes(): Buffer {
    return Buffer.concat(this.up);
  }

  destroy(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
    live.delete(this);
  }
}

/** Rejects with `what` if `p` does not settle within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
