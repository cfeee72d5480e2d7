/**
 * One monitor per called port, shared by every call in flight to it: a call joins the group of
 * its port (the first one sets the monitor) and leaves it when it ends (the last one cancels
 * the monitor). Joining and leaving are constant time, however many calls wait on one port;
 * when the port dies, every call of the group learns it.
 *
 * An emptied group stays until the microtasks queued so far ran: a caller that awaited a reply
 * and calls the same port again (its continuation was queued when the reply settled the call)
 * joins it again, so back-to-back calls set one monitor, not one each.
 */
import type { KillReason } from '../../errors.js';
import type { MonEntry } from './port-record.js';

/** A call that watches its port: the group links its members through these fields. */
export interface Watcher extends MonEntry {
  watchGroup: WatchGroup | undefined;
  watchPrev: Watcher | undefined;
  watchNext: Watcher | undefined;
}

const SETTLED = Promise.resolve();

/** Sets a monitor; returns its cancel function (the kernel's `watch`). */
type Watch = (portId: string, entry: MonEntry) => () => void;

export class WatchGroup implements MonEntry {
  head: Watcher | undefined;
  cancel: (() => void) | undefined;
  fired = false;

  constructor(
    private readonly table: CallWatches,
    readonly portId: string,
  ) {}

  fire(reason: KillReason): void {
    this.fired = true;
    this.table.forget(this);
    let w = this.head;
    this.head = undefined;
    while (w !== undefined) {
      const next = w.watchNext;
      w.watchGroup = w.watchPrev = w.watchNext = undefined;
      w.fire(reason);
      w = next;
    }
  }
}

export class CallWatches {
  private readonly groups = new Map<string, WatchGroup>();
  /**
   * Groups that emptied since the last sweep: the first one (mostly the only one: a caller
   * awaiting each reply empties its port's group once per call), then the others.
   */
  private emptiedFirst: WatchGroup | undefined;
  private emptied: WatchGroup[] | undefined;
  private sweepQueued = false;

  constructor(private readonly watch: Watch) {}

  /** Number of ports watched for calls (for tests and diagnostics). */
  get size(): number {
    return this.groups.size;
  }

  /** `w` learns (through `fire`) when `portId` dies, until it leaves. */
  join(portId: string, w: Watcher): void {
    let g = this.groups.get(portId);
    const fresh = g === undefined;
    if (g === undefined) {
      g = new WatchGroup(this, portId);
      this.groups.set(portId, g);
    }
    w.watchGroup = g;
    w.watchPrev = undefined;
    w.watchNext = g.head;
    if (g.head !== undefined) g.head.watchPrev = w;
    g.head = w;
    // The monitor may fire at once (a local port that does not exist): the group is then gone.
    if (fresh) {
      const cancel = this.watch(portId, g);
      if (g.fired) cancel();
      else g.cancel = cancel;
    }
  }

  /** `w` no longer watches its port; the monitor goes with the group's last member. */
  leave(w: Watcher): void {
    const g = w.watchGroup;
    if (g === undefined) return;
    const { watchPrev: prev, watchNext: next } = w;
    if (prev === undefined) g.head = next;
    else prev.watchNext = next;
    if (next !== undefined) next.watchPrev = prev;
    w.watchGroup = w.watchPrev = w.watchNext = undefined;
    if (g.head === undefined && !g.fired) {
      if (this.emptiedFirst === undefined) this.emptiedFirst = g;
      else (this.emptied ??= []).push(g);
      if (!this.sweepQueued) {
        this.sweepQueued = true;
        // A reaction on a settled promise runs where a microtask queued now would, at about a
        // quarter of the cost of Node's `queueMicrotask` (which makes an async resource each).
        SETTLED.then(this.sweep);
      }
    }
  }

  /** Drops the groups still empty, with their monitors. */
  private readonly sweep = (): void => {
    this.sweepQueued = false;
    const first = this.emptiedFirst;
    const others = this.emptied;
    this.emptiedFirst = undefined;
    this.emptied = undefined;
    if (first !== undefined) this.drop(first);
    if (others !== undefined) for (const g of others) this.drop(g);
  };

  /** Drops `g` with its monitor, unless a call joined it again or its port died. */
  private drop(g: WatchGroup): void {
    if (g.head !== undefined || g.fired) return;
    g.fired = true;
    this.forget(g);
    g.cancel?.();
  }

  /** The group's port died: later calls start a new group. */
  forget(g: WatchGroup): void {
    if (this.groups.get(g.portId) === g) this.groups.delete(g.portId);
  }
}
