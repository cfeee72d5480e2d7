/**
 * Typed errors and kill reasons.
 *
 * Callers match on `AempError.is(e) && e.code === '…'` rather than `instanceof`, so the check
 * survives two copies of the package in one process. Kill reasons are the AEMP wire value: a
 * plain array (`[]` = normal exit, `['die', msg]`, `['transport_error', node, text]`, …).
 */

export type ErrorCode =
  | 'ERR_BAD_FRAME'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_LINE_TOO_LONG'
  | 'ERR_BAD_GREETING'
  | 'ERR_VERSION_MISMATCH'
  | 'ERR_SELF_CONNECT'
  | 'ERR_ALREADY_CONNECTED'
  | 'ERR_ECHO'
  | 'ERR_NO_COMMON_FRAMING'
  | 'ERR_NO_COMMON_AUTH'
  | 'ERR_UNSUPPORTED_AUTH'
  | 'ERR_NO_CREDENTIALS'
  | 'ERR_AUTH_FAILED'
  | 'ERR_BAD_ADDRESS'
  | 'ERR_BIND_FAILED'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_KILLED'
  | 'ERR_NODE_CLOSED'
  | 'ERR_BAD_ARGUMENT';

const BRAND = Symbol.for('aemp.error');

/** Base class of every error raised by aemp. */
export class AempError extends Error {
  readonly code: ErrorCode;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** True for any aemp error, even one created by another copy of this package. */
  static is(e: unknown): e is AempError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** A malformed or oversized line or frame, or a greeting that breaks the rules. */
export class ProtocolError extends AempError {}

/** The peer failed authentication, or no common auth method exists. */
export class AuthError extends AempError {}

/** A connection could not be made or broke. */
export class ConnectionError extends AempError {
  readonly nodeId?: string;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { nodeId?: string }) {
    super(code, message, options);
    if (options?.nodeId !== undefined) this.nodeId = options.nodeId;
  }
}

/** Invalid configuration: names the key, the profile and the bad value. */
export class ConfigError extends AempError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_CONFIG_INVALID', message, options);
  }
}

/** Wrong command-line usage. */
export class UsageError extends AempError {}

/**
 * The error of an operation on a node that has closed (or closes while the operation
 * is pending): `AempError` with code `ERR_NODE_CLOSED`.
 */
export function nodeClosedError(nodeId: string, what: string): AempError {
  return new AempError('ERR_NODE_CLOSED', `${what}: node ${nodeId} is closed`);
}

/** A kill reason as it travels on the wire: `[]` is a normal exit. */
export type KillReason = readonly unknown[];

/** A port died with a non-empty (error) reason; `reason` is the AEMP kill reason. */
export class KilledError extends AempError {
  readonly reason: KillReason;
  readonly port: string;
  constructor(port: string, reason: KillReason) {
    super('ERR_KILLED', `port ${port} killed: ${formatReason(reason)}`);
    this.port = port;
    this.reason = reason;
  }
}

/** Renders a kill reason for humans: the elements joined by spaces, JSON for non-strings. */
export function formatReason(reason: KillReason): string {
  return reason.map((r) => (typeof r === 'string' ? r : safeJson(r))).join(' ');
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    // A reason may come from a peer: a big integer defeats JSON, and a `toString` key that is
    // no function defeats String; the rendering then shows big integers as digits.
    try {
      return String(v);
    } catch {
      try {
        return JSON.stringify(v, (_key, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
      } catch {
        return Object.prototype.toString.call(v);
      }
    }
  }
}

/** The kill reason an exception thrown by a handler produces: `['die', message]`. */
export function dieReason(err: unknown): KillReason {
  if (typeof err === 'object' && err !== null && typeof (err as Error).message === 'string')
    return ['die', (err as Error).message.replace(/\n+$/, '')];
  if (typeof err === 'string') return ['die', err.replace(/\n+$/, '')];
  return ['die', err];
}

function KilledErrorIs(e: unknown): e is KilledError {
  return AempError.is(e) && e.code === 'ERR_KILLED';
}

/** Maps an error to the reason a monitor of a port on `nodeId` sees. */
export function toKillReason(err: unknown, nodeId?: string): KillReason {
  if (KilledErrorIs(err)) return err.reason;
  if (
    AempError.is(err) &&
    nodeId !== undefined &&
    (err instanceof ConnectionError || err instanceof ProtocolError)
  )
    return ['transport_error', nodeId, err.message];
  return dieReason(err);
}
