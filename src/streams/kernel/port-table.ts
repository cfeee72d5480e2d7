/**
 * The table of live local ports: their names (a per-node counter, after a random part unless
 * the node ID has one), lookup by name (wire messages carry names) and by full ID (local
 * sends), handlers and stream sinks. The kernel builds delivery, kills and monitors on it.
 */
import { magicIncrement, makeUniq, nodeOf } from '../../protocol/ids.js';
import { type Handler, PortRecord, type PortSink } from './port-record.js';

/** @internal */
export class PortTable {
  readonly prefix: string;
  readonly uniq: string;
  /** Live ports by name and by full ID. */
  protected readonly ports = new Map<string, PortRecord>();
  protected readonly byId = new Map<string, PortRecord>();
  private counter = 'a';

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
    return this.ports.size;
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
    return this.ports.has(this.localName(portId));
  }

  /** Port IDs of all live local ports. */
  portIds(): string[] {
    return [...this.ports.values()].map((r) => r.id);
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
    const r = this.ports.get(this.localName(portId));
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
    return this.ports.get(name) ?? this.addPort(name, null);
  }
}
