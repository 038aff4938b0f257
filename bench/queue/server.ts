/**
 * Bench child: our Engine on a loopback port with logging off and one named queue per K
 * (`bench_k<K>`, concurrency K). `node server.js 1,64`. Reports `{type:'ready', port}`.
 */
import { ephemeralConfig } from '../../src/config/ephemeral';
import { createEngine } from '../../src/create-engine';
import { silentLogger } from '../../src/observability/logger';
import { serveParent, toParent } from '../lib/child';
import { queueName, type ServerCpu, type ServerReady } from './protocol';

async function main(): Promise<void> {
  const inflight = (process.argv[2] ?? '').split(',').map(Number);
  const base = ephemeralConfig({ nodeId: 'bench-node' });
  const queueConfigs = Object.fromEntries(inflight.map((k) => [queueName(k), { concurrency: k, max_retries: 1 }]));
  const engine = createEngine(
    { ...base, modules: { ...base.modules, queue: { enabled: true, config: { queue_configs: queueConfigs } } } },
    { logger: silentLogger },
  );
  await engine.start();
  serveParent(
    (message) => {
      if (message.type !== 'cpu') return;
      const usage = process.cpuUsage();
      toParent({ type: 'cpu', userUs: usage.user, systemUs: usage.system } satisfies ServerCpu);
    },
    () => engine.stop(),
  );
  toParent({ type: 'ready', port: engine.port } satisfies ServerReady);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
