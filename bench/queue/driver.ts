/**
 * Bench child: one iii-sdk worker that both serves `bench::job` and produces the load, so the
 * baseline and the queue run see the same worker, process and connection.
 *
 * - `sync`: K closed loops of synchronous calls to `bench::job` (the baseline).
 * - `queue`: K loops enqueueing `bench::job` on `bench_k<K>` (concurrency K); at most 4K jobs
 *   are outstanding (enqueued, not yet handled), so the queue always has work but stays short.
 *   Throughput is counted where the jobs are handled.
 */
import { performance } from 'node:perf_hooks';
import { TriggerAction, registerWorker } from 'iii-sdk';
import { serveParent, toParent } from '../lib/child';
import { Samples, percentileSorted } from '../lib/stats';
import { JOB_FUNCTION_ID, PAD, queueName, type DriverReady, type RunRequest, type RunResult } from './protocol';

console.debug = () => undefined; // the SDK logs every (re)connect at debug level

interface Job {
  /** performance.now() when the producer started the call (same process, same clock). */
  t: number;
  pad: string;
}

/** Outstanding queue jobs per producer loop. */
const OUTSTANDING_PER_LOOP = 4;
/** How long a queue run waits for its last jobs to be handled, in ms. */
const DRAIN_MS = 30_000;

const url = process.argv[2];
const worker = registerWorker(url, {
  workerName: 'bench-queue-driver',
  enableMetricsReporting: false,
  otel: { enabled: false },
});

/** What the handler does with each job; set per run. */
let onJob: (job: Job) => void = () => undefined;
worker.registerFunction(JOB_FUNCTION_ID, async (job: Job) => {
  onJob(job);
  return null;
});

async function probe(deadlineMs: number): Promise<void> {
  const started = performance.now();
  for (;;) {
    try {
      await worker.trigger({ function_id: JOB_FUNCTION_ID, payload: { t: 0, pad: PAD }, timeoutMs: 250 });
      return;
    } catch {
      // not registered yet
    }
    if (performance.now() - started > deadlineMs)
      throw new Error(`${JOB_FUNCTION_ID} not reachable within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface Window {
  start: number;
  end: number;
}

const inWindow = (t: number, w: Window) => t >= w.start && t < w.end;

async function runSync(
  inflight: number,
  w: Window,
): Promise<Omit<RunResult, 'type' | 'mode' | 'inflight' | 'jobsPerSec'>> {
  const samples = new Samples();
  let errors = 0;
  let totalJobs = 0;
  onJob = () => void totalJobs++;
  const lane = async (): Promise<void> => {
    while (performance.now() < w.end) {
      const t = performance.now();
      let ok = true;
      try {
        await worker.trigger({ function_id: JOB_FUNCTION_ID, payload: { t, pad: PAD } });
      } catch {
        ok = false;
      }
      const done = performance.now();
      if (!inWindow(done, w)) continue;
      if (ok) samples.push(done - t);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  const sorted = samples.sorted();
  return {
    jobs: sorted.length,
    totalJobs,
    errors,
    p50Ms: percentileSorted(sorted, 50),
    p99Ms: percentileSorted(sorted, 99),
  };
}

async function runQueue(
  inflight: number,
  w: Window,
): Promise<Omit<RunResult, 'type' | 'mode' | 'inflight' | 'jobsPerSec'>> {
  const samples = new Samples();
  const queue = queueName(inflight);
  let errors = 0;
  let totalJobs = 0;
  let credits = OUTSTANDING_PER_LOOP * inflight;
  let outstanding = 0;
  const waiting: (() => void)[] = [];
  let drained: (() => void) | undefined;
  const release = () => {
    outstanding--;
    const next = waiting.shift();
    if (next) next();
    else credits++;
    if (outstanding === 0) drained?.();
  };
  onJob = (job) => {
    totalJobs++;
    const now = performance.now();
    if (inWindow(now, w)) samples.push(now - job.t);
    release();
  };
  const lane = async (): Promise<void> => {
    while (performance.now() < w.end) {
      if (credits > 0) credits--;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      outstanding++;
      const t = performance.now();
      try {
        await worker.trigger({
          function_id: JOB_FUNCTION_ID,
          payload: { t, pad: PAD },
          action: TriggerAction.Enqueue({ queue }),
        });
      } catch {
        if (inWindow(performance.now(), w)) errors++;
        release();
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  if (outstanding > 0) {
    await Promise.race([
      new Promise<void>((resolve) => (drained = resolve)),
      new Promise((resolve) => setTimeout(resolve, DRAIN_MS)),
    ]);
  }
  onJob = () => undefined;
  const sorted = samples.sorted();
  return {
    jobs: sorted.length,
    totalJobs,
    errors,
    p50Ms: percentileSorted(sorted, 50),
    p99Ms: percentileSorted(sorted, 99),
  };
}

async function run(request: RunRequest): Promise<RunResult> {
  const start = performance.now() + request.warmupMs;
  const window = { start, end: start + request.measureMs };
  const outcome =
    request.mode === 'sync' ? await runSync(request.inflight, window) : await runQueue(request.inflight, window);
  return {
    type: 'result',
    mode: request.mode,
    inflight: request.inflight,
    ...outcome,
    jobsPerSec: outcome.jobs / (request.measureMs / 1000),
  };
}

serveParent(
  async (message) => {
    if (message.type === 'run') toParent(await run(message as RunRequest));
  },
  () => worker.shutdown(),
);

probe(Number(process.env.BENCH_PROBE_MS ?? 15_000)).then(
  () => toParent({ type: 'ready' } satisfies DriverReady),
  (err: unknown) => toParent({ type: 'error', message: String(err) }),
);
