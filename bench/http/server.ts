/**
 * Bench child: the server under test. `node server.js engine` runs our Engine (iii-http on a
 * loopback port, logging off); `node server.js relay` runs the baseline HttpRelay. Reports
 * `{type:'ready', wsPort, httpPort}`; answers `{type:'route-count'}` and `{type:'cpu'}`.
 */
import { ephemeralConfig } from '../../src/config/ephemeral';
import { serveParent, toParent } from '../lib/child';
import type { RouteCount, ServerKind, ServerReady } from './protocol';
import { HttpRelay } from './relay';

async function main(): Promise<void> {
  const kind = process.argv[2] as ServerKind;
  let ready: ServerReady;
  let close: () => Promise<void>;
  let routeCount = () => 0;
  if (kind === 'engine') {
    // Loaded only here, so the relay process never contains engine code.
    const { createEngine } = require('../../src/create-engine') as typeof import('../../src/create-engine');
    const { silentLogger } =
      require('../../src/observability/logger') as typeof import('../../src/observability/logger');
    const base = ephemeralConfig({ nodeId: 'bench-node' });
    // The route-table figure binds BENCH_HTTP_ROUTES (10,000) routes from one worker connection.
    const limits = { ...base.limits, maxRegistrationsPerWorker: Number.MAX_SAFE_INTEGER };
    const engine = createEngine({ ...base, limits }, { logger: silentLogger });
    await engine.start();
    const module = engine.module<import('../../src/modules/http').HttpModule>('iii-http');
    if (!module) throw new Error('iii-http is not enabled in the bench config');
    ready = { type: 'ready', wsPort: engine.port, httpPort: module.port };
    close = () => engine.stop();
    routeCount = () => module.routeCount;
  } else if (kind === 'relay') {
    const relay = new HttpRelay();
    ready = { type: 'ready', ...(await relay.listen()) };
    close = () => relay.close();
  } else {
    throw new Error(`unknown server kind ${JSON.stringify(kind)} (engine | relay)`);
  }
  serveParent((message) => {
    if (message.type === 'route-count') toParent({ type: 'route-count', count: routeCount() } satisfies RouteCount);
  }, close);
  toParent(ready);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
