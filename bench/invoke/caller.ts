/**
 * Bench child: an iii-sdk worker that calls `bench::echo` with K calls in flight (K independent
 * closed loops: each issues its next call when the previous one returns) and measures every
 * round trip with `performance.now()`.
 */
import { performance } from 'node:perf_hooks';
import { registerWorker } from 'iii-sdk';
import { serveParent, toParent } from '../lib/child';
import { closedLoops } from '../lib/loops';
import { ECHO_FUNCTION_ID, PAD, type CallerReady, type RunRequest, type RunResult } from './protocol';

console.debug = () => undefined; // the SDK logs every (re)connect at debug level

interface Echo {
  n: number;
  pad: string;
}

const [url, padBytes] = process.argv.slice(2) as [string, string?];
/** The string every call carries: PAD (32 bytes), or `padBytes` of it. */
const pad =
  padBytes === undefined ? PAD : PAD.repeat(Math.ceil(Number(padBytes) / PAD.length)).slice(0, Number(padBytes));
const caller = registerWorker(url, {
  workerName: 'bench-caller',
  enableMetricsReporting: false,
  otel: { enabled: false },
});

/** Retries a short-deadline call until bench::echo answers (registration is not acknowledged). */
async function probe(deadlineMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      const out = await caller.trigger<Echo, Echo>({
        function_id: ECHO_FUNCTION_ID,
        payload: { n: -1, pad },
        timeoutMs: 250,
      });
      if (out?.n === -1) return performance.now() - started;
    } catch {
      // not registered yet (function_not_found from the engine, silence from the relay)
    }
    if (performance.now() - started > deadlineMs)
      throw new Error(`${ECHO_FUNCTION_ID} not reachable within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function run(request: RunRequest): Promise<RunResult> {
  return closedLoops(request, async (n) => {
    const out = await caller.trigger<Echo, Echo>({ function_id: ECHO_FUNCTION_ID, payload: { n, pad } });
    return out?.n === n && out.pad === pad;
  });
}

serveParent(
  async (message) => {
    if (message.type === 'run') toParent(await run(message as RunRequest));
  },
  () => caller.shutdown(),
);

probe(Number(process.env.BENCH_PROBE_MS ?? 15_000)).then(
  (probeMs) => toParent({ type: 'ready', probeMs } satisfies CallerReady),
  (err: unknown) => toParent({ type: 'error', message: String(err) }),
);
