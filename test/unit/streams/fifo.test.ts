import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/streams/clock.js';
import { MAX_VALUES, PairFifo } from '../../../src/streams/kernel/fifo.js';
import { testNode, turn } from '../../helpers/node.js';

/** A tiny deterministic generator, so a failure replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type Entry = [unknown, unknown];
/** A queue block, as the white-box tests look into it. */
type Block = { items: unknown[]; next: Block | undefined };

function drainAll(q: PairFifo): Entry[] {
  const out: Entry[] = [];
  q.drain((t, p) => {
    out.push([t, p]);
    return false;
  });
  return out;
}

describe('PairFifo', () => {
  it('a new queue starts small: its first block holds 64 four-slot entries, the 65th starts a block', () => {
    const q = new PairFifo();
    for (let i = 0; i < 64; i++) q.pushValues(i, 2, 'a', i, undefined, undefined);
    expect(q.spareBlocks).toBe(0);
    q.pushValues(64, 2, 'a', 64, undefined, undefined);
    // the first block is drained once the reader passes it: one spare
    const got = drainAll(q).map(([t]) => t);
    expect(got).toEqual(Array.from({ length: 65 }, (_, i) => i));
    expect(q.spareBlocks).toBe(1);
  });

  it('keeps pairs and inline values in order across many blocks, drained in random slices', () => {
    const rand = rng(7);
    const q = new PairFifo();
    const model: Entry[] = [];
    let next = 0;
    for (let round = 0; round < 30; round++) {
      const pushes = Math.floor(rand() * 12_000);
      for (let i = 0; i < pushes; i++) {
        const id = next++;
        if (rand() < 0.3) {
          const payload = { id };
          q.push(id, payload);
          model.push([id, payload]);
        } else {
          const n = Math.floor(rand() * (MAX_VALUES + 1));
          const vals = [`v${id}`, id, null, { id }].slice(0, n);
          q.pushValues(id, n, vals[0], vals[1], vals[2], vals[3]);
          model.push([id, vals]);
        }
      }
      expect(q.length).toBe(model.length);
      // Take a random number of entries, stopping early from inside the callback.
      const take = Math.floor(rand() * (model.length + 1));
      const got: Entry[] = [];
      if (take > 0)
        q.drain((t, p) => {
          got.push([t, p]);
          return got.length === take;
        });
      expect(got).toEqual(model.splice(0, take));
      expect(q.length).toBe(model.length);
    }
    expect(drainAll(q)).toEqual(model);
    expect(q.length).toBe(0);
  });

  it('keeps order when runs to one target are interleaved with pairs, other targets and pushes from inside a drain', () => {
    const rand = rng(11);
    const q = new PairFifo();
    const model: Entry[] = [];
    const targets = ['a', 'b', { port: 'c' }];
    let next = 0;
    /** Pushes one entry: mostly to the same target with the same arity, so that runs form. */
    const pushOne = () => {
      const id = next++;
      const t = targets[rand() < 0.8 ? 0 : Math.floor(rand() * targets.length)];
      const r = rand();
      if (r < 0.05) {
        const payload = { id };
        q.push(t, payload);
        model.push([t, payload]);
      } else {
        const n = r < 0.75 ? 2 : r < 0.85 ? 0 : Math.floor(rand() * (MAX_VALUES + 1));
        // Values that look like a run header (a target, then a number) now and then.
        const vals = [rand() < 0.5 ? t : `v${id}`, id, null, { id }].slice(0, n);
        q.pushValues(t, n, vals[0], vals[1], vals[2], vals[3]);
        model.push([t, vals]);
      }
    };
    const got: Entry[] = [];
    let checked = 0;
    for (let round = 0; round < 40; round++) {
      const pushes = Math.floor(rand() * (round % 4 === 0 ? 20_000 : 300));
      for (let i = 0; i < pushes; i++) pushOne();
      expect(q.length).toBe(model.length - got.length);
      // Now and then everything, so that the queue starts over at the front of its block.
      const take = rand() < 0.3 ? q.length : Math.floor(rand() * (q.length + 1));
      const pushInside = round % 3 === 1;
      let taken = 0;
      if (take > 0)
        q.drain((t, p) => {
          got.push([t, p]);
          if (pushInside && rand() < 0.01) pushOne();
          return ++taken === take;
        });
      expect(got.slice(checked)).toEqual(model.slice(checked, got.length));
      checked = got.length;
    }
    got.push(...drainAll(q));
    expect(got.slice(checked)).toEqual(model.slice(checked));
    expect(got.length).toBe(model.length);
    expect(q.length).toBe(0);
  });

  it('grows new blocks from the first one (256 slots) by four up to 16384 slots, and reuses drained ones first', () => {
    const q = new PairFifo();
    const inside = q as unknown as { head: Block; tail: Block };
    const sizes = () => {
      const out: number[] = [];
      for (let b: Block | undefined = inside.head; b !== undefined; b = b.next) out.push(b.items.length);
      return out;
    };
    // Four-slot entries to distinct targets: 64 fill the first block.
    let id = 0;
    const push = (entries: number) => {
      for (let i = 0; i < entries; i++) q.pushValues(id++, 2, 'v', i, undefined, undefined);
    };
    push(64);
    expect(sizes()).toEqual([256]);
    // The blocks made next hold 256, 1024 and 4096 of them; one more starts a second full block.
    push(256 + 1024 + 4096 + 1);
    expect(sizes()).toEqual([256, 1024, 4096, 16384, 16384]);
    expect(drainAll(q).length).toBe(id);
    expect(q.spareBlocks).toBe(4);
    // The next burst fills the live block and the four spare ones (9536 entries) before it makes
    // a new block, a full one.
    push(3 * 4096);
    expect(sizes().sort((a, b) => a - b)).toEqual([256, 1024, 4096, 16384, 16384, 16384]);
    expect(q.spareBlocks).toBe(0);
    drainAll(q);
    q.clear();
    expect(sizes()).toEqual([256]);
  });

  it('stores a run to one target in two slots per two-value entry, and leaves no values behind', () => {
    const q = new PairFifo();
    const inside = q as unknown as { head: Block; tail: Block; spare: Block };
    const held = { big: true };
    // 256 slots hold the run's header and 127 entries; the 128th starts a block.
    for (let i = 0; i < 127; i++) q.pushValues('t', 2, held, i, undefined, undefined);
    expect(inside.tail).toBe(inside.head);
    q.pushValues('t', 2, held, 127, undefined, undefined);
    expect(inside.tail).not.toBe(inside.head);
    expect(inside.head.items.length).toBe(256);
    q.push('t', 'pair');
    q.pushValues('t', 2, held, 128, undefined, undefined);
    const got = drainAll(q);
    expect(got.length).toBe(130);
    expect(got[127]).toEqual(['t', [held, 127]]);
    expect(got[128]).toEqual(['t', 'pair']);
    expect(got[129]).toEqual(['t', [held, 128]]);
    expect(q.spareBlocks).toBe(1);
    // Every slot of the drained and the live block is empty again.
    for (const b of [inside.spare, inside.head]) expect(b.items.filter((x) => x !== undefined)).toEqual([]);
  });

  it('hands out a fresh array for inline values and forgets the values it held', () => {
    const q = new PairFifo();
    const obj = { big: true };
    q.pushValues('t', 2, 'tag', obj, 'unused', 'unused');
    const [[, msg]] = drainAll(q) as [Entry];
    expect(msg).toEqual(['tag', obj]);
    expect((msg as unknown[])[1]).toBe(obj);
    q.pushValues('t', 0, 1, 2, 3, 4);
    expect(drainAll(q)).toEqual([['t', []]]);
  });

  it('leaves entries pushed during a drain for the next drain', () => {
    const q = new PairFifo();
    q.push('a', [1]);
    q.push('b', [2]);
    const seen: unknown[] = [];
    q.drain((t) => {
      seen.push(t);
      q.pushValues(`${String(t)}'`, 1, t, undefined, undefined, undefined);
      return false;
    });
    expect(seen).toEqual(['a', 'b']);
    expect(drainAll(q)).toEqual([
      ["a'", ['a']],
      ["b'", ['b']],
    ]);
  });

  it('keeps drained blocks for reuse until trimmed, and clear drops them all', () => {
    const q = new PairFifo();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100_000; i++) q.pushValues(i, 2, 'ping', i, undefined, undefined);
      let seen = 0;
      let wrong = 0;
      q.drain((t, p) => {
        const m = p as unknown[];
        if (t !== seen || m.length !== 2 || m[0] !== 'ping' || m[1] !== t) wrong++;
        seen++;
        return false;
      });
      expect([seen, wrong]).toEqual([100_000, 0]);
    }
    // 100k entries of four slots fill the blocks of 256, 1024 and 4096 slots and 25 of 16384
    // slots; all but the live one are spare.
    expect(q.spareBlocks).toBe(27);
    q.trim(2);
    expect(q.spareBlocks).toBe(2);
    q.push('x', ['y']);
    expect(drainAll(q)).toEqual([['x', ['y']]]);
    q.clear();
    expect(q.spareBlocks).toBe(0);
    expect(q.length).toBe(0);
  });
});

