/**
 * Garbage collections seen by the benchmarks that measure bytes allocated: a window's heap
 * growth only counts if no collection started inside it.
 */
import { PerformanceObserver } from 'node:perf_hooks';

/** Start times (`performance.now()`) of the collections seen since this module was loaded. */
const starts: number[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) starts.push(e.startTime);
}).observe({ entryTypes: ['gc'] });

/**
 * True if no collection started between `t0` and `t1` (`performance.now()` times). Waits
 * `settleMs` first: the observer reports collections asynchronously.
 */
export async function noCollectionBetween(t0: number, t1: number, settleMs = 10): Promise<boolean> {
  await new Promise((r) => setTimeout(r, settleMs));
  return !starts.some((at) => at >= t0 && at <= t1);
}
