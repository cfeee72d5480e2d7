/**
 * Sans-IO AEMP handshake (spec/protocol.md §3–§7, §11): a state machine fed with the peer's
 * lines (or raw bytes) that says what to do next. It never touches a socket and never sets a
 * timer; the driver applies the handshake read timeout and performs the TLS upgrade.
 *
 * Driver outline:
 *   const hs = createHandshake(opts);
 *   socket.write(hs.start());
 *   on data: for (const step of hs.feed(chunk)) switch (step.kind) {
 *     case 'send':     socket.write(step.text); break;
 *     case 'startTls': const raw = hs.takeRest(); upgrade socket (role step.client), pass `raw`
 *                      to the TLS layer as already-received ciphertext; once the peer's
 *                      certificate verified, handle hs.tlsReady() (a `send`, or `wait` on the
 *                      accepting side) and keep feeding decrypted bytes; break;
 *     case 'done':     frames.push(hs.takeRest()); start the data phase with step.session; break;
 *     case 'fail':     log step.error.message; close; break;
 *   }
 *
 * Perl's order of checks and error texts are kept (§5). Two additions for aemp peers:
 *   - with `role`, our greeting states which side of the connection we are on (`role=d|a`) and
 *     a peer claiming the same side is refused (a relay between two nodes); `strictPeers` also
 *     refuses peers that do not state a role;
 *   - with `role: 'accepted'`, our auth line is held back until the peer's auth line verified,
 *     so a stranger who connects never gets a token computed with our secret (Perl sends its
 *     auth line without waiting for ours, so this never deadlocks with Perl). The dialling side
 *     sends at once, as Perl does.
 */
import { AempError, AuthError, ProtocolError } from '../errors.js';
import { dialable } from './address.js';
import {
  type AuthContext,
  chooseSendAuth,
  chooseSendFraming,
  isTlsClient,
  isUsableFraming,
  peerRoleError,
  secretBytes,
  sendAuthData,
  verifyAuthData,
  wantTls,
} from './auth.js';
import {
  AUTH,
  type AuthMethod,
  DEFAULT_AUTH_ACCEPT,
  DEFAULT_AUTH_OFFER,
  FRAMING,
  type FramingFormat,
  GREETING_KEY,
  PROTOCOL,
  PROTOCOL_VERSION,
  REASON,
} from './constants.js';
import {
  buildGreeting,
  type ConnectionRole,
  type Greeting,
  type GreetingKeys,
  isSubProtocol,
  makeNonce,
  parseGreeting,
  perlNumber,
  perlSplit,
} from './greeting.js';
import { LineDecoder } from './line-decoder.js';

