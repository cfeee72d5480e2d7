/**
 * The rc file as the configuration subcommands see it (spec/config-and-cli.md §1.3, §4.3):
 * the file's data in memory, a current target (the top level, or the profile chosen with
 * `profile NAME`) and a dirty flag. Nothing is written until `save()`, which the tool calls
 * once at exit, and only when something changed.
 *
 * A file that exists but could not be parsed is never modified: the first change fails. A
 * changed file that would not be a valid configuration is not written either (`save()` names
 * every problem), so a mistake is reported when it is made, not when a node starts.
 */

import { loadRc, type RcData, type RcState, rcDataProblems, saveRc } from '../streams/config/config.js';
import { CliExit, die, EXIT_DIE } from './args.js';

export class RcEditor {
  /** The whole file (`version`, top-level keys, `profile`). */
  readonly root: RcData;
  /** What the configuration subcommands change: `root` or one of its profiles. */
  target: RcData;
  private changed = false;
  /** The content `save()` last refused (reported once; a second save stops silently). */
  private refused: string | undefined;

  constructor(readonly state: RcState) {
    this.root = structuredClone(state.data);
    this.target = this.root;
  }

  /** Loads the rc file at `path`. */
  static load(path: string): RcEditor {
    return new RcEditor(loadRc(path));
  }

  /** True once anything was changed. */
  get dirty(): boolean {
    return this.changed;
  }

  /**
   * The file as configuration merges it now: the embedded default applies only while no
   * file exists and nothing was changed (saving creates the file).
   */
  current(): RcState {
    if (!this.changed) return this.state;
    return { ...this.state, data: this.root, embedded: false, exists: true };
  }

  /** Marks the file modified; refuses for a file that could not be read. */
  touch(): void {
    if (this.state.error !== undefined)
      throw die(`refusing to modify ${this.state.path}: it could not be read (${this.state.error})`);
    this.changed = true;
  }

  set(key: string, value: unknown): void {
    this.touch();
    this.target[key] = value;
  }

  del(key: string): void {
    this.touch();
    delete this.target[key];
  }

  /** The list under `key` (a comma string counts as its items); undefined when absent. */
  list(key: string): unknown[] | undefined {
    const v = this.target[key];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return v;
    return splitList(v);
  }

  /** The profile map of the file, created if missing. */
  profiles(): RcData {
    const p = this.root.profile;
    if (p === undefined || p === null) {
      const fresh: RcData = {};
      this.root.profile = fresh;
      return fresh;
    }
    if (typeof p !== 'object' || Array.isArray(p))
      throw die(`${this.state.path}: "profile" is not an object`);
    return p as RcData;
  }

  /** Makes profile `name` the target, creating it if missing. */
  selectProfile(name: string): void {
    this.touch();
    const profiles = this.profiles();
    // Own entries only: `__proto__` or `constructor` name a profile, not Object.prototype.
    const entry = Object.hasOwn(profiles, name) ? profiles[name] : undefined;
    if (entry === undefined || entry === null || entry === false || entry === '')
      Object.defineProperty(profiles, name, {
        value: {},
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else if (typeof entry !== 'object' || Array.isArray(entry))
      throw die(`${this.state.path}: profile "${name}" is not an object`);
    this.target = Object.getOwnPropertyDescriptor(profiles, name)!.value as RcData;
  }

  /**
   * Writes the file if it changed (pretty JSON, mode 0600, previous version as `<file>~`).
   * Refuses (exit 255) when the changed file would not validate, with one line per problem —
   * also problems that were in the file before — so they are fixed first, or by the same
   * command line (`aemp setbinds … delmonitor_timeout`):
   *
   *   aemp: refusing to write /home/u/.perl-anyevent-mp: invalid configuration: key "monitor_timeout" in profile "seed": must be a positive number, got "soon"
   *
   * A file whose content did not change (`aemp profile seed` on an existing profile) is
   * written back as before, valid or not.
   */
  save(): void {
    if (!this.changed) return;
    const content = JSON.stringify(this.root);
    if (!(this.state.exists && content === JSON.stringify(this.state.data))) {
      if (this.refused === content) throw new CliExit(EXIT_DIE);
      const problems = rcDataProblems(this.root);
      if (problems.length > 0) {
        this.refused = content;
        throw die(problems.map((p) => `aemp: refusing to write ${this.state.path}: ${p}`).join('\n'));
      }
    }
    try {
      saveRc(this.state, this.root);
    } catch (err) {
      throw die(err instanceof Error ? err.message : String(err));
    }
    this.changed = false;
  }
}

/**
 * A list as Perl's `aemp` reads one: an array as it is, anything else split on `,` (trailing
 * empty fields dropped, so `""` is the empty list).
 */
export function splitList(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  const parts = String(v).split(',');
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}
