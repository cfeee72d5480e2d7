/**
 * The rc file (spec/config-and-cli.md §1): where it lives, how it is read (relaxed JSON, as
 * Perl's JSON::XS `relaxed` mode) and how the `aemp` tool rewrites it.
 *
 * Two rules protect the user's file:
 * - a file that exists but cannot be read or parsed is never overwritten: its state carries
 *   `error`, and `saveRc` refuses (it also re-checks the file on disk before replacing it);
 * - the embedded loopback default (`embeddedRc`) is only *merged from* when no file exists; it
 *   never appears in `RcState.data`, so saving writes only what the user set.
 *
 * The file and its backup are written with mode 0600 (they may hold the secret); loading a
 * file that holds a secret or certificate and that group or others may read gives a warning.
 */
import {
  closeSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../errors.js';
import { parseRelaxedJsonValue } from './rc-json.js';

/** The parsed content of an rc file: a JSON object (top-level keys, `version`, `profile`). */
export type RcData = Record<string, unknown>;

/** What `loadRc` found. */
export interface RcState {
  /** The rc file path (may be `""` when the environment set an empty path). */
  readonly path: string;
  /** True if the file was read and parsed. */
  readonly exists: boolean;
  /**
   * The user's own settings: the parsed file, or `{ version: 1 }` when the file is missing
   * or broken. This is what the CLI edits and saves; it never holds the embedded default.
   */
  readonly data: RcData;
  /** True when no file exists, so configuration merges from `embeddedRc()` instead. */
  readonly embedded: boolean;
  /** Why an existing file could not be used (read or parse error). `saveRc` refuses then. */
  readonly error?: string;
  /** Set when the file holds a secret or certificate and group or others may read it. */
  readonly exposed?: string;
}

/** JSON indentation used when writing (JSON::XS `pretty` indents by three spaces). */
const INDENT = 3;

/**
 * The rc file path: `AEMP_RC`, else `PERL_ANYEVENT_MP_RC` (each used when set, even if
 * empty), else `$HOME/.perl-anyevent-mp`, else `%APPDATA%/perl-anyevent-mp`, else the OS home
 * directory.
 */
export function rcPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AEMP_RC !== undefined) return env.AEMP_RC;
  if (env.PERL_ANYEVENT_MP_RC !== undefined) return env.PERL_ANYEVENT_MP_RC;
  if (env.HOME) return join(env.HOME, '.perl-anyevent-mp');
  if (env.APPDATA) return join(env.APPDATA, 'perl-anyevent-mp');
  return join(homedir(), '.perl-anyevent-mp');
}

/**
 * The rc data used when no rc file exists at all (an existing file, even `{}`, replaces it
 * entirely). It makes a fresh machine work out of the box:
 * - the profile named after the host (the default profile of `aemp run` and of
 *   `configure()`) is a global seed node listening on `127.0.0.1:4040`;
 * - every other node on the machine (other profiles, the `aemp` tool's own node) listens on a
 *   dynamic loopback port and uses `127.0.0.1:4040` as its seed.
 * It holds no secret: configuration fills in the per-user secret (user-secret.ts) when the
 * program gave none, and then allows loopback listeners only (config.ts). It ranks below the
 * program's configure arguments: it only fills in what nobody gave. Never saved to disk.
 */
export function embeddedRc(hostname: string): RcData {
  return {
    version: 1,
    binds: ['127.0.0.1:*'],
    seeds: ['127.0.0.1:4040'],
    profile: {
      [hostname]: { binds: ['127.0.0.1:4040'], services: ['AnyEvent::MP::Global::'] },
    },
  };
}

/**
 * Parses rc-file text: relaxed JSON (`#`/`//` comments, trailing commas, literal tabs in
 * strings; see rc-json.ts) whose top level must be an object. Throws a `SyntaxError` naming
 * the line and column.
 */