export interface HandshakeOptions {
  /** Our node ID. */
  nodeId: string;
  /** Shared secret (`secure` config); empty/undefined = none. */
  secret?: string | Uint8Array | undefined;
  /** True if a TLS certificate is configured (adds `tls=1.0`, enables TLS if the peer has one). */
  hasCert?: boolean;
  /** Methods we are willing to send, default `tls_sha3_512,hmac_sha3_512`. */
  authOffer?: readonly string[];
  /** Methods advertised in our AUTHS field, default all four. Not enforced on receipt (like Perl). */
  authAccept?: readonly string[];
  /** Our framings in preference order, only `cbor`/`json` (the caller drops `storable`). Default `cbor,json`. */
  framings?: readonly FramingFormat[];
  /** The peer's address as seen from here (`peeraddr` key). */
  peerAddr?: string;
  /** `provider` value; defaults to this implementation's. */
  provider?: string;
  /** Extension pairs appended to our greeting, e.g. `{ hb: '2' }`. */
  extraKeys?: GreetingKeys;
  /** Fixed nonce line (tests); default: Base64 of 66 random bytes. */
  nonce?: string;
  /**
   * Fixed greeting line 1 (tests and replays of captured traffic): sent and hashed verbatim
   * instead of the line built from the options above. The negotiation still uses the options.
   */
  greetingLine?: string;
  /** True if an established connection to `peerNodeId` exists (§5 step 4, §11). */
  isConnected?(peerNodeId: string): boolean;
  /**
   * Called with the peer's greeting line 1 right after it was read, before any check (Perl's
   * `on_greeted`, used by seed connections). An exception fails the handshake.
   */
  onPeerGreeting?(greeting: Greeting): void;
  /**
   * Our side of the TCP connection, stated in the greeting (`role` key) and checked against the
   * peer's. The accepting side sends its auth line only after the peer's verified. Undefined
   * (tests, tools): no role is stated and the auth line goes out at once.
   */
  role?: ConnectionRole;
  /** Refuse peers that do not state their connection role (`strict_peers`). */
  strictPeers?: boolean;
  /**
   * Dialling side of a sub-protocol connection (§13, e.g. `aemp-dataconn`): our greeting names
   * this protocol instead of `aemp` and leaves out `mproto`/`gproto`. The peer may answer with
   * `aemp` or the same protocol. Node-ID checks are skipped for sub-protocols.
   */
  subProtocol?: string;
  /** Accepting side: sub-protocols a peer may switch this connection to. Others are refused. */
  acceptSubProtocols?: readonly string[];
  /**
   * Called once the peer's auth line verified, before our own (held) auth line goes out. An
   * exception fails the handshake, so a refused peer never gets our token.
   */
  onPeerVerified?(greeting: Greeting): void;
}

/** The outcome of a successful handshake. */
export interface HandshakeSession {
  readonly peerNodeId: string;
  /** The peer's greeting line 1, parsed (extension keys in `keys`). */
  readonly peerGreeting: Greeting;
  /** The peer's nonce line. */
  readonly peerNonce: string;
  /** Our two greeting lines as sent. */
  readonly ownGreeting: string;
  readonly ownNonce: string;
  /** Format we encode in (chosen by us from the peer's list). */
  readonly sendFraming: FramingFormat;
  /** Format we decode (chosen by the peer, named in its auth line). */
  readonly recvFraming: FramingFormat;
  /** Method we authenticated with. */
  readonly sendAuth: AuthMethod;
  /** Method the peer authenticated with. */
  readonly authMethod: AuthMethod;
  /** True if the peer used `tls_anon` (informational, Perl's "untrusted"). */
  readonly untrusted: boolean;
  /** True if the connection runs inside TLS. */
  readonly tls: boolean;
  /** Our TLS role, if TLS is on. */
  readonly tlsRole?: 'client' | 'server';
  /** `aemp`, or the sub-protocol (`aemp-dataconn`) the connection was switched to. */
  readonly protocol: string;
}

export type HandshakeStep =
  | { readonly kind: 'wait' }
  | { readonly kind: 'send'; readonly text: string }
  | { readonly kind: 'startTls'; readonly client: boolean }
  | { readonly kind: 'done'; readonly session: HandshakeSession }
  | { readonly kind: 'fail'; readonly error: AempError };

export type HandshakeState = 'greeting' | 'nonce' | 'tls' | 'auth' | 'done' | 'failed';

export interface Handshake {
  /** Current state: which peer line is expected next (`tls` = waiting for `tlsReady()`). */
  readonly state: HandshakeState;
  /** Our greeting line 1 (without terminator). */
  readonly ownGreeting: string;
  /** Our nonce line (without terminator). */
  readonly ownNonce: string;
  /** Our two greeting lines, each followed by LF: write them right after connecting. */
  start(): string;
  /**
   * Processes one peer line (terminator stripped) and returns the step it leads to. Not for an
   * accepting handshake (`role: 'accepted'`), whose last line leads to two steps (our held auth
   * line, then `done`): use `receiveAll` or `feed`.
   */
  receive(line: string): HandshakeStep;
  /** Processes one peer line; returns its actionable steps in order (empty = wait). */
  receiveAll(line: string): HandshakeStep[];
  /**
   * Feeds raw bytes; splits lines (4 KiB limit) and processes them one at a time. Returns the
   * actionable steps in order (never `wait`). Stops taking lines after `startTls`, `done` or
   * `fail`; bytes behind the last line taken stay available through `takeRest()`.
   */
  feed(chunk: Uint8Array): HandshakeStep[];
  /** Bytes received after the last line taken by `feed` (data frames or TLS records). */
  takeRest(): Uint8Array;
  /**
   * After `startTls`: TLS is established and the peer's certificate verified. Returns the auth
   * line to send (inside TLS), or `wait` on the accepting side, which sends it after the peer's.
   */
  tlsReady(): HandshakeStep;
}

