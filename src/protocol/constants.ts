/**
 * Wire-level names and limits of the AEMP 2.x protocol (spec/protocol.md).
 * Defined once here; everything else refers to these.
 */

/** Protocol name and version of node connections (greeting fields 1 and 2). */
export const PROTOCOL = 'aemp';
export const PROTOCOL_VERSION = 1;

/** Value of the `provider` greeting key. */
export const PROVIDER = 'AEMP-TS-0.1';

/** Maximum handshake line length in bytes, terminator included (Perl's read limit). */
export const MAX_LINE_BYTES = 4096;

/** Default maximum size of one data-phase frame (and of buffered incomplete frame bytes). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Unsent bytes one connection may hold before it is dropped (`max_send_buffer_bytes`). */
export const DEFAULT_MAX_SEND_BUFFER_BYTES = 256 * 1024 * 1024;
/** Unsent bytes all of a node's connections may hold together (`max_total_send_buffer_bytes`). */
export const DEFAULT_MAX_TOTAL_SEND_BUFFER_BYTES = 1024 * 1024 * 1024;

/** Most data items one frame may decode to (`max_frame_items`). */
export const DEFAULT_MAX_FRAME_ITEMS = 1_000_000;
/**
 * Longest integer, in decimal digits, that the frame decoders read exactly (as a bigint); a
 * longer one is read as a floating-point number (±Infinity at that size). Converting decimal
 * text to and from a bigint takes more than linear time: a frame holding one integer of
 * millions of digits would otherwise hold the event loop for seconds.
 */
export const MAX_EXACT_INTEGER_DIGITS = 4096;
/** The same limit for CBOR big integers (tags 2 and 3), in bytes without leading zeros. */
export const MAX_EXACT_BIGNUM_BYTES = Math.floor(MAX_EXACT_INTEGER_DIGITS / Math.log10(256));
/** Seconds from TCP connect to authentication (`handshake_timeout`). */
export const DEFAULT_HANDSHAKE_TIMEOUT = 5;
/** Accepted connections in their handshake, node-wide (`max_pending_handshakes`). */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 256;
/** Accepted connections in their handshake from one address (`max_pending_handshakes_per_address`). */
export const DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS = 64;
/** Connections of all kinds together (`max_connections`). */
export const DEFAULT_MAX_CONNECTIONS = 4096;

export const AUTH = {
  TLS_SHA3_512: 'tls_sha3_512',
  HMAC_SHA3_512: 'hmac_sha3_512',
  TLS_ANON: 'tls_anon',
  CLEARTEXT: 'cleartext',
} as const;
export type AuthMethod = (typeof AUTH)[keyof typeof AUTH];

export const FRAMING = { CBOR: 'cbor', JSON: 'json' } as const;
export type FramingFormat = (typeof FRAMING)[keyof typeof FRAMING];

/** Defaults of the configuration keys that shape the greeting. */
export const DEFAULT_AUTH_OFFER: readonly string[] = ['tls_sha3_512', 'hmac_sha3_512'];
export const DEFAULT_AUTH_ACCEPT: readonly string[] = [
  'tls_sha3_512',
  'hmac_sha3_512',
  'tls_anon',
  'cleartext',
];
export const DEFAULT_FRAMING_FORMAT: readonly string[] = ['cbor', 'json', 'storable'];

/** Sub-protocol of a data connection (greeting field 1; spec/protocol.md §13). */
export const DATACONN_PROTOCOL = 'aemp-dataconn';

/**
 * Extension keys of greeting line 1. Perl ignores the ones it does not know (`tb`, `hb`,
 * `role`); `dataconn_id` is Perl's own.
 */
export const GREETING_KEY = {
  PROVIDER: 'provider',
  PEERADDR: 'peeraddr',
  MPROTO: 'mproto',
  GPROTO: 'gproto',
  TLS: 'tls',
  /** Our side of the connection, `d` or `a` (greeting.ts). */
  ROLE: 'role',
  /** The simultaneous-connect tie-break between our nodes (value `1`). */
  TIEBREAK: 'tb',
  /** Our heartbeat interval in seconds (design.md §4). */
  HEARTBEAT: 'hb',
  /** The ID of an expected data connection (§13). */
  DATACONN_ID: 'dataconn_id',
} as const;

/**
 * Why a connection or a connect ended: the texts peers, monitors (`transport_error`) and log
 * lines see. Some are Perl's own wording.
 */
export const REASON = {
  /** The connect procedure's deadline (`connect_interval`) passed. */
  CONNECT_TIMEOUT: 'connect timeout',
  /** No listener address known or found for the node. */
  NO_KNOWN_ADDRESS: 'no known address',
  /** A connect refused at `MAX_CONNECTING_PEERS`. */
  TOO_MANY_CONNECTING: 'too many nodes connecting',
  /** A pending incoming connection closed to make room for our own dial. */
  CONNECTION_LIMIT: 'connection limit reached',
  /** The peer stayed silent for its heartbeat misses. */
  HEARTBEAT_TIMEOUT: 'heartbeat timeout',
  /** Nothing from the peer within the handshake's inactivity limit. */
  HANDSHAKE_INACTIVE: 'Connection timed out',
  /** The peer closed the transport. */
  CLOSED_BY_PEER: 'connection closed by peer',
  /** Our node is closing. */
  SHUTTING_DOWN: 'node shutting down',
  /** A newer connection to the same node replaced this one. */
  SWITCHED: 'switched connections',
  /** A peer (or a seed address) is this node itself (Perl's text). */
  SELF_CONNECT: 'I refuse to talk to myself',
  /** Start of the text closing the losing connection of a simultaneous connect. */
  SIMULTANEOUS: 'simultaneous connection',
  /** TLS needed but not possible on this side. */
  TLS_WITHOUT_CERT: 'TLS requested without a certificate',
} as const;