describe('local snd of every arity', () => {
  it('delivers messages of 0 to 7 values intact and in order, to handlers, tags and port$', async () => {
    const n = testNode();
    const byDefault: unknown[][] = [];
    const byTag: unknown[][] = [];
    const p = n.rcv(
      n.port((...m) => byDefault.push(m)),
      'tag',
      (...m: unknown[]) => byTag.push(m),
    );
    const viaStream: unknown[][] = [];
    const s = n.port$();
    const sub = s.subscribe((m) => viaStream.push(m));
    const sent: unknown[][] = [];
    for (let k = 0; k < 3; k++)
      for (let arity = 0; arity <= 7; arity++) {
        const msg = Array.from({ length: arity }, (_, i) => (i === 0 ? `m${k}.${arity}` : { i, k }));
        sent.push(msg);
        n.snd(p, ...msg);
        n.snd(s.id, ...msg);
        n.snd(p, 'tag', ...msg);
      }
    await turn();
    sub.unsubscribe();
    expect(byDefault).toEqual(sent);
    expect(viaStream).toEqual(sent);
    expect(byTag).toEqual(sent);
  });

  it('a kill queued in the middle of a burst to a port ends it there: the messages before it arrive, none after', async () => {
    const n = testNode();
    const got: unknown[] = [];
    const p = n.port((_tag: unknown, i: unknown) => got.push(i));
    const reason: unknown[][] = [];
    n.mon(p, (...r: unknown[]) => reason.push(r));
    for (let i = 0; i < 5000; i++) n.snd(p, 'm', i);
    n.kil(p, 'stopped', 'mid-burst');
    for (let i = 5000; i < 10_000; i++) n.snd(p, 'm', i);
    await turn();
    expect(got.length).toBe(5000);
    expect(got.every((v, i) => v === i)).toBe(true);
    expect(reason).toEqual([['stopped', 'mid-burst']]);
  });

  it('keeps order between inline sends and sends to a port by name before it exists', async () => {
    const n = testNode({ nodeid: 'fixed-order' });
    const got: unknown[] = [];
    const later = `${n.id}#later`;
    n.snd(later, 1);
    const p = n.port((...m) => got.push(m));
    n.snd(p, 2);
    n.rcv(later, (...m: unknown[]) => got.push(['later', ...m]));
    n.snd(later, 3, 4, 5, 6, 7);
    n.snd(p, 8);
    await turn();
    expect(got).toEqual([['later', 1], [2], ['later', 3, 4, 5, 6, 7], [8]]);
  });
});

describe('spare queue blocks', () => {
  it('are let go ten seconds after the last big burst, and close clears the timer', async () => {
    const clock = new VirtualClock();
    const n = testNode({ clock });
    const s = n.port$();
    let got = 0;
    const sub = s.subscribe(() => got++);
    for (let i = 0; i < 10; i++) n.snd(s.id, 'small', i);
    await turn();
    expect(got).toBe(10);
    expect(clock.size).toBe(0);
    for (let i = 0; i < 100_000; i++) n.snd(s.id, 'big', i);
    await turn();
    expect(got).toBe(100_010);
    expect(clock.size).toBe(1);
    // Another burst 6 s later: the blocks stay until 10 s after that one.
    clock.advance(6000);
    for (let i = 0; i < 100_000; i++) n.snd(s.id, 'more', i);
    await turn();
    clock.advance(9000);
    expect(clock.size).toBe(1);
    clock.advance(1000);
    expect(clock.size).toBe(0);
    for (let i = 0; i < 100_000; i++) n.snd(s.id, 'again', i);
    await turn();
    expect(clock.size).toBe(1);
    sub.unsubscribe();
    await n.close();
    expect(clock.size).toBe(0);
  });
});
