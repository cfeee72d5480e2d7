/**
 * Authentication tokens and negotiation rules (spec/protocol.md §5 steps 6–11, §6, §7).
 *
 * All hashes cover the four greeting lines, each followed by LF, as UTF-8 bytes:
 *   OWN_FIRST  = L1 LF L2 LF P1 LF P2 LF   (what we send)
 *   PEER_FIRST = P1 LF P2 LF L1 LF L2 LF   (what we expect from the peer)
 */
import { createHash, createHmac, getHashes, timingSafeEqual } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac.js';
import { sha3_512 } from '@noble/hashes/sha3.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { AuthError, ProtocolError } from '../errors.js';
import { AUTH, type AuthMethod, FRAMING, type FramingFormat } from './constants.js';
import { type ConnectionRole, type Greeting, perlInt, ROLE, ROLE_KEY } from './greeting.js';

const utf8 = new TextEncoder();

/** The two greeting lines of one side, without terminators. */
export interface GreetingLines {
  readonly line1: string;
  readonly line2: string;
}

/** Everything the token computations need. */
export interface AuthContext {
  readonly own: GreetingLines;
  readonly peer: GreetingLines;
  /** The shared secret's bytes; undefined or empty = no secret configured. */
  readonly secret?: Uint8Array | undefined;
  /** True if TLS is active on this connection. */
  readonly tls: boolean;
}

/** The shared secret as bytes (strings are UTF-8; SHOULD be ASCII). Empty → undefined. */
export function secretBytes(secret: string | Uint8Array | undefined): Uint8Array | undefined {
  if (secret === undefined) return undefined;
  const bytes = typeof secret === 'string' ? utf8.encode(secret) : secret;
  return bytes.length > 0 ? bytes : undefined;
}

function joined(first: GreetingLines, second: GreetingLines): Uint8Array {
  return utf8.encode(`${first.line1}\n${first.line2}\n${second.line1}\n${second.line2}\n`);
}

/** `OWN_FIRST`: our lines then the peer's, each followed by LF. */
export function ownFirst(own: GreetingLines, peer: GreetingLines): Uint8Array {
  return joined(own, peer);
}

/** `PEER_FIRST`: the peer's lines then ours, each followed by LF. */
export function peerFirst(own: GreetingLines, peer: GreetingLines): Uint8Array {
  return joined(peer, own);
}

/**
 * OpenSSL's SHA3 when Node's build has it (about ten times faster than the portable one,
 * which counts when many nodes join one global node at once); the same digests either way.
 */
const NATIVE_SHA3 = getHashes().includes('sha3-512');

/** Lowercase hex of HMAC-SHA3-512(secret, data). */
export function hmacSha3_512Hex(secret: Uint8Array, data: Uint8Array, native = NATIVE_SHA3): string {
  if (native) return createHmac('sha3-512', secret).update(data).digest('hex');
  return bytesToHex(hmac(sha3_512, secret, data));
}

/** Lowercase hex of SHA3-512(data). */
export function sha3_512Hex(data: Uint8Array, native = NATIVE_SHA3): string {
  if (native) return createHash('sha3-512').update(data).digest('hex');
  return bytesToHex(sha3_512(data));
}

/** The `cleartext` token: lowercase hex of the secret bytes. */
export function cleartextHex(secret: Uint8Array): string {
  return bytesToHex(secret);
}

/** True if the method's name marks it as requiring TLS. */
export function isTlsMethod(method: string): boolean {
  return method.startsWith('tls_');
}

/**
 * The DATA we send for `method`, or an AuthError. Follows Perl's order of decisions (§5 step 9),
 * except that `cleartext` may be sent without TLS when it was picked from our own auth_offer.
 */
export function sendAuthData(method: string, ctx: AuthContext): string | AuthError {
  const unsupported = () =>
    new AuthError('ERR_UNSUPPORTED_AUTH', `${method}: fatal, selected unsupported snd auth method`);
  if (ctx.tls) {
    if (method === AUTH.TLS_ANON) return '';
    if (method === AUTH.TLS_SHA3_512) return sha3_512Hex(ownFirst(ctx.own, ctx.peer));
    return unsupported();
  }
  if (ctx.secret !== undefined && ctx.secret.length > 0) {
    if (method === AUTH.HMAC_SHA3_512) return hmacSha3_512Hex(ctx.secret, ownFirst(ctx.own, ctx.peer));
    if (method === AUTH.CLEARTEXT) return cleartextHex(ctx.secret);
    return unsupported();
  }
  return new AuthError('ERR_NO_CREDENTIALS', 'unable to handshake TLS and no shared secret configured');
}

/**
 * The DATA we expect from the peer for `method`:
 * a string to compare with, `null` if the method is known but cannot succeed here (hmac or
 * cleartext without a secret, tls_* without TLS), `undefined` for an unknown method.
 */
