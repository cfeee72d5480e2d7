/**
 * Heartbeats of an established connection (design.md §4): every own interval a beat queues an
 * empty message unless another message was queued since the beat before, and ends the
 * connection once nothing was read for the peer's interval × misses.
 *
 * Reads are not timed one by one (that would be a clock read per chunk): each beat looks
 * whether bytes came since the beat before, and the silence then counts from that earlier
 * beat. A timeout comes at the same beat as with every read timed or, where the silence limit
 * is not a whole number of own intervals, up to one own interval earlier.
 */
import type { Clock, Timer } from '../clock.js';

/** The connection as the beats see it. */
export interface Beating {
  /** Bytes read so far. */
  readonly bytesIn: number;
  /** Messages queued so far (the beats' own included). */
  readonly messagesOut: number;
  /** Queues the empty message. */
  beat(): void;
  /** Ends the connection: the peer was silent too long. */
  silent(): void;
}

/**
 * Beats every `ownMs` on `conn` (one closure per connection: its heap is counted in bytes).
 * The timer is the caller's to cancel.
 */
export function startBeats(clock: Clock, ownMs: number, silenceMs: number, conn: Beating): Timer {
  let beatAt = clock.now();
  let heardAt = beatAt;
  let bytesAtBeat = conn.bytesIn;
  let queuedAtBeat = conn.messagesOut;
  return clock.interval(() => {
    const now = clock.now();
    if (conn.bytesIn !== bytesAtBeat) {
      bytesAtBeat = conn.bytesIn;
      heardAt = beatAt;
    }
    beatAt = now;
    if (now - heardAt > silenceMs) {
      conn.silent();
      return;
    }
    if (conn.messagesOut === queuedAtBeat) conn.beat();
    queuedAtBeat = conn.messagesOut;
  }, ownMs);
}
