import { performance } from 'node:perf_hooks';
import type { RunRequest, RunResult } from '../invoke/protocol';
import { Samples, percentileSorted } from './stats';

/**
 * K independent closed loops (each issues its next call when the previous one returns), every
 * round trip timed with `performance.now()`. `call(n)` resolves true when the answer is right.
 */
export async function closedLoops(request: RunRequest, call: (n: number) => Promise<boolean>): Promise<RunResult> {
  const { inflight, warmupMs, measureMs } = request;
  const measureStart = performance.now() + warmupMs;
  const measureEnd = measureStart + measureMs;
  const samples = new Samples();
  let errors = 0;
  let next = 0;
  let totalCalls = 0;

  const lane = async (): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= measureEnd) return;
      let ok: boolean;
      try {
        ok = await call(next++);
      } catch {
        ok = false;
      }
      const t1 = performance.now();
      totalCalls++;
      if (t1 >= measureStart && t1 < measureEnd) {
        if (ok) samples.push(t1 - t0);
        else errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));

  const sorted = samples.sorted();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i];
  return {
    type: 'result',
    inflight,
    calls: sorted.length,
    totalCalls,
    errors,
    measureMs,
    callsPerSec: sorted.length / (measureMs / 1000),
    p50Ms: percentileSorted(sorted, 50),
    p99Ms: percentileSorted(sorted, 99),
    meanMs: sorted.length ? sum / sorted.length : Number.NaN,
  };
}
