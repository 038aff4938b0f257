/**
 * Bench child: an iii-sdk worker that registers `count` functions (`filler::0` ...), so the
 * cluster benchmark can show that a call's Redis cost does not grow with the registry.
 */
import { registerWorker } from 'iii-sdk';
import { serveParent, toParent } from '../lib/child';
import type { WorkerReady } from '../invoke/protocol';

console.debug = () => undefined;

const [url, countText] = process.argv.slice(2) as [string, string];
const worker = registerWorker(url, {
  workerName: 'bench-filler',
  enableMetricsReporting: false,
  otel: { enabled: false },
});
for (let i = 0; i < Number(countText); i++) worker.registerFunction(`filler::${i}`, async () => null);
serveParent(
  () => undefined,
  () => worker.shutdown(),
);
toParent({ type: 'ready' } satisfies WorkerReady);
