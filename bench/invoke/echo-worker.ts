/** Bench child: an iii-sdk worker that registers `bench::echo` (returns its input). */
import { registerWorker } from 'iii-sdk';
import { serveParent, toParent } from '../lib/child';
import { ECHO_FUNCTION_ID, type WorkerReady } from './protocol';

console.debug = () => undefined; // the SDK logs every (re)connect at debug level

const url = process.argv[2];
const worker = registerWorker(url, {
  workerName: 'bench-echo',
  enableMetricsReporting: false,
  otel: { enabled: false },
});
worker.registerFunction(ECHO_FUNCTION_ID, async (input: unknown) => input);
serveParent(
  () => undefined,
  () => worker.shutdown(),
);
// Registration has no ack on the wire: the caller probes until a round trip succeeds.
toParent({ type: 'ready' } satisfies WorkerReady);