export function expectedAuthData(method: string, ctx: AuthContext): string | null | undefined {
  const secret = ctx.secret !== undefined && ctx.secret.length > 0 ? ctx.secret : undefined;
  switch (method) {
    case AUTH.HMAC_SHA3_512:
      return secret ? hmacSha3_512Hex(secret, peerFirst(ctx.own, ctx.peer)) : null;
    case AUTH.CLEARTEXT:
      return secret ? cleartextHex(secret) : null;
    case AUTH.TLS_SHA3_512:
      return ctx.tls ? sha3_512Hex(peerFirst(ctx.own, ctx.peer)) : null;
    case AUTH.TLS_ANON:
      return ctx.tls ? '' : null;
    default:
      return undefined;
  }
}

/** True if `method` is one of the four methods of AEMP 2.x. */
export function isAuthMethod(method: string): method is AuthMethod {
  return (Object.values(AUTH) as string[]).includes(method);
}

/** Compares two tokens without a data-dependent early exit (lengths may leak). */
export function tokensEqual(a: string, b: string): boolean {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  if (x.length !== y.length) {
    // Keep the work similar; the result is false regardless.
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}

/**
 * Verifies the peer's auth DATA for `method`. Returns undefined on success, else the AuthError
 * Perl would report (unknown method, or mismatch).
 */
export function verifyAuthData(method: string, data: string, ctx: AuthContext): AuthError | undefined {
  const expected = expectedAuthData(method, ctx);
  if (expected === undefined) {
    return new AuthError('ERR_UNSUPPORTED_AUTH', `${method}: fatal, selected unsupported rcv auth method`);
  }
  if (expected === null || !tokensEqual(data, expected)) {
    return new AuthError('ERR_AUTH_FAILED', 'authentication failure/shared secret mismatch');
  }
  return undefined;
}

/**
 * §5 step 7: the auth method we send — the first entry of the peer's AUTHS list that is in our
 * auth_offer and is not a `tls_` method unless TLS is on.
 */
export function chooseSendAuth(
  peerAuths: readonly string[],
  authOffer: readonly string[],
  tls: boolean,
): string | undefined {
  return peerAuths.find((m) => authOffer.includes(m) && (!isTlsMethod(m) || tls));
}

/** §5 step 8: the framing we send — the first entry of the peer's FRAMINGS list that we support. */
export function chooseSendFraming(
  peerFramings: readonly string[],
  ownFramings: readonly string[],
): string | undefined {
  return peerFramings.find((f) => ownFramings.includes(f));
}

/** True if `name` is a framing this implementation can decode. */
export function isUsableFraming(name: string): name is FramingFormat {
  return name === FRAMING.CBOR || name === FRAMING.JSON;
}

/** §5 step 6: TLS iff we have a certificate and the peer's `tls` value is 1 as a Perl `int`. */
export function wantTls(hasCert: boolean, peerTlsValue: string | undefined): boolean {
  return hasCert && perlInt(peerTlsValue) === 1;
}

/** §7: we are the TLS client iff our nonce line sorts before the peer's, byte by byte. */
export function isTlsClient(ownNonce: string, peerNonce: string): boolean {
  return Buffer.compare(utf8.encode(ownNonce), utf8.encode(peerNonce)) < 0;
}

/** A peer-chosen value for an error text: quoted, escaped, at most 32 characters. */
function quoted(value: string): string {
  const short = value.length > 32 ? `${value.slice(0, 32)}…` : value;
  return JSON.stringify(short);
}

/**
 * Checks the connection role the peer states in its greeting (`role` key) against ours. A peer
 * claiming our own role is a relay that passes our greeting to another node on the same side
 * of its connection (two accepting nodes both see `a`); an unknown value is refused; a missing
 * key is what Perl peers send, refused only with `strict` (`strict_peers`). Returns the error,
 * or undefined if the peer may go on. Without an own role (`undefined`) only `strict` applies.
 */
export function peerRoleError(
  own: ConnectionRole | undefined,
  peer: Greeting,
  strict: boolean,
): AuthError | ProtocolError | undefined {
  if (!peer.keys.has(ROLE_KEY)) {
    return strict
      ? new ProtocolError('ERR_BAD_GREETING', 'peer does not state its connection role (strict_peers)')
      : undefined;
  }
  const value = peer.keys.get(ROLE_KEY) ?? '';
  if (value !== ROLE.dialled && value !== ROLE.accepted) {
    return new ProtocolError('ERR_BAD_GREETING', `peer states an invalid connection role ${quoted(value)}`);
  }
  if (own !== undefined && value === ROLE[own]) {
    return new AuthError(
      'ERR_AUTH_FAILED',
      'peer claims the same connection role as ours (relayed handshake?)',
    );
  }
  return undefined;
}
