/**
 * The per-user secret of the embedded default (design.md §6: "cannot be entered by another
 * local user").
 *
 * With no rc file and no secret given by the program, nodes authenticate with a random secret
 * kept in a file only the user can read: `$AEMP_SECRET_FILE`, else `~/.aemp-secret`. It is made
 * on first use (180 random characters, as `aemp gensecret` makes), so every node and every
 * `aemp` command of the same user finds the same secret with no set-up, and nobody else can.
 *
 * Rules (checked on every read, without following a symbolic link at the file itself):
 * - the directory holding the file must belong to the user (or root) and must not be writable
 *   by group or others unless it has the sticky bit (as /tmp) — otherwise someone else could
 *   replace the file; such a directory is refused with a ConfigError;
 * - the file must be a regular file owned by the user; anything else (a symbolic link, a file
 *   of another user) is refused with a ConfigError and left alone;
 * - a file of the user that group or others may read (mode & 0o077), or that is empty, is
 *   replaced at once by a file with a fresh secret (the old one must be assumed known), and a
 *   warning says so;
 * - a new file is written to a temporary name (created exclusively, mode 0600), flushed, then
 *   hard-linked to its final name, so readers never see a partial file and of two processes
 *   creating it at the same time, one wins and both use its secret.
 */
import { randomBytes, randomInt } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError } from '../../errors.js';

const SECRET_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Length of a generated secret: 180 characters of [0-9A-Za-z] are about 1071 bits. */
export const SECRET_LENGTH = 180;
/**
 * Secrets shorter than this get a warning: they can be guessed offline (issue: weak secrets).
 */
export const SHORT_SECRET = 32;

/** A new random shared secret, as `aemp gensecret` makes. */
export function generateSecret(): string {
  let s = '';
  for (let i = 0; i < SECRET_LENGTH; i++) s += SECRET_CHARS.charAt(randomInt(SECRET_CHARS.length));
  return s;
}

/** The warning for a secret shorter than `SHORT_SECRET` characters, or undefined. */
export function shortSecretWarning(secret: string): string | undefined {
  if (secret.length >= SHORT_SECRET) return undefined;
  return (
    `the shared secret is only ${secret.length} characters long: anyone who connects gets an ` +
    `HMAC to guess it offline; use at least ${SHORT_SECRET} random characters ` +
    `(aemp gensecret makes ${SECRET_LENGTH})`
  );
}

/**
 * The per-user secret file: `AEMP_SECRET_FILE` if set and not empty, else `~/.aemp-secret`.
 */
export function userSecretPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AEMP_SECRET_FILE) return env.AEMP_SECRET_FILE;
  return join(env.HOME || homedir(), '.aemp-secret');
}

/** What `userSecret` found or made. */
export interface UserSecret {
  readonly secret: string;
  readonly path: string;
  /** Set when the file had to be replaced (it was readable by others, or empty). */
  readonly warning?: string;
}

/**
 * The user's secret from `path`, created (or replaced, see the module comment) as needed.
 * Throws ConfigError when the file or its directory cannot be trusted or used.
 */
export function userSecret(path: string = userSecretPath()): UserSecret {
  const uid = process.getuid?.();
  checkDirectory(path, uid);
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = readOwn(path, uid);
    if (found === 'missing') {
      const secret = generateSecret();
      if (writeNew(path, secret, false)) return { secret, path };
      continue; // another process created it first: use theirs
    }
    if (typeof found === 'string') return { secret: found, path };
    writeNew(path, generateSecret(), true);
    // Another process may have replaced it at the same moment: use what the file holds now.
    const now = readOwn(path, uid);
    if (typeof now !== 'string') continue;
    return {
      secret: now,
      path,
      warning: `the per-user secret file ${path} ${found.why}; replaced it with a new secret (mode 0600)`,
    };
  }
  throw new ConfigError(`cannot create the per-user secret file ${path}: it keeps changing`);
}

function checkDirectory(path: string, uid: number | undefined): void {
  const dir = dirname(path);
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (err) {
    throw refuse(path, `its directory ${dir} cannot be used (${osText(err)})`);
  }
  if (uid === undefined) return;
  if (st.uid !== uid && st.uid !== 0) throw refuse(path, `its directory ${dir} belongs to another user`);
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
    throw refuse(path, `its directory ${dir} is writable by other users`);
}

/** The secret, `'missing'`, or why the file must be replaced; throws when it must be refused. */
function readOwn(path: string, uid: number | undefined): string | 'missing' | { why: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (err) {
    if (code(err) === 'ENOENT') return 'missing';
    if (code(err) === 'ELOOP') throw refuse(path, 'it is a symbolic link');
    throw refuse(path, osText(err));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(path, 'it is not a regular file');
    if (uid !== undefined && st.uid !== uid) throw refuse(path, 'it belongs to another user');
    if (uid !== undefined && (st.mode & 0o077) !== 0)
      return { why: `was accessible to other users (mode 0${(st.mode & 0o777).toString(8)})` };
    const secret = readFileSync(fd, 'utf8').trim();
    if (secret === '') return { why: 'was empty' };
    return secret;
  } finally {
    closeSync(fd);
  }
}

/** Writes `secret` to `path` via a private temporary file; false if `path` appeared meanwhile. */
function writeNew(path: string, secret: string, replace: boolean): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.new`;
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      fchmodSync(fd, 0o600);
      writeSync(fd, `${secret}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (replace) {
      renameSync(tmp, path);
      return true;
    }
    try {
      linkSync(tmp, path);
      return true;
    } catch (err) {
      if (code(err) === 'EEXIST') return false;
      throw err;
    }
  } catch (err) {
    throw refuse(path, `it cannot be written (${osText(err)})`, 'cannot create');
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // renamed, or never created
    }
  }
}

function refuse(path: string, why: string, verb = 'refusing to use'): ConfigError {
  return new ConfigError(
    `${verb} the per-user secret file ${path}: ${why}; the embedded default needs it ` +
      '(or give the node a secret: an rc file with "aemp gensecret", configure({ secret }), ' +
      'or AEMP_SECRET_FILE naming another file)',
  );
}

function code(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function osText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The per-user secret that nodes on the embedded default use (`$AEMP_SECRET_FILE`, else
 * `~/.aemp-secret`; created with mode 0600 on first use). Programs configured with `norc` pass
 * it as `secret` to join the same user's zero-config network; other local users cannot read it.
 * Throws a `ConfigError` when the file or its directory cannot be trusted.
 */
export function localSecret(): string {
  return userSecret().secret;
}
