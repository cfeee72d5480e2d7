/**
 * Connections a node dials read into one buffer shared by all of them (Node's `onread`): a
 * read is handed to the connection's decoder, which must keep a copy of any incomplete frame.
 * Two seeds (so two dialled connections) send large frames at once, each frame spanning several
 * reads, so both decoders hold part of a frame while the other connection's bytes land in the
 * same buffer. Every payload must arrive whole, in order, and unmixed, in either framing (the
 * JSON decoder keeps its incomplete texts apart from the CBOR one's).
 */
import { describe, expect, it } from 'vitest';
import { portNameOf } from '../../src/protocol/ids.js';
import { FakeListener, type FakePeer, SECRET, WAIT_MS, within } from '../helpers/fake-peer.js';
import { deferred, testNode } from '../helpers/node.js';

/** A payload of about `bytes` that names its sender and index in every one of its pieces. */
function payload(from: string, i: number, bytes: number): string {
  const piece = `<${from}:${i}>`;
  return piece.repeat(Math.ceil(bytes / piece.length));
}

describe('dialled connections (one read buffer for all)', () => {
  it.each(['cbor', 'json'])(
    'two seeds sending large %s frames at once: every payload arrives whole and unmixed',
    async (framing) => {
      const seeds = [await FakeListener.open(), await FakeListener.open()];
      const frames = 24;
      const bytes = 150_000; // more than two reads of the 64 KiB buffer each
      const total = frames * seeds.length;
      const got = new Map<string, string[]>();
      const all = deferred();
      let count = 0;
      const node = testNode({
        nodeid: 'reader',
        secret: SECRET,
        binds: ['127.0.0.1:0'],
        seeds: seeds.map((s) => s.addr),
      });
      const sink = node.port((from: string, text: string) => {
        let list = got.get(from);
        if (!list) got.set(from, (list = []));
        list.push(text);
        if (++count === total) all.resolve();
      });
      const fakes: FakePeer[] = [];
      for (const [i, seed] of seeds.entries()) {
        const fake = await seed.accept();
        await fake.handshake({ nodeId: `seed${i}`, secret: SECRET, sendFraming: framing });
        fakes.push(fake);
      }
      // Each frame goes out in three writes, alternating between the seeds, so the node's reads
      // of the two connections interleave while both have a frame in progress.
      const encoded = fakes.map((f, s) =>
        Array.from({ length: frames }, (_, i) =>
          f.encode([portNameOf(sink), `seed${s}`, payload(`seed${s}`, i, bytes)]),
        ),
      );
      for (let i = 0; i < frames; i++) {
        for (let part = 0; part < 3; part++) {
          for (const [s, f] of fakes.entries()) {
            const frame = encoded[s]![i]!;
            const cut = Math.ceil(frame.length / 3);
            f.write(frame.subarray(part * cut, Math.min(frame.length, (part + 1) * cut)));
          }
        }
      }
      await within(all.promise, WAIT_MS * 2, `all ${total} large frames to arrive`);
      for (const s of [0, 1]) {
        const texts = got.get(`seed${s}`) ?? [];
        expect(texts.length).toBe(frames);
        texts.forEach((t, i) => {
          expect(t.length).toBe(payload(`seed${s}`, i, bytes).length);
          expect(t === payload(`seed${s}`, i, bytes)).toBe(true);
        });
      }
      for (const f of fakes) f.destroy();
    },
  );
});