const WAIT: HandshakeStep = { kind: 'wait' };
const KNOWN_FRAMINGS: readonly string[] = [FRAMING.CBOR, FRAMING.JSON];

function misuse(message: string): AempError {
  return new AempError('ERR_BAD_ARGUMENT', `handshake: ${message}`);
}

export function createHandshake(opts: HandshakeOptions): Handshake {
  const framings: readonly string[] = opts.framings ?? [FRAMING.CBOR, FRAMING.JSON];
  for (const f of framings) {
    if (!KNOWN_FRAMINGS.includes(f)) throw misuse(`unsupported own framing ${JSON.stringify(f)}`);
  }
  const authOffer = opts.authOffer ?? DEFAULT_AUTH_OFFER;
  const hasCert = opts.hasCert ?? false;
  /** The accepting side proves nothing before the peer has proved itself. */
  const holdAuth = opts.role === 'accepted';
  const secret = secretBytes(opts.secret);
  if (opts.subProtocol !== undefined && !isSubProtocol(opts.subProtocol))
    throw misuse(`not a sub-protocol: ${JSON.stringify(opts.subProtocol)}`);
  const built =
    opts.greetingLine ??
    buildGreeting({
      nodeId: opts.nodeId,
      auths: opts.authAccept ?? DEFAULT_AUTH_ACCEPT,
      framings,
      tls: hasCert,
      ...(opts.role !== undefined && { role: opts.role }),
      ...(opts.provider !== undefined && { provider: opts.provider }),
      // The address dialled may be a peer's invention: it goes into the greeting only if it fits.
      ...(opts.peerAddr !== undefined && dialable(opts.peerAddr) && { peerAddr: opts.peerAddr }),
      ...(opts.extraKeys !== undefined && { extraKeys: opts.extraKeys }),
    });
  const ownGreeting =
    opts.subProtocol !== undefined && opts.greetingLine === undefined
      ? subProtocolGreeting(built, opts.subProtocol)
      : built;
  const ownNonce = opts.nonce ?? makeNonce();
  if (/[\r\n]/.test(ownNonce)) throw misuse('nonce must not contain CR or LF');

  const decoder = new LineDecoder();
  let state: HandshakeState = 'greeting';
  let failStep: HandshakeStep | undefined;
  let peer: Greeting | undefined;
  let peerNonce = '';
  let tls = false;
  let tlsClient = false;
  let sendAuth = '';
  let sendFraming = '';
  let authLine = '';
  let protocol: string = opts.subProtocol ?? PROTOCOL;

  const fail = (error: AempError): HandshakeStep => {
    state = 'failed';
    failStep = { kind: 'fail', error };
    return failStep;
  };

  const context = (): AuthContext => ({
    own: { line1: ownGreeting, line2: ownNonce },
    peer: { line1: peer!.line, line2: peerNonce },
    secret,
    tls,
  });

  /** §5 steps 1–4. */
  const onGreeting = (line: string): HandshakeStep => {
    const g = parseGreeting(line);
    peer = g;
    // Step 2: a listener greeted with `aemp` switches to the peer's sub-protocol.
    if (opts.subProtocol === undefined && isSubProtocol(g.proto)) protocol = g.proto;
    // Step 3: the seed hook runs before the peer is authenticated.
    if (opts.onPeerGreeting) {
      try {
        opts.onPeerGreeting(g);
      } catch (e) {
        if (AempError.is(e)) return fail(e);
        const message = e instanceof Error ? e.message : String(e);
        return fail(new ProtocolError('ERR_BAD_GREETING', `greeting hook failed: ${message}`, { cause: e }));
      }
    }
    // Step 4.
    if (g.proto !== protocol && g.proto !== PROTOCOL) {
      return fail(
        new ProtocolError(
          'ERR_BAD_GREETING',
          `unparsable greeting, expected '${protocol}', got '${g.proto}'`,
        ),
      );
    }
    if (perlNumber(g.version) !== PROTOCOL_VERSION) {
      return fail(
        new ProtocolError(
          'ERR_VERSION_MISMATCH',
          `version mismatch (we: ${PROTOCOL_VERSION}, they: ${g.version})`,
        ),
      );
    }
    if (
      protocol !== PROTOCOL &&
      protocol !== opts.subProtocol &&
      !(opts.acceptSubProtocols ?? []).includes(protocol)
    ) {
      return fail(new ProtocolError('ERR_BAD_GREETING', `${protocol}: sub-protocol not supported`));
    }
    // A sub-protocol connection is no node link: talking to ourselves (a data connection to
    // the own node) and a second connection to a connected node are fine (§13).
    const link = protocol === PROTOCOL;
    if (link && g.nodeId === opts.nodeId) {
      return fail(new ProtocolError('ERR_SELF_CONNECT', REASON.SELF_CONNECT));
    }
    if (link && opts.isConnected?.(g.nodeId)) {
      return fail(
        new ProtocolError('ERR_ALREADY_CONNECTED', `${g.nodeId} already connected, not connecting again.`),
      );
    }
    if (g.nodeId === '') {
      // Not checked by Perl; an empty node ID cannot be addressed.
      return fail(new ProtocolError('ERR_BAD_GREETING', 'unparsable greeting, empty node ID'));
    }
    const roleError = peerRoleError(opts.role, g, opts.strictPeers ?? false);
    if (roleError) return fail(roleError);
    state = 'nonce';
    return WAIT;
  };

  /** §5 steps 5–10. */
  const onNonce = (line: string): HandshakeStep => {
    peerNonce = line;
    const g = peer!;
    if (`${ownGreeting}\n${ownNonce}` === `${g.line}\n${line}`) {
      return fail(new AuthError('ERR_ECHO', 'authentication error, echo attack?'));
    }
    tls = wantTls(hasCert, g.keys.get(GREETING_KEY.TLS));
    const auth = chooseSendAuth(g.authList, authOffer, tls);
    if (auth === undefined) {
      return fail(new AuthError('ERR_NO_COMMON_AUTH', `${g.auths}: no common auth type supported`));
    }
    const framing = chooseSendFraming(g.framingList, framings);
    if (framing === undefined) {
      return fail(
        new ProtocolError('ERR_NO_COMMON_FRAMING', `${g.framings}: no common framing method supported`),
      );
    }
    // Perl starts TLS before computing its auth data; the data does not depend on TLS, so the
    // "unsupported snd auth method" failure is detected here, before any TLS work.
    const data = sendAuthData(auth, context());
    if (typeof data !== 'string') return fail(data);
    sendAuth = auth;
    sendFraming = framing;
    authLine = `${auth};${data};${framing}\n`;
    if (tls) {
      tlsClient = isTlsClient(ownNonce, peerNonce);
      state = 'tls';
      return { kind: 'startTls', client: tlsClient };
    }
    state = 'auth';
    return holdAuth ? WAIT : { kind: 'send', text: authLine };
  };

  /** §5 steps 11–12. */
  const onAuth = (line: string): HandshakeStep[] => {
    let done = verifyPeerAuth(line);
    if (done.kind === 'done' && opts.onPeerVerified) {
      try {
        opts.onPeerVerified(peer!);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        done = fail(AempError.is(e) ? e : new ProtocolError('ERR_BAD_GREETING', message, { cause: e }));
      }
    }
    if (done.kind !== 'done' || !holdAuth) return [done];
    // The peer proved itself: now it may have our auth line.
    return [{ kind: 'send', text: authLine }, done];
  };

  /** §5 step 11 and the session of step 12. */
  const verifyPeerAuth = (line: string): HandshakeStep => {
    const [method = '', data = '', recvFraming = ''] = perlSplit(line, ';');
    const error = verifyAuthData(method, data, context());
    if (error) return fail(error);
    if (!isUsableFraming(recvFraming)) {
      return fail(new ProtocolError('ERR_NO_COMMON_FRAMING', `${recvFraming}: unusable remote framing`));
    }
    const g = peer!;
    state = 'done';
    const session: HandshakeSession = {
      peerNodeId: g.nodeId,
      peerGreeting: g,
      peerNonce,
      ownGreeting,
      ownNonce,
      sendFraming: sendFraming as FramingFormat,
      recvFraming,
      sendAuth: sendAuth as AuthMethod,
      authMethod: method as AuthMethod,
      untrusted: method === AUTH.TLS_ANON,
      tls,
      protocol,
      ...(tls && { tlsRole: tlsClient ? ('client' as const) : ('server' as const) }),
    };
    return { kind: 'done', session };
  };

  const actionable = (step: HandshakeStep): HandshakeStep[] => (step.kind === 'wait' ? [] : [step]);

  const receiveAll = (line: string): HandshakeStep[] => {
    switch (state) {
      case 'greeting':
        return actionable(onGreeting(line));
      case 'nonce':
        return actionable(onNonce(line));
      case 'auth':
        return onAuth(line);
      case 'failed':
        return [failStep!];
      case 'tls':
        throw misuse('line received before tlsReady()');
      case 'done':
        throw misuse('line received after the handshake completed');
    }
  };

  return {
    get state() {
      return state;
    },
    ownGreeting,
    ownNonce,
    start: () => `${ownGreeting}\n${ownNonce}\n`,
    receive(line: string): HandshakeStep {
      if (holdAuth) throw misuse('receive() on an accepting handshake: use receiveAll() or feed()');
      return receiveAll(line)[0] ?? WAIT;
    },
    receiveAll,
    feed(chunk: Uint8Array): HandshakeStep[] {
      if (state === 'failed') return [failStep!];
      if (state === 'tls' || state === 'done') throw misuse(`feed() called in state '${state}'`);
      const steps: HandshakeStep[] = [];
      let input = chunk;
      for (;;) {
        let lines: string[];
        try {
          lines = decoder.push(input, 1);
        } catch (e) {
          if (!AempError.is(e)) throw e;
          steps.push(fail(e));
          return steps;
        }
        input = new Uint8Array(0);
        const line = lines[0];
        if (line === undefined) return steps;
        const got = receiveAll(line);
        steps.push(...got);
        if (got.some((step) => step.kind !== 'send')) return steps;
      }
    },
    takeRest: () => decoder.takeRest(),
    tlsReady(): HandshakeStep {
      if (state !== 'tls') throw misuse(`tlsReady() called in state '${state}'`);
      state = 'auth';
      return holdAuth ? WAIT : { kind: 'send', text: authLine };
    },
  };
}

/**
 * Our greeting line 1 for a dialled sub-protocol connection: the protocol field replaced and
 * the message-protocol keys (`mproto`, `gproto`) left out, as Perl's data-connection dialler
 * writes it.
 */
function subProtocolGreeting(line: string, protocol: string): string {
  const fields = line.split(';');
  fields[0] = protocol;
  return fields.filter((f, i) => i < 5 || !/^(mproto|gproto)=/.test(f)).join(';');
}