export function parseRcText(text: string): RcData {
  const value = parseRelaxedJsonValue(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new SyntaxError('the top level is not a JSON object');
  return value as RcData;
}

/**
 * The largest rc file read, in bytes (a secret, a certificate and many profiles take a few
 * KiB); a larger file, or a device that never ends, is ignored like an unreadable one.
 */
export const MAX_RC_BYTES = 4 * 1024 * 1024;

/** The text of `fd`, or undefined if it holds more than MAX_RC_BYTES. */
function readCapped(fd: number, size: number | undefined): string | undefined {
  if (size !== undefined && size > MAX_RC_BYTES) return undefined;
  const buf = Buffer.allocUnsafe((size ?? MAX_RC_BYTES) + 1);
  let n = 0;
  for (;;) {
    if (n === buf.length) return undefined;
    const got = readSync(fd, buf, n, buf.length - n, null);
    if (got === 0) break;
    n += got;
  }
  return n > MAX_RC_BYTES ? undefined : buf.toString('utf8', 0, n);
}

/**
 * Reads and parses the rc file. Never throws: a missing file gives `exists: false,
 * embedded: true`; an unreadable or unparsable one gives `error` (the caller prints
 * `formatRcWarning(state)` once and continues from the built-in defaults).
 */
export function loadRc(path: string): RcState {
  let text: string | undefined;
  let mode = 0;
  try {
    const fd = openSync(path, 'r');
    try {
      const st = fstatSync(fd);
      mode = st.mode;
      // A regular file may still grow while read: the buffer then fills and it counts as too large.
      text = readCapped(fd, st.isFile() ? st.size : undefined);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if (isCode(err, 'ENOENT') || path === '')
      return { path, exists: false, data: { version: 1 }, embedded: true };
    return { path, exists: false, data: { version: 1 }, embedded: false, error: osMessage(err) };
  }
  if (text === undefined) {
    const error = `larger than ${MAX_RC_BYTES / (1024 * 1024)} MiB`;
    return { path, exists: false, data: { version: 1 }, embedded: false, error };
  }
  let data: RcData;
  try {
    data = parseRcText(text);
  } catch (err) {
    return {
      path,
      exists: false,
      data: { version: 1 },
      embedded: false,
      error: err instanceof Error ? err.message : String(err),
    };
  }
  const state: RcState = { path, exists: true, data, embedded: false };
  if ((mode & 0o044) === 0 || process.platform === 'win32' || !holdsCredentials(data)) return state;
  const exposed =
    `the configuration file ${path} holds a secret or certificate but other users may read it ` +
    `(mode 0${(mode & 0o777).toString(8)}); make it private: chmod 600 ${path}`;
  return { ...state, exposed };
}

/** True when the top level or any profile sets `secret` or `cert`. */
function holdsCredentials(data: RcData): boolean {
  const sets = (o: unknown): boolean =>
    typeof o === 'object' &&
    o !== null &&
    ['secret', 'cert'].some((k) => (o as RcData)[k] !== undefined && (o as RcData)[k] !== null);
  if (sets(data)) return true;
  const profiles = data.profile;
  if (typeof profiles !== 'object' || profiles === null) return false;
  return Object.values(profiles).some(sets);
}

/**
 * The rc data configuration merges from: the file's content, the embedded default when no
 * file exists, `{ version: 1 }` when the file is broken.
 */
export function rcMergeData(state: RcState, hostname: string): RcData {
  if (state.error !== undefined) return { version: 1 };
  return state.embedded ? embeddedRc(hostname) : state.data;
}

/** The one-time warning for an rc file that could not be used, or undefined if it is fine. */
export function formatRcWarning(state: RcState): string | undefined {
  if (state.error === undefined) return undefined;
  return (
    `aemp: ignoring the configuration file ${state.path}: ${state.error}; ` +
    'continuing with the built-in defaults (the file will not be modified)'
  );
}

/**
 * Writes the rc file the way Perl's `aemp` does: pretty JSON plus a newline to
 * `<file>~new~` (created with mode 0600), then `<file>~` is replaced by the backup of the
 * current file, then `~new~` is renamed over the file. Unlike Perl, the backup is a private
 * copy (mode 0600) rather than a hard link, which would keep the old file's mode. Unknown keys are written
 * as they are. Refuses (ConfigError) when `target` is a state that failed to load, or when
 * the file on disk exists but does not parse. OS errors become `ConfigError('<path>: <error>')`.
 */
export function saveRc(target: RcState | string, data: RcData): void {
  const path = typeof target === 'string' ? target : target.path;
  if (path === '') throw new ConfigError('cannot save the configuration: the rc file path is empty');
  if (typeof target !== 'string' && target.error !== undefined)
    throw new ConfigError(`refusing to overwrite ${path}: it could not be read (${target.error})`);
  const current = loadRc(path);
  if (current.error !== undefined)
    throw new ConfigError(`refusing to overwrite ${path}: it could not be read (${current.error})`);

  const text = `${JSON.stringify(data, null, INDENT)}\n`;
  const tmp = `${path}~new~`;
  const backup = `${path}~`;
  step(tmp, () => unlinkIfPresent(tmp));
  step(tmp, () => writePrivate(tmp, text));
  step(backup, () => unlinkIfPresent(backup));
  step(backup, () => {
    let old: Buffer;
    try {
      old = readFileSync(path);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return;
      throw err;
    }
    writePrivate(backup, old);
  });
  step(path, () => renameSync(tmp, path));
}

/** Creates `path` (which must not exist) with mode 0600 and `content`, flushed to disk. */
function writePrivate(path: string, content: string | Buffer): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function step(path: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    throw new ConfigError(`${path}: ${osMessage(err)}`, { cause: err });
  }
}

function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err;
  }
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/**
 * The OS error text without Node's decoration: "EACCES: permission denied, open '/x'" becomes
 * "permission denied (EACCES)".
 */
function osMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const m = /^([A-Z][A-Z0-9_]+): (.*?)(?:, \w+(?: '[^']*')*)?$/.exec(msg);
  return m ? `${m[2]} (${m[1]})` : msg;
}
