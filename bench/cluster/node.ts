/**
 * Bench child: one engine node in cluster mode, `node node.js <nodeId> <redisUrl> <keyPrefix> [redis|direct]`
 * (the bus, default redis), logging off, on free loopback ports. Reports `{type:'ready', port}`.
 */
import { ephemeralConfig } from '../../src/config/ephemeral';
import type { ClusterBus } from '../../src/config/types';
import { createEngine } from '../../src/create-engine';
import { silentLogger } from '../../src/observability/logger';
import { serveParent, toParent } from '../lib/child';
import type { ServerReady } from '../invoke/protocol';

async function main(): Promise<void> {
  const [nodeId, redisUrl, keyPrefix, bus = 'redis'] = process.argv.slice(2) as [string, string, string, ClusterBus?];
  const engine = createEngine(ephemeralConfig({ nodeId, cluster: { redisUrl, keyPrefix, bus } }), {
    logger: silentLogger,
  });
  await engine.start();
  serveParent(
    () => undefined,
    () => engine.stop(),
  );
  toParent({ type: 'ready', port: engine.port } satisfies ServerReady);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
