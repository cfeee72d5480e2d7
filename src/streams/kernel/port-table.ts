/**
 * The table of live local ports: their names (a per-node counter, after a random part unless
 * the node ID has one), lookup by name (wire messages carry names) and by full ID (local
 * sends), handlers and stream sinks. The kernel builds delivery, kills and monitors on it.
 */

import type { KillReason } from '../../errors.js';
import { magicIncrement, makeUniq, nodeOf } from '../../protocol/ids.js';
import { type Handler, PortRecord, type PortSink, type SinkHandle } from './port-record.js';
import { type ReplyPort, ReplyTable, replySeqOf } from './reply-table.js';

export abstract class PortTable {
  readonly prefix: string;
  readonly uniq: string;
  /** Live ports by name and by full ID. */
  protected readonly ports = new Map<string, PortRecord>();
  protected readonly byId = new Map<string, PortRecord>();
  private counter = 'a';
  /** The reply ports of calls in flight (outside `ports` until something needs their record). */
  protected readonly replies = new ReplyTable();

  /**
   * @param nodeId This node's ID.
   * @param randomisedId True when the node ID got a random part: port names are then just the
   *   counter.
   */
  constructor(
    readonly nodeId: string,
    randomisedId: boolean,
  ) {
    this.prefix = nodeId + '#';
    this.uniq = randomisedId ? '' : makeUniq();
  }

  /** Number of live local ports. */
  get portCount(): number {
    return this.ports.size + this.replies.count;
  }

  /** @internal Number of monitors set on this node for a local port (for tests and diagnostics). */
  monitorCount(portId: string): number {
    return this.ports.get(this.localName(portId))?.mons?.length ?? 0;
  }

  /** The next value of the shared name counter (first call returns `b`). */
  nextCounter(): string {
    this.counter = magicIncrement(this.counter);
    return this.counter;
  }

  /** Creates a local port; without a handler it dies on its first unhandled message. */
  createPort(handler?: Handler): string {
    const name = this.uniq + this.nextCounter();
    return this.addPort(name, handler ?? null).id;
  }

  /** True if the local port (ID or name) exists. */
  hasPort(portId: string): boolean {
    const name = this.localName(portId);
    return this.ports.has(name) || this.replyOf(name) !== undefined;
  }

  /** Port IDs of all live local ports. */
  portIds(): string[] {
    return [...[...this.ports.values()].map((r) => r.id), ...this.replies.all().map((p) => p.replyId)];
  }

  /** Creates the local port if it does not exist (`rcv` on a missing port re-creates it). */
  ensurePort(portId: string): void {
    this.ensure(portId);
  }

  /** Sets the default handler (re-creating the port if it does not exist). */
  setDefault(portId: string, handler: Handler): void {
    this.ensure(portId).dflt = handler;
  }

  /** Sets (or with `null`, removes) a tag handler (re-creating the port if needed). */
  setTag(portId: string, tag: string, handler: Handler | null): void {
    const r = this.ensure(portId);
    if (handler) (r.tags ??= new Map()).set(tag, handler);
    else if (r.tags) {
      r.tags.delete(tag);
      if (r.tags.size === 0) r.tags = null;
    }
  }

  /** Attaches a receiver of the messages no tag handler takes; returns the detach function. */
  attachSink(portId: string, sink: PortSink): (() => void) | undefined {
    const r = this.find(this.localName(portId));
    if (!r) return undefined;
    (r.sinks ??= []).push(sink);
    return () => {
      if (!r.sinks) return;
      const i = r.sinks.indexOf(sink);
      if (i >= 0) r.sinks.splice(i, 1);
      if (r.sinks.length === 0) r.sinks = null;
    };
  }

  /**
   * A new local port ID that no port has yet: a name only, until `openPort` creates the port
   * (messages sent to it before that are dropped, monitors get `no_such_port`).
   */
  reservePortId(): string {
    return this.prefix + this.uniq + this.nextCounter();
  }

  protected localName(portId: string): string {
    return portId.startsWith(this.prefix) ? portId.slice(this.prefix.length) : portId;
  }

  protected addPort(name: string, dflt: Handler | null): PortRecord {
    const r = new PortRecord(name, this.prefix + name, dflt);
    this.ports.set(name, r);
    this.byId.set(r.id, r);
    return r;
  }

  protected ensure(portId: string): PortRecord {
    if (nodeOf(portId) !== this.nodeId || !portId.includes('#'))
      throw new TypeError(`rcv can only be called on local ports ('${portId}')`);
    const name = this.localName(portId);
    if (name === '') throw new TypeError('rcv: the node port cannot be changed');
    return this.find(name) ?? this.addPort(name, null);
  }

  /** The reply port in the table named `name`, if any. */
  protected replyOf(name: string): ReplyPort | undefined {
    const seq = replySeqOf(name, this.uniq);
    return seq < 0 ? undefined : this.replies.get(seq);
  }

  /**
   * The record of the live local port `name`: a reply port in the table moves into the port
   * map for it (it is to be monitored, killed, streamed or given handlers).
   */
  protected find(name: string): PortRecord | undefined {
    const r = this.ports.get(name);
    if (r !== undefined) return r;
    const p = this.replyOf(name);
    if (p === undefined) return undefined;
    this.replies.remove(p);
    const rec = new PortRecord(name, p.replyId, null);
    rec.reply = p;
    p.replyRecord = rec;
    this.ports.set(name, rec);
    return rec;
  }

  /**
   * Opens a reply port whose messages all go to `p` (a call in flight) and returns its ID.
   * `closeReply` removes it; until then `p` also learns of its death (`complete`/`error`).
   */
  openReply(p: ReplyPort): string {
    const seq = this.replies.add(p);
    p.replyRecord = undefined;
    p.replyId = this.prefix + this.uniq + seq;
    return p.replyId;
  }

  /** Removes the reply port of `p` now, without telling `p`. */
  closeReply(p: ReplyPort): void {
    if (p.replyRecord === undefined) this.replies.remove(p);
    else this.removeSink(p.replyRecord as PortRecord);
  }

  /**
   * Creates a private local port whose messages all go to `sink` (no handlers; used for
   * replies). The handle carries the port ID and is what `removeSink` takes back.
   *
   * Its name is the node's random part and a number, as a reply port's in the table: it ends
   * in a digit, where the names of ports and spawns end in a letter of the shared counter, so
   * none is ever reused.
   */
  createSinkPort(sink: PortSink): SinkHandle {
    // Found by name only (not in `byId`); a local send to it takes the by-name path.
    const name = this.uniq + this.replies.take();
    const r = new PortRecord(name, this.prefix + name, null);
    r.reply = sink;
    this.ports.set(name, r);
    return r;
  }

  /** Removes a port made by `createSinkPort` now, without telling its sink. */
  removeSink(handle: SinkHandle): void {
    const r = handle as PortRecord;
    if (r.dead) return;
    r.reply = null;
    if (r.mons === null && r.rmons === null && r.sinks === null) {
      // Nobody watches it: drop it quietly (no kill event for a private port). Its name is
      // the very string it was stored under, so no new hash is computed.
      this.ports.delete(r.name);
      r.dead = true;
      return;
    }
    this.killNow(r.name, []);
  }

  /** Kills a local port by name right now. */
  abstract killNow(name: string, reason: KillReason): void;
}
