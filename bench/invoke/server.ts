/**
 * Bench child: the server under test. `node server.js engine` runs our Engine on a loopback port
 * with logging off; `node server.js relay` runs the baseline relay. Reports `{type:'ready', port}`.
 */
import { ephemeralConfig } from '../../src/config/ephemeral';
import { serveParent, toParent } from '../lib/child';
import type { ServerKind, ServerReady } from './protocol';
import { Relay } from './relay';

async function main(): Promise<void> {
  const kind = process.argv[2] as ServerKind;
  let port: number;
  let close: () => Promise<void>;
  if (kind === 'engine') {
    // Loaded only here, so the relay process never contains engine code.
    const { createEngine } = require('../../src/create-engine') as typeof import('../../src/create-engine');
    const { silentLogger } =
      require('../../src/observability/logger') as typeof import('../../src/observability/logger');
    const engine = createEngine(ephemeralConfig({ nodeId: 'bench-node' }), { logger: silentLogger });
    await engine.start();
    port = engine.port;
    close = () => engine.stop();
  } else if (kind === 'relay') {
    const relay = new Relay();
    port = await relay.listen('127.0.0.1', 0);
    close = () => relay.close();
  } else {
    throw new Error(`unknown server kind ${JSON.stringify(kind)} (engine | relay)`);
  }
  serveParent(() => undefined, close);
  toParent({ type: 'ready', port } satisfies ServerReady);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
