import { firstValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { configure, memoryLogger } from '../../../src/index.js';

function activeHandles(): string[] {
  return process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
}

describe('close', () => {
  it('kills every local port normally, completes streams and leaves nothing running', async () => {
    const baseline = activeHandles();
    const n = configure({ nodeid: 'closing/', norc: true, binds: [], logger: memoryLogger() });
    await n.ready;
    const p = n.port$();
    const msgs = firstValueFrom(p.pipe(toArray()));
    const q = n.port(() => {});
    const reasons: unknown[][] = [];
    n.mon(q, (...r: unknown[]) => reasons.push(r));
    n.after(60, () => {});
    n.cal(q, 'never answered', () => {}, 60);
    n.snd(p.id, 'queued but dropped');
    const events = firstValueFrom(n.pipe(toArray()));
    await n.close();
    expect(await msgs).toEqual([]);
    expect(reasons).toEqual([[]]);
    expect((await events).every((e) => e.type === 'kill')).toBe(true);
    expect(n.kernel.portCount).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(activeHandles()).toEqual(baseline);
    await n.close();
  });
});
