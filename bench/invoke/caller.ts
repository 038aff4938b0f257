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
  rows?: Row[];
}

interface Row {
  id: number;
  name: string;
  tags: string[];
  score: number;
  active: boolean;
}

const [url, padBytes, rowCount] = process.argv.slice(2) as [string, string?, string?];
/** The string every call carries: PAD (32 bytes), or `padBytes` of it. */
const pad =
  padBytes === undefined ? PAD : PAD.repeat(Math.ceil(Number(padBytes) / PAD.length)).slice(0, Number(padBytes));
/** `rowCount` records of about 100 bytes of JSON each: a payload that is many small values, as most are. */
const rows: Row[] | undefined =
  rowCount === undefined || rowCount === '0'
    ? undefined
    : Array.from({ length: Number(rowCount) }, (_, id) => ({
        id,
        name: `customer ${id}`,
        tags: ['bench', `group-${id % 7}`],
        score: id * 1.25,
        active: id % 2 === 0,
      }));
const payload = (n: number): Echo => (rows ? { n, pad, rows } : { n, pad });
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
        payload: payload(-1),
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
    const out = await caller.trigger<Echo, Echo>({ function_id: ECHO_FUNCTION_ID, payload: payload(n) });
    return out?.n === n && out.pad === pad && out.rows?.length === rows?.length;
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
