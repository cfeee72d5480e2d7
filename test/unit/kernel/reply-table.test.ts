import { describe, expect, it } from 'vitest';
import { type ReplyPort, ReplyTable, replySeqOf } from '../../../src/streams/kernel/reply-table.js';

function port(): ReplyPort {
  return { replySeq: 0, replyId: '', replyRecord: undefined, next() {}, complete() {}, error() {} };
}

describe('ReplyTable', () => {
  it('numbers ports uniquely, finds each by its number, and never by a finished one', () => {
    const t = new ReplyTable();
    const a = port();
    const b = port();
    const sa = t.add(a);
    const sb = t.add(b);
    expect(sa).not.toBe(sb);
    expect(t.get(sa)).toBe(a);
    expect(t.get(sb)).toBe(b);
    t.remove(a);
    expect(t.get(sa)).toBeUndefined();
    expect(t.count).toBe(1);
    // A later port may take a's slot, but not its number: a late reply to a finds nothing.
    const seen = new Set([sa, sb]);
    for (let i = 0; i < 200; i++) {
      const p = port();
      const s = t.add(p);
      expect(seen.has(s)).toBe(false);
      seen.add(s);
      t.remove(p);
    }
    expect(t.get(sa)).toBeUndefined();
    expect(t.get(sb)).toBe(b);
  });

  it('grows past its size with every port still found, and skips numbers whose slot is taken', () => {
    const t = new ReplyTable();
    const longLived = port();
    const first = t.add(longLived);
    const live: ReplyPort[] = [];
    for (let i = 0; i < 1000; i++) live.push(port());
    const nums = live.map((p) => t.add(p));
    expect(new Set(nums).size).toBe(1000);
    expect(t.count).toBe(1001);
    expect(t.get(first)).toBe(longLived);
    for (let i = 0; i < live.length; i++) expect(t.get(nums[i]!)).toBe(live[i]);
    for (const p of live) t.remove(p);
    expect(t.all()).toEqual([longLived]);
    // Many short calls later, the long-lived one keeps its slot and number.
    for (let i = 0; i < 5000; i++) {
      const p = port();
      t.add(p);
      t.remove(p);
    }
    expect(t.get(first)).toBe(longLived);
  });

  it('take() hands out numbers no table port gets', () => {
    const t = new ReplyTable();
    const taken = t.take();
    const p = port();
    expect(t.add(p)).not.toBe(taken);
    expect(t.get(taken)).toBeUndefined();
  });
});

describe('replySeqOf', () => {
  it('reads uniq + a number without a leading zero, and nothing else', () => {
    expect(replySeqOf('42', '')).toBe(42);
    expect(replySeqOf('Ab3xyz1234', 'Ab3xyz')).toBe(1234);
    expect(replySeqOf('Ab3xyz1234', 'Ab3xyw')).toBe(-1);
    for (const name of ['', '0', '042', 'b', '12a', '1.5', 'x12', '1'.repeat(16)])
      expect(replySeqOf(name, ''), name).toBe(-1);
    expect(replySeqOf('Ab3xyz', 'Ab3xyz')).toBe(-1);
    expect(replySeqOf('9'.repeat(15), '')).toBe(999_999_999_999_999);
  });
});
